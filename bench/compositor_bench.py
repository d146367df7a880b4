#!/usr/bin/env python3
"""Time the compositor alone, per background kind, at 720p and 1080p.

    python bench/compositor_bench.py [--repeats 30]

Input: a synthetic frame and a 288-px-high alpha (what the engine hands over),
so the figure includes upsampling the alpha to the frame. Every composite gets
a new frame array (as from a camera) and a new alpha array (a new or moved matte,
as on moving footage); the "still scene" row hands the same alpha back, as a still
scene does, so the compositor reuses what it can. The compositor is the live one
(``fast_blend``: 8-bit weights), except the row blending in float as photos do.
Prints the median wall and CPU ms per composite (OpenCV may use several cores)
and the implied ceiling in frames per second.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

# OpenCV's pool threads as a live run has them (live.py): sleeping, not spinning, between calls
for _name in ("OPENCV_THREAD_POOL_ACTIVE_WAIT_PAUSE_LIMIT", "OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER",
              "OPENCV_THREAD_POOL_ACTIVE_WAIT_MAIN"):
    os.environ.setdefault(_name, "0")

import cv2
import numpy as np

import common  # noqa: F401,E402  (sets up the project's imports)
from compositing import Compositor  # noqa: E402
from compositing.backgrounds import (BlurBackground, ColorBackground, ImageBackground, NoBackground,  # noqa: E402
                                     TransparentBackground, VideoBackground)
from matting.engine import inference_shape  # noqa: E402


def synthetic_inputs(h: int, w: int):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    ih, iw = inference_shape((h, w), 288)
    alpha = np.zeros((ih, iw), np.float32)
    cv2.ellipse(alpha, (iw // 2, ih), (iw // 5, ih * 3 // 4), 0, 0, 360, 1.0, -1)
    return frame, cv2.GaussianBlur(alpha, (0, 0), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        picture = Path(tmp) / "bg.jpg"
        cv2.imwrite(str(picture), np.random.default_rng(1).integers(0, 255, (1079, 1920, 3), dtype=np.uint8))
        clip = Path(tmp) / "bg.avi"
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (1280, 720))
        for i in range(30):
            writer.write(np.full((720, 1280, 3), i * 8, np.uint8))
        writer.release()
        kinds = [
            ("colour", lambda: ColorBackground((213, 143, 0)), {}),
            ("colour, float blend (photos)", lambda: ColorBackground((213, 143, 0)), {"fast_blend": False}),
            ("image (cover)", lambda: ImageBackground(picture, fit="cover"), {}),
            ("image (contain)", lambda: ImageBackground(picture, fit="contain"), {}),
            ("video", lambda: VideoBackground(clip), {}),
            ("blur", lambda: BlurBackground(12), {}),
            ("blur, still scene", lambda: BlurBackground(12), {"still": True}),
            ("key colour", lambda: TransparentBackground(), {}),
            ("none (pass-through)", lambda: NoBackground(), {}),
            ("colour + guided refine", lambda: ColorBackground((213, 143, 0)), {"refine": True}),
            ("colour + decontaminate", lambda: ColorBackground((213, 143, 0)), {"decontaminate": True}),
        ]
        print(f"{'background':30s} {'720p ms':>9s} {'cpu ms':>7s} {'720p fps':>9s} "
              f"{'1080p ms':>9s} {'cpu ms':>7s} {'1080p fps':>10s}")
        for name, factory, options in kinds:
            cells = []
            for h, w in [(720, 1280), (1080, 1920)]:
                frame, alpha = synthetic_inputs(h, w)
                background = factory()
                still = options.get("still", False)
                compositor = Compositor(**{"fast_blend": True, **{k: v for k, v in options.items() if k != "still"}})
                compositor.composite(frame, alpha, background, now=0.0)  # caches, buffers
                times, cpu_times = [], []
                for i in range(args.repeats):
                    matte = alpha if still else alpha.copy()  # the copies are outside the timing
                    shown = frame.copy()
                    start, cpu = time.perf_counter(), time.process_time()
                    compositor.composite(shown, matte, background, now=i / 30)
                    times.append(time.perf_counter() - start)
                    cpu_times.append(time.process_time() - cpu)
                ms, cpu_ms = 1000 * float(np.median(times)), 1000 * float(np.median(cpu_times))
                cells.append(f"{ms:9.1f} {cpu_ms:7.1f} {1000 / ms if ms > 0 else float('inf'):9.0f}")
                background.close()
            print(f"{name:30s} {cells[0]} {cells[1]}")


if __name__ == "__main__":
    main()
