#!/usr/bin/env python3
"""Writes every parity golden: /usr/bin/python3 tools/parity/make_all.py OUT [case-module ...]

Test-only (Debian python3-torch / python3-torchvision); lesseg never needs Python at run time.
Every module in this folder with a make(out) function is a case module.
"""
import importlib
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or sorted(f[:-3] for f in os.listdir(HERE)
                                   if f.endswith(".py") and f not in ("common.py", "make_all.py"))
    sys.path.insert(0, HERE)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(out, exist_ok=True)
    for name in names:
        module = importlib.import_module(name)
        if hasattr(module, "make"):
            module.make(out)
            print(f"parity goldens: {name}")


if __name__ == "__main__":
    main()
