#!/usr/bin/env python3
"""Generate the backgrounds shipped in backgrounds/ (so their licence is the project's own).

    python scripts/make_backgrounds.py [--out backgrounds] [--size 1280x720]

Deterministic: the same files every run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def gradient(h, w, top, bottom):
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to((1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32), (h, w, 3))


def soft_bokeh(h, w, base_top, base_bottom, colors, seed, count=40):
    rng = np.random.default_rng(seed)
    image = gradient(h, w, base_top, base_bottom).copy()
    glow = np.zeros((h, w, 3), np.float32)
    for _ in range(count):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.03, 0.12) * w
        color = np.array(colors[rng.integers(len(colors))], np.float32)
        mask = np.zeros((h, w), np.float32)
        cv2.circle(mask, (int(cx), int(cy)), int(r), rng.uniform(0.25, 0.7), -1, cv2.LINE_AA)
        glow += mask[:, :, None] * color
    glow = cv2.GaussianBlur(glow, (0, 0), w / 90)
    return np.clip(image + glow * 0.6, 0, 255)


def office(h, w, seed=3):
    """A soft, out-of-focus 'room': wall, window light, shelf blocks, floor."""
    rng = np.random.default_rng(seed)
    image = gradient(h, w, (200, 214, 226), (150, 168, 182)).copy()  # BGR: warm light wall
    cv2.rectangle(image, (int(w * 0.62), int(h * 0.12)), (int(w * 0.92), int(h * 0.62)), (250, 246, 236), -1)
    for i in range(6):
        x0 = int(w * (0.06 + 0.07 * i))
        color = tuple(float(c) for c in rng.uniform(60, 170, 3))
        cv2.rectangle(image, (x0, int(h * 0.30)), (x0 + int(w * 0.05), int(h * 0.52)), color, -1)
    cv2.rectangle(image, (int(w * 0.04), int(h * 0.52)), (int(w * 0.5), int(h * 0.55)), (70, 90, 110), -1)
    cv2.rectangle(image, (0, int(h * 0.80)), (w, h), (90, 110, 130), -1)
    leaves = np.zeros((h, w), np.float32)
    for _ in range(60):
        cx, cy = rng.normal(w * 0.85, w * 0.04), rng.normal(h * 0.72, h * 0.08)
        cv2.ellipse(leaves, (int(cx), int(cy)), (int(w * 0.02), int(w * 0.008)), rng.uniform(0, 180), 0, 360, 1.0, -1)
    image = image * (1 - leaves[:, :, None] * 0.8) + leaves[:, :, None] * np.array([60, 130, 70]) * 0.8
    return cv2.GaussianBlur(image, (0, 0), w / 160)


def waves(h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.sin(x / w * 6.0 + np.sin(y / h * 3.0) * 1.5)
    b = np.cos(y / h * 5.0 - x / w * 2.0)
    t = (a + b + 2) / 4
    c1, c2 = np.array([120, 50, 30], np.float32), np.array([200, 140, 90], np.float32)
    return (1 - t)[:, :, None] * c1 + t[:, :, None] * c2


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "backgrounds"))
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scenes = {
        "01_sunset_gradient.jpg": gradient(h, w, (90, 60, 160), (60, 150, 250)),
        "02_night_bokeh.jpg": soft_bokeh(h, w, (60, 25, 15), (25, 10, 5),
                                         [(80, 180, 255), (255, 200, 120), (200, 120, 255)], seed=1),
        "03_soft_office.jpg": office(h, w),
        "04_ocean_waves.jpg": waves(h, w),
        "05_studio_gray.jpg": soft_bokeh(h, w, (95, 95, 95), (55, 55, 55), [(200, 200, 200)], seed=2, count=12),
    }
    for name, image in scenes.items():
        path = out / name
        cv2.imwrite(str(path), np.clip(image + 0.5, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 88])
        print(path)


if __name__ == "__main__":
    main()
