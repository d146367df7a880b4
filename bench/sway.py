#!/usr/bin/env python3
"""A test clip of a person who keeps moving: a picture's person, cut out once, swaying over a still background.

    python bench/sway.py portrait.jpg sway.mp4                       # 144 frames, 1280x720, 24 fps
    python bench/sway.py two_people.jpg sway.mp4 --amplitude 90 --period 60 --background room.jpg
    python bench/lag.py --clip sway.mp4 --delay 8 --every 8 --every 12

The vlog clip's motion settles within a third of a second (a head turning and nodding), so it
cannot show what a longer wait between mattes costs while someone keeps moving; this makes such
footage from any portrait. The person is cut out with the selfie segmenter (the shared model) and
moved along a sway: sideways ``amplitude · sin(2πt / period)`` pixels, a small bob (an eighth of
that, twice as fast) and a slow ±4 % zoom, over the background at rest (default: the shared
night-sky picture), with σ = 2 sensor noise in every frame. The background stays where it is, so
the person uncovers and covers it as a real one does. An existing OUT is never replaced.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from common import SELFIE_TFLITE, SHARED, engine_for, fail, positive

NIGHT_SKY = SHARED / "media" / "background_night_sky.jpg"


def size(text: str) -> tuple[int, int]:
    """An argparse type: WIDTHxHEIGHT, each even and at least 64 (what video encoders take)."""
    try:
        w, h = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}") from None
    if w < 64 or h < 64 or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"width and height must be even and at least 64, got {text!r}")
    return w, h


def cover(picture: np.ndarray, w: int, h: int) -> np.ndarray:
    """The picture scaled to cover w×h and cropped to its middle (BGR uint8)."""
    import cv2

    scale = max(w / picture.shape[1], h / picture.shape[0])
    big = cv2.resize(picture, (max(w, round(picture.shape[1] * scale)), max(h, round(picture.shape[0] * scale))),
                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    y, x = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[y:y + h, x:x + w]


def read_picture(path: Path, what: str) -> np.ndarray:
    import cv2

    if not path.is_file():
        fail(f"{what} {path} does not exist")
    picture = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if picture is None:
        fail(f"{what} {path} is not a picture OpenCV can read")
    return picture


def sway(t: int, amplitude: float, period: float, w: int, h: int) -> np.ndarray:
    """The 2×3 affine map that places the person at frame t."""
    phase = 2 * np.pi * t / period
    dx, dy = amplitude * np.sin(phase), amplitude / 8 * np.sin(2 * phase + 1)
    s = 1 + 0.04 * np.sin(phase / 1.7)
    return np.float32([[s, 0, dx + (1 - s) * w / 2], [0, s, dy + (1 - s) * h / 2]])


def main() -> None:
    import cv2

    from matting.engine import upsample_alpha

    parser = argparse.ArgumentParser(description="Make a clip of a person swaying over a still background.")
    parser.add_argument("picture", type=Path, help="a picture of a person")
    parser.add_argument("out", type=Path, help="the .mp4 to write (never replaced)")
    parser.add_argument("--background", type=Path, default=NIGHT_SKY, help="the picture behind (default: the "
                        "shared night sky)")
    parser.add_argument("--size", type=size, default=(1280, 720), metavar="WxH", help="default 1280x720")
    parser.add_argument("--frames", type=positive, default=144, help="default 144 (6 s at 24 fps)")
    parser.add_argument("--fps", type=positive, default=24)
    parser.add_argument("--amplitude", type=float, default=120.0, help="pixels sideways each way (default 120)")
    parser.add_argument("--period", type=float, default=72.0, help="frames per sway (default 72)")
    args = parser.parse_args()
    if not 0 <= args.amplitude < 1e5:
        fail(f"--amplitude must be between 0 and 100000 pixels, got {args.amplitude:g}")
    if not 2 <= args.period < 1e6:
        fail(f"--period must be at least 2 frames, got {args.period:g}")
    if args.out.exists():
        fail(f"{args.out} exists; give a new name (nothing is replaced)")
    if args.out.suffix.lower() != ".mp4":
        fail(f"{args.out}: give a .mp4 name")
    if not SELFIE_TFLITE.exists():
        fail(f"the selfie model {SELFIE_TFLITE} is missing (MODNET_SHARED names the shared folder)")
    w, h = args.size
    person = cover(read_picture(args.picture, "picture"), w, h)
    room = cover(read_picture(args.background, "--background"), w, h).astype(np.float32)
    alpha = upsample_alpha(engine_for("selfie", SELFIE_TFLITE).infer(person), (h, w))
    rng = np.random.default_rng(1)
    part = args.out.with_name(args.out.name + ".part.mp4")
    writer = cv2.VideoWriter(str(part), cv2.VideoWriter_fourcc(*"mp4v"), args.fps, (w, h))
    if not writer.isOpened():
        fail(f"cannot write {part} (is the folder there and writable?)")
    try:
        for t in range(args.frames):
            m = sway(t, args.amplitude, args.period, w, h)
            fg = cv2.warpAffine(person, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            a = cv2.warpAffine(alpha, m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
            frame = a * fg + (1 - a) * room + rng.normal(0, 2, fg.shape)
            writer.write(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
    except BaseException:
        writer.release()
        part.unlink(missing_ok=True)
        raise
    writer.release()
    try:
        os.link(part, args.out)  # fails where OUT appeared meanwhile: theirs is kept
    except FileExistsError:
        fail(f"{args.out} appeared while this ran; nothing is replaced")
    except OSError:  # a file system without hard links
        os.replace(part, args.out)
    finally:
        part.unlink(missing_ok=True)
    print(f"{args.out}: {args.frames} frames {w}x{h} at {args.fps} fps, sway ±{args.amplitude:g} px every "
          f"{args.period:g} frames")


if __name__ == "__main__":
    main()
