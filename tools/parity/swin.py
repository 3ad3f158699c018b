"""torchvision swin_t: logits and the four stage outputs (NCHW) at 224x224 and at 160x192.

160x192 gives stage maps of 40x48, 20x24, 10x12, 5x6: none is a multiple of the window (7), so the
attention pads, and the last stage's padded 7x7 map fits one window, so its shift is turned off.
"""
import torch
import torchvision

from common import save_case


def randomize(model, seed):
    """Non-trivial LayerNorm affines, biases and position-bias tables (torchvision inits them flat)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if isinstance(p, torch.Tensor) and name.endswith("relative_position_bias_table"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(1.0 + torch.randn(m.weight.shape, generator=g) * 0.1)


def stages(model, x):
    """Outputs of features.1, .3, .5, .7 (channels-last in torchvision), as NCHW."""
    out = []
    for i, layer in enumerate(model.features):
        x = layer(x)
        if i % 2 == 1:
            out.append(x.permute(0, 3, 1, 2).contiguous())
    return out


def make(out):
    torch.manual_seed(3)
    model = torchvision.models.swin_t().eval()
    randomize(model, 3)
    io = {}
    for suffix, shape in [("", (1, 3, 224, 224)), ("_small", (1, 3, 160, 192))]:
        x = torch.randn(*shape)
        with torch.no_grad():
            io["input" + suffix] = x
            io["logits" + suffix] = model(x)
            for level, s in enumerate(stages(model, x), 1):
                io[f"stage{level}{suffix}"] = s
    save_case(out, "swin_t", model.state_dict(), io)
