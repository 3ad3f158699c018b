#pragma once
// One opener per on-disk dataset layout (../shared/specs/formats.md). Each returns a dataset whose
// get() yields RGB images and CV_8U class-index masks with 255 = ignore.
#include <filesystem>
#include <string>

#include "lesseg/data/dataset.h"

namespace lesseg {

// images/ + masks/ (same stem) + optional splits/{split}.txt + optional classes.yaml.
// split "" or "all": every image in images/. Unlabeled images (no mask) get an empty mask.
SegDatasetPtr open_folder(const std::filesystem::path& root, const std::string& split);
// leftImg8bit/{split}/{city}/*_leftImg8bit.png + gtFine/{split}/{city}/*_gtFine_labelIds.png
// (or *_labelTrainIds.png), labelIds -> 19 train ids.
SegDatasetPtr open_cityscapes(const std::filesystem::path& root, const std::string& split);
// Cityscapes instanceIds (id >= 1000: class id/1000, instance id%1000) -> (train id map, instance map).
std::pair<cv::Mat, cv::Mat> cityscapes_instances(const cv::Mat& instance_ids);
// images/*.png + labels/*.png (Cityscapes labelIds); split list optional.
SegDatasetPtr open_gta5(const std::filesystem::path& root, const std::string& split);
// RGB/*.png + GT/LABELS/*.png (16-bit, 3 channels; last channel) -> Cityscapes train ids.
SegDatasetPtr open_synthia(const std::filesystem::path& root, const std::string& split);
// ADEChallengeData2016/{images,annotations}/{training,validation}; 0 -> 255, others - 1.
SegDatasetPtr open_ade20k(const std::filesystem::path& root, const std::string& split);
// VOC2012: JPEGImages + SegmentationClass(Aug) palette PNGs + ImageSets/Segmentation/{split}.txt.
SegDatasetPtr open_voc(const std::filesystem::path& root, const std::string& split);
// CamVid: {split}/ + {split}annot/ (SegNet layout) or {split}/images + {split}/labels, or a
// split list {split}.txt with "image label" lines; 11 (void) -> 255.
SegDatasetPtr open_camvid(const std::filesystem::path& root, const std::string& split);
// COCO instances JSON -> semantic masks (category order + 1, 0 background, crowd -> 255).
// root holds images/ (or the folder of file_name) and `json_file` (relative to root).
SegDatasetPtr open_coco(const std::filesystem::path& root, const std::string& json_file);

// Cityscapes palette and names for the 19 train ids.
ClassInfo cityscapes_classes();

}  // namespace lesseg
