"""Place the head in the photo as an ID-photo rule says: scale chin-to-crown, centre the face, set crown or eyes.

The crown (top of the hair) is not in a face detector's box, so it is read
from the person's matte: the first row above the face where the matte band
over the face drops below 0.5 (found to a fraction of a pixel). The chin is
the face-mesh chin point, else the bottom of the detector's box. Without a
face model the head is estimated from the matte alone (crown = top of the
person, chin from the head's width and typical proportions) and the framing
says so in its warnings.

Rules: ICAO Doc 9303 part 3 and the EU/Schengen guidance (head 32–36 mm of
45 mm, face centred), https://www.icao.int/publications/pages/publication.aspx?docnum=9303 ;
US Department of State (head 1–1⅜ in, eyes 1⅛–1⅜ in above the bottom),
https://travel.state.gov/content/travel/en/passports/how-apply/photos.html .
The numbers live in :mod:`idphoto.sizes`; this module only follows them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from matting.face import Face

from .errors import FaceNotFound, IdPhotoError, SeveralFaces, PersonNotFound
from .sizes import PhotoSize

log = logging.getLogger(__name__)

BACKGROUND_FACE = 1 / 3       # a face under a third of the main face's box height is someone far behind
DEFAULT_TOP = 0.10            # crown to top edge, fraction of the height, when the rule sets neither top nor eyes
HEAD_WIDTH_RATIO = 0.82       # matte-only: head width in the matte (hair, ears) / chin-to-crown height
EYE_FROM_CROWN = 0.50         # matte-only: eye line below the crown, fraction of chin-to-crown
WIDTH_DEPTH = 0.55            # matte-only: the head's width is measured this far down the head
MIN_HEAD_PX = 24              # a smaller head in the source cannot make a printable photo
ENLARGE_WARNING = 2.0         # warn when the picture has to be enlarged more than this
TILT_WARNING_DEG = 8.0


@dataclass
class Framing:
    """Where the source goes in the photo. Coordinates are continuous, as the face model's are: pixel
    (i, j) spans [i, i + 1) × [j, j + 1), so a pixel's centre is at i + 0.5."""

    matrix: np.ndarray        # 2×3 float64 affine: source pixel -> output pixel (scale + translation)
    size: tuple[int, int]     # output (width, height) px
    crown_y: float            # where the crown lands, output px
    chin_y: float             # where the chin lands, output px
    eye_y: float | None       # where the eye line lands (None when unknown), output px
    warnings: list[str] = field(default_factory=list)

    @property
    def scale(self) -> float:
        return float(self.matrix[0, 0])


@dataclass
class _Head:
    crown: float
    chin: float
    centre_x: float
    eye: float | None


# ---------------------------------------------------------------------------- the head in the source


def _row_profile(alpha: np.ndarray, x0: int, x1: int, y1: int) -> np.ndarray:
    """Per row above ``y1``: a high quantile of the band's alpha (robust to a few stray pixels)."""
    band = alpha[:y1, x0:x1]
    k = min(band.shape[1], max(2, round(0.03 * band.shape[1])))
    return np.partition(band, band.shape[1] - k, axis=1)[:, band.shape[1] - k]


def _crossing(profile: np.ndarray, inside_row: int, min_gap: int = 1) -> tuple[float, bool]:
    """Walk up from ``inside_row`` (profile > 0.5) to where the profile falls to 0.5 for at least
    ``min_gap`` rows (shorter gaps are holes in the matte); sub-pixel. Returns (y in continuous
    pixel coordinates, True if the person reaches the picture's top)."""
    row = inside_row
    while True:
        outside = np.flatnonzero(profile[:row + 1] <= 0.5)
        if outside.size == 0:
            return 0.0, True
        r = int(outside[-1])
        gap = profile[max(0, r - min_gap + 1):r + 1]
        if (gap <= 0.5).all():
            lo, hi = float(profile[r]), float(profile[r + 1])
            return r + 0.5 + (0.5 - lo) / max(hi - lo, 1e-6), False
        row = max(0, r - min_gap + 1) + int(np.flatnonzero(gap > 0.5)[-1])


