"""Goldens for two consecutive self-supervised training steps (iterations 0 and 1, so the schedules
move), each method's step written from its official training loop:

- DINO (facebookresearch/dino main_dino.py train_one_epoch + utils.py): per-iteration lr / weight
  decay / teacher-momentum schedules (utils.cosine_scheduler: weight decay on the first parameter
  group only, get_params_groups: biases and 1-D tensors not regularized), teacher on the 2 global
  crops, student on all crops (MultiCropWrapper: backbone per resolution, head on all), DINOLoss with
  the teacher-temperature warm-up (np.linspace then constant) and the centre EMA, backward,
  utils.clip_gradients (per tensor, clip / (norm + 1e-6) when < 1), utils.cancel_gradients_last_layer
  (the last layer's grads set to None), AdamW, then the EMA teacher update over the parameters.
- MAE (facebookresearch/mae main_pretrain.py + engine_pretrain.py + models_mae.py + util/lr_sched.py):
  AdamW(betas 0.9, 0.95) on timm's add_weight_decay groups, lr set per iteration from the fractional
  epoch (half-cycle cosine after warm-up), masking noise torch.rand(N, L) right after the crops.
- SimCLR (Chen et al. 2020): both views through backbone + projection MLP in one batch, NT-Xent,
  SGD with momentum and weight decay (biases and BatchNorm excluded, as SimCLR's LARS excludes them).

The schedules' totals are the 2 iterations of the run (lesseg's train.iters = 2). Iteration-based
schedules here are the official epoch-based formulas with one iteration per unit. Every case holds the
initial state (weights.pth, lesseg's names: DINO student.* / teacher.* / loss.center, MAE encoder.* /
decoder.*, SimCLR backbone.* / head.*), the crops of both steps, the per-step losses and schedule
values, and every tensor after the second step as `after.<name>`.
"""
import math

import torch
import torchvision
from torch import nn

from common import save_case
from dino_vit import DinoHead, MaeDecoder, SimclrHead, VisionTransformer, mae_loss, sincos_2d
from ssl_losses import dino_loss, nt_xent

# float32 steps differ by 1e-3 to 1e-2 even PyTorch against itself (1 vs 2 threads): Adam's first
# step (m / sqrt(v)) and the BatchNorm / NT-Xent gradients amplify rounding noise on small gradients
DTYPE = torch.float64
STEPS = 2
# The settings below are repeated as --set overrides in tests/parity/test_ssl_step.cpp.


def linspace(a, b, n):
    """np.linspace(a, b, n) as a list."""
    if n == 1:
        return [a]
    return [a + (b - a) * i / (n - 1) for i in range(n)]


def cosine_scheduler(base, final, total, warmup=0, start_warmup=0.0):
    """dino utils.cosine_scheduler with epochs x niter_per_ep = total iterations."""
    warm = linspace(start_warmup, base, warmup) if warmup > 0 else []
    n = total - warmup
    return warm + [final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / n)) for i in range(n)]


def decay_groups(model):
    """dino utils.get_params_groups / timm add_weight_decay: (regularized, not regularized)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name.endswith(".bias") or p.dim() == 1 else decay).append(p)
    return decay, no_decay


def prefixed(prefix, state):
    return {prefix + k: v.detach().clone() for k, v in state.items()}


# ---------------------------------------------------------------- DINO

class MultiCrop(nn.Module):
    """DINO's MultiCropWrapper: the backbone once per run of equal-resolution crops, the head on all."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, crops):
        feats, start = [], 0
        while start < len(crops):
            end = start + 1
            while end < len(crops) and crops[end].shape[-1] == crops[start].shape[-1]:
                end += 1
            feats.append(self.backbone(torch.cat(crops[start:end])))
            start = end
        return self.head(torch.cat(feats))


def clip_gradients(model, clip):
    """dino utils.clip_gradients: each tensor on its own. Returns the norms before clipping."""
    norms = []
    for p in model.parameters():
        if p.grad is not None:
            norm = p.grad.norm(2)
            norms.append(norm.item())
            coef = clip / (norm + 1e-6)
            if coef < 1:
                p.grad.mul_(coef)
    return norms


def cancel_gradients_last_layer(it, model, freeze):
    if it >= freeze:
        return
    for name, p in model.named_parameters():
        if "last_layer" in name:
            p.grad = None


DINO = dict(batch=4, global_size=32, local_size=16, out_dim=128, hidden=64, bottleneck=32, lr=2e-3,
            wd=0.04, wd_end=0.4, momentum=0.996, teacher_temp=0.04, teacher_temp_end=0.07,
            teacher_temp_warmup=3, student_temp=0.1, center_momentum=0.9, freeze_last_layer=1)


def dino_crops(gen, c):
    b = c["batch"]
    return [torch.randn(b, 3, c["global_size"], c["global_size"], generator=gen, dtype=DTYPE) for _ in range(2)] + \
        [torch.randn(b, 3, c["local_size"], c["local_size"], generator=gen, dtype=DTYPE) for _ in range(2)]


