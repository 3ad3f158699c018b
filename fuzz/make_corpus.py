#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (standard library only).

Run: python3 fuzz/make_corpus.py   (the output is committed; re-run only to change the seeds)
Seeds are small valid files and edge cases, partly copied from tests/fixtures: libFuzzer mutates them.
"""
import argparse
import collections
import json
import os
import pickle
import shutil
import struct
import zipfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def put(out, target, name, data):
    folder = os.path.join(out, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def rle_string(counts):
    """cocoapi rleToString: deltas against the run two back, 5-bit groups, '0' + value."""
    s = ""
    for i, c in enumerate(counts):
        x = c - counts[i - 2] if i > 2 else c
        more = True
        while more:
            v = x & 0x1F
            x >>= 5
            more = x != -1 if v & 0x10 else x != 0
            s += chr((v | 0x20 if more else v) + 48)
    return s


# --- rle: byte 0 = height, byte 1 = width (mod 65 in the target), then the compressed counts ---
def rle_seeds(out):
    with open(os.path.join(FIXTURES, "coco", "rle_golden.json")) as f:
        golden = json.load(f)
    n = 0
    for section in golden.values():
        if not isinstance(section, list):
            continue
        for case in section:
            if not isinstance(case, dict) or not isinstance(case.get("counts"), str):
                continue
            h, w = case.get("height"), case.get("width")
            if not (isinstance(h, int) and isinstance(w, int) and h <= 64 and w <= 64) or n >= 12:
                continue
            put(out, "rle", "golden_%02d" % n, bytes([h, w]) + case["counts"].encode())
            n += 1
    put(out, "rle", "empty_mask", bytes([0, 7]))
    for name, h, w, counts in [("all_zero_4x4", 4, 4, [16]), ("all_one_4x4", 4, 4, [0, 16]),
                               ("zero_runs_3x3", 3, 3, [0, 0, 2, 0, 7]), ("stripes_64x64", 64, 64, [64, 64] * 32),
                               ("negative_deltas", 5, 5, [1, 9, 2, 3, 1, 9])]:
        assert sum(counts) == h * w
        put(out, "rle", name, bytes([h, w]) + rle_string(counts).encode())


# --- coco ---
def coco_seeds(out):
    shutil.copy(os.path.join(FIXTURES, "coco", "tiny.json"), os.path.join(out, "coco", "tiny.json"))
    minimal = {"images": [{"id": 1, "file_name": "a.png", "height": 3, "width": 2}], "annotations": []}
    put(out, "coco", "minimal.json", json.dumps(minimal))
    crowd = {
        "images": [{"id": 5, "file_name": "x.jpg", "height": 4.0, "width": 3}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {"id": 1, "image_id": 5, "category_id": 1, "iscrowd": True, "segmentation": {"size": [4, 3], "counts": "04<"}},
            {"id": 2, "image_id": 5, "category_id": 1, "area": None,
             "segmentation": [[0, 0, 2.5, 0, 2.5, 3.5], [0, 3, 1, 3, 1, 4]]},
            {"id": 3, "image_id": 5, "category_id": 1, "segmentation": {"size": [4, 3], "counts": [0, 12]}},
        ],
    }
    put(out, "coco", "crowd_and_polygons.json", json.dumps(crowd))
    # regression: height * width overflowed int64 before the size check
    put(out, "coco", "huge_image.json",
        '{"images":[{"id":1,"file_name":"a","height":4611686018427387904,"width":4}],"annotations":[]}')
    put(out, "coco", "no_categories.json",
        '{"images":[{"id":1,"file_name":"f","height":1,"width":1}],'
        '"annotations":[{"id":1,"image_id":1,"category_id":9,"segmentation":{"size":[1,1],"counts":"01"}}]}')


# --- sam (the fuzz target reads masks of a 4x3 image) ---
def sam_seeds(out):
    def record(counts, **extra):
        return dict(segmentation={"size": [4, 3], "counts": counts}, **extra)
    amg = [record(rle_string([2, 5, 5]), area=5, bbox=[0, 0, 2, 4], predicted_iou=0.9, stability_score=0.95,
                  point_coords=[[0.5, 1.0]], crop_box=[0, 0, 3, 4]),
           record([0, 12], area=12)]
    put(out, "sam", "amg.json", json.dumps(amg))
    sa1b = {"image": {"image_id": 1, "width": 3, "height": 4, "file_name": "sa_1.jpg"},
            "annotations": [record(rle_string([11, 1]), id=3)]}
    put(out, "sam", "sa1b.json", json.dumps(sa1b))
    put(out, "sam", "empty.json", "[]")


# --- safetensors ---
def safetensors_file(tensors, metadata=None, pad=True):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds(out):
    put(out, "safetensors", "two_tensors", safetensors_file(
        [("weight", "F32", [2, 2], struct.pack("<4f", 1, -2, 3.5, 0)), ("bias", "BF16", [2], b"\x80\x3f\x00\x40")],
        {"format": "pt", "step": "7"}))
    put(out, "safetensors", "empty_and_scalar", safetensors_file(
        [("e", "I64", [0, 3], b""), ("s", "F64", [], struct.pack("<d", 0.25)), ("b", "BOOL", [3], b"\x01\x00\x01")],
        pad=False))
    put(out, "safetensors", "all_dtypes", safetensors_file(
        [("t%d" % i, dt, [1], b"\x01" * size)
         for i, (dt, size) in enumerate([("F16", 2), ("I32", 4), ("I16", 2), ("I8", 1), ("U8", 1)])]))
    put(out, "safetensors", "header_only", safetensors_file([], {}))
    put(out, "safetensors", "utf8_name", safetensors_file([("é.ß", "U8", [1], b"\x07")]))


# --- pickle: the data.pkl of the .pth fixtures, whole legacy files, and pickles from Python itself ---
def pickle_seeds(out):
    folder = os.path.join(FIXTURES, "pth")
    for name in ["state_dict", "protocol4", "dino_checkpoint", "mixed", "cuda_tagged", "one_item", "evil_system"]:
        with zipfile.ZipFile(os.path.join(folder, name + ".pth")) as z:
            record = next(n for n in z.namelist() if n.endswith("/data.pkl"))
            put(out, "pickle", name + ".pkl", z.read(record))
    for name in ["legacy", "evil_legacy"]:
        shutil.copy(os.path.join(folder, name + ".pth"), os.path.join(out, "pickle", name + ".pth"))
    values = collections.OrderedDict(
        [("big", 2**100), ("neg", -(2**70)), ("f", 0.1), ("t", (1, 2.5, None, True)), ("s", "ü"), ("b", b"\x00\xff"),
         ("l", [1, [2, 3]]), ("small", -3), ("i32", 2**31 - 1)])
    for protocol in (0, 2, 4):
        put(out, "pickle", "values_p%d.pkl" % protocol, pickle.dumps(values, protocol=protocol))
    # regression: a view of 4 dims with sizes and strides 2^63-1 overflowed the __int128 extent
    def su(text):
        return b"\x8c" + bytes([len(text)]) + text.encode()
    huge = b"(" + (b"\x8a\x08" + struct.pack("<q", 2**63 - 1)) * 4 + b"t"
    put(out, "pickle", "huge_view.pkl",
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((" + su("storage") + b"ctorch\nFloatStorage\n" + su("0") +
        su("cpu") + b"K\x08tQK\x00" + huge + huge + b"\x89NtR.")
    put(out, "pickle", "namespace_p2.pkl", pickle.dumps(argparse.Namespace(lr=0.5, arch="vit_small"), protocol=2))


# --- label PNGs, written by hand (no imaging library needed) ---
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(width, height, bit_depth, color_type, pixel_rows, palette=None, interlaced=False, extra=b""):
    """pixel_rows: rows of samples (one list per row, samples per pixel interleaved)."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]

    def pack(samples):
        if bit_depth == 16:
            return b"".join(struct.pack(">H", s) for s in samples)
        if bit_depth == 8:
            return bytes(samples)
        bits = "".join(format(s, "0%db" % bit_depth) for s in samples)
        bits += "0" * (-len(bits) % 8)
        return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))

    raw = b""
    passes = ADAM7 if interlaced else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        for y in range(y0, height, dy):
            samples = []
            for x in range(x0, width, dx):
                samples += pixel_rows[y][x * channels:(x + 1) * channels]
            if samples:
                raw += bytes([0]) + pack(samples)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1 if interlaced else 0)
    body = chunk(b"IHDR", ihdr)
    if palette:
        body += chunk(b"PLTE", b"".join(bytes(c) for c in palette))
    body += extra
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def label_png_seeds(out):
    w, h = 5, 3
    idx = [[(x + 2 * y) % 4 for x in range(w)] for y in range(h)]
    pal = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)]
    put(out, "label_png", "palette8.png", png(w, h, 8, 3, idx, pal))
    # regression: sides near 2^32 overflowed int64 in the size check (IHDR only, no pixel data)
    ihdr = struct.pack(">IIBBBBB", 0xD9D9D9D9, 0xD9D9D9D9, 8, 0, 0, 0, 0)
    put(out, "label_png", "huge_sides.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr))
    put(out, "label_png", "palette2_trns.png", png(w, h, 2, 3, idx, pal, extra=chunk(b"tRNS", b"\x00\xff")))
    for depth in (1, 4, 8):
        put(out, "label_png", "grey%d.png" % depth, png(w, h, depth, 0, [[v % (1 << depth) for v in r] for r in idx]))
    put(out, "label_png", "grey16.png", png(w, h, 16, 0, [[v * 1000 for v in r] for r in idx]))
    put(out, "label_png", "rgb8.png", png(w, h, 8, 2, [[c for v in r for c in (v, 2 * v, 3 * v)] for r in idx]))
    put(out, "label_png", "rgba16.png", png(2, 2, 16, 6, [[1, 2, 3, 65535, 4, 5, 6, 0]] * 2))
    put(out, "label_png", "grey_alpha8.png", png(w, h, 8, 4, [[c for v in r for c in (v, 255)] for r in idx]))
    big = [[(x * y) % 7 for x in range(9)] for y in range(9)]
    put(out, "label_png", "adam7_grey8.png", png(9, 9, 8, 0, big, interlaced=True))
    put(out, "label_png", "adam7_palette4.png", png(9, 9, 4, 3, big, pal + [(9, 9, 9)] * 3, interlaced=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "fuzz", "corpus"))
    args = parser.parse_args()
    for target in ["rle", "coco", "sam", "safetensors", "pickle", "label_png"]:
        shutil.rmtree(os.path.join(args.out, target), ignore_errors=True)
        os.makedirs(os.path.join(args.out, target))
    rle_seeds(args.out)
    coco_seeds(args.out)
    sam_seeds(args.out)
    safetensors_seeds(args.out)
    pickle_seeds(args.out)
    label_png_seeds(args.out)
    total = 0
    for target in sorted(os.listdir(args.out)):
        files = os.listdir(os.path.join(args.out, target))
        size = sum(os.path.getsize(os.path.join(args.out, target, f)) for f in files)
        total += size
        print("%-12s %3d files %7d bytes" % (target, len(files), size))
    print("total %d bytes" % total)


if __name__ == "__main__":
    main()
