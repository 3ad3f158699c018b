// GTA5 (Playing for Data): images/*.png + labels/*.png holding Cityscapes labelIds.
#include "lesseg/data/formats/format_util.h"
#include "lesseg/data/formats/formats.h"

namespace lesseg {

// split "" / "all": every image; otherwise root/{split}.txt lists image names (stems or file names).
SegDatasetPtr open_gta5(const std::filesystem::path& root, const std::string& split) {
  formats::require_dir(root, "GTA5 dataset");
  auto items = formats::paired_items(root, split, root / "images", root / "labels", ".png");
  // A few GTA5 labels differ in size from their images; validate_mask reports them by name.
  return formats::make_dataset(std::move(items), cityscapes_classes(),
                               lut_mapper(cityscapes_label_to_train()), root / "images");
}

}  // namespace lesseg
