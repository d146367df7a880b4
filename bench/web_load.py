#!/usr/bin/env python3
"""Does the live panel slow the call? Output rate with the preview stream closed vs open.

    python bench/web_load.py                       # selfie engine, vlog clip, 4 × 10 s, interleaved
    python bench/web_load.py --seconds 20 --model modnet

One ``live.py --web`` process per run (``--no-window``, the clip looping at its
own rate), as users run it; the figures are the means of ``/api/v1/live/status``
read once a second after the first 2 s (process CPU included: server, encoder). In the "streaming" rows a client reads
``/api/v1/live/stream.mjpg`` the whole time, as an open Live tab does (the
preview: at most 640 px wide, 15 fps); it also polls ``/api/v1/live/status``
once a second like the page. Rows alternate closed / streaming so machine drift
hits both alike. Output % = output fps / the clip's own fps.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from common import ROOT, SELFIE_TFLITE, VLOG, default_weights  # noqa: E402  (sets up the project's imports)

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clip_fps() -> float:
    import cv2

    cap = cv2.VideoCapture(str(VLOG))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return fps


def reader(base: str, stop: threading.Event, counts: dict) -> None:
    """Read the MJPEG stream until ``stop``, counting JPEG frames (what an open Live tab does)."""
    with urllib.request.urlopen(base + "/api/v1/live/stream.mjpg", timeout=10) as stream:
        while not stop.is_set():
            chunk = stream.read1(65536)
            if not chunk:
                return
            counts["jpegs"] += chunk.count(b"\xff\xd9")
            counts["bytes"] += len(chunk)


def browser_reader(base: str, stop: threading.Event, counts: dict) -> None:
    """Keep the real Live page open in headless Chromium (Debian's), as a user does."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/live")
        while not stop.is_set():
            page.wait_for_timeout(500)
        counts["jpegs"] = -1  # not counted in the browser
        browser.close()


def run(model_args: list[str], seconds: float, streaming: bool, browser: bool = False) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, str(ROOT / "live.py"), "--web", "--port", str(port), "--source", str(VLOG), "--loop",
           "--no-window", *model_args]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/api/v1/live/status", timeout=2) as r:
                    if json.loads(r.read())["state"] == "running":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("server did not start: " + (proc.stderr.read() if proc.poll() is not None else ""))
            time.sleep(0.2)
        stop, counts = threading.Event(), {"jpegs": 0, "bytes": 0}
        target = browser_reader if browser else reader
        thread = threading.Thread(target=target, args=(base, stop, counts), daemon=True) if streaming else None
        if thread:
            thread.start()
            if browser:
                time.sleep(5)  # Chromium's start-up is not the panel's cost
        started = time.monotonic()
        samples = []
        time.sleep(2.0)  # the status figures are 2-s windows: start with one wholly inside the run
        while time.monotonic() - started < seconds:
            with urllib.request.urlopen(base + "/api/v1/live/status", timeout=5) as r:
                samples.append(json.loads(r.read()))
            time.sleep(1.0)
        elapsed = time.monotonic() - started
        stop.set()
        if thread:
            thread.join(30)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    if not samples:
        raise SystemExit("no status samples:\n" + err[-2000:])

    def mean(key):
        values = [s[key] for s in samples if s.get(key) is not None]
        return sum(values) / len(values) if values else float("nan")

    return {"output": mean("fps"), "mattes": mean("mattes_per_s"), "p50": mean("latency_ms"),
            "cpu": mean("cpu_cores"), "preview_fps": counts["jpegs"] / elapsed if counts["jpegs"] > 0 else 0.0,
            "preview_kbps": counts["bytes"] * 8 / 1000 / elapsed if streaming else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pairs", type=int, default=2, help="closed/streaming pairs (interleaved)")
    parser.add_argument("--model", default="selfie", choices=("selfie", "modnet"))
    parser.add_argument("--browser", action="store_true",
                        help="keep the Live page open in headless Chromium instead of a plain stream reader")
    parser.add_argument("--weights", help="model file (default: the shared selfie model / MODNet checkpoint)")
    args = parser.parse_args()
    weights = args.weights or str(SELFIE_TFLITE if args.model == "selfie" else default_weights())
    model_args = ["--model", args.model, "--weights", weights]
    source_fps = clip_fps()
    print(f"clip {VLOG.name} at {source_fps:.2f} fps; model {args.model} ({os.path.basename(weights)}); "
          f"{args.seconds:g} s per run; {os.cpu_count()} CPU cores")
    if args.browser:
        print("streaming rows: the Live page open in headless Chromium (preview fps not counted there)")
    print(f"{'panel':<10} {'output fps':>10} {'output %':>9} {'mattes/s':>9} {'latency p50':>11} "
          f"{'cpu cores':>9} {'preview fps':>11} {'preview kbit/s':>14}")
    rows: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(args.pairs):
        for streaming in (False, True):
            r = run(model_args, args.seconds, streaming, args.browser)
            rows[streaming].append(r)
            print(f"{'streaming' if streaming else 'closed':<10} {r['output']:>10.2f} "
                  f"{100 * r['output'] / source_fps:>8.1f}% {r['mattes']:>9.2f} {r['p50']:>8.0f} ms "
                  f"{r['cpu']:>9.2f} {r['preview_fps']:>11.1f} {r['preview_kbps']:>14.0f}", flush=True)
    mean = {k: sum(r["output"] for r in v) / len(v) for k, v in rows.items()}
    print(f"streaming_output_pct={100 * mean[True] / source_fps:.1f} "
          f"closed_output_pct={100 * mean[False] / source_fps:.1f}")


if __name__ == "__main__":
    main()
