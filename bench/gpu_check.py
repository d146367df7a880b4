#!/usr/bin/env python3
"""GPU readiness in one command: correctness on the device, MODNet speed variants, the 1080p pipeline.

    python bench/gpu_check.py --device cuda          # on a machine with an NVIDIA GPU
    python bench/gpu_check.py --device cpu --quick   # the same checks on a CPU (a smoke test)

1. Reference vectors on the device (``../shared/reference``): float32 max abs
   error < 2e-4, float16 mean abs error < 3e-2 (the tolerances of shared/README.md).
2. MODNet alone at 288x512 (float16 on CUDA, float32 on a CPU), median ms:
   eager, channels-last, CUDA graphs (CUDA only), ``torch.compile`` (unless
   --quick); the fastest is named. Then the engine on a 1080p frame at the live
   size, preprocessing included: eager with the host resize against CUDA
   graphs with the device resize (the default on CUDA), and their agreement.
3. The full pipeline on 1080p frames (the vlog clip upscaled), every frame,
   with the device compositor: output fps and latency, on a colour and on the
   blurred room, beside the rate at which the clip decodes alone (the ceiling), and
   on a colour with the frames decoded ahead into memory (the pipeline's own rate),
   then handed out from memory at 120 and 60 fps as a camera sends them (the latency a
   frame gets with no queue behind it; not with --quick);
   and the threaded run's frames against the same stages run one after another
   (a missing synchronisation between the threads' device work shows there).
   On CUDA the alpha stays on the GPU from the model through the temporal
   smoother to the compositor (no host round trip); the line says whether it did.
4. The device compositor against the CPU compositor on the same frames and
   alphas: max abs difference in grey levels (colour, picture, key, blur).
5. The device temporal smoother (EMA, OFD, both) against the host one on the
   same moving frames and noisy alphas: max abs difference (must be < 1e-4).

The last line is ``gpu_check=ok`` or ``gpu_check=FAILED (...)``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from common import (REFERENCE_CKPT, SHARED, VLOG, build_pipeline, default_weights, fail, pipeline_for,  # noqa: E402
                    read_frames, settings)  # noqa: E402  (project imports)

CASES = ["case_vlog_288x512", "case_two_people_384x640"]


def reference_vectors(device: str, dtypes: list[str]) -> list[str]:
    import torch

    from matting.checkpoint import load_modnet

    failures = []
    net = load_modnet(REFERENCE_CKPT, device=device)
    cudnn_tf32 = torch.backends.cudnn.allow_tf32
    # float32 is checked as float32: PyTorch lets cuDNN run float32 convolutions in TF32 (10-bit
    # mantissa) on Ampere and later by default, which is float16's precision, not float32's.
    # TF32 is shown too, for information (the live engine runs float16 on CUDA anyway).
    runs = [(dtype, False) for dtype in dtypes]
    if device.startswith("cuda") and "float32" in dtypes:
        runs.append(("float32", True))
    for dtype, tf32 in runs:
        torch_dtype = getattr(torch, dtype)
        net = net.to(torch_dtype)
        torch.backends.cudnn.allow_tf32 = tf32
        label = "tf32" if tf32 else dtype
        for case in CASES:
            ref = np.load(SHARED / "reference" / f"{case}.npz")
            x = torch.from_numpy(ref["image_rgb"]).permute(2, 0, 1)[None].to(device, torch_dtype)
            x = (x / 255 - 0.5) / 0.5
            with torch.inference_mode():
                matte = net(x, True)[2][0, 0].double().cpu().numpy()
            err = np.abs(matte - ref["matte"])
            ok = err.mean() < 3e-2 if dtype == "float16" or tf32 else err.max() < 2e-4
            verdict = ("ok" if ok else "FAILED") + (" (information only)" if tf32 else "")
            print(f"  {label:8s} {case:26s} max abs {err.max():.2e}  mean abs {err.mean():.2e}  {verdict}")
            if not ok and not tf32:
                failures.append(f"{dtype} {case}")
    torch.backends.cudnn.allow_tf32 = cudnn_tf32
    return failures


def time_variants(device: str, quick: bool, rounds: int) -> dict[str, float]:
    import torch

    from matting.checkpoint import load_modnet

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    base = load_modnet(default_weights(flag=False), device=device).to(dtype).eval()
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
    cl_net = load_modnet(default_weights(flag=False), device=device).to(dtype).to(memory_format=torch.channels_last).eval()
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


def engine_paths(device: str, rounds: int) -> tuple[dict[str, float], float]:
    """The torch engine on a 1080p frame, preprocessing included, median ms per frame at the live
    inference size: eager with OpenCV's resize on the host (the previous default) against CUDA
    graphs with the resize on the device (the default on CUDA); and the two alphas' largest
    difference (the resize's one-level rounding ties and float16)."""
    import torch

    from matting import default_inference_size
    from matting.torch_engine import TorchModnetEngine

    cap = cv2.VideoCapture(str(VLOG))
    frame = cv2.resize(cap.read()[1], (1920, 1080), interpolation=cv2.INTER_CUBIC)
    cap.release()
    cuda = device.startswith("cuda")
    variants = {"eager, resized on the host": dict(cuda_graphs=False, device_resize=False),
                "CUDA graphs, resized on the device" if cuda else "resized on the device":
                    dict(cuda_graphs=cuda, device_resize=True)}
    times, alphas = {}, []
    for label, options in variants.items():
        engine = TorchModnetEngine(default_weights(flag=False), inference_size=default_inference_size(device, False),
                                   device=device, **options)
        for _ in range(3):
            engine.infer(frame)
        spent = []
        for _ in range(rounds):
            start = time.perf_counter()
            alpha, _, _ = engine.infer_timed(frame, on_device=True)
            if cuda:
                torch.cuda.synchronize()
            spent.append((time.perf_counter() - start) * 1000)
        times[f"{label} ({engine.output_shape(frame.shape)[1]}x{engine.output_shape(frame.shape)[0]})"] = \
            statistics.median(spent)
        alphas.append(alpha.float().cpu().numpy())
    return times, float(np.abs(alphas[0] - alphas[1]).max())


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


def decode_fps(clip: Path) -> float:
    """How fast the clip's frames can be read and decoded alone: the ceiling of step 3's fps."""
    cap = cv2.VideoCapture(str(clip))
    count, start = 0, time.perf_counter()
    while cap.read()[0]:
        count += 1
    cap.release()
    return count / (time.perf_counter() - start)


def pipeline_1080p(device: str, clip: Path, background: str) -> dict:
    pipeline, _ = pipeline_for(clip, weights=str(default_weights(flag=False)), device=device,
                               every_frame=True, background=background, inference_workers=1)
    stats = pipeline.run()
    return {"compositor": type(pipeline.compositor).__name__, "fps": stats.steady_fps(),
            "device_alpha": pipeline.options.device_alpha, "smoother": pipeline.smoother.name,
            "p50": stats.percentile(stats.latency_ms, 50), "p95": stats.percentile(stats.latency_ms, 95),
            "engine": pipeline.engine.describe()}


def pipeline_1080p_in_memory(device: str, clip: Path, background: str, pace: float | None = None) -> dict:
    """The same run with the clip's frames decoded ahead into memory: the pipeline's own rate,
    with the decoder (one CPU thread, the ceiling of :func:`pipeline_1080p`) taken out. With
    ``pace`` the frames are handed out at that rate, each at its due time, as a camera sends them:
    the latency is then a frame's own work plus what it waits, with no queue of frames behind it."""
    from realtime.sources import FrameSource

    class MemorySource(FrameSource):
        name = "frames in memory"

        def __init__(self, frames: list[np.ndarray], fps: float):
            self.frames, self.fps, self.index, self.started = frames, fps, 0, 0.0

        def open(self) -> None:
            self.index, self.started = 0, time.perf_counter()

        def read(self):
            if self.index >= len(self.frames):
                return None
            if pace and self.index == 1:  # the pipeline's first read: the clock starts here, after the build
                self.started = time.perf_counter() - 1 / pace
            elif pace:
                time.sleep(max(0.0, self.started + self.index / pace - time.perf_counter()))
            self.index += 1
            return self.frames[self.index - 1]

    frames = read_frames(clip)
    run = settings(source=str(clip), weights=str(default_weights(flag=False)), device=device, every_frame=True,
                   background=background, inference_workers=1)
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0  # (a background video follows it; every frame is shown anyway)
    cap.release()
    source = MemorySource(frames, fps)
    source.open()
    pipeline = build_pipeline(run, source, source.read(), interactive=False)
    stats = pipeline.run()
    latency = list(stats.latency_ms)[30 if pace else 0:]  # paced: after the first (warm-up) second's worth
    return {"fps": stats.steady_fps(), "p50": stats.percentile(latency, 50),
            "p95": stats.percentile(latency, 95), "frames": len(frames)}


def pipelined_vs_serial(device: str, clip: Path, background: str, frames: int) -> tuple[int, float]:
    """The threaded pipeline's output frames against the same stages run one after another in one
    thread (fresh objects, built the same way): ``(frames compared, max abs difference)``. The
    threads hand device tensors to each other; a missing synchronisation shows up here."""
    from realtime.sinks import Sink

    class Keep(Sink):
        def __init__(self):
            self.frames: list[np.ndarray] = []

        def send(self, frame, captured_at):
            self.frames.append(frame.copy())

    values = dict(weights=str(default_weights(flag=False)), device=device, every_frame=True, background=background,
                  inference_workers=1, max_frames=frames)
    pipeline, _ = pipeline_for(clip, **values)
    kept = Keep()
    pipeline.sinks.append(kept)
    pipeline.run()
    serial, source = pipeline_for(clip, **values)
    source.close()
    engine, smoother, compositor = serial.engine, serial.smoother, serial.compositor
    back = serial.library.current()
    worst, count = 0.0, 0
    for index, frame in enumerate(read_frames(clip, len(kept.frames))):
        alpha = engine.infer(frame) if index == 0 else engine.infer_timed(frame, on_device=serial.options.device_alpha)[0]
        for _, smoothed, shown in smoother.push(index, alpha, frame):
            if count < len(kept.frames):
                out = compositor.composite(shown, smoothed, back, now=0.0)
                worst = max(worst, float(np.abs(out.astype(np.int16) - kept.frames[count]).max()))
                count += 1
    return count, worst


def compositor_agreement(device: str) -> float:
    from compositing import ColorBackground, Compositor, ImageBackground
    from compositing.backgrounds import BlurBackground, TransparentBackground
    from compositing.gpu_compositor import TorchCompositor

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    alpha = rng.random((288, 512)).astype(np.float32)
    picture = rng.integers(0, 255, (700, 900, 3), dtype=np.uint8)
    worst = 0.0
    for background in (ColorBackground((213, 143, 0)), ImageBackground(picture), TransparentBackground(),
                       BlurBackground(12)):
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

    device = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).strip().lower()
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        fail(f"--device {args.device}: this check runs on cpu, cuda or cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA GPU here")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        fail(f"--device {device}: PyTorch sees {torch.cuda.device_count()} CUDA GPU(s) here (cuda:0 is the first)")
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

    print("\n2b. the engine on a 1080p frame, preprocessing included, median ms per frame")
    times, worst = engine_paths(device, rounds=3 if args.quick else 50)
    first = next(iter(times.values()))
    for variant, ms in times.items():
        print(f"  {variant:44s} {ms:8.2f} ms  ({first / ms:4.2f}x)")
    print(f"  largest alpha difference between the two: {worst:.2e}")
    if worst > 0.1:
        failures.append(f"the engine's paths differ by {worst:.2e}")

    print("\n3. full pipeline, 1080p frames, every frame (the device compositor where there is a device)")
    clip = make_clip(12 if args.quick else 240)
    print(f"  decoding the 1080p clip alone: {decode_fps(clip):.0f} fps (the ceiling of the runs below)")
    for background in ("blue", "blur"):
        run = pipeline_1080p(device, clip, background)
        print(f"  {background}: {run['engine']}; compositor {run['compositor']}: {run['fps']:.1f} fps, "
              f"latency p50 {run['p50']:.0f} ms p95 {run['p95']:.0f} ms")
        print(f"    smoothing {run['smoother']}; alpha "
              f"{'stays on the device' if run['device_alpha'] else 'goes through the host'}")
        if args.quick and background != "blue":
            continue  # the smoke test checks one background
        if background == "blue":
            ahead = pipeline_1080p_in_memory(device, clip, background)
            print(f"  {background}, the {ahead['frames']} frames decoded ahead into memory (no decoder in the "
                  f"way): {ahead['fps']:.1f} fps, latency p50 {ahead['p50']:.0f} ms p95 {ahead['p95']:.0f} ms")
            for pace in (() if args.quick else (120.0, 60.0)):
                paced = pipeline_1080p_in_memory(device, clip, background, pace)
                print(f"  {background}, the same frames handed out at {pace:.0f} fps as a camera sends them "
                      f"(a frame every {1000 / pace:.1f} ms): {paced['fps']:.1f} fps, latency p50 "
                      f"{paced['p50']:.1f} ms p95 {paced['p95']:.1f} ms")
        count, worst = pipelined_vs_serial(device, clip, background, 8 if args.quick else 60)
        print(f"    the threaded run's first {count} frames against the same stages run serially: "
              f"max abs difference {worst:.0f}")
        if worst > 1 or count < (6 if args.quick else 50):
            failures.append(f"{background}: the threaded pipeline differs from a serial run by {worst:.0f} "
                            f"({count} frames)")

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