def crown_from_matte(alpha: np.ndarray, face: Face) -> tuple[float | None, bool]:
    """The crown above ``face``: (y or None when the matte does not cover the face, touches top)."""
    h, w = alpha.shape
    x0, y0, x1, y1 = face.box
    xa, xb = max(0, int(math.floor(x0))), min(w, int(math.ceil(x1)))
    start = int(min(h - 1, max(0, face.eye_line_y)))
    if xb - xa < 2 or start < 1:
        return None, start < 1
    profile = _row_profile(alpha, xa, xb, start + 1)
    lowest = max(0, int(y0))  # look for the face in the matte between the box top and the eyes
    inside = np.flatnonzero(profile[lowest:start + 1] > 0.5)
    if inside.size == 0:
        return None, False
    return _crossing(profile, lowest + int(inside[-1]), max(1, round(0.03 * (y1 - y0))))


def _main_face(faces: list[Face], warnings: list[str]) -> Face:
    if not faces:
        raise FaceNotFound("no face found in the picture: use a photo of one person facing the camera, "
                           "evenly lit, with the whole head in the picture (a face under about a tenth of "
                           "the picture's height may not be found: crop closer)")
    biggest = max(faces, key=lambda f: f.height)
    near = [f for f in faces if f.height >= BACKGROUND_FACE * biggest.height]
    if len(near) > 1:
        raise SeveralFaces(f"{len(near)} faces found in the picture: an ID photo shows one person, "
                           f"crop the picture to one face")
    if len(faces) > 1:
        warnings.append(f"ignored {len(faces) - 1} small face(s) in the background")
    return biggest


def head_from_face(alpha: np.ndarray, face: Face, warnings: list[str]) -> _Head:
    chin = face.chin[1] if face.chin is not None else face.box[3]
    crown, touches = crown_from_matte(alpha, face)
    x0, y0, x1, y1 = (int(round(v)) for v in face.box)
    inside = alpha[max(0, y0):max(0, y1), max(0, x0):max(0, x1)]
    if crown is None and (inside.size == 0 or float(inside.mean()) < 0.3):
        raise PersonNotFound("the person could not be separated from the background (the matte misses the "
                             "face): use a photo with more contrast between the person and the background")
    if crown is None:
        top = face.top[1] if face.top is not None else face.box[1]
        crown = top - 0.12 * (chin - top)  # typical hair above the forehead
        warnings.append("the person's outline does not cover the face, so the top of the head is estimated: "
                        "check the framing")
    elif touches:
        warnings.append("the head touches the picture's top edge: the top of the head may be cut off, "
                        "so the head may be framed too large")
    (lx, ly), (rx, ry) = face.left_eye, face.right_eye
    tilt = abs(math.degrees(math.atan2(ry - ly, rx - lx)))
    if tilt > TILT_WARNING_DEG:
        warnings.append(f"the head is tilted by {tilt:.0f}°: ID photos need a level head")
    return _Head(crown, chin, face.center_x, face.eye_line_y)


