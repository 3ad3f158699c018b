"""Reference models for the ViT parity goldens, written for lesseg from the papers, with the
state-dict key names of facebookresearch/dino (ViT, DINOHead) and facebookresearch/mae (decoder):

- ViT (Dosovitskiy et al. 2021) as DINO uses it (Caron et al. 2021): pre-norm blocks, LayerNorm eps
  1e-6, qkv with bias, exact GELU, learned position embedding resized bicubically to other grids the
  way DINO's interpolate_pos_encoding does (scale_factor = (grid + 0.1) / sqrt(N)).
- MAE (He et al. 2022): fixed 2-D sin-cos position embedding, per-sample random masking by argsort
  of noise, a light decoder that puts mask tokens back in place and predicts patch pixels, and the
  loss on normalized pixels of the masked patches.
- DINO head: MLP -> L2 normalize -> weight-normalized linear layer.
- SimCLR projection head (Chen et al. 2020): Linear-BN-ReLU ... Linear.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


def sincos_2d(dim, grid_h, grid_w, cls_row=True):
    """Fixed 2-D sin-cos table [(1 +) gh*gw, dim]: half the channels for the column coordinate,
    half for the row coordinate; each half is sin then cos of pos * 10000^(-i / (dim/4))."""
    quarter = dim // 4
    freqs = 1.0 / (10000.0 ** (torch.arange(quarter, dtype=torch.float64) / quarter))

    def encode(pos):
        angles = pos[:, None] * freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    ys, xs = torch.meshgrid(torch.arange(grid_h, dtype=torch.float64),
                            torch.arange(grid_w, dtype=torch.float64), indexing="ij")
    table = torch.cat([encode(xs.reshape(-1)), encode(ys.reshape(-1))], dim=1)
    if cls_row:
        table = torch.cat([torch.zeros(1, dim, dtype=torch.float64), table], dim=0)
    return table.float()


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        d = c // self.heads
        parts = self.qkv(x).reshape(b, t, 3, self.heads, d)
        q = parts[:, :, 0].transpose(1, 2)  # [b, heads, t, d]
        k = parts[:, :, 1].transpose(1, 2)
        v = parts[:, :, 2].transpose(1, 2)
        weights = torch.softmax(torch.matmul(q, k.transpose(2, 3)) / math.sqrt(d), dim=-1)
        mixed = torch.matmul(weights, v).transpose(1, 2).reshape(b, t, c)
        return self.proj(mixed), {"q": q, "k": k, "v": v, "attn": weights}


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        update, trace = self.attn(self.norm1(x))
        x = x + update
        return x + self.mlp(self.norm2(x)), trace


class PatchEmbed(nn.Module):
    def __init__(self, chans, dim, patch):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x)


class VisionTransformer(nn.Module):
    def __init__(self, patch=16, dim=384, depth=12, heads=6, mlp_ratio=4.0, img_size=224, chans=3,
                 num_classes=0, sincos=False):
        super().__init__()
        self.patch, self.dim, self.sincos = patch, dim, sincos
        self.side = img_size // patch
        self.patch_embed = PatchEmbed(chans, dim, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        if sincos:
            self.register_buffer("pos_embed", sincos_2d(dim, self.side, self.side)[None])
        else:
            self.pos_embed = nn.Parameter(torch.randn(1, self.side * self.side + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        if num_classes > 0:
            self.head = nn.Linear(dim, num_classes)

    def position_table(self, height, width):
        """[1, 1 + gh*gw, dim] for an input of height x width pixels."""
        gh, gw = height // self.patch, width // self.patch
        if self.sincos:
            if gh == self.side and gw == self.side:
                return self.pos_embed
            return sincos_2d(self.dim, gh, gw)[None]
        n = self.pos_embed.shape[1] - 1
        if gh * gw == n and height == width:
            return self.pos_embed
        # DINO: bicubic with scale_factor (grid + 0.1) / sqrt(n); the 0.1 keeps the floor of the
        # output size right, and the scale (not the size ratio) drives the sampling positions.
        root = math.sqrt(n)
        grid = self.pos_embed[:, 1:].reshape(1, int(root), int(root), self.dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((gh + 0.1) / root, (gw + 0.1) / root), mode="bicubic",
                             align_corners=False)
        assert grid.shape[-2:] == (gh, gw)
        grid = grid.permute(0, 2, 3, 1).reshape(1, gh * gw, self.dim)
        return torch.cat([self.pos_embed[:, :1], grid], dim=1)

    def embed(self, images):
        feats = self.patch_embed(images)
        grid = feats.shape[-2:]
        pos = self.position_table(images.shape[2], images.shape[3])
        patches = feats.flatten(2).transpose(1, 2) + pos[:, 1:]
        cls = (self.cls_token + pos[:, :1]).expand(images.shape[0], -1, -1)
        return patches, cls, grid

    def forward_all(self, images):
        """Final normed tokens, every block's output, and the last block's q/k/v/attention."""
        patches, cls, grid = self.embed(images)
        x = torch.cat([cls, patches], dim=1)
        outputs = []
        for block in self.blocks:
            x, trace = block(x)
            outputs.append(x)
        return self.norm(x), outputs, trace, grid

    def forward(self, images):
        return self.forward_all(images)[0][:, 0]

    def forward_masked(self, images, ratio, noise):
        """MAE encoder: returns latent [B, 1+keep, D], mask [B, N] (1 = removed), ids_restore."""
        patches, cls, _ = self.embed(images)
        b, n, d = patches.shape
        keep = int(n * (1 - ratio))
        order = torch.argsort(noise, dim=1)
        restore = torch.argsort(order, dim=1)
        kept = torch.gather(patches, 1, order[:, :keep, None].expand(b, keep, d))
        mask = torch.ones(b, n)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, restore)
        x = torch.cat([cls, kept], dim=1)
        for block in self.blocks:
            x, _ = block(x)
        return self.norm(x), mask, restore


class MaeDecoder(nn.Module):
    def __init__(self, patch=16, enc_dim=384, dim=512, depth=8, heads=16, mlp_ratio=4.0, img_size=224, chans=3):
        super().__init__()
        side = img_size // patch
        self.mask_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.decoder_embed = nn.Linear(enc_dim, dim)
        self.register_buffer("decoder_pos_embed", sincos_2d(dim, side, side)[None])
        self.decoder_blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.decoder_norm = nn.LayerNorm(dim, eps=1e-6)
        self.decoder_pred = nn.Linear(dim, patch * patch * chans)

    def forward(self, latent, restore):
        x = self.decoder_embed(latent)
        b, n = restore.shape
        fill = self.mask_token.expand(b, n + 1 - x.shape[1], -1)
        seq = torch.cat([x[:, 1:], fill], dim=1)
        seq = torch.gather(seq, 1, restore[:, :, None].expand(b, n, x.shape[2]))
        x = torch.cat([x[:, :1], seq], dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x, _ = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]


def patchify(images, patch):
    b, c, h, w = images.shape
    gh, gw = h // patch, w // patch
    x = images.reshape(b, c, gh, patch, gw, patch).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, gh * gw, patch * patch * c)


def mae_loss(images, pred, mask, patch, norm_pix=True):
    target = patchify(images, patch)
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / torch.sqrt(var + 1e-6)
    per_patch = ((pred - target) ** 2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()


class DinoHead(nn.Module):
    def __init__(self, in_dim, out_dim=65536, hidden=2048, bottleneck=256, layers=3):
        super().__init__()
        mods = []
        width = in_dim
        for _ in range(layers - 1):
            mods += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        mods.append(nn.Linear(width, bottleneck))
        self.mlp = nn.Sequential(*mods)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))


class SimclrHead(nn.Module):
    def __init__(self, in_dim=2048, hidden=2048, out_dim=128, layers=2):
        super().__init__()
        mods = []
        width = in_dim
        for _ in range(layers - 1):
            mods += [nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU()]
            width = hidden
        mods.append(nn.Linear(width, out_dim))
        self.mlp = nn.Sequential(*mods)

    def forward(self, x):
        return self.mlp(x)
