#!/usr/bin/env python3
"""Real-time webcam background replacement with MODNet.

    python live.py                 # webcam 0, preview window
    python live.py --vcam          # also feed a virtual camera
    python live.py --image IN --output OUT.png   # photo mode

All options: python live.py --help
"""

import sys

from realtime.cli import main

if __name__ == "__main__":
    sys.exit(main())
