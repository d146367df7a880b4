#!/usr/bin/env python3
"""ID photo and print sheet from a 12-megapixel picture: seconds and peak memory, per engine.

    python bench/idphoto_bench.py                 # selfie and MODNet (shared checkpoint), 3 runs each
    python bench/idphoto_bench.py --picture my_phone_photo.jpg --runs 5

Each row is one fresh ``live.py --image ... --id-size passport`` process, as
users run it (so model loading and first-use set-up are included), timed from
outside; peak memory is the child's maximum resident set size. The "warm
server" rows time the same work in a running ``--web`` server (models loaded,
picture decoding included), through the maker the REST API and the studio use. Without
``--picture`` the 12-MP input is the shared 720p portrait enlarged to
4032×3024 (a phone camera's size) and saved as a JPEG at quality 92.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, SHARED, default_weights  # noqa: E402  (sets up the project's imports)

PORTRAIT = SHARED / "media" / "portrait_720p.jpg"
SELFIE = SHARED / "models" / "selfie_segmentation_landscape.tflite"
FACE = SHARED / "models" / "face_detection_short_range.tflite"


def twelve_megapixels(folder: Path) -> Path:
    import cv2

    image = cv2.imread(str(PORTRAIT))
    # a portrait-orientation phone picture: 3024 wide, 4032 tall (crop to 3:4 first)
    h, w = image.shape[:2]
    crop_w = int(h * 3 / 4)
    image = image[:, (w - crop_w) // 2:(w + crop_w) // 2]
    big = cv2.resize(image, (3024, 4032), interpolation=cv2.INTER_CUBIC)
    path = folder / "phone_12mp.jpg"
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def run_child(cmd: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def warm(picture: Path, model_args: list[str], runs: int) -> tuple[float, float]:
    """Median seconds of one ID photo and one sheet in a running server (models already loaded),
    through the same maker the REST API and the studio use."""
    import time

    from app.build import build_id_maker
    from app.config import settings_from_args
    from compositing import read_image
    from idphoto import PhotoRequest

    settings = settings_from_args(["--web", "--face-weights", str(FACE), *model_args])
    maker = build_id_maker(settings)
    request = PhotoRequest(background="blue", size="passport", dpi=300, format="jpg")
    maker.photo(read_image(picture), PhotoRequest(**vars(request)))  # loads the models
    photo, sheet = [], []
    for _ in range(runs):
        start = time.perf_counter()
        maker.photo(read_image(picture), PhotoRequest(**vars(request)))
        photo.append(time.perf_counter() - start)
        start = time.perf_counter()
        maker.sheet([read_image(picture)], PhotoRequest(**vars(request)), paper="4x6in")
        sheet.append(time.perf_counter() - start)
    maker.close()
    return statistics.median(photo), statistics.median(sheet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--picture", help="input picture (default: a 12-MP enlargement of the shared portrait)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        picture = Path(args.picture) if args.picture else twelve_megapixels(folder)
        import cv2

        h, w = cv2.imread(str(picture)).shape[:2]
        print(f"input {picture.name}: {w}x{h} ({w * h / 1e6:.1f} MP); {os.cpu_count()} CPU cores; "
              f"median of {args.runs} runs, each a fresh process (model loading included)")
        engines = [("selfie", ["--model", "selfie", "--weights", str(SELFIE)])]
        weights = default_weights(required=False)
        if weights is not None:
            engines.append(("modnet", ["--model", "modnet", "--weights", str(weights)]))
        print(f"{'engine':<8} {'task':<26} {'seconds':>8} {'peak MB':>8}")
        for name, model_args in engines:
            tasks = [("ID photo passport 300 DPI", ["--output", str(folder / "id.jpg")]),
                     ("print sheet 4x6in 300 DPI", ["--output", str(folder / "sheet.jpg"), "--sheet", "4x6in"])]
            for task, extra in tasks:
                results = []
                for _ in range(args.runs):
                    Path(extra[1]).unlink(missing_ok=True)  # the previous run's output
                    cmd = [sys.executable, str(ROOT / "live.py"), "--image", str(picture), "--id-size", "passport",
                           "--dpi", "300", "--background", "blue", "--face-weights", str(FACE), *model_args, *extra]
                    results.append(run_child(cmd))
                seconds = statistics.median(r[0] for r in results)
                peak = max(r[1] for r in results)
                print(f"{name:<8} {task:<26} {seconds:>8.2f} {peak:>8.0f}", flush=True)
            photo_s, sheet_s = warm(picture, model_args, args.runs)
            print(f"{name:<8} {'  warm server: ID photo':<26} {photo_s:>8.2f} {'':>8}")
            print(f"{name:<8} {'  warm server: sheet':<26} {sheet_s:>8.2f} {'':>8}", flush=True)


if __name__ == "__main__":
    main()
