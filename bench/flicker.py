#!/usr/bin/env python3
"""Flicker of each engine on a clip, with and without temporal smoothing.

    python bench/flicker.py [--video clip.mp4 | --clip clip.mp4] [--modnet CKPT] [--selfie MODEL] [--frames N]

Flicker (shared/NOTES.md): frames and alphas area-downscaled to 320x180; a
pixel is static between t-1 and t when its luma changed by less than 2; flicker
is the mean over t of the mean |alpha(t) - alpha(t-1)| over static pixels.
Each engine runs once over the clip; every smoother then sees the same alphas.
The clip is read once, frame by frame: memory does not grow with its length.
"""

from __future__ import annotations

import argparse
from itertools import chain
from pathlib import Path


from common import SELFIE_TFLITE, VLOG, default_weights, engine_for, fail, iter_frames, positive  # noqa: E402  (sets up the project's imports)
from matting.metrics import FlickerMeter  # noqa: E402
from matting.temporal import SMOOTHING_CHOICES, make_smoother  # noqa: E402


class Smoothed:
    """One smoother over one engine's alphas, and the flicker of what it lets out."""

    def __init__(self, name: str, still_weight: float):
        self.smoother = make_smoother(name, still_weight=still_weight)
        self.meter = FlickerMeter()

    def push(self, index: int, alpha, frame) -> None:
        for _, smoothed, shown in self.smoother.push(index, alpha, frame):
            self.meter.push(shown, smoothed)

    def value(self) -> float:
        for _, smoothed, shown in self.smoother.flush():
            self.meter.push(shown, smoothed)
        try:
            return self.meter.value()
        except ValueError:  # no static pixels between any two frames
            return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", "--clip", dest="video", default=str(VLOG), help="the clip (default: the vlog)")
    parser.add_argument("--modnet", help="MODNet checkpoint (default: weights/ webcam model, else the shared "
                                         "reference checkpoint)")
    parser.add_argument("--selfie", default=str(SELFIE_TFLITE))
    parser.add_argument("--frames", type=positive, help="limit the number of frames")
    parser.add_argument("--inference-size", type=int, default=288)
    args = parser.parse_args()
    frames = iter_frames(Path(args.video), args.frames)
    first, second = next(frames), next(frames, None)
    if second is None:
        fail(f"{args.video}: 1 frame; the benchmark needs at least two")
    modnet = args.modnet or default_weights(required=False)
    engines = []
    if modnet:
        engines.append((f"modnet ({Path(modnet).name})", engine_for("modnet", modnet,
                                                                     inference_size=args.inference_size)))
    if args.selfie and Path(args.selfie).exists():
        engines.append((f"selfie ({Path(args.selfie).name})", engine_for("selfie", args.selfie)))
    if not engines:
        fail("no engine to measure: pass --modnet CKPT or --selfie MODEL")
    runs = [[Smoothed(name, engine.ema_still_weight) for name in SMOOTHING_CHOICES] for _, engine in engines]
    count = 0
    for index, frame in enumerate(chain([first, second], frames)):
        for (_, engine), smoothers in zip(engines, runs):
            alpha = engine.infer(frame)
            for smoothed in smoothers:
                smoothed.push(index, alpha, frame)
        count = index + 1
    print(f"{Path(args.video).name}: {count} frames")
    print(f"{'engine':48s} {'smoothing':16s} {'flicker':>9s} {'vs none':>8s}")
    for (label, engine), smoothers in zip(engines, runs):
        base = None
        for name, smoothed in zip(SMOOTHING_CHOICES, smoothers):
            value = smoothed.value()
            base = value if name == "none" else base
            default = " (default)" if name == engine.default_smoothing else ""
            print(f"{label:48s} {name + default:16s} {value:9.5f} {value / base:7.0%}")

if __name__ == "__main__":
    main()
