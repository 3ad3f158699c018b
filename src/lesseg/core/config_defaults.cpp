// lesseg's default settings; every accepted config key appears here (it is the schema).
#include "lesseg/core/config.h"

namespace lesseg {

const char* default_config_yaml() {
  return R"YAML(
method: supervised          # train: supervised | cps | unimatch | igldt | dacs | csa | cutler | pretrain: simclr | samclr | dino | mae
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
  pos_embed: auto           # ViT position embedding: learned | sincos | auto (the weights file's kind, else
                            # sincos for MAE pretraining, else learned)
  drop_path: 0.0            # ViT stochastic depth rate at the last block (DINO ViT-S: 0.1)

data:
  format: synth             # synth | folder | camvid | cityscapes | gta5 | synthia | ade20k | voc | coco
  root: ""                  # dataset root folder (not used by synth)
  train_split: train
  val_split: val
  labeled_fraction: 1.0     # keep a seeded fraction of the labeled training images (e.g. 0.0625)
  labeled: ""               # the labeled training images: a count (92), a fraction (0.125) or a list file of
                            # names (one per line, UniMatch's labeled.txt reads); "" = data.labeled_fraction.
                            # Semi-supervised methods see the rest without labels; written to RUN/labeled.txt
  unlabeled_split: ""       # semi-supervised: another split of data.format / data.root as the unlabeled images
  holdout: "0"              # training images held out (a count, or a fraction below 1) to choose the
                            # checkpoint on (train.select); written to RUN/holdout.txt; 0 = none
  synth:
    domain: source          # source | target (training images)
    val_domain: ""          # domain of validation images; "" = same as domain
    shift: 1.0              # target domain: strength of the shift (appearance and photometric)
    degrade: -1.0           # target: strength of the photometric part alone (light, cast, blur, noise); < 0 = shift
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
  lr_scaling: none          # none | linear: lr is for a total batch of 256, scaled by batch x world size / 256
                            # (the linear scaling rule of SimCLR, DINO, MAE)
  momentum: 0.9
  weight_decay: 0.0001
  weight_decay_end: -1.0    # < 0: constant weight decay; else cosine from weight_decay to this (DINO: 0.04 -> 0.4)
  head_lr_multiplier: 1.0   # lr of the parameters outside the backbone, relative to train.lr (UniMatch VOC: 10)
  betas: [0.9, 0.999]       # AdamW betas (MAE: [0.9, 0.95])
  schedule: poly            # poly | cosine | constant
  poly_power: 0.9
  warmup_iters: 0
  grad_clip: 0.0            # max gradient norm, 0 = off
  grad_clip_mode: global    # global (one norm over all parameters) | per_parameter (each tensor, as DINO)
  log_every: 20
  eval_every: 500
  checkpoint_every: 500
  keep_checkpoints: 2
  select: last              # the weights a run saves: last | best (highest mIoU on data.holdout, never on
                            # the reported split; RUN/best holds its checkpoint)
  freeze_bn: false          # BatchNorm layers normalize with their running statistics and do not update them
                            # (affine weights still train), as with detectron2's FrozenBN for small batches

distributed:                # multi-process training; rank and world size come from the environment (README)
  backend: auto             # auto (nccl on cuda, else gloo) | gloo | nccl
  timeout_s: 60             # collectives, rendezvous and rank liveness; then every rank exits with code 6
  bucket_mb: 4.0            # gradient all-reduce bucket size
  sync_bn: false            # synchronized BatchNorm: not supported yet (true is a usage error)

views:                      # self-supervised views (lesseg pretrain); global views first, then local ones
  global_count: 2
  global_size: 224
  global_scale: [0.08, 1.0] # area fraction range of the random resized crop
  local_count: 0            # DINO / SAMCLR multi-crop
  local_size: 96
  local_scale: [0.05, 0.4]
  flip: 0.5
  jitter_prob: 0.8
  jitter: [0.4, 0.4, 0.2, 0.1]   # brightness, contrast, saturation, hue
  grayscale: 0.2
  blur: [0.5, 0.5, 0.5]     # blur probability: first global view, other global views, local views
  blur_sigma: [0.1, 2.0]    # Gaussian sigma range at a 224 px view, scaled by view side / 224; the kernel is
                            # 10 % of the view side (odd, >= 3), as SimCLR
  solarize: [0.0, 0.0, 0.0] # solarization probability, same order (DINO: [0, 0.2, 0])

ssl:
  head_hidden: 2048         # projection / DINO head hidden width
  proj_dim: 128             # SimCLR projection output
  temperature: 0.5          # SimCLR / SAMCLR NT-Xent temperature (SAMCLR paper: 0.07)
  dino_out_dim: 65536       # DINO prototypes K
  dino_bottleneck: 256
  dino_norm_last_layer: true
  student_temp: 0.1
  teacher_temp: 0.04        # warmed up linearly to teacher_temp_end over teacher_temp_warmup_iters
  teacher_temp_end: 0.07
  teacher_temp_warmup_iters: 0
  center_momentum: 0.9
  momentum: 0.996           # EMA teacher momentum, cosine schedule to 1
  freeze_last_layer_iters: 0  # DINO: the head's last layer is frozen during the first epoch
  mask_ratio: 0.75          # MAE
  norm_pix_loss: true
  decoder_dim: 512
  decoder_depth: 8
  decoder_heads: 16

samclr:
  regions: proposer         # proposer (built-in, no external model) | sam (per-image SAM JSON) | gt (instance masks)
  sam_dir: ""               # folder of <image stem>.json files from SAM's automatic mask generator or SA-1B
  gt_instances: ""          # COCO instances JSON of the training images, matched by file-name stem (regions: gt)
  min_area: 600             # regions with area <= this many pixels are dropped
  contain: 0.9              # a mask inside a larger object by more than this fraction joins that object
  box_scale: 1.0            # the region's box is enlarged by this fraction of its width and height
  proposer_sigma: 0.5       # OpenCV ximgproc graph segmentation (Felzenszwalb-Huttenlocher)
  proposer_k: 300
  proposer_min_size: 100

probe:                      # feature evaluation (lesseg probe; kNN during pretraining)
  data: ""                  # classification set: a folder with labels.txt (file label), or class subfolders
  train_fraction: 0.5       # the seeded share of `data` used as the kNN bank / linear-probe training set
  knn_k: 20
  knn_temperature: 0.07
  image_size: 64            # probe images are resized to this square side
  pool: cls                 # a ViT's image vector for kNN / linear: cls (CLS token) or mean (mean patch token)
  linear_iters: 500
  linear_lr: 0.1
  batch_size: 64
  calibrate_bn: 0           # > 0: before probing, reset BatchNorm statistics and average them over this many
                            # batches of the probe's training images (a random-init CNN's 0 / 1 statistics are
                            # otherwise far from its activations)
  linear_standardize: true  # z-score features with the training set's mean / std before the linear layer
  seg_iters: 300            # seg-linear probe: SGD steps of a 1x1 conv on frozen dense features (train split)
  seg_lr: 0.05
  seg_batch_size: 8
  attention_images: 8       # attention probe: validation images scored and written as PNGs
  attention_mass: 0.6       # DINO's threshold: the mask keeps the patches holding this share of CLS attention

instances:                  # instance data (lesseg train --method cutler): COCO instances JSON + image folder
  train_json: ""            # training masks: pseudo-masks from lesseg pseudo (or ground truth)
  train_images: ""          # folder the JSON's file_name entries are relative to
  val_json: ""              # ground truth scored at every evaluation ("" = no evaluation)
  val_images: ""

solo:                       # SOLOv2 (models/solov2.h); the defaults are the paper's R50 model
  grids: [40, 36, 24, 16, 12]     # grid side per level P2..P6
  scale_ranges: [[1, 96], [48, 192], [96, 384], [192, 768], [384, 2048]]  # sqrt(box area), input pixels
  sigma: 0.2                # centre region of an instance, relative to its box
  fpn_channels: 256
  head_channels: 512        # kernel / category branches (light model: 256)
  stacked_convs: 4          # (light model: 2)
  mask_hidden: 128
  mask_channels: 256        # E, the dynamic kernel length (light model: 128)
  focal_alpha: 0.25
  focal_gamma: 2.0
  dice_weight: 3.0
  score_thr: 0.1            # inference: category score after point NMS
  mask_thr: 0.5
  nms_kernel: gaussian      # Matrix NMS: gaussian | linear
  nms_sigma: 2.0
  nms_pre: 500
  update_thr: 0.05          # score after Matrix NMS
  max_per_image: 100
  test_max_size: 1333       # prediction: the longer side is capped here (unless data.resize is set)

cutler:                     # CutLER training on pseudo-masks (spec maskcut.md)
  drop_loss: true           # background cells whose mask overlaps no pseudo-mask (IoU <= drop_iou) get no loss
  drop_iou: 0.01
  copy_paste: 1.0           # probability per image of pasting objects from another image of the batch
  copy_paste_scale: [0.3, 1.0]

selftrain:                  # lesseg selftrain: CutLER's self-training rounds after the first training
  rounds: 2
  thresholds: [0.7, 0.65]   # prediction score kept in round 1, 2, ...
  threshold_mode: absolute  # absolute: scores >= threshold (CutLER) | relative: >= threshold x the round's highest
                            # score on the training images (for segmenters whose scores sit below CutLER's)
  keep_old_iou: 0.5         # earlier pseudo-masks stay when their max IoU with the kept predictions is below this
  detections: 30            # predictions per image considered (CutLER: the top 30)
  copy_paste_scale: [0.5, 1.0]
  lr_factor: 0.5            # the rounds' learning rate relative to train.lr (CutLER: 0.005 after 0.01)
  iters: 0                  # iterations per round; 0 = train.iters

semi:                       # semi-supervised methods (cps, unimatch, igldt; spec semi.md); data.labeled says which
  unlabeled_batch_size: 0   # unlabeled images per step; 0 = train.batch_size (UniMatch: equal)
  threshold: 0.95           # confidence a pseudo-label pixel needs (UniMatch, IGL-DT's fused teachers)
  cutmix_prob: 0.5          # strong views: CutMix with a batch neighbour with this probability (UniMatch)
  cutmix_area: [0.02, 0.4]  # the box's share of the image

cps:                        # Cross Pseudo Supervision: branch a = model.*, branch b below
  weight: 1.5               # lambda_cps (paper: 1.5 VOC, 6 Cityscapes; 1 / 5 in TorchSemiSeg's CutMix configs)
  cutmix: false             # the CutMix variant: pseudo-labels of the unmixed images supervise the mixed ones
  cutmix_area: [0.25, 0.5]  # TorchSemiSeg's box share (one box here, three there)
  arch_b: resunet           # IGL-DT's local teacher
  backbone_b: resnet18
  weights_b: ""             # weights for branch b (as model.weights)

unimatch:
  feature_dropout: 0.5      # Dropout2d on the features of the feature-perturbed stream

igldt:                      # IGL-DT: global teacher = model.* (SwinUnet), local teacher = cps.arch_b (ResUnet)
  teachers: ""              # a finished cps run folder (model.safetensors, model_b.safetensors); "" = stage 1 in RUN/stage1
  stage1_iters: 0           # CPS iterations of stage 1; 0 = train.iters
  student_arch: deeplabv3plus
  student_backbone: resnet18
  student_output_stride: 16 # DeepLabV3+'s usual stride
  student_weights: ""       # weights for the student (as model.weights)
  global: true              # Global Context Learning: L1 of pooled student vs SwinUnet features
  local: true               # Local Regional Learning: L1 of local_grid x local_grid region means vs ResUnet features
  discrepancy: true         # Discrepancy Learning (formula: methods/semi/igldt_losses.h)
  weight_unlabeled: 1.0
  weight_global: 1.0
  weight_local: 1.0
  weight_discrepancy: 1.0
  local_grid: 4

uda:                        # two domains (spec uda.md): a labeled source, an unlabeled target; data.* augmentation
                            # applies to both, data.holdout holds out source images (no target label chooses anything)
  source:
    format: ""              # "" = one domain (data.*); else any data.format, e.g. gta5, synthia, synth
    root: ""
    split: train
    match: ""               # keep only images whose name matches this glob ("" = all), e.g. "0001TP_*"
    exclude: ""             # leave out images whose name matches this glob
    domain: source          # synth: which domain the world renders
    class_map: ""           # "" = classes map by name; else a YAML file {source class: target class}, others ignored
  target:
    format: synth
    root: ""
    split: train            # the images adapted to (labels withheld)
    match: ""
    exclude: ""
    domain: target          # synth
    eval_split: val         # the images reported (their labels are read only to score)
    eval_tail: 0            # > 0: the last N images of `split` (by name) are reported instead, never adapted to
  oracle: false             # train on the target's adaptation images with their labels: the target-trained ceiling
  rare_class_temperature: 0.0   # > 0: draw labeled images by class rarity (DAFormer RCS: 0.01); 0 = uniform
  rare_class_min_pixels: 3000   # an image shows a class when it holds this many of its pixels

dacs:                       # ClassMix self-training with an EMA teacher (dacs, and the base of csa)
  mix: true                 # false: no teacher, no mixed images (csa: the stylized source alone, an ablation)
  threshold: 0.968          # pseudo-label confidence counted in the target pixels' weight (their confident fraction)
  ema: 0.999                # teacher momentum cap: min(1 - 1/(t+1), ema)
  jitter_strength: 0.2      # colour jitter of the mixed images (applied with probability 0.8)
  blur: true                # Gaussian blur of the mixed images (probability 0.5, sigma 0.15-1.15)
  ignore_top: 0             # target rows at the top of a crop weighted 0 (DAFormer, Cityscapes: 15)
  ignore_bottom: 0          # ... at the bottom (Cityscapes: 120, the ego car)

csa:                        # CSA / CONFETI (spec uda.md) on top of dacs.*
  stylizer: fda             # source images stylized toward the target batch: none | fda | adain | cut (trained)
  fda_beta: 0.01            # FDA's low-frequency window (paper range 0.01-0.09)
  adain_strength: 1.0
  cam: true                 # CAM head, its image-level loss, CAM-weighted prototypes (false: plain class means)
  contrast: true            # pixel-to-prototype contrast on source, mixed and target pixels
  projection_dim: 512
  top_k: 32                 # pixels per class a prototype update takes (highest CAM)
  prototype_ema: 0.999
  tau: 0.1
  pixels: 4096              # pixels sampled per contrast term
  contrast_weight: 0.5
  diversity_weight: 2.0     # the regulariser on the mean prototype prediction (prototypes.h)
  cam_weight: 0.1           # CONFETII's CAM weight
  cam_start: 0.025          # fraction of train.iters: CAM loss on mixed images from here (paper: 2000 of 80k)
  contrast_start: 0.0375    # contrast, CAM-weighted prototypes and target pixels from here (paper: 3000 of 80k)
  stage1: 1.0               # cut: the fraction of train.iters the stylizer trains in (stage 1); frozen after (stage 2)
  cut_ngf: 64               # cut: generator / discriminator width (CUT: 64; smaller for CPU runs)
  cut_blocks: 9
  cut_patches: 256          # PatchNCE patches per layer
  cut_lr: 0.0002            # Adam, betas (0.5, 0.999), for the generator and the discriminator
  consistency_weight: 0.1   # stylizer consistency (prototype scores of source vs stylized source)

eval:
  classes: []               # the classes mIoU averages, by name ([] = all; SYNTHIA -> Cityscapes: 16)
  batch_size: 8
  max_images: 0             # 0 = the whole validation split
)YAML";
}

}  // namespace lesseg
