"""ViT (DINO naming), MAE encoder/decoder/loss, DINO head and SimCLR head goldens (random weights)."""
import torch
import torch.nn.functional as F

from common import randomize_batchnorm, save_case
from dino_vit import DinoHead, MaeDecoder, SimclrHead, VisionTransformer, mae_loss, patchify, sincos_2d


def spread_position_embedding(model, seed):
    """Unit-scale position embeddings, so that interpolation errors would show in the outputs."""
    g = torch.Generator().manual_seed(seed)
    model.pos_embed.data.copy_(torch.randn(model.pos_embed.shape, generator=g))


def vit_outputs(model, x, prefix):
    tokens, blocks, trace, grid = model.forward_all(x)
    return {f"{prefix}input": x, f"{prefix}tokens": tokens, f"{prefix}blocks": torch.stack(blocks),
            f"{prefix}q": trace["q"], f"{prefix}k": trace["k"], f"{prefix}v": trace["v"],
            f"{prefix}attn": trace["attn"], f"{prefix}cls_attn": trace["attn"][:, :, 0, 1:],
            f"{prefix}pos": model.position_table(x.shape[2], x.shape[3]),
            f"{prefix}features": tokens[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, *grid)}


def make_vit(out):
    # ViT-S/16: 224 px (no interpolation) batch 2, and 160 x 128 (14x14 -> 10x8 grid).
    torch.manual_seed(11)
    model = VisionTransformer(patch=16, dim=384, depth=12, heads=6).eval()
    spread_position_embedding(model, 11)
    with torch.no_grad():
        io = vit_outputs(model, torch.randn(2, 3, 224, 224), "")
        io.update(vit_outputs(model, torch.randn(1, 3, 160, 128), "rect_"))
        # the 0.1 / scale_factor detail is visible: a plain resize to the grid differs
        side = model.side
        plain = F.interpolate(model.pos_embed[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2), size=(10, 8),
                              mode="bicubic", align_corners=False).permute(0, 2, 3, 1).reshape(1, 80, -1)
        assert (plain - io["rect_pos"][:, 1:]).abs().max() > 1e-3
    save_case(out, "vit_small16", model.state_dict(), io)

    # ViT-S/8 (trained grid 28x28): 224 px batch 1, and 112 x 144 (28x28 -> 14x18 grid).
    torch.manual_seed(12)
    model = VisionTransformer(patch=8, dim=384, depth=12, heads=6).eval()
    spread_position_embedding(model, 12)
    with torch.no_grad():
        io = vit_outputs(model, torch.randn(1, 3, 224, 224), "")
        io.update(vit_outputs(model, torch.randn(2, 3, 112, 144), "rect_"))
    save_case(out, "vit_small8", model.state_dict(), io)


def make_mae(out):
    # ViT-Ti/16 encoder with the fixed sin-cos embedding + MAE decoder (width 512, 16 heads,
    # 2 blocks instead of 8 to keep the golden small), 75 % masking from a given noise tensor.
    torch.manual_seed(13)
    encoder = VisionTransformer(patch=16, dim=192, depth=12, heads=3, sincos=True).eval()
    decoder = MaeDecoder(patch=16, enc_dim=192, dim=512, depth=2, heads=16).eval()
    x = torch.randn(2, 3, 224, 224)
    noise = torch.rand(2, 196)
    with torch.no_grad():
        latent, mask, restore = encoder.forward_masked(x, 0.75, noise)
        pred = decoder(latent, restore)
        loss = mae_loss(x, pred, mask, 16, norm_pix=True)
        loss_raw = mae_loss(x, pred, mask, 16, norm_pix=False)
        rect = torch.randn(1, 3, 96, 128)
        rect_tokens = encoder.forward_all(rect)[0]
    state = {**encoder.state_dict(), **decoder.state_dict()}
    io = {"input": x, "noise": noise, "latent": latent, "mask": mask, "ids_restore": restore, "pred": pred,
          "loss": loss.reshape(1), "loss_raw": loss_raw.reshape(1), "patches": patchify(x, 16),
          "pos_embed": encoder.pos_embed, "decoder_pos_embed": decoder.decoder_pos_embed,
          "rect_input": rect, "rect_tokens": rect_tokens, "rect_pos": sincos_2d(192, 6, 8)[None]}
    save_case(out, "mae_vit_tiny16", state, io)


def make_heads(out):
    # DINO head on ViT-S features, K = 4096 (65536 in the paper), weight_g randomized so the
    # weight-norm formula is exercised (the paper's norm_last_layer keeps it at 1).
    torch.manual_seed(14)
    head = DinoHead(384, out_dim=4096).eval()
    head.last_layer.weight_g.data.uniform_(0.5, 1.5)
    x = torch.randn(4, 384)
    with torch.no_grad():
        y = head(x)
    save_case(out, "dino_head", head.state_dict(), {"input": x, "output": y})

    # SimCLR projection for ResNet-50 features: 2048 -> 2048 -> 128.
    torch.manual_seed(15)
    head = SimclrHead(2048, 2048, 128).eval()
    randomize_batchnorm(head, 15)
    x = torch.randn(8, 2048)
    with torch.no_grad():
        y_eval = head(x)
        state = {k: v.clone() for k, v in head.state_dict().items()}
        head.train()
        y_train = head(x)
    save_case(out, "simclr_head", state, {"input": x, "output_eval": y_eval, "output_train": y_train})


def make(out):
    make_vit(out)
    make_mae(out)
    make_heads(out)
