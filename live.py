#!/usr/bin/env python3
"""Real-time webcam background replacement with MODNet.

    python live.py                 # webcam 0, preview window
    python live.py --vcam          # also feed a virtual camera
    python live.py --image IN --output OUT.png   # photo mode

All options: python live.py --help
"""

import os
import sys

# OpenCV prints its own warnings (e.g. for a camera index that does not exist)
# on top of our one-line errors; keep only its errors unless asked (-v).
os.environ.setdefault("OPENCV_LOG_LEVEL", "DEBUG" if {"-v", "--verbose"} & set(sys.argv) else "ERROR")

from realtime.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
