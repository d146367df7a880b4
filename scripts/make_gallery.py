#!/usr/bin/env python3
"""Render the README gallery: one small picture per background kind.

    python scripts/make_gallery.py [--out docs/gallery]

The frame and its alpha are synthetic and made here (a figure with soft,
hair-like edges in front of a textured room), so the pictures show what the
compositor does, independent of any model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compositing import Compositor, ImageBackground, make_background  # noqa: E402

W, H = 640, 360


def synthetic_scene(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """BGR uint8 frame and float32 alpha of a figure with wispy hair in a room."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    # the room: warm wall with vertical planks, a window, a shelf, noise
    room = np.zeros((H, W, 3), np.float32)
    room[:] = (150, 170, 190)
    room += ((xx // 24) % 2)[:, :, None] * np.array([12, 10, 8], np.float32)
    cv2.rectangle(room, (440, 40), (600, 200), (235, 225, 205), -1)
    cv2.rectangle(room, (30, 150), (220, 160), (60, 80, 100), -1)
    for i in range(6):
        cv2.rectangle(room, (40 + 30 * i, 100), (62 + 30 * i, 150), tuple(float(v) for v in rng.uniform(60, 200, 3)), -1)
    room += rng.normal(0, 4, room.shape)
    # the figure: shoulders and a head
    alpha = np.zeros((H, W), np.float32)
    cv2.ellipse(alpha, (320, 380), (170, 120), 0, 180, 360, 1.0, -1)
    cv2.rectangle(alpha, (150, 330), (490, 360), 1.0, -1)
    cv2.ellipse(alpha, (320, 170), (72, 92), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.2)
    person = np.zeros((H, W, 3), np.float32)
    person[:] = (90, 60, 170)                              # a red jumper
    face = np.zeros((H, W), np.float32)
    cv2.ellipse(face, (320, 180), (60, 80), 0, 0, 360, 1.0, -1)
    face = cv2.GaussianBlur(face, (0, 0), 3)[:, :, None]
    person = person * (1 - face) + face * np.array([150, 180, 225], np.float32)
    # hair: many thin, partly transparent strands around the top of the head
    hair = np.zeros((H, W), np.float32)
    for _ in range(260):
        angle = rng.uniform(-2.6, -0.5)
        r0 = rng.uniform(60, 85)
        x0, y0 = 320 + r0 * np.cos(angle) * 1.05, 165 + r0 * np.sin(angle) * 1.2
        length = rng.uniform(20, 55)
        bend = rng.uniform(-0.4, 0.4)
        pts = [(x0 + t * length * np.cos(angle + bend * t), y0 + t * length * np.sin(angle + bend * t) + 25 * t * t)
               for t in np.linspace(0, 1, 8)]
        cv2.polylines(hair, [np.int32(pts)], False, float(rng.uniform(0.35, 0.8)), 1, cv2.LINE_AA)
    hair = np.maximum(hair, 0)
    cap = np.zeros((H, W), np.float32)
    cv2.ellipse(cap, (320, 130), (80, 62), 0, 180, 360, 1.0, -1)
    hair = np.clip(hair + cv2.GaussianBlur(cap, (0, 0), 2), 0, 1)
    hair_color = np.array([40, 70, 110], np.float32)
    person = person * (1 - hair[:, :, None]) + hair[:, :, None] * hair_color
    alpha = np.maximum(alpha, hair)
    frame = alpha[:, :, None] * person + (1 - alpha[:, :, None]) * room
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8), alpha.astype(np.float32)


def checkerboard(h, w, size=12):
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((yy // size + xx // size) % 2)[:, :, None] == 0, 200, 150).astype(np.uint8)
    return np.repeat(board, 3, axis=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "gallery"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frame, alpha = synthetic_scene()
    video = out.parent / "_gallery_clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for i in range(10):
        writer.write(cv2.applyColorMap(np.full((H, W), 20 * i, np.uint8) + np.uint8(np.mgrid[0:H, 0:W][1] // 4),
                                       cv2.COLORMAP_TWILIGHT))
    writer.release()
    picture = ROOT / "backgrounds" / "02_night_bokeh.jpg"
    kinds = [
        ("original", "none", {}),
        ("colour", "blue", {}),
        ("image_cover", str(picture), {}),
        ("image_contain", str(picture), {"fit": "contain"}),
        ("video", str(video), {}),
        ("blur", "blur", {}),
        ("key_colour", "transparent", {}),
        ("transparent_rgba", "transparent", {"rgba": True}),
        ("decontaminated", "blue", {"decontaminate": True}),
    ]
    written = []
    for name, value, options in kinds:
        if name == "image_contain":  # a square picture in a 16:9 frame shows the letterbox
            square = cv2.imread(value)[:, 280:1000]
            background = ImageBackground(square, fit="contain", name="square")
        else:
            background = make_background(value, fit=options.get("fit", "cover"))
        compositor = Compositor(decontaminate=options.get("decontaminate", False))
        result = compositor.composite(frame, alpha, background, now=0.35, rgba=options.get("rgba", False))
        if result.shape[2] == 4:  # show transparency over a checkerboard
            a = result[:, :, 3:].astype(np.float32) / 255
            result = (a * result[:, :, :3] + (1 - a) * checkerboard(H, W)).astype(np.uint8)
        background.close()
        path = out / f"{name}.jpg"
        cv2.imwrite(str(path), cv2.resize(result, (320, 180), interpolation=cv2.INTER_AREA),
                    [cv2.IMWRITE_JPEG_QUALITY, 85])
        written.append(path)
    cv2.imwrite(str(out / "frame.jpg"), cv2.resize(frame, (320, 180), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(out / "alpha.jpg"), cv2.resize((alpha * 255).astype(np.uint8), (320, 180)))
    video.unlink()
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
