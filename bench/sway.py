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
import signal
from pathlib import Path

import numpy as np

from common import SELFIE_TFLITE, SHARED, engine_for, fail, positive

from app.arguments import parse_size  # noqa: E402
from compositing.backgrounds import fit_image  # noqa: E402
from matting.files import open_temp_beside, place_new  # noqa: E402

NIGHT_SKY = SHARED / "media" / "background_night_sky.jpg"
LARGEST = (7680, 4320)


def size(text: str) -> tuple[int, int]:
    """An argparse type: WIDTHxHEIGHT (as ``live.py --size`` reads it), each even and 64 to 7680x4320."""
    w, h = parse_size(text)
    if w < 64 or h < 64 or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"width and height must be even and at least 64, got {text!r}")
    if w > LARGEST[0] or h > LARGEST[1]:
        raise argparse.ArgumentTypeError(f"at most {LARGEST[0]}x{LARGEST[1]}, got {text!r}")
    return w, h


def read_picture(path: Path, what: str) -> np.ndarray:
    import cv2

    if path.is_dir():
        fail(f"{what} {path} is a folder: give a picture")
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


def write_clip(out: Path, frames, fps: int, w: int, h: int) -> None:
    """Write the frames to a temporary file beside ``out``, then give it that name only if nothing
    has it by then: an existing file is never replaced, and nothing is left on failure."""
    import cv2

    fd, part = open_temp_beside(out, suffix=".mp4")  # (the user's umask, as any file they save)
    os.close(fd)
    try:
        writer = cv2.VideoWriter(str(part), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not writer.isOpened():
            fail(f"cannot write an MP4 video into {out.parent}")
        try:
            for frame in frames:
                writer.write(frame)
        finally:
            writer.release()
        try:
            place_new(part, out)
        except FileExistsError:
            fail(f"{out} appeared while this ran; nothing is replaced")
    finally:
        part.unlink(missing_ok=True)


def main() -> None:
    import cv2

    from matting.engine import NO_PERSON, finds_person, upsample_alpha

    parser = argparse.ArgumentParser(description="Make a clip of a person swaying over a still background: "
                                     "sideways, with a small bob, a slow zoom and sensor noise.")
    parser.add_argument("picture", type=Path, help="a picture of a person")
    parser.add_argument("out", type=Path, help="the .mp4 to write (never replaced)")
    parser.add_argument("--background", type=Path, default=NIGHT_SKY, help="the picture behind (default: the "
                        "shared night sky)")
    parser.add_argument("--size", type=size, default=(1280, 720), metavar="WxH", help="default 1280x720")
    parser.add_argument("--frames", type=positive, default=144, help="default 144 (6 s at 24 fps)")
    parser.add_argument("--fps", type=positive, default=24, help="frames per second of the clip (default 24)")
    parser.add_argument("--amplitude", type=float, default=120.0, metavar="PX",
                        help="pixels sideways each way, at most half the width (default 120)")
    parser.add_argument("--period", type=float, default=72.0, metavar="FRAMES", help="frames per sway (default 72)")
    args = parser.parse_args()
    w, h = args.size
    if not 0 <= args.amplitude <= w / 2:
        fail(f"--amplitude must be between 0 and half the width ({w // 2} pixels), got {args.amplitude:g}")
    if not 2 <= args.period <= 1e6:
        fail(f"--period must be between 2 and 1000000 frames, got {args.period:g}")
    if args.fps > 240:
        fail(f"--fps must be at most 240, got {args.fps}")
    if args.out.suffix.lower() != ".mp4":
        fail(f"{args.out}: give a .mp4 name")
    if args.out.exists() or args.out.is_symlink():
        fail(f"{args.out} exists; give a new name (nothing is replaced)")
    if not args.out.parent.is_dir():
        fail(f"{args.out}: the folder {args.out.parent} does not exist")
    if not SELFIE_TFLITE.exists():
        fail(f"the selfie model {SELFIE_TFLITE} is missing (MODNET_SHARED names the shared folder)")
    person = fit_image(read_picture(args.picture, "picture"), (h, w))
    room = fit_image(read_picture(args.background, "--background"), (h, w)).astype(np.float32)
    alpha = upsample_alpha(engine_for("selfie", SELFIE_TFLITE).infer(person), (h, w))
    if not finds_person(alpha):
        fail(f"{args.picture}: {NO_PERSON}")
    rng = np.random.default_rng(1)

    def frames():
        for t in range(args.frames):
            m = sway(t, args.amplitude, args.period, w, h)
            fg = cv2.warpAffine(person, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            a = cv2.warpAffine(alpha, m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
            frame = a * fg + (1 - a) * room + rng.normal(0, 2, fg.shape)
            yield np.clip(frame + 0.5, 0, 255).astype(np.uint8)

    write_clip(args.out, frames(), args.fps, w, h)
    print(f"{args.out}: {args.frames} frames {w}x{h} at {args.fps} fps, sway ±{args.amplitude:g} px every "
          f"{args.period:g} frames")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: fail("stopped (SIGTERM); nothing written", 143))
    try:
        main()
    except KeyboardInterrupt:
        fail("stopped (Ctrl-C); nothing written", 130)
