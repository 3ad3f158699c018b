"""Uncompressed COCO RLE in numpy, shared by the instance-evaluation goldens and tools/pseudo."""
import numpy as np


def rle(mask):
    """{"size": [h, w], "counts": [...]}: column-major runs, the first one of zeros (maybe empty)."""
    flat = mask.T.reshape(-1).astype(np.uint8)
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], change]))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}