def dino_network(c):
    backbone = VisionTransformer(patch=8, dim=192, depth=12, heads=3, img_size=224)  # vit_tiny8
    head = DinoHead(192, c["out_dim"], hidden=c["hidden"], bottleneck=c["bottleneck"])
    head.last_layer.weight_g.requires_grad = False  # norm_last_layer
    return MultiCrop(backbone, head).to(DTYPE)


def dino_copy(network, c):
    """A second network with the same tensors (main_dino: teacher.load_state_dict(student.state_dict()))."""
    other = dino_network(c)
    other.load_state_dict(network.state_dict())
    return other


def dino_loss_at(student, teacher, crops, center, temp, c):
    teacher_out = teacher(crops[:2])  # only the 2 global crops pass through the teacher
    student_out = student(crops)
    return dino_loss(student_out, teacher_out, center, len(crops), c["student_temp"], temp, c["center_momentum"])


def make_dino(out):
    c = DINO
    torch.manual_seed(40)
    student = dino_network(c)
    teacher = dino_copy(student, c)
    for p in teacher.parameters():
        p.requires_grad = False
    center = torch.zeros(1, c["out_dim"], dtype=DTYPE)
    # the teacher starts as the student: its entries share the student's storages (saved once)
    start = prefixed("", student.state_dict())
    initial = {**{"student." + k: v for k, v in start.items()}, **{"teacher." + k: v for k, v in start.items()},
               "loss.center": center.clone()}
    gen = torch.Generator().manual_seed(41)
    batches = [dino_crops(gen, c) for _ in range(STEPS)]

    lr_schedule = cosine_scheduler(c["lr"], 0.0, STEPS)  # warm-up 0, min_lr 0
    wd_schedule = cosine_scheduler(c["wd"], c["wd_end"], STEPS)
    momentum_schedule = cosine_scheduler(c["momentum"], 1.0, STEPS)
    w = c["teacher_temp_warmup"]  # DINOLoss.teacher_temp_schedule
    temp_schedule = linspace(c["teacher_temp"], c["teacher_temp_end"], w) + [c["teacher_temp_end"]] * max(0, STEPS - w)

    # the clip: a round value near the median per-tensor gradient norm of the first step, so some
    # tensors are clipped and some are not
    probe = dino_copy(student, c)
    loss, _ = dino_loss_at(probe, teacher, batches[0], center, temp_schedule[0], c)
    loss.backward()
    norms = sorted(p.grad.norm().item() for p in probe.parameters() if p.grad is not None)
    median = norms[len(norms) // 2]
    clip = float(f"{median:.1g}")

    decay, no_decay = decay_groups(student)
    optimizer = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])
    losses, clipped = [], []
    for it in range(STEPS):
        for i, group in enumerate(optimizer.param_groups):
            group["lr"] = lr_schedule[it]
            if i == 0:  # only the first group is regularized
                group["weight_decay"] = wd_schedule[it]
        loss, center = dino_loss_at(student, teacher, batches[it], center, temp_schedule[it], c)
        optimizer.zero_grad()
        loss.backward()
        norms = clip_gradients(student, clip)
        n_clipped = sum(n > clip for n in norms)
        margin = min(abs(n - clip) / clip for n in norms)
        assert 0 < n_clipped < len(norms) and margin > 1e-4, (n_clipped, len(norms), margin)
        cancel_gradients_last_layer(it, student, c["freeze_last_layer"])
        optimizer.step()
        with torch.no_grad():  # EMA update of the teacher's parameters
            m = momentum_schedule[it]
            for ps, pt in zip(student.parameters(), teacher.parameters()):
                pt.mul_(m).add_((1 - m) * ps.detach())
        losses.append(loss.item())
        clipped.append(n_clipped)

    io = {f"step{s}.view{v}": x for s, crops in enumerate(batches) for v, x in enumerate(crops)}
    io.update({"loss": torch.tensor(losses, dtype=torch.float64), "grad_clip": torch.tensor([clip], dtype=torch.float64),
               "clipped": torch.tensor(clipped), "lr": torch.tensor(lr_schedule, dtype=torch.float64),
               "weight_decay": torch.tensor(wd_schedule, dtype=torch.float64),
               "momentum": torch.tensor(momentum_schedule, dtype=torch.float64),
               "teacher_temp": torch.tensor(temp_schedule[:STEPS], dtype=torch.float64)})
    io.update(prefixed("after.student.", student.state_dict()))
    io.update(prefixed("after.teacher.", teacher.state_dict()))
    io["after.loss.center"] = center
    save_case(out, "ssl_step_dino", initial, io)


# ---------------------------------------------------------------- MAE

MAE = dict(batch=8, size=32, dec_dim=64, dec_depth=2, dec_heads=4, mask_ratio=0.75, lr=2e-3, wd=0.05,
           betas=(0.9, 0.95), noise_seed=1000)


