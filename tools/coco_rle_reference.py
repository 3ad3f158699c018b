#!/usr/bin/env python3
"""Pure-Python re-implementation of cocoapi maskApi.c (rleFrPoly, rleToString, rleFrString,
rleToBbox) used to produce the golden numbers in tests/fixtures/coco/rle_golden.json.

pycocotools cannot be installed here, so this script follows the C reference line by line with
C semantics spelled out (int casts truncate toward zero, uint arithmetic wraps at 2^32). Merges and
IoUs are computed on decoded pixel lists, independently of the C++ run-walking code.

Usage: tools/coco_rle_reference.py [--fruits ../shared/data/fruits/trainval.json] [--out FILE]
"""
import argparse
import json
import math
import os
import random

SCALE = 5.0
U32 = 0xFFFFFFFF
INT_MIN = -(2 ** 31)  # what x86 cvttsd2si gives for (int)NaN


def c_int(x):
    """C (int) cast of a double: truncation toward zero; NaN -> INT_MIN as on x86."""
    if math.isnan(x):
        return INT_MIN
    return int(x)


# ref: cocoapi maskApi.c rleFrPoly
def fr_poly(xy, h, w):
    k = len(xy) // 2
    x = [c_int(SCALE * xy[2 * j] + .5) for j in range(k)] + [0]
    y = [c_int(SCALE * xy[2 * j + 1] + .5) for j in range(k)] + [0]
    x[k], y[k] = x[0], y[0]
    u, v = [], []
    for j in range(k):
        xs, xe, ys, ye = x[j], x[j + 1], y[j], y[j + 1]
        dx, dy = abs(xe - xs), abs(ys - ye)
        flip = (dx >= dy and xs > xe) or (dx < dy and ys > ye)
        if flip:
            xs, xe, ys, ye = xe, xs, ye, ys
        if dx >= dy:
            s = (ye - ys) / dx if dx else float('nan')  # C: 0.0/0 -> NaN
            for d in range(dx + 1):
                t = dx - d if flip else d
                u.append(t + xs)
                v.append(c_int(ys + s * t + .5))
        else:
            s = (xe - xs) / dy
            for d in range(dy + 1):
                t = dy - d if flip else d
                v.append(t + ys)
                u.append(c_int(xs + s * t + .5))
    a = []
    for j in range(1, len(u)):
        if u[j] == u[j - 1]:
            continue
        xd = float(u[j] if u[j] < u[j - 1] else u[j] - 1)
        xd = (xd + .5) / SCALE - .5
        if math.floor(xd) != xd or xd < 0 or xd > w - 1:
            continue
        yd = float(v[j] if v[j] < v[j - 1] else v[j - 1])
        yd = (yd + .5) / SCALE - .5
        if yd < 0:
            yd = 0.0
        elif yd > h:
            yd = float(h)
        yd = math.ceil(yd)
        a.append((int(xd) * h + int(yd)) & U32)
    a.append(h * w)
    a.sort()
    p = 0
    for j in range(len(a)):
        t = a[j]
        a[j] = (a[j] - p) & U32
        p = t
    b = [a[0]]
    j = 1
    while j < len(a):
        if a[j] > 0:
            b.append(a[j])
            j += 1
        else:
            j += 1
            if j < len(a):
                b[-1] += a[j]
                j += 1
    return b


# ref: cocoapi maskApi.c rleToString
def to_string(cnts):
    out = []
    for i, c in enumerate(cnts):
        x = c - cnts[i - 2] if i > 2 else c
        more = True
        while more:
            ch = x & 0x1f
            x >>= 5  # Python >> on negative ints is arithmetic, like the C long shift
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return ''.join(out)


# ref: cocoapi maskApi.c rleFrString
def fr_string(s):
    cnts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1f) << (5 * k)
            more = c & 0x20
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x & U32)
    return cnts


# ref: cocoapi maskApi.c rleToBbox
def to_bbox(cnts, h, w):
    m = len(cnts) // 2 * 2
    if m == 0:
        return [0, 0, 0, 0]
    xs, ys, xe, ye, cc, xp = w, h, 0, 0, 0, 0
    for j in range(m):
        cc = (cc + cnts[j]) & U32
        t = (cc - j % 2) & U32
        y = t % h
        x = (t - y) // h
        if j % 2 == 0:
            xp = x
        elif xp < x:
            ys, ye = 0, h - 1
        xs, xe, ys, ye = min(xs, x), max(xe, x), min(ys, y), max(ye, y)
    return [xs, ys, xe - xs + 1, ye - ys + 1]


def decode(cnts):
    """Column-major 0/1 list."""
    out, val = [], 0
    for c in cnts:
        out.extend([val] * c)
        val ^= 1
    return out


def encode(pixels):
    cnts, prev, run = [], 0, 0
    for p in pixels:
        if p != prev:
            cnts.append(run)
            run, prev = 0, p
        run += 1
    cnts.append(run)
    return cnts


def polygons_rle(polys, h, w):
    """annToRLE: each polygon rasterized, then merged (union)."""
    masks = [decode(fr_poly(p, h, w)) for p in polys]
    union = [0] * (h * w)
    for m in masks:
        union = [a | b for a, b in zip(union, m)]
    return encode(union)


