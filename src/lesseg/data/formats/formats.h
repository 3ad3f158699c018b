#pragma once
// One opener per on-disk dataset layout (../shared/specs/formats.md). Each returns a dataset whose
// get() yields RGB images and CV_8U class-index masks with 255 = ignore.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "lesseg/data/dataset.h"

namespace lesseg {

// images/ + masks/ (same stem) + optional splits/{split}.txt + optional classes.yaml.
// split "" or "all": every image in images/. Unlabeled images (no mask) get an empty mask.
SegDatasetPtr open_folder(const std::filesystem::path& root, const std::string& split);
// leftImg8bit/{split}/{city}/*_leftImg8bit.png + gtFine/{split}/{city}/*_gtFine_labelIds.png
// (or *_labelTrainIds.png), labelIds -> 19 train ids.
SegDatasetPtr open_cityscapes(const std::filesystem::path& root, const std::string& split);
// Cityscapes instanceIds (id >= 1000: class id/1000, instance id%1000) -> (train id map, instance map).
// The train id map is CV_8U; the instance map is CV_32S with -1 where a pixel has no instance (id < 1000).
std::pair<cv::Mat, cv::Mat> cityscapes_instances(const cv::Mat& instance_ids);
// 256-entry lookup table: Cityscapes labelId -> train id (0..18), everything else 255.
std::vector<uint8_t> cityscapes_label_to_train();
// images/*.png + labels/*.png (Cityscapes labelIds); split list optional.
SegDatasetPtr open_gta5(const std::filesystem::path& root, const std::string& split);
// RGB/*.png + GT/LABELS/*.png (16-bit, 3 channels; last channel) -> Cityscapes train ids.
// "Last channel" is in OpenCV's BGR order (the reference tools use cv2), i.e. the first channel stored
// in the PNG, which read_label_raw returns as channel 0.
SegDatasetPtr open_synthia(const std::filesystem::path& root, const std::string& split);
// Train ids SYNTHIA results are averaged over: count 16 (no terrain, truck, train) or 13 (also no
// wall, fence, pole).
std::vector<int> synthia_eval_classes(int count);
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
