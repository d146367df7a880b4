"""The command line's flags: every option, its help text and its parsing into a value (not its validation).

Values are checked in one place, :meth:`app.config.Settings.validate`; this
module only turns words into Python values and gives one-line errors.
"""

from __future__ import annotations

import argparse
import re

from compositing import BACKGROUND_CHOICES
from matting.engine import MAX_INFERENCE_SIZE
from realtime.sinks import RECORD_FORMATS

from .errors import UsageError


def on_off(text: str) -> bool:
    value = str(text).strip().lower()
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")
    return value == "on"


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(-?\d+)\s*[xX×,]\s*(-?\d+)\s*", str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}")
    return int(match.group(1)), int(match.group(2))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, like every other error, instead of the usage block
        raise UsageError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="live.py",
        description="Real-time webcam background replacement with MODNet portrait matting. "
                    "Live: python live.py [--vcam]. Photos: python live.py --image IN --output OUT.",
    )
    p.add_argument("--config", help="TOML or JSON file of settings (keys as the long options, with _; "
                                    "no_window = true and the like work too)")
    g = p.add_argument_group("photo mode")
    g.add_argument("--image", help="picture, or folder of pictures, to cut out")
    g.add_argument("--output", help="output file (.png keeps transparency) or folder")
    g.add_argument("--overwrite", action="store_true", default=None,
                   help="replace output files that already exist (--output, --record, --export-onnx); "
                        "without it an existing file is never touched")
    g.add_argument("--id-size", metavar="SIZE",
                   help="make ID photos: passport, us, 1inch, 2inch, uk, ... (see the README), or WxHmm, WxHin, "
                        "WxHpx; the head is placed as the size's rule says")
    g.add_argument("--dpi", type=float, help="ID photos and sheets: print resolution (default 300)")
    g.add_argument("--max-kb", type=float, metavar="KB", help="ID photos: largest file size (JPEG quality is lowered)")
    g.add_argument("--sheet", metavar="PAPER",
                   help="ID photos: write a print sheet instead (4x6in, 5x7in, a4, a5, a6, letter, or WxHin/WxHmm)")
    g.add_argument("--face-weights", metavar="PATH",
                   help="face detector model (.tflite or .onnx) instead of the download on first use")
    g = p.add_argument_group("web studio and live panel")
    g.add_argument("--web", action="store_true", default=None,
                   help="serve the ID-photo studio and the live panel at http://127.0.0.1:7860")
    g.add_argument("--host", help="address to listen on (default 127.0.0.1: this computer only; anything else "
                                  "needs the access token)")
    g.add_argument("--port", type=int, help="port (default 7860)")
    g.add_argument("--token", help="access token for --host beyond loopback (default: a new one, printed)")
    g.add_argument("--max-upload-mb", type=float, help="largest upload in MB (default 25)")
    g.add_argument("--web-jobs", type=int, help="pictures the studio processes at once (default 1)")
    g = p.add_argument_group("source")
    g.add_argument("--camera", help="webcam index or device path (default 0)")
    g.add_argument("--source", help="video file, stream URL or picture to use instead of the webcam")
    g.add_argument("--loop", action="store_true", default=None, help="loop a video source")
    g.add_argument("--every-frame", action="store_true", default=None,
                   help="video files: process every frame as fast as possible instead of in real time "
                        "(offline conversion with --record; implies --mode sync)")
    g.add_argument("--size", type=parse_size, help="requested camera size, e.g. 1280x720")
    g.add_argument("--fps", type=float, help="requested camera frame rate")
    g.add_argument("--fourcc", help="requested camera pixel format, e.g. MJPG")
    g = p.add_argument_group("model")
    g.add_argument("--model", help="modnet (default), selfie (fast, CPU) or auto")
    g.add_argument("--engine", help="MODNet runtime: auto (default: ONNX Runtime for live video on a CPU, "
                                    "PyTorch otherwise), torch or onnx")
    g.add_argument("--weights", help="model file to use instead of the default download")
    g.add_argument("--weights-dir", help="folder for downloaded models (default weights/)")
    g.add_argument("--offline", action="store_true", default=None,
                   help="never use the network (also MODNET_OFFLINE=1)")
    g.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    g.add_argument("--inference-size", type=int,
                   help=f"short side of the network input, a multiple of 32 up to {MAX_INFERENCE_SIZE} "
                        "(default 288 on CPU, 512 on GPU and for photos)")
    g.add_argument("--threads", type=int, help="CPU threads for inference")
    g.add_argument("--inference-workers", type=int,
                   help="frames inferred at once (ONNX engine; default 1 live, 2 for --every-frame on a CPU: "
                        "more throughput, more latency)")
    g.add_argument("--export-onnx", metavar="PATH", help="export MODNet to ONNX and exit")
    g = p.add_argument_group("look")
    g.add_argument("--smoothing", help="temporal matte smoothing: ema (default), ofd, ofd+ema, none")
    g.add_argument("--background", "--bg",
                   help=f"{BACKGROUND_CHOICES}, or a picture/video file or a name in backgrounds/ "
                        "(default: blur live, transparent for photos)")
    g.add_argument("--fit", help="how pictures fill the frame: cover (default), contain, stretch")
    g.add_argument("--blur-strength", type=float, help="blur sigma in pixels at 720p (default 12)")
    g.add_argument("--refine", action=argparse.BooleanOptionalAction, default=None,
                   help="guided-filter edge refinement (default: on for selfie, off for MODNet)")
    g.add_argument("--decontaminate", action=argparse.BooleanOptionalAction, default=None,
                   help="remove the old background's tint from hair and edges (default: photos only)")
    g.add_argument("--backgrounds-dir", help="folder of background pictures and videos (default backgrounds/)")
    g = p.add_argument_group("output")
    g.add_argument("--mode", help="sync (every frame its own matte) or async (camera rate, newest matte)")
    g.add_argument("--motion-comp", type=on_off, metavar="on|off",
                   help="move the newest matte onto each frame shown with it, along the optical flow, so edges "
                        "keep up with motion between mattes (default on)")
    g.add_argument("--matte-every", type=int, metavar="N",
                   help="infer every N-th frame only; the frames between reuse the newest matte, motion-"
                        "compensated (with --every-frame, weighed with the next matte too); a new scene (a cut) "
                        "gets its own matte at once and the count restarts there (default 1: every frame the "
                        "engine can take)")
    g.add_argument("--skip-still", type=on_off, metavar="on|off",
                   help="live: while nothing moves (beyond sensor noise), keep the matte instead of running "
                        "the model again; re-checked every 2 s (default on)")
    g.add_argument("--max-matte-rate", type=float, metavar="HZ",
                   help="live: at most HZ mattes per second (less CPU; the output keeps the camera's rate)")
    g.add_argument("--inference-share", type=float, metavar="F",
                   help="live: spend at most this share of the time inferring (0.01 to 1), e.g. 0.5 = mattes at "
                        "half the model's speed, motion compensation covering the frames between (default: 0.35 "
                        "for MODNet on a CPU with --motion-comp on, 1 = no limit)")
    g.add_argument("--no-window", dest="window", action="store_false", default=None, help="no preview window")
    g.add_argument("--no-mirror", dest="mirror", action="store_false", default=None,
                   help="do not mirror the preview")
    g.add_argument("--no-hud", dest="hud", action="store_false", default=None, help="hide the HUD")
    g.add_argument("--vcam", action="store_true", default=None, help="also send to a virtual camera")
    g.add_argument("--vcam-device", help="virtual camera device, e.g. /dev/video10")
    g.add_argument("--vcam-backend", help="pyvirtualcam backend (v4l2loopback, obs, unitycapture)")
    g.add_argument("--vcam-fps", type=float, help="virtual camera frame rate (default: the source's)")
    g.add_argument("--pause-unwatched", type=on_off, metavar="on|off",
                   help="with --vcam as the only output: while no app reads the virtual camera, stop inference "
                        "and send the last frame once a second (Linux v4l2loopback; default on)")
    g.add_argument("--record", metavar="FILE", help=f"record the output to a video file ({', '.join(RECORD_FORMATS)})")
    g.add_argument("--snapshot-dir", help="folder for snapshots (default: current folder)")
    g.add_argument("--stats", action="store_true", default=None,
                   help="print fps and latency every few seconds and at exit")
    g.add_argument("--stats-interval", type=float, help="seconds between --stats lines (default 5)")
    g.add_argument("--max-frames", type=int, help="stop after N output frames")
    g.add_argument("--duration", type=float, help="stop after N seconds of running (counted once the model is loaded; "
                        "with --every-frame, N seconds of the file)")
    g.add_argument("--no-reconnect", dest="reconnect", action="store_false", default=None,
                   help="end the run when the camera is lost instead of reconnecting")
    g.add_argument("-v", "--verbose", action="store_true", default=None, help="debug logging")
    return p
