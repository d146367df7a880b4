#!/usr/bin/env python3
"""Flicker of each engine on a clip, with and without temporal smoothing.

    python bench/flicker.py [--video clip.mp4] [--modnet CKPT] [--selfie MODEL] [--frames N]

Flicker (shared/NOTES.md): frames and alphas area-downscaled to 320x180; a
pixel is static between t-1 and t when its luma changed by less than 2; flicker
is the mean over t of the mean |alpha(t) - alpha(t-1)| over static pixels.
Each engine runs once over the clip; every smoother then sees the same alphas.
"""

from __future__ import annotations

import argparse
from pathlib import Path


from common import SELFIE_TFLITE, VLOG, default_weights, engine_for, read_frames  # noqa: E402  (sets up the project's imports)
from matting.metrics import flicker  # noqa: E402
from matting.temporal import SMOOTHING_CHOICES, make_smoother  # noqa: E402


def smoothed(alphas, frames, name: str, still_weight: float):
    smoother = make_smoother(name, still_weight=still_weight)
    out = []
    for i, (a, f) in enumerate(zip(alphas, frames)):
        out.extend(smoother.push(i, a, f))
    out.extend(smoother.flush())
    return [f for _, _, f in out], [a for _, a, _ in out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(VLOG))
    parser.add_argument("--modnet", help="MODNet checkpoint (default: weights/ webcam model, else the shared "
                                         "reference checkpoint)")
    parser.add_argument("--selfie", default=str(SELFIE_TFLITE))
    parser.add_argument("--frames", type=int, help="limit the number of frames")
    parser.add_argument("--inference-size", type=int, default=288)
    args = parser.parse_args()
    frames = read_frames(Path(args.video), args.frames)
    modnet = args.modnet or default_weights(required=False)
    engines = []
    if modnet:
        engines.append((f"modnet ({Path(modnet).name})", engine_for("modnet", modnet,
                                                                     inference_size=args.inference_size)))
    if args.selfie and Path(args.selfie).exists():
        engines.append((f"selfie ({Path(args.selfie).name})", engine_for("selfie", args.selfie)))
    print(f"{Path(args.video).name}: {len(frames)} frames")
    print(f"{'engine':48s} {'smoothing':16s} {'flicker':>9s} {'vs none':>8s}")
    for label, engine in engines:
        alphas = [engine.infer(f) for f in frames]
        base = None
        for name in SMOOTHING_CHOICES:
            fr, al = smoothed(alphas, frames, name, engine.ema_still_weight)
            value = flicker(fr, al)
            base = value if name == "none" else base
            default = " (default)" if name == engine.default_smoothing else ""
            print(f"{label:48s} {name + default:16s} {value:9.5f} {value / base:7.0%}")


if __name__ == "__main__":
    main()
