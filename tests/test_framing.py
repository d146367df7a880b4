"""ID-photo framing: the head placed by the rule on synthetic people whose answer is known, and on a real portrait."""

import cv2
import numpy as np
import pytest

from conftest import MODELS, PORTRAIT, need
from idphoto.errors import FaceNotFound, IdPhotoError, SeveralFaces
from idphoto.framing import Framing, apply_framing, crown_from_matte, draw_guides, plan_framing
from idphoto.sizes import PhotoSize
from matting.face import Face

PASSPORT = PhotoSize("passport", "Passport", 35, 45, head_min_mm=32, head_max_mm=36, top_min_mm=3, top_max_mm=5)
US = PhotoSize("us", "US", 50.8, 50.8, 25.4, 34.9, eye_min_mm=28.6, eye_max_mm=34.9)
NO_TARGET = PhotoSize("plain", "Plain", 25, 35, 25, 28)
BACKGROUND = (200, 60, 30)  # BGR


def person(h=900, w=700, cx=350.0, cy=330.0, a=123.0, b=150.0, ss=8):
    """A BGR picture and its exact (supersampled) alpha: an elliptic head, a neck and a body.
    Returns (image, alpha, face) where face has the true eyes (at the head's middle) and chin."""
    big = np.zeros((h * ss, w * ss), np.uint8)
    s = lambda v: int(round(v * ss))  # noqa: E731
    cv2.ellipse(big, (s(cx), s(cy)), (s(a), s(b)), 0, 0, 360, 255, -1)
    cv2.rectangle(big, (s(cx - 0.45 * a), s(cy + 0.8 * b)), (s(cx + 0.45 * a), s(cy + b + 40)), 255, -1)
    cv2.rectangle(big, (s(cx - 2.4 * a), s(cy + b + 40)), (s(cx + 2.4 * a), h * ss), 255, -1)
    alpha = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    image = np.empty((h, w, 3), np.uint8)
    image[:] = BACKGROUND
    image[alpha > 0.5] = (90, 150, 210)
    face = Face(box=(cx - 0.8 * a, cy - 0.45 * b, cx + 0.8 * a, cy + b), score=0.95,
                left_eye=(cx - 0.4 * a, cy), right_eye=(cx + 0.4 * a, cy), chin=(cx, cy + b), top=(cx, cy - 0.6 * b))
    return image, alpha, face


def mapped(framing: Framing, point):
    return framing.matrix @ np.array([point[0], point[1], 1.0])


def column_crown(alpha: np.ndarray, x: int) -> float:
    """Where the output alpha's column ``x`` first rises through 0.5 (sub-pixel), measured independently."""
    col = alpha[:, x].astype(np.float64)
    r = int(np.flatnonzero(col > 0.5)[0])
    if r == 0:
        return 0.0
    return r - 0.5 + (0.5 - col[r - 1]) / (col[r] - col[r - 1])


def row_edges(alpha: np.ndarray, y: int) -> tuple[float, float]:
    row = alpha[y].astype(np.float64)
    inside = np.flatnonzero(row > 0.5)
    l, r = int(inside[0]), int(inside[-1])
    left = l - 0.5 + (0.5 - row[l - 1]) / (row[l] - row[l - 1])
    right = r + 0.5 + (row[r] - 0.5) / (row[r] - row[r + 1])
    return left, right


def head_px(size: PhotoSize, dpi: float) -> float:
    return (size.head_min_mm + size.head_max_mm) / 2 / 25.4 * dpi


# ---------------------------------------------------------------------------- synthetic, known answers


