#!/usr/bin/env python3
"""Writes the .pth fixtures for tests/unit/test_pth.cpp (Debian python3-torch 1.13).

Run: /usr/bin/python3 tools/make_pth_fixtures.py   (test-only; lesseg never needs Python at run time)
- tests/fixtures/pth/*.pth: tiny checkpoints in every shape lesseg must read, and malicious ones
- tests/fixtures/pth/expected.json: per file, the names / dtypes / shapes / strides / offsets / sums
  (and values of small tensors) and metadata text that load_pth must produce, computed here from
  torch.load with lesseg's flattening rules (reference_flatten below); plus numbers from
  ../shared/data/weights/resnet20-12fca82f.th when it is present.
The malicious files are shown to run their payload under torch.load (in a subprocess) before they
are written into the fixtures: the C++ test proves lesseg refuses them without running anything.
"""
import argparse
import collections
import io
import json
import os
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "pth")
RESNET20 = os.path.join(ROOT, "..", "shared", "data", "weights", "resnet20-12fca82f.th")
MARKER = "/tmp/lesseg_pth_marker_{}"  # the payloads `touch` these; the C++ test checks they never appear

DTYPES = {torch.float32: "Float", torch.float64: "Double", torch.float16: "Half", torch.bfloat16: "BFloat16",
          torch.int64: "Long", torch.int32: "Int", torch.int16: "Short", torch.int8: "Char",
          torch.uint8: "Byte", torch.bool: "Bool"}


def scalar_text(v):
    """lesseg's text for a non-tensor leaf, or None when v is not a scalar / list of scalars."""
    if v is None or isinstance(v, (bool, int, float)):
        return repr(v)
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)) and all(x is None or isinstance(x, (bool, int, float, str)) for x in v):
        return repr(v)
    return None