def iou_pixels(dt, gt, crowd):
    inter = sum(a & b for a, b in zip(dt, gt))
    union = sum(a | b for a, b in zip(dt, gt))
    if inter == 0:
        return 0.0
    return inter / (sum(dt) if crowd else union)


def hand_cases():
    return [
        ("square", 6, 6, [[1, 1, 4, 1, 4, 4, 1, 4]]),
        ("triangle", 10, 10, [[1.0, 1.0, 8.5, 2.0, 3.0, 8.7]]),
        ("l_shape", 8, 9, [[0.5, 0.5, 6.5, 0.5, 6.5, 3.0, 3.0, 3.0, 3.0, 7.5, 0.5, 7.5]]),
        ("subpixel", 5, 5, [[0.3, 0.2, 2.7, 0.6, 1.4, 2.9]]),
        ("out_of_bounds", 6, 7, [[-2.3, -1.7, 7.8, -0.4, 8.6, 6.2, -1.1, 5.9]]),
        ("closed_repeat", 7, 7, [[1, 1, 5, 1, 5, 5, 1, 5, 1, 1]]),
        ("two_overlapping", 10, 12, [[1, 1, 6, 1, 6, 6, 1, 6], [4, 3, 10, 3, 10, 8, 4, 8]]),
        ("bowtie", 9, 9, [[1, 1, 7, 7, 7, 1, 1, 7]]),
        ("line", 5, 5, [[1, 1, 3, 3]]),
        ("point", 5, 5, [[2, 2]]),
        ("full_image", 4, 3, [[0, 0, 3, 0, 3, 4, 0, 4]]),
        ("tall_thin", 20, 3, [[1.2, 0.1, 1.8, 0.1, 1.9, 19.6, 1.1, 19.6]]),
    ]


def random_cases(rng, n):
    cases = []
    for i in range(n):
        h, w = rng.randint(5, 40), rng.randint(5, 40)
        polys = []
        for _ in range(rng.randint(1, 3)):
            k = rng.randint(3, 12)
            p = []
            for _ in range(k):
                p += [round(rng.uniform(-2, w + 2), 3), round(rng.uniform(-2, h + 2), 3)]
            polys.append(p)
        cases.append(("random_%d" % i, h, w, polys))
    return cases


def fruits_cases(path, n):
    if not path or not os.path.exists(path):
        return []
    d = json.load(open(path))
    sizes = {im['id']: (im['height'], im['width']) for im in d['images']}
    out = []
    for a in d['annotations'][:n]:
        h, w = sizes[a['image_id']]
        out.append(("fruits_ann_%d" % a['id'], h, w, a['segmentation']))
    return out


def fruits_summary(path):
    """Area and bbox of every annotation of the shared fruits set (checked when the data is present)."""
    if not path or not os.path.exists(path):
        return []
    out = []
    for name, h, w, polys in fruits_cases(path, None):
        cnts = polygons_rle(polys, h, w)
        out.append({"id": int(name.rsplit('_', 1)[1]), "area": sum(cnts[1::2]), "bbox": to_bbox(cnts, h, w)})
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument('--fruits', default=os.path.join(here, '../../shared/data/fruits/trainval.json'))
    ap.add_argument('--out', default=os.path.join(here, '../tests/fixtures/coco/rle_golden.json'))
    args = ap.parse_args()
    rng = random.Random(1234)

    polygons = []
    for name, h, w, polys in hand_cases() + random_cases(rng, 16) + fruits_cases(args.fruits, 4):
        cnts = polygons_rle(polys, h, w)
        assert fr_string(to_string(cnts)) == cnts
        polygons.append({"name": name, "height": h, "width": w, "polygons": polys, "counts": to_string(cnts),
                         "area": sum(cnts[1::2]), "bbox": to_bbox(cnts, h, w)})

    strings = []
    for i in range(10):
        n = rng.randint(1, 30)
        cnts = [rng.choice([0, 1, 2, 15, 16, 17, 31, 32, 1000, 65535, 1 << 20, rng.randint(0, 1 << 26)])
                for _ in range(n)]
        strings.append({"counts": cnts, "string": to_string(cnts)})

    ious = []
    for i in range(8):
        h, w = rng.randint(8, 30), rng.randint(8, 30)
        def poly():
            return [round(rng.uniform(0, [w, h][j % 2]), 2) for j in range(2 * rng.randint(3, 7))]
        dt, gt = [poly()], [poly()]
        pd, pg = decode(polygons_rle(dt, h, w)), decode(polygons_rle(gt, h, w))
        ious.append({"height": h, "width": w, "detection": dt, "ground_truth": gt,
                     "iou": iou_pixels(pd, pg, False), "crowd_iou": iou_pixels(pd, pg, True),
                     "intersection_area": sum(a & b for a, b in zip(pd, pg))})

    out = {"generator": "tools/coco_rle_reference.py (seed 1234)", "polygons": polygons, "strings": strings,
           "iou": ious, "fruits": fruits_summary(args.fruits)}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(out, f, indent=1)
        f.write('\n')
    print("wrote %s: %d polygon cases, %d strings, %d iou pairs" % (args.out, len(polygons), len(strings), len(ious)))


if __name__ == '__main__':
    main()
