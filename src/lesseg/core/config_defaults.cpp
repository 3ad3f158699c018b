// lesseg's default settings; every accepted config key appears here (it is the schema).
#include "lesseg/core/config.h"

namespace lesseg {

const char* default_config_yaml() {
  return R"YAML(
method: supervised          # supervised (more methods arrive with later issues)
seed: 0
device: cpu                 # cpu | cuda | cuda:N
threads: 0                  # intra-op threads; 0 = all usable cores

model:
  arch: resunet             # resunet | deeplabv3plus | deeplabv2 | swinunet (backbone swin_tiny)
  backbone: resnet18        # resnet18 | resnet50 | resnet101 | swin_tiny
  output_stride: 32         # 32 (no dilation), 16 or 8 (dilated layer4 / layer3+4)
  decoder_channels: [256, 128, 64, 64, 32]   # ResUnet decoder widths, deepest first
  aspp_rates: [6, 12, 18]   # DeepLabV3+ at output stride 16
  weights: ""               # weights to start from: a lesseg segmenter, or backbone weights (.pth or .safetensors)
  weights_key: ""           # sub-dict of a training checkpoint to take (teacher, student, model); "" = automatic
  allow_partial: false      # accept weights that leave model tensors at their init

data:
  format: synth             # synth | folder | camvid | cityscapes | gta5 | synthia | ade20k | voc | coco
  root: ""                  # dataset root folder (not used by synth)
  train_split: train
  val_split: val
  labeled_fraction: 1.0     # keep a seeded fraction of the labeled training images (e.g. 0.0625)
  synth:
    domain: source          # source | target (training images)
    val_domain: ""          # domain of validation images; "" = same as domain
    shift: 1.0
    size: 128
    num_train: 2000
    num_val: 200
    seed: 0
  resize: [0, 0]            # [h, w] every image is resized to first; 0 = keep
  crop: [128, 128]          # training crop [h, w]; padded with ignore where the image is smaller
  scale: [0.75, 1.5]        # random scale range before cropping
  flip: true
  color_jitter: 0.2         # brightness / contrast / saturation strength, 0 = off
  blur_prob: 0.0
  skip_bad_images: false    # skip (and count) unreadable or invalid training samples instead of stopping
  mean: [0.485, 0.456, 0.406]
  std: [0.229, 0.224, 0.225]
  workers: 2                # loader threads
  prefetch: 4               # batches prepared ahead

train:
  iters: 2000
  batch_size: 8
  optimizer: sgd            # sgd | adamw
  lr: 0.01
  momentum: 0.9
  weight_decay: 0.0001
  schedule: poly            # poly | cosine | constant
  poly_power: 0.9
  warmup_iters: 0
  grad_clip: 0.0            # max gradient norm, 0 = off
  log_every: 20
  eval_every: 500
  checkpoint_every: 500
  keep_checkpoints: 2
  freeze_bn: false          # BatchNorm layers normalize with their running statistics and do not update them
                            # (affine weights still train), as with detectron2's FrozenBN for small batches

distributed:                # multi-process training; rank and world size come from the environment (README)
  backend: auto             # auto (nccl on cuda, else gloo) | gloo | nccl
  timeout_s: 60             # collectives, rendezvous and rank liveness; then every rank exits with code 6
  bucket_mb: 4.0            # gradient all-reduce bucket size
  sync_bn: false            # synchronized BatchNorm: not supported yet (true is a usage error)

eval:
  batch_size: 8
  max_images: 0             # 0 = the whole validation split
)YAML";
}

}  // namespace lesseg
