#!/usr/bin/env python3
"""CPU budget: matte rate vs CPU cores vs output rate, for each engine on moving and still footage.

    python bench/budget.py                  # 20 s per row, MODNet (shared checkpoint) and selfie
    python bench/budget.py --seconds 30 --rates 2,3,5

Each row is a real ``live.py`` run (``--no-window``, the clip looping at its own
rate) with the flags shown; output fps and CPU (process CPU time over wall time,
1.0 = one core busy) are the ``--stats`` summary's steady figures, from the
first output on (the model's start-up left out). Moving footage is the vlog
clip (23.98 fps); still footage is its first frame with fresh sensor noise
(σ = 2 grey levels) in every frame, 30 fps, MJPEG-compressed as a 720p webcam
sends it (decoding it is part of the cost, as with a real camera).
The lag error of a matte rate comes from ``bench/lag.py`` (matte every N frames
at 24 fps, N = 24 / rate), with and without motion compensation.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from common import ROOT, SELFIE_TFLITE, VLOG, default_weights, fail  # noqa: E402  (sets up the project's imports)
from app.config import BOUNDS  # noqa: E402

SUMMARY = re.compile(r"mattes ([\d.]+)/s .*latency p50 (\d+) ms, p95 (\d+) ms.*"
                     r"steady \(from the first output\): ([\d.]+|nan) fps, cpu ([\d.]+|nan) cores")
STILL_FPS = 30.0


def still_clip(folder: Path, seconds: float = 10.0) -> Path:
    """The vlog's first frame with fresh sensor noise each frame, MJPEG at 30 fps (looped by the run)."""
    cap = cv2.VideoCapture(str(VLOG))
    ok, frame = cap.read()
    cap.release()
    fps = STILL_FPS
    out = folder / "still.avi"
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, frame.shape[1::-1])
    rng = np.random.default_rng(0)
    for _ in range(int(seconds * fps)):
        noise = rng.normal(0, 2, frame.shape)
        writer.write(np.clip(frame + noise, 0, 255).astype(np.uint8))
    writer.release()
    return out


def run(clip: Path, seconds: float, args: list[str]) -> dict | None:
    cmd = [sys.executable, str(ROOT / "live.py"), "--source", str(clip), "--loop", "--no-window",
           "--duration", str(seconds), "--stats", "--stats-interval", "1000", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MODNET_OFFLINE": "1"})
    match = SUMMARY.search(r.stderr)
    if r.returncode != 0 or not match:
        print(f"  failed: {' '.join(args)}: {r.stderr.strip().splitlines()[-1:]}")
        return None
    mattes, p50, p95, fps, cpu = (float(v) for v in match.groups())
    return {"fps": fps, "mattes": mattes, "p50": p50, "p95": p95, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rates", default="", help="--max-matte-rate values to try for MODNet, e.g. 2,3")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 3600:  # (nan fails this too)
        fail(f"--seconds must be between 1 and 3600, got {args.seconds:g}")
    low, high, _ = BOUNDS["max_matte_rate"]  # live.py's own limits: refused here, not after minutes of rows
    for rate in filter(None, args.rates.split(",")):
        try:
            value = float(rate)
        except ValueError:
            value = float("nan")
        if not 0 < value < float("inf"):
            fail(f"--rates: {rate!r} is not a positive number (give matte rates such as 2,3)")
        if not low <= value <= high:
            fail(f"--rates: {rate!r} is outside what --max-matte-rate takes ({low:g} to {high:g} mattes a second)")
    engines = [("modnet", ["--weights", str(default_weights(flag=False))])]
    if SELFIE_TFLITE.exists():
        engines.append(("selfie", ["--model", "selfie", "--weights", str(SELFIE_TFLITE)]))
    configs = [("uncapped, no motion comp., no still skip",
                ["--motion-comp", "off", "--skip-still", "off", "--inference-share", "1"]),
               ("defaults", []),
               ("--inference-share 1 (no limit)", ["--inference-share", "1"]),
               ("--inference-share 0.5", ["--inference-share", "0.5"])]
    configs += [(f"--max-matte-rate {r}", ["--max-matte-rate", r]) for r in args.rates.split(",") if r]
    with tempfile.TemporaryDirectory() as tmp:
        cap = cv2.VideoCapture(str(VLOG))
        vlog_fps = cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        clips = [("moving", VLOG, vlog_fps), ("still", still_clip(Path(tmp)), STILL_FPS)]
        print(f"{os.cpu_count()} CPU cores; {args.seconds:.0f} s per row; moving {vlog_fps:.2f} fps, "
              f"still {STILL_FPS:.0f} fps")
        print(f"{'engine':7s} {'footage':7s} {'configuration':42s} {'out fps':>7s} {'% src':>6s} {'mattes/s':>8s} "
              f"{'cpu cores':>9s} {'lat p50':>7s} {'lat p95':>7s}")
        failed = 0
        for engine, engine_args in engines:
            for footage, clip, source_fps in clips:
                for label, extra in configs:
                    if engine == "selfie" and label.startswith(("--max", "--inference")):
                        continue
                    r = run(clip, args.seconds, engine_args + extra)
                    failed += r is None
                    if r:
                        print(f"{engine:7s} {footage:7s} {label:42s} {r['fps']:7.1f} "
                              f"{100 * r['fps'] / source_fps:5.1f}% {r['mattes']:8.2f} "
                              f"{r['cpu']:9.2f} {r['p50']:7.0f} {r['p95']:7.0f}", flush=True)
    if failed:
        fail(f"{failed} row(s) failed (see above)", code=1)


if __name__ == "__main__":
    main()
