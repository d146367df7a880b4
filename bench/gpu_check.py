#!/usr/bin/env python3
"""GPU readiness in one command: correctness on the device, MODNet speed variants, the 1080p pipeline.

    python bench/gpu_check.py --device cuda          # on a machine with an NVIDIA GPU
    python bench/gpu_check.py --device cpu --quick   # the same checks on a CPU (a smoke test)

1. Reference vectors on the device (``../shared/reference``): float32 max abs
   error < 2e-4, float16 mean abs error < 3e-2 (the tolerances of shared/README.md).
2. MODNet alone at 288x512 (float16 on CUDA, float32 on a CPU), median ms:
   eager, channels-last, CUDA graphs (CUDA only), ``torch.compile`` (unless
   --quick); the fastest is named.
3. The full pipeline on 1080p frames (the vlog clip upscaled), every frame,
   with the device compositor: output fps and latency.
   On CUDA the alpha stays on the GPU from the model through the temporal
   smoother to the compositor (no host round trip); the line says whether it did.
4. The device compositor against the CPU compositor on the same frames and
   alphas: max abs difference in grey levels (colour, picture, key backgrounds).
5. The device temporal smoother (EMA, OFD, both) against the host one on the
   same moving frames and noisy alphas: max abs difference (must be < 1e-4).

The last line is ``gpu_check=ok`` or ``gpu_check=FAILED (...)``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from common import REFERENCE_CKPT, SHARED, VLOG, default_weights, pipeline_for  # noqa: E402  (project imports)

CASES = ["case_vlog_288x512", "case_two_people_384x640"]


def reference_vectors(device: str, dtypes: list[str]) -> list[str]:
    import torch

    from matting.checkpoint import load_modnet

    failures = []
    net = load_modnet(REFERENCE_CKPT, device=device)
    for dtype in dtypes:
        torch_dtype = getattr(torch, dtype)
        net = net.to(torch_dtype)
        for case in CASES:
            ref = np.load(SHARED / "reference" / f"{case}.npz")
            x = torch.from_numpy(ref["image_rgb"]).permute(2, 0, 1)[None].to(device, torch_dtype)
            x = (x / 255 - 0.5) / 0.5
            with torch.inference_mode():
                matte = net(x, True)[2][0, 0].double().cpu().numpy()
            err = np.abs(matte - ref["matte"])
            ok = err.max() < 2e-4 if dtype == "float32" else err.mean() < 3e-2
            print(f"  {dtype:8s} {case:26s} max abs {err.max():.2e}  mean abs {err.mean():.2e}  "
                  f"{'ok' if ok else 'FAILED'}")
            if not ok:
                failures.append(f"{dtype} {case}")
    return failures


def time_variants(device: str, quick: bool, rounds: int) -> dict[str, float]:
    import torch

    from matting.checkpoint import load_modnet

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    base = load_modnet(default_weights(), device=device).to(dtype).eval()
    x = torch.randn(1, 3, 288, 512, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def timed(fn) -> float:
        with torch.inference_mode():
            for _ in range(3):
                fn()
            sync()
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                fn()
                sync()
                times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)

    results = {"eager": timed(lambda: base(x, True))}
    cl_net = load_modnet(default_weights(), device=device).to(dtype).to(memory_format=torch.channels_last).eval()
    x_cl = x.contiguous(memory_format=torch.channels_last)
    results["channels-last"] = timed(lambda: cl_net(x_cl, True))
    if device.startswith("cuda"):
        static_x = x_cl.clone()
        with torch.inference_mode():
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    cl_net(static_x, True)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                cl_net(static_x, True)
        results["CUDA graph (channels-last)"] = timed(graph.replay)
    if not quick:
        try:
            compiled = torch.compile(cl_net)
            results["torch.compile (channels-last)"] = timed(lambda: compiled(x_cl, True))
        except Exception as exc:  # no compiler toolchain: say so, keep going
            print(f"  torch.compile unavailable: {str(exc).splitlines()[0][:120]}")
    return results


def make_clip(frames: int, size=(1920, 1080)) -> Path:
    out = Path(tempfile.mkdtemp()) / "clip_1080p.avi"
    cap = cv2.VideoCapture(str(VLOG))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 23.976, size)
    for _ in range(frames):
        ok, frame = cap.read()
        if not ok:
            break
        writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC))
    writer.release()
    cap.release()
    return out


def pipeline_1080p(device: str, frames: int) -> dict:
    pipeline, _ = pipeline_for(make_clip(frames), weights=str(default_weights()), device=device,
                               every_frame=True, background="blue", inference_workers=1)
    stats = pipeline.run()
    return {"compositor": type(pipeline.compositor).__name__, "fps": stats.steady_fps(),
            "device_alpha": pipeline.options.device_alpha, "smoother": pipeline.smoother.name,
            "p50": stats.percentile(stats.latency_ms, 50), "p95": stats.percentile(stats.latency_ms, 95),
            "engine": pipeline.engine.describe()}


def compositor_agreement(device: str) -> float:
    from compositing import ColorBackground, Compositor, ImageBackground
    from compositing.backgrounds import TransparentBackground
    from compositing.gpu_compositor import TorchCompositor

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    alpha = rng.random((288, 512)).astype(np.float32)
    picture = rng.integers(0, 255, (700, 900, 3), dtype=np.uint8)
    worst = 0.0
    for background in (ColorBackground((213, 143, 0)), ImageBackground(picture), TransparentBackground()):
        cpu = Compositor().composite(frame, alpha, background, now=0.0)
        dev = TorchCompositor(device).composite(frame, alpha, background, now=0.0)
        worst = max(worst, float(np.abs(cpu.astype(np.int16) - dev.astype(np.int16)).max()))
    return worst


def smoother_agreement(device: str) -> float:
    from matting import make_smoother
    from matting.engine import alpha_to_numpy

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8) for _ in range(3)]
    truth = np.zeros((288, 512), np.float32)
    truth[60:260, 150:360] = 1.0
    worst = 0.0
    for name in ("ema", "ofd", "ofd+ema"):
        host, dev = make_smoother(name), make_smoother(name, device=device)
        for i in range(10):
            frame = frames[i % 3] if i % 4 else frames[0]
            alpha = np.clip(truth + rng.normal(0, 0.3, truth.shape), 0, 1).astype(np.float32)
            for (_, a, _), (_, b, _) in zip(host.push(i, alpha, frame), dev.push(i, alpha, frame)):
                worst = max(worst, float(np.abs(a - alpha_to_numpy(b)).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cuda (default when available), cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and frames, no torch.compile")
    args = parser.parse_args()
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA GPU here")
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    print(f"device {device} ({name}); torch {torch.__version__}")
    failures = []

    print("\n1. reference vectors on the device")
    if (SHARED / "reference").is_dir():
        dtypes = ["float32", "float16"] if device.startswith("cuda") else ["float32"]
        failures += reference_vectors(device, dtypes)
    else:
        print(f"  skipped: {SHARED / 'reference'} is not here")

    print("\n2. MODNet alone at 288x512, median ms per frame")
    results = time_variants(device, args.quick, rounds=5 if args.quick else 50)
    eager = results["eager"]
    for variant, ms in results.items():
        print(f"  {variant:32s} {ms:8.2f} ms  ({eager / ms:4.2f}x eager)")
    best = min(results, key=results.get)
    print(f"  fastest: {best}")

    print("\n3. full pipeline, 1080p frames, every frame (the device compositor where there is a device)")
    run = pipeline_1080p(device, 12 if args.quick else 120)
    print(f"  {run['engine']}; compositor {run['compositor']}: {run['fps']:.1f} fps, latency p50 {run['p50']:.0f} ms "
          f"p95 {run['p95']:.0f} ms")
    print(f"  smoothing {run['smoother']}; alpha {'stays on the device' if run['device_alpha'] else 'goes through the host'}")

    print("\n4. device compositor vs CPU compositor (1080p, grey levels)")
    worst = compositor_agreement(device)
    print(f"  max abs difference {worst:.0f}")
    if worst > 1:
        failures.append(f"compositor differs by {worst:.0f} grey levels")

    print("\n5. device temporal smoother vs host smoother (max abs alpha difference)")
    smoothed = smoother_agreement(device)
    print(f"  {smoothed:.2e}")
    if smoothed > 1e-4:
        failures.append(f"device smoother differs by {smoothed:.2e}")

    print("gpu_check=ok" if not failures else f"gpu_check=FAILED ({'; '.join(failures)})")


if __name__ == "__main__":
    main()