@pytest.mark.parametrize("dpi, cx", [(300, 350.0), (600, 330.4), (150, 361.7)])
def test_passport_rule_on_a_synthetic_head(dpi, cx):
    image, alpha, face = person(cx=cx)
    framing = plan_framing(alpha, [face], PASSPORT, dpi)
    out_w, out_h = PASSPORT.pixels(dpi)
    assert framing.size == (out_w, out_h)
    assert framing.matrix.shape == (2, 3) and framing.matrix[0, 1] == framing.matrix[1, 0] == 0
    photo, matte = apply_framing(image, alpha, framing)
    assert photo.shape == (out_h, out_w, 3) and photo.dtype == np.uint8
    assert matte.shape == (out_h, out_w) and matte.dtype == np.float32
    crown = column_crown(matte, out_w // 2)
    chin = mapped(framing, face.chin)[1]
    assert chin - crown == pytest.approx(head_px(PASSPORT, dpi), abs=1.0)
    assert crown == pytest.approx(4 / 45 * out_h, abs=1.0)  # the middle of the 3-5 mm top range
    assert framing.crown_y == pytest.approx(crown, abs=1.0) and framing.chin_y == pytest.approx(chin, abs=1e-6)
    left, right = row_edges(matte, int(round(mapped(framing, (cx, 330))[1])))
    assert (left + right) / 2 == pytest.approx(out_w / 2, abs=1.0)  # the head is centred
    assert mapped(framing, (face.center_x, 0))[0] == pytest.approx(out_w / 2, abs=1e-6)
    assert not any("reach" in w for w in framing.warnings), framing.warnings


def test_eye_rule_places_the_eyes():
    image, alpha, face = person()
    framing = plan_framing(alpha, [face], US, 300)
    out_w, out_h = US.pixels(300)
    assert (out_w, out_h) == (600, 600)
    eye_target = out_h - (28.6 + 34.9) / 2 / 50.8 * out_h
    assert framing.eye_y == pytest.approx(eye_target, abs=1.0)
    assert mapped(framing, face.left_eye)[1] == pytest.approx(eye_target, abs=1.0)
    _, matte = apply_framing(image, alpha, framing)
    crown = column_crown(matte, out_w // 2)
    assert framing.chin_y - crown == pytest.approx(head_px(US, 300), abs=1.0)


def test_no_target_puts_the_crown_near_the_top():
    image, alpha, face = person()
    framing = plan_framing(alpha, [face], NO_TARGET, 300)
    out_h = NO_TARGET.pixels(300)[1]
    head = 26.5 / 35
    assert framing.crown_y == pytest.approx(min(0.10, 0.4 * (1 - head)) * out_h, abs=1.0)
    assert framing.chin_y - framing.crown_y == pytest.approx(head * out_h, abs=1.0)


def test_crown_comes_from_the_matte_not_the_box():
    _, alpha, face = person(cy=330, b=150)
    crown, touches = crown_from_matte(alpha, face)
    assert crown == pytest.approx(330 - 150, abs=0.3) and not touches
    # a stray blob far above the head and a small hole in the hair do not move it
    alpha2 = alpha.copy()
    alpha2[20:30, 340:360] = 1.0
    alpha2[200:203, 300:400] = 0.0
    assert crown_from_matte(alpha2, face)[0] == pytest.approx(crown, abs=0.01)


def test_subject_at_the_edge_gets_alpha_zero_padding():
    image, alpha, face = person(h=700, w=500, cx=110.0, cy=130.0, a=100.0, b=122.0)
    framing = plan_framing(alpha, [face], PASSPORT, 300)
    photo, matte = apply_framing(image, alpha, framing)
    tx, ty = framing.matrix[0, 2], framing.matrix[1, 2]
    assert tx > 2 and ty > 2  # the picture starts inside the photo on the left and at the top
    assert any("left" in w and "top" in w for w in framing.warnings), framing.warnings
    assert np.all(matte[:int(ty) - 1] == 0) and np.all(matte[:, :int(tx) - 1] == 0)
    # the border is replicated, not black: the room's colour continues
    assert np.abs(photo[:int(ty) - 1, :int(tx) - 1].astype(int) - BACKGROUND).max() <= 2
    assert column_crown(matte, framing.size[0] // 2) == pytest.approx(framing.crown_y, abs=1.0)


def test_face_count_errors():
    _, alpha, face = person()
    with pytest.raises(FaceNotFound, match="no face found"):
        plan_framing(alpha, [], PASSPORT, 300)
    twin = Face(box=(400, 200, 600, 400), score=0.9, left_eye=(450, 280), right_eye=(550, 280), chin=(500, 400))
    with pytest.raises(SeveralFaces, match="2 faces"):
        plan_framing(alpha, [face, twin], PASSPORT, 300)
    assert issubclass(SeveralFaces, IdPhotoError) and issubclass(FaceNotFound, IdPhotoError)


def test_small_background_faces_are_ignored():
    _, alpha, face = person()
    far = Face(box=(600, 50, 650, 100), score=0.9, left_eye=(612, 70), right_eye=(638, 70), chin=(625, 100))
    alone = plan_framing(alpha, [face], PASSPORT, 300)
    framing = plan_framing(alpha, [far, face], PASSPORT, 300)  # detector order does not matter
    assert np.allclose(framing.matrix, alone.matrix)
    assert any("ignored 1 small face" in w for w in framing.warnings)


def test_tiny_head_is_refused():
    _, alpha, face = person(h=120, w=100, cx=50, cy=40, a=8, b=10, ss=16)
    with pytest.raises(IdPhotoError, match="too small"):
        plan_framing(alpha, [face], PASSPORT, 300)


def test_matte_only_fallback_warns_and_stays_in_the_rule():
    image, alpha, face = person()
    framing = plan_framing(alpha, None, PASSPORT, 300)
    assert any("no face model" in w for w in framing.warnings)
    _, matte = apply_framing(image, alpha, framing)
    crown = column_crown(matte, framing.size[0] // 2)
    chin = mapped(framing, face.chin)[1]  # the true chin, which the fallback could not see
    head_mm = (chin - crown) / 300 * 25.4
    assert 32 <= head_mm <= 36
    assert mapped(framing, (face.center_x, 0))[0] == pytest.approx(framing.size[0] / 2, abs=2)


def test_matte_only_fallback_with_an_eye_rule():
    image, alpha, face = person()
    framing = plan_framing(alpha, None, US, 300)
    assert framing.eye_y is not None
    assert abs(mapped(framing, face.left_eye)[1] - framing.eye_y) < 0.06 * framing.size[1]


# ---------------------------------------------------------------------------- pixels


@pytest.mark.parametrize("scale", [0.23, 0.5, 1.0, 1.7])
def test_apply_framing_puts_a_point_where_the_matrix_says(scale):
    h, w = 800, 1000
    image = np.zeros((h, w, 3), np.uint8)
    alpha = np.zeros((h, w), np.float32)
    cv2.circle(alpha, (600, 300), 30, 1.0, -1, cv2.LINE_AA)
    image[alpha > 0] = 255
    matrix = np.array([[scale, 0, 37.3], [0, scale, -21.6]])
    out_w, out_h = int(w * scale) + 60, int(h * scale) + 60
    framing = Framing(matrix, (out_w, out_h), 0.0, 1.0, None, [])
    photo, matte = apply_framing(image, alpha, framing)
    ys, xs = np.mgrid[0:out_h, 0:out_w]
    centroid = np.array([(xs * matte).sum(), (ys * matte).sum()]) / matte.sum()
    # pixel centres: the continuous point 600.5, 300.5 of the source
    expected = matrix @ np.array([600.5, 300.5, 1.0]) - 0.5
    assert np.abs(centroid - expected).max() < 0.35
    assert matte.sum() == pytest.approx(alpha.sum() * scale * scale, rel=0.03)


def test_big_reductions_are_area_averaged():
    checker = ((np.indices((1200, 1200)).sum(0) % 2) * 255).astype(np.uint8)
    image = np.dstack([checker] * 3)
    alpha = np.ones((1200, 1200), np.float32)
    framing = Framing(np.array([[0.26, 0, 1.3], [0, 0.26, 2.7]]), (300, 300), 0.0, 1.0, None, [])
    photo, matte = apply_framing(image, alpha, framing)
    inner = photo[10:-10, 10:-10].astype(float)
    assert abs(inner.mean() - 127.5) < 3 and inner.std() < 4  # no moiré
    assert np.allclose(matte[10:-10, 10:-10], 1.0, atol=1e-4)


def test_apply_framing_keeps_float_images():
    image, alpha, face = person()
    framing = plan_framing(alpha, [face], PASSPORT, 300)
    photo, _ = apply_framing(image.astype(np.float32) / 255, alpha, framing)
    assert photo.dtype == np.float32 and photo.shape == (*framing.size[::-1], 3)


def test_draw_guides():
    image, alpha, face = person()
    framing = plan_framing(alpha, [face], US, 300)
    photo, _ = apply_framing(image, alpha, framing)
    before = photo.copy()
    guided = draw_guides(photo, framing, US, 300)
    assert np.array_equal(photo, before) and guided.shape == photo.shape and guided.dtype == np.uint8
    w, h = framing.size

    def changed_rows(a, b):  # rows with a horizontal line: changed well away from the centre line
        diff = np.abs(a.astype(int) - b).sum(axis=2) > 0
        return np.flatnonzero(diff[:, : a.shape[1] // 4].any(axis=1))

    rows = changed_rows(guided, photo)
    lines = [framing.chin_y, framing.chin_y - 25.4 / 50.8 * h, framing.chin_y - 34.9 / 50.8 * h,
             h - 28.6 / 50.8 * h, h - 34.9 / 50.8 * h]
    for y in lines:
        if 0 <= y < h:
            assert np.min(np.abs(rows - y)) <= 1, y
    assert len(rows) <= 3 * len(lines)  # thin lines
    centre = np.flatnonzero((np.abs(guided.astype(int) - photo).sum(axis=2) > 0).all(axis=0))
    assert np.all(np.abs(centre - w / 2) <= 1)
    # a half-size preview gets its lines at half the height
    small = cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    rows = changed_rows(draw_guides(small, framing, US, 300), small)
    assert np.min(np.abs(rows - framing.chin_y / 2)) <= 1


# ---------------------------------------------------------------------------- a real portrait


def test_real_portrait_passport_head_size():
    pytest.importorskip("onnxruntime")
    from matting import upsample_alpha
    from matting.face import FaceDetector
    from matting.selfie import SelfieEngine

    image = cv2.imread(str(need(PORTRAIT)))
    alpha = upsample_alpha(SelfieEngine(need(MODELS / "selfie_segmentation.onnx")).infer(image), image.shape[:2])
    faces = FaceDetector(need(MODELS / "face_detection_short_range.onnx"),
                         need(MODELS / "face_landmark.onnx")).detect(image)
    framing = plan_framing(alpha, faces, PASSPORT, 300)
    photo, matte = apply_framing(image, alpha, framing)
    assert photo.shape == (531, 413, 3)
    (face,) = faces

    def move(p):
        return tuple(mapped(framing, p))

    x0, y0 = move(face.box[:2])
    x1, y1 = move(face.box[2:])
    out_face = Face((x0, y0, x1, y1), face.score, move(face.left_eye), move(face.right_eye), move(face.chin))
    crown, _ = crown_from_matte(matte, out_face)
    head_mm = (out_face.chin[1] - crown) / 300 * 25.4
    assert 32 <= head_mm <= 36, head_mm
    assert out_face.center_x == pytest.approx(413 / 2, abs=1.0)
    assert 3 <= crown / 300 * 25.4 <= 5