def head_from_matte(alpha: np.ndarray, warnings: list[str]) -> _Head:
    """Matte-only estimate: crown = top of the biggest person blob, width from the rows under it."""
    mask = (alpha > 0.5).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        raise FaceNotFound("no person found in the picture: use a photo of one person facing the camera")
    person = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    top = int(stats[person, cv2.CC_STAT_TOP])
    blob = labels == person
    widths, lefts, rights = [], [], []
    widest = 0
    for y in range(top, alpha.shape[0]):  # down from the crown while inside the upper part of the head
        xs = np.flatnonzero(blob[y])
        if xs.size:
            widths.append(xs.size)
            lefts.append(xs[0])
            rights.append(xs[-1] + 1)
            widest = max(widest, xs.size)
        if y - top >= WIDTH_DEPTH * widest / HEAD_WIDTH_RATIO:
            break  # the head's widest part is in its upper half; lower down come the jaw, neck, shoulders
    if not widths:
        raise FaceNotFound("no person found in the picture: use a photo of one person facing the camera")
    centre_band = np.argsort(widths)[-max(1, len(widths) // 4):]  # the widest rows: the head's middle
    centre_x = float(np.mean([(lefts[i] + rights[i]) / 2 for i in centre_band]))
    xa, xb = max(0, int(centre_x - widest / 4)), min(alpha.shape[1], int(centre_x + widest / 4) + 1)
    profile = _row_profile(alpha, xa, xb, min(alpha.shape[0], top + max(2, widest // 4)))
    inside = np.flatnonzero(profile > 0.5)
    crown, touches = _crossing(profile, int(inside[0])) if inside.size else (float(top), top == 0)
    if touches:
        warnings.append("the head touches the picture's top edge: the top of the head may be cut off")
    height = widest / HEAD_WIDTH_RATIO
    warnings.append("no face model: the head was placed from the person's outline alone "
                    "(chin and eyes estimated from typical proportions): check the framing")
    return _Head(crown, crown + height, centre_x, crown + EYE_FROM_CROWN * height)


# ---------------------------------------------------------------------------- the plan


def _middle(pair: tuple[float, float]) -> float:
    return (pair[0] + pair[1]) / 2.0


def plan_framing(alpha: np.ndarray, faces: list[Face] | None, size: PhotoSize, dpi: float) -> Framing:
    """Where the source goes in the photo: chin-to-crown at the middle of the rule's head range, the face
    centred, the crown at the middle of the rule's top range (else the eyes at the middle of its eye range,
    else the crown at 10% of the height)."""
    alpha = _as_alpha(alpha)
    out_w, out_h = size.pixels(dpi)
    rule = size.fractions()
    warnings: list[str] = []
    if faces is None:
        head = head_from_matte(alpha, warnings)
    else:
        head = head_from_face(alpha, _main_face(list(faces), warnings), warnings)
    source_height = head.chin - head.crown
    if source_height < MIN_HEAD_PX:
        raise IdPhotoError(f"the head is only {source_height:.0f} px tall in the picture: too small for an ID photo "
                           f"(use a closer or sharper picture)")
    scale = _middle(rule["head"]) * out_h / source_height
    tx = out_w / 2.0 - scale * head.centre_x
    if rule["top"] is not None:
        ty = _middle(rule["top"]) * out_h - scale * head.crown
    elif rule["eye"] is not None and head.eye is not None:
        ty = out_h * (1.0 - _middle(rule["eye"])) - scale * head.eye
    else:
        head_fraction = _middle(rule["head"])
        ty = min(DEFAULT_TOP, 0.4 * (1.0 - head_fraction)) * out_h - scale * head.crown
    matrix = np.array([[scale, 0.0, tx], [0.0, scale, ty]], np.float64)
    eye_y = scale * head.eye + ty if head.eye is not None and (faces is not None or rule["eye"]) else None
    framing = Framing(matrix, (out_w, out_h), scale * head.crown + ty, scale * head.chin + ty, eye_y, warnings)
    _check_result(framing, alpha.shape, rule, scale)
    log.debug("framing %s: scale %.3f, crown %.1f, chin %.1f px", size.id, scale, framing.crown_y, framing.chin_y)
    return framing


def _check_result(framing: Framing, shape: tuple[int, int], rule: dict, scale: float) -> None:
    out_w, out_h = framing.size
    h, w = shape
    (s, _, tx), (_, _, ty) = framing.matrix
    missing = [side for side, gap in (("left", tx), ("top", ty), ("right", out_w - (tx + s * w)),
                                     ("bottom", out_h - (ty + s * h))) if gap > 0.5]
    if missing:
        framing.warnings.append(f"the picture does not reach the photo's {', '.join(missing)} edge: "
                                f"that part is filled with the background (use a picture with more room "
                                f"around the person)")
    if framing.crown_y < 0:
        framing.warnings.append("the top of the head is cut off by the photo's top edge")
    if rule["eye"] is not None and framing.eye_y is not None:
        low, high = (out_h * (1.0 - f) for f in rule["eye"])
        if not high - 0.5 <= framing.eye_y <= low + 0.5:
            framing.warnings.append("the eyes are outside the rule's eye-height range "
                                    "(the head size and the top margin take precedence)")
    if scale > ENLARGE_WARNING:
        framing.warnings.append(f"the face is small in the picture: it is enlarged {scale:.1f}× "
                                f"and the photo may look soft")


def _as_alpha(alpha: np.ndarray) -> np.ndarray:
    if alpha.ndim == 3:
        alpha = alpha[:, :, 0]
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float32) / 255.0
    return np.asarray(alpha, np.float32)


# ---------------------------------------------------------------------------- the pixels


def apply_framing(image: np.ndarray, alpha: np.ndarray, framing: Framing) -> tuple[np.ndarray, np.ndarray]:
    """The photo's pixels: ``image`` (dtype kept, border replicated) and float32 ``alpha`` (0 outside the
    source). Reductions are area-averaged first, then a bicubic warp places the result to a fraction of a pixel."""
    alpha = _as_alpha(alpha)
    if image.shape[:2] != alpha.shape:
        raise ValueError(f"image {image.shape[:2]} and alpha {alpha.shape} differ in size")
    out_w, out_h = framing.size
    matrix = framing.matrix.astype(np.float64)
    s = float(matrix[0, 0])
    if s < 1.0:
        image, alpha, matrix = _reduce(image, alpha, matrix, (out_w, out_h))
    matrix = pixel_index_matrix(matrix)
    warped = cv2.warpAffine(image, matrix, (out_w, out_h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    matte = cv2.warpAffine(alpha, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return warped, np.clip(matte, 0.0, 1.0).astype(np.float32)


def pixel_index_matrix(matrix: np.ndarray) -> np.ndarray:
    """The same affine map for OpenCV's warps, whose coordinates are pixel indices (a pixel's centre at
    an integer) rather than this module's continuous coordinates (pixel i spans [i, i + 1))."""
    out = np.array(matrix, np.float64)
    out[:, 2] += 0.5 * out[:, :2].sum(axis=1) - 0.5
    return out


def _reduce(image: np.ndarray, alpha: np.ndarray, matrix: np.ndarray,
            out_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-downscale the part of the source the photo shows (plus a margin); the matrix left to apply
    is then a scale of about 1 and a translation."""
    h, w = alpha.shape
    s = float(matrix[0, 0])
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0], [out_size[0], 0], [0, out_size[1]], [out_size[0], out_size[1]]], np.float64)
    src = corners @ inverse[:, :2].T + inverse[:, 2]
    margin = 3.0 / s + 2
    # clamped so that at least the source's nearest edge pixel is kept for the replicated border
    x0 = min(max(0, int(math.floor(src[:, 0].min() - margin))), w - 1)
    y0 = min(max(0, int(math.floor(src[:, 1].min() - margin))), h - 1)
    x1 = max(min(w, int(math.ceil(src[:, 0].max() + margin))), x0 + 1)
    y1 = max(min(h, int(math.ceil(src[:, 1].max() + margin))), y0 + 1)
    nw, nh = max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s))
    small = cv2.resize(image[y0:y1, x0:x1], (nw, nh), interpolation=cv2.INTER_AREA)
    small_alpha = cv2.resize(alpha[y0:y1, x0:x1], (nw, nh), interpolation=cv2.INTER_AREA)
    kx, ky = nw / (x1 - x0), nh / (y1 - y0)
    to_source = np.array([[1 / kx, 0, x0], [0, 1 / ky, y0], [0, 0, 1]], np.float64)
    return small, small_alpha, matrix @ to_source


# ---------------------------------------------------------------------------- preview guides

HEAD_COLOUR = (0, 190, 0)       # BGR: the allowed crown band (chin + head range)
CHIN_COLOUR = (0, 140, 255)
EYE_COLOUR = (255, 120, 0)
TOP_COLOUR = (200, 0, 200)
CENTRE_COLOUR = (160, 160, 160)


def draw_guides(image: np.ndarray, framing: Framing, size: PhotoSize, dpi: float) -> np.ndarray:
    """A copy of the framed photo with the rule's bands as thin lines: where the crown may be (from the
    chin), where the eyes may be, the top margin, the chin and the vertical centre line."""
    out = np.ascontiguousarray(image).copy()
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    h, w = out.shape[:2]
    rule = size.fractions()
    k = h / framing.size[1]  # a preview may be drawn at another size than the photo
    thick = max(1, round(h / 600))
    white = 255 if out.dtype == np.uint8 else 1.0
    colour = (lambda c: tuple(v * white / 255 for v in c) + ((white,) if out.shape[2] == 4 else ()))

    def line(y: float, c: tuple[int, int, int], dashed: bool = False) -> None:
        y = int(round(y))
        if not -thick <= y <= h + thick:
            return
        step = max(6, w // 40) if dashed else w
        for x in range(0, w, step):
            x_end = min(w - 1, x + (step // 2 if dashed else step))
            cv2.line(out, (x, y), (x_end, y), colour(c), thick, cv2.LINE_AA)

    cv2.line(out, (w // 2, 0), (w // 2, h - 1), colour(CENTRE_COLOUR), 1, cv2.LINE_AA)
    line(framing.chin_y * k, CHIN_COLOUR)
    for fraction in rule["head"]:
        line(framing.chin_y * k - fraction * h, HEAD_COLOUR)
    if rule["top"] is not None:
        for fraction in rule["top"]:
            line(fraction * h, TOP_COLOUR, dashed=True)
    if rule["eye"] is not None:
        for fraction in rule["eye"]:
            line(h * (1.0 - fraction), EYE_COLOUR)
    elif framing.eye_y is not None:
        line(framing.eye_y * k, EYE_COLOUR, dashed=True)
    return out
