#!/usr/bin/env python3
"""Real-time webcam background replacement with MODNet.

    python live.py                 # webcam 0, preview window
    python live.py --vcam          # also feed a virtual camera
    python live.py --image IN --output OUT.png   # photo mode

All options: python live.py --help
"""

import os
import sys

if sys.version_info < (3, 11):  # tomllib (config files) and the typing the settings use need 3.11
    sys.exit(f"error: live.py needs Python 3.11 or newer; this is Python {sys.version.split()[0]}")

# OpenCV prints its own messages (a camera index that does not exist, a broken picture)
# on top of our one-line errors; silence them unless asked (-v).
_VERBOSE = bool({"-v", "--verbose"} & set(sys.argv))
os.environ.setdefault("OPENCV_LOG_LEVEL", "INFO" if _VERBOSE else "OFF")  # (DEBUG: two lines per frame)
# ... and FFmpeg under it its own ("moov atom not found" for a broken video): -8 is FFmpeg's quiet.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "32" if _VERBOSE else "-8")
# OpenCV's pool threads spin for a while after each parallel call before they sleep; a live
# run makes hundreds of small calls a second (resizes, flow, blends), and the spinning burns CPU
# the call app needs: they sleep at once instead (moving footage, interleaved 20-s runs:
# 1.06 -> 1.03 cores, the same fps and latency). Read when OpenCV loads: set before any import.
for _name in ("OPENCV_THREAD_POOL_ACTIVE_WAIT_PAUSE_LIMIT", "OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER",
              "OPENCV_THREAD_POOL_ACTIVE_WAIT_MAIN"):
    os.environ.setdefault(_name, "0")

try:
    from app.cli import main  # noqa: E402
except KeyboardInterrupt:  # Ctrl-C while the libraries load: no traceback from deep inside an import
    sys.exit(130)

if __name__ == "__main__":
    code = main()
    import gc
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # done: a late Ctrl-C must not turn exit 0 into 130

    # The interpreter's last garbage collection, over everything torch, OpenCV and (with --web)
    # Gradio loaded, took 1-1.5 s of the exit: nothing is left to clean up that it would find.
    gc.freeze()

    if any(t.is_alive() and t.daemon for t in threading.enumerate()):
        # A worker still inside a native call (a long inference) would abort the interpreter's
        # shutdown; everything was closed and saved already, so leave at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