def reference_flatten(obj, prefix="", tensors=None, metadata=None):
    """What load_pth must return: dotted names, tensors in file order, scalars as text."""
    if tensors is None:
        tensors, metadata = [], {}
    join = lambda k: f"{prefix}.{k}" if prefix else str(k)
    if isinstance(obj, argparse.Namespace):
        obj = vars(obj)
    if isinstance(obj, torch.Tensor):
        tensors.append((prefix or "tensor", obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            reference_flatten(v, join(k), tensors, metadata)
    elif scalar_text(obj) is not None:
        metadata[prefix] = scalar_text(obj)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            reference_flatten(v, join(i), tensors, metadata)
    return tensors, metadata


def describe(obj):
    tensors, metadata = reference_flatten(obj)
    entries = []
    storages = {}
    for name, t in tensors:
        e = {"name": name, "dtype": DTYPES[t.dtype], "shape": list(t.shape), "stride": list(t.stride()),
             "offset": t.storage_offset(),
             "sum": t.detach().double().sum().item()}
        if t.numel() <= 32:
            e["values"] = t.detach().double().flatten().tolist()
        entries.append(e)
        storages.setdefault(t.storage().data_ptr(), []).append(name)
    shared = [names for names in storages.values() if len(names) > 1]
    return {"tensors": entries, "metadata": metadata, "shared": shared}


def save(name, obj, **kwargs):
    path = os.path.join(OUT, name)
    torch.save(obj, path, **kwargs)
    return path


def rewrite_zip(src, dst, edit_pkl=None, edit_record=None):
    """Copies a torch zip archive record by record through torch's own writer, editing some."""
    reader = torch._C.PyTorchFileReader(src)
    writer = torch._C.PyTorchFileWriter(dst)
    for record in reader.get_all_records():
        data = bytes(reader.get_record(record))
        if record == "data.pkl" and edit_pkl:
            data = edit_pkl(data)
        elif edit_record:
            data = edit_record(record, data)
        if record != "version":  # the writer adds its own
            writer.write_record(record, data, len(data))
    writer.write_end_of_file()
    del writer


class Payload:
    """Pickles as `func(arg)`: what an attacker puts in a checkpoint."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


def prove_payload_runs(path, marker):
    """torch.load of this file in Python executes the payload (the reason lesseg has its own reader)."""
    if os.path.exists(marker):
        os.remove(marker)
    subprocess.run([sys.executable, "-c", f"import torch; torch.load({path!r})"], capture_output=True)
    ran = os.path.exists(marker)
    if ran:
        os.remove(marker)
    assert ran, f"{path}: the payload did not run in Python"


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    expected = {}

    # 1. a plain state_dict (OrderedDict with _metadata), zip format
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                                torch.nn.Linear(2, 3))
    model[1].running_mean.uniform_()
    model[1].num_batches_tracked += 5
    sd = model.state_dict()
    save("state_dict.pth", sd)
    expected["state_dict.pth"] = describe(sd)

    # 2. a one-item dict (SETITEM), and every dtype, views into a shared storage, a Parameter
    one = {"w": torch.randn(3)}
    save("one_item.pth", one)
    expected["one_item.pth"] = describe(one)

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    mixed = {
        "base": base,
        "view": base[1:, 2:5],           # offset 8, strides (6, 1)
        "transposed": base.t(),          # strides (1, 6)
        "column": base[:, 3],            # offset 3, stride 6
        "f16": torch.randn(5).half(),
        "bf16": torch.randn(4).bfloat16(),
        "f64": torch.randn(2, 2, dtype=torch.float64),
        "i64": torch.arange(-3, 4),
        "i32": torch.tensor([7, -8], dtype=torch.int32),
        "i16": torch.tensor([300, -300], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "mask": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "param": torch.nn.Parameter(torch.randn(2, 3)),
        "layers": [torch.ones(2), torch.zeros(1)],
        "pair": (torch.full((2,), 3.0), torch.full((1,), 4)),
        "nested": {"deeper": {"t": torch.eye(2)}, "n": 1},
        "int": 42, "big": 2 ** 70, "neg": -5, "float": 0.1, "whole": 3.0, "str": "hello", "none": None,
        "flag": True, "sizes": [1, 2, 3], "scale": (0.05, 0.4), "names": ["a", "b"],
    }
    save("mixed.pth", mixed)
    expected["mixed.pth"] = describe(mixed)

    # the same object with pickle protocol 4 (FRAME, STACK_GLOBAL, MEMOIZE, SHORT_BINUNICODE), plus a
    # bytes leaf (SHORT_BINBYTES; dropped by lesseg). Protocol 2 pickles bytes as a call of
    # _codecs.encode, a global lesseg refuses, so mixed.pth has none.
    save("protocol4.pth", dict(mixed, blob=b"\x00\x01"), pickle_protocol=4)
    expected["protocol4.pth"] = expected["mixed.pth"]

    # 3. a DINO-style training checkpoint
    student = {"module.backbone.cls_token": torch.randn(1, 1, 4), "module.backbone.pos_embed": torch.randn(1, 5, 4),
               "module.head.mlp.0.weight": torch.randn(3, 4)}
    teacher = {"backbone.cls_token": torch.randn(1, 1, 4), "backbone.pos_embed": torch.randn(1, 5, 4)}
    params = [torch.nn.Parameter(torch.randn(2)), torch.nn.Parameter(torch.randn(3))]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    sum(p.sum() for p in params).backward()
    opt.step()
    dino = {"student": student, "teacher": teacher, "optimizer": opt.state_dict(), "epoch": 3,
            "args": argparse.Namespace(arch="vit_small", lr=0.1, patch_size=16, local_crops_scale=(0.05, 0.4),
                                       use_fp16=False, weight_decay_end=None),
            "fp16_scaler": None, "dino_loss": {"center": torch.zeros(1, 8)}}
    save("dino_checkpoint.pth", dino)
    expected["dino_checkpoint.pth"] = describe(dino)

    # 4. the state dict with every storage tagged cuda:0 (needs no GPU: only the pickle changes)
    src = os.path.join(OUT, "state_dict.pth")
    cuda = os.path.join(OUT, "cuda_tagged.pth")
    cpu, gpu = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"

    def to_cuda(pkl):
        assert pkl.count(cpu) == 1  # memoized once, referenced by BINGET
        return pkl.replace(cpu, gpu)

    rewrite_zip(src, cuda, edit_pkl=to_cuda)
    assert torch.load(cuda, map_location="cpu").keys() == sd.keys()
    if not torch.cuda.is_available():
        try:
            torch.load(cuda)
            raise AssertionError("cuda_tagged.pth loaded without a GPU: not tagged")
        except RuntimeError:
            pass
    expected["cuda_tagged.pth"] = expected["state_dict.pth"]

    # 5. the legacy (pre-zip) format
    legacy = {"best_prec1": 91.78, "state_dict": collections.OrderedDict(
        [("module.conv.weight", torch.randn(2, 1, 3, 3)), ("module.fc.weight", base[1:3]),
         ("module.fc.bias", torch.nn.Parameter(torch.randn(3))), ("module.steps", torch.tensor(7))]),
        "base": base}
    save("legacy.pth", legacy, _use_new_zipfile_serialization=False)
    expected["legacy.pth"] = describe(legacy)

    # 6. malicious files: each runs `touch MARKER` under torch.load
    import builtins
    import os as os_module
    evil = {
        "evil_system.pth": ({"w": torch.ones(2), "x": Payload(os_module.system, "touch " + MARKER.format("system"))},
                            {}),
        "evil_eval.pth": ({"w": torch.ones(2), "x": Payload(
            builtins.eval, "__import__('os').system('touch " + MARKER.format("eval") + "')")}, {}),
        "evil_legacy.pth": ({"x": Payload(os_module.system, "touch " + MARKER.format("legacy"))},
                            {"_use_new_zipfile_serialization": False}),
        "evil_protocol4.pth": ({"x": Payload(os_module.system, "touch " + MARKER.format("protocol4"))},
                               {"pickle_protocol": 4}),
    }
    for name, (obj, kwargs) in evil.items():
        path = save(name, obj, **kwargs)
        prove_payload_runs(path, MARKER.format(name[len("evil_"):-len(".pth")]))
    expected["evil"] = {"evil_system.pth": "posix.system", "evil_eval.pth": "__builtin__.eval",  # protocol 2 names builtins that way
                        "evil_legacy.pth": "posix.system", "evil_protocol4.pth": "posix.system"}
    expected["marker"] = MARKER.format("")

    # 7. a storage record shorter than its persistent id says
    rewrite_zip(src, os.path.join(OUT, "short_record.pth"),
                edit_record=lambda record, data: data[:4] if record == "data/0" else data)

    # the real legacy checkpoint in ../shared (numbers only; the file is not copied)
    if os.path.exists(RESNET20):
        # torch 1.13's weights_only unpickler lacks BINFLOAT; this file only names OrderedDict,
        # FloatStorage and _rebuild_tensor (checked with pickletools), so a plain load is safe.
        ckpt = torch.load(RESNET20, map_location="cpu")
        d = describe(ckpt)
        expected["resnet20"] = {"count": len(d["tensors"]), "metadata": d["metadata"],
                                "some": [{k: e[k] for k in ("name", "dtype", "shape", "sum")}
                                         for e in d["tensors"][:3] + d["tensors"][40:42] + d["tensors"][-3:]]}

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    for name in sorted(os.listdir(OUT)):
        print(f"{os.path.getsize(os.path.join(OUT, name)):6d} {name}")


if __name__ == "__main__":
    main()
