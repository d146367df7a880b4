"""Tell a picture that is turned (on its side, upside down) from an upright one, by the face landmark model.

A phone photo whose orientation tag was lost, or a scan fed in sideways,
still shows a face the detector finds, but its eyes and chin are then placed
wrongly (an upside-down face reads as level: the detector's keypoints follow
an upright face's layout) and the ID photo comes out with the body on top.
The landmark model's face-presence logit tells the turns apart: looked at
upright, the face scores far higher than turned by a quarter or a half turn
(on the real portraits here: 29-68 upright against at most 6 turned, and a
head tilted by 45 degrees scores about the same both ways, 11 against 9). So
the main face is looked at in all four turns, and one that scores clearly
higher turned is refused with the turn that rights it. Without the landmark
model nothing is checked.

Frames are BGR uint8 (OpenCV's convention).
"""

from __future__ import annotations

import numpy as np

from .errors import PictureTurned

#: A turn must have a presence logit this much higher than the face as given (and above 0: the model
#: sees a face) to count. The smallest gap seen for a turned picture was 2.9, the largest for an
#: upright one (tilted by 45 degrees) 1.9.
MARGIN = 2.5
#: By the index of the winning logit (the face seen turned by k quarter turns anticlockwise): how
#: the picture has to be turned to be upright.
FIXES = {1: "a quarter turn anticlockwise", 2: "half a turn", 3: "a quarter turn clockwise"}


def upright_turn(detector, image: np.ndarray, faces: list) -> int:
    """How many quarter turns anticlockwise (0-3) the biggest of ``faces`` is from upright: 0 when
    it is upright, when no turn scores clearly higher, or without faces or the landmark model.
    ``detector``: a :class:`matting.face.FaceDetector`."""
    if not faces:
        return 0
    logits = detector.upright_logits(image, max(faces, key=lambda f: f.height).box)
    if logits is None:
        return 0
    best = int(np.argmax(logits))
    return best if best and logits[best] > 0 and logits[best] >= logits[0] + MARGIN else 0


def check_upright(detector, image: np.ndarray, faces: list) -> None:
    """Raise :class:`PictureTurned` when the picture's face is not upright (see the module docstring)."""
    turn = upright_turn(detector, image, faces)
    if turn:
        shown = "upside down" if turn == 2 else "on its side"
        raise PictureTurned(f"the face in the picture is {shown}: turn the picture upright "
                            f"({FIXES[turn]}) and try again (a phone photo may have lost its orientation tag)")
