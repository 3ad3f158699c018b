#include "lesseg/methods/train.h"

#include "lesseg/core/error.h"
#include "lesseg/methods/cutler/cutler.h"
#include "lesseg/methods/semi/semi.h"
#include "lesseg/methods/supervised/supervised.h"
#include "lesseg/methods/uda/uda.h"

namespace lesseg {

const std::vector<TrainMethod>& train_methods() {
  static const std::vector<TrainMethod> methods{
      {"supervised", "semantic segmentation from full labels", train_supervised},
      {"cps", "semi-supervised: two segmenters supervise each other with hard pseudo-labels", train_cps},
      {"unimatch", "semi-supervised: weak-to-strong consistency, two strong views, feature perturbation", train_unimatch},
      {"igldt", "semi-supervised: CPS teachers (SwinUnet + ResUnet), then a student with global / local / discrepancy terms",
       train_igldt},
      {"dacs", "domain adaptation: ClassMix of source classes onto target images, EMA-teacher pseudo-labels", train_dacs},
      {"csa", "domain adaptation: DACS + stylized source, CAM head, class prototypes, pixel-to-prototype contrast", train_csa},
      {"cutler", "class-agnostic instance segmentation (SOLOv2) on pseudo-masks, DropLoss, copy-paste", train_cutler},
  };
  return methods;
}

const TrainMethod& find_train_method(const std::string& name) {
  std::string known;
  for (const auto& method : train_methods()) {
    if (method.name == name) return method;
    known += (known.empty() ? "" : ", ") + method.name;
  }
  throw_usage("unknown method '" + name + "' (known: " + known + "; self-supervised: lesseg pretrain)");
}

}  // namespace lesseg
