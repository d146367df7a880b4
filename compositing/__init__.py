"""(frame, alpha, background) -> output frame: media decoding, background kinds, the cycle, the compositor.

Frames are BGR uint8 (H×W×3); alphas float32 in [0, 1] at any size.
Imports only :mod:`matting` of the project.
"""

from .backgrounds import (BACKGROUND_CHOICES, FIT_MODES, Background, ColorBackground, ImageBackground,
                          NoBackground, make_background, parse_color)
from .compositor import Compositor
from .errors import BackgroundError, MediaError
from .library import BackgroundLibrary
from .media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, read_image, to_bgr8

__all__ = ["BACKGROUND_CHOICES", "FIT_MODES", "Background", "ColorBackground", "ImageBackground", "NoBackground",
           "make_background", "parse_color", "Compositor", "BackgroundError", "MediaError", "BackgroundLibrary",
           "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "read_image", "to_bgr8"]
