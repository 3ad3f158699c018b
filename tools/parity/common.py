"""Shared helpers for parity goldens: a minimal safetensors writer and the output layout.

Each parity module writes OUT/<case>/weights.pth (plain torch.save of a state_dict: an OrderedDict,
the file users bring, read by lesseg's own unpickler) and io.safetensors (inputs and reference outputs).
"""
import json
import os
import struct

import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
          torch.uint8: "U8", torch.bool: "BOOL"}


def save_safetensors(path, tensors):
    """Writes {name: tensor} in safetensors layout (formats.md), insertion order."""
    header, chunks, offset = {}, [], 0
    for name, tensor in tensors.items():
        tensor = tensor.detach().contiguous().cpu()
        data = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        header[name] = {"dtype": DTYPES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for chunk in chunks:
            f.write(chunk)


def case_dir(out, case):
    path = os.path.join(out, case)
    os.makedirs(path, exist_ok=True)
    return path


def save_case(out, case, state_dict, io):
    """Writes the three files of one parity case."""
    path = case_dir(out, case)
    torch.save(state_dict, os.path.join(path, "weights.pth"))
    save_safetensors(os.path.join(path, "io.safetensors"), io)
    return path


def randomize_batchnorm(model, seed):
    """Non-trivial running statistics so eval-mode BatchNorm is actually exercised."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