class Mae(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.encoder = VisionTransformer(patch=8, dim=192, depth=12, heads=3, img_size=c["size"], sincos=True)
        self.decoder = MaeDecoder(patch=8, enc_dim=192, dim=c["dec_dim"], depth=c["dec_depth"], heads=c["dec_heads"],
                                  img_size=c["size"])

    def forward(self, images, mask_ratio):
        # models_mae random_masking: noise = torch.rand(N, L), drawn after the patch embedding
        noise = torch.rand(images.shape[0], (images.shape[2] // 8) * (images.shape[3] // 8))
        latent, mask, restore = self.encoder.forward_masked(images, mask_ratio, noise)
        pred = self.decoder(latent, restore)
        return mae_loss(images, pred, mask.to(images.dtype), 8, norm_pix=True), noise


def mae_adjust_learning_rate(optimizer, epoch, lr, min_lr, warmup_epochs, epochs):
    """MAE util/lr_sched.adjust_learning_rate (epoch is fractional: iteration / iterations per epoch)."""
    if epoch < warmup_epochs:
        value = lr * epoch / warmup_epochs
    else:
        value = min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / (epochs - warmup_epochs)))
    for group in optimizer.param_groups:
        group["lr"] = value
    return value


def make_mae(out):
    c = MAE
    torch.manual_seed(50)
    model = Mae(c).to(DTYPE)
    # lesseg keeps the fixed sin-cos tables as buffers for its 224 px preset and computes the 32 px
    # grid's table itself; the initial state carries the preset's tables under MAE's key names
    initial = {**prefixed("encoder.", model.encoder.state_dict()), **prefixed("decoder.", model.decoder.state_dict())}
    initial["encoder.pos_embed"] = sincos_2d(192, 28, 28)[None].to(DTYPE)
    initial["decoder.decoder_pos_embed"] = sincos_2d(c["dec_dim"], 28, 28)[None].to(DTYPE)
    gen = torch.Generator().manual_seed(51)
    batches = [torch.randn(c["batch"], 3, c["size"], c["size"], generator=gen, dtype=DTYPE) for _ in range(STEPS)]

    decay, no_decay = decay_groups(model)
    optimizer = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": c["wd"]}],
                                  lr=c["lr"], betas=c["betas"])
    losses, lrs, noises = [], [], []
    for it in range(STEPS):  # one epoch of STEPS iterations, no warm-up, min_lr 0
        lrs.append(mae_adjust_learning_rate(optimizer, it / STEPS + 0, c["lr"], 0.0, 0, 1))
        torch.manual_seed(c["noise_seed"] + it)  # the test seeds lesseg's generator the same way
        loss, noise = model(batches[it], c["mask_ratio"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        noises.append(noise)

    io = {f"step{s}.view0": x for s, x in enumerate(batches)}
    io.update({f"step{s}.noise": n for s, n in enumerate(noises)})
    io.update({"loss": torch.tensor(losses, dtype=torch.float64), "lr": torch.tensor(lrs, dtype=torch.float64),
               "noise_seed": torch.tensor([c["noise_seed"]])})
    io.update({"after.encoder." + k: v.detach().clone() for k, v in model.encoder.named_parameters()})
    io.update({"after.decoder." + k: v.detach().clone() for k, v in model.decoder.named_parameters()})
    save_case(out, "ssl_step_mae", initial, io)


# ---------------------------------------------------------------- SimCLR

SIMCLR = dict(batch=8, size=64, hidden=64, proj=32, temperature=0.5, lr=0.1, momentum=0.9, wd=1e-3)


class Simclr(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.backbone = torchvision.models.resnet18()
        self.backbone.fc = nn.Identity()  # the 512-d average-pooled features
        self.head = SimclrHead(512, hidden=c["hidden"], out_dim=c["proj"])

    def forward(self, x):
        return self.head(self.backbone(x))


def make_simclr(out):
    c = SIMCLR
    torch.manual_seed(60)
    model = Simclr(c).to(DTYPE).train()
    initial = prefixed("", model.state_dict())
    gen = torch.Generator().manual_seed(61)
    batches = [[torch.randn(c["batch"], 3, c["size"], c["size"], generator=gen, dtype=DTYPE) for _ in range(2)]
               for _ in range(STEPS)]
    decay, no_decay = decay_groups(model)
    optimizer = torch.optim.SGD([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=c["lr"],
                                momentum=c["momentum"], weight_decay=c["wd"])
    lr_schedule = cosine_scheduler(c["lr"], 0.0, STEPS)
    losses = []
    for it in range(STEPS):
        for group in optimizer.param_groups:
            group["lr"] = lr_schedule[it]
        z1, z2 = model(torch.cat(batches[it])).chunk(2)  # both views in one batch (shared BN statistics)
        loss = nt_xent(z1, z2, c["temperature"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    io = {f"step{s}.view{v}": x for s, views in enumerate(batches) for v, x in enumerate(views)}
    io.update({"loss": torch.tensor(losses, dtype=torch.float64), "lr": torch.tensor(lr_schedule, dtype=torch.float64)})
    io.update(prefixed("after.", model.state_dict()))  # parameters and BatchNorm statistics
    save_case(out, "ssl_step_simclr", initial, io)


def make(out):
    make_dino(out)
    make_mae(out)
    make_simclr(out)
