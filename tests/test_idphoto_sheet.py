"""Print sheets: counts by hand-checked layout maths, photos pixel-exact, guides clear of photos, mixed sizes."""

import io

import numpy as np
import pytest
from PIL import Image

from idphoto.errors import IdPhotoError
from idphoto.output import encode
from idphoto.sheet import GUIDE_GREY, layout, make_sheet, plan_sheet
from idphoto.sizes import PAPERS, PRESETS, parse_paper

PASSPORT = PRESETS["passport"].pixels(300)          # (413, 531)


def photo(width: int, height: int, seed: int) -> np.ndarray:
    """Random BGR content: any misplaced pixel shows."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_passports_on_4x6_by_hand():
    # 4×6 in at 300 DPI: 1200×1800 px; margin 3 mm = 35 px, gap 2 mm = 24 px (round(mm / 25.4 × 300)).
    # Portrait: columns (1200 - 70 + 24) // (413 + 24) = 2, rows (1800 - 70 + 24) // (531 + 24) = 3 -> 6.
    # Landscape (1800 wide): columns 1754 // 437 = 4, rows 1154 // 555 = 2 -> 8, so landscape wins.
    # Block 4·413 + 3·24 = 1724 by 2·531 + 24 = 1086 px, centred:
    # x0 = (1800 - 1724) // 2 = 38, y0 = (1200 - 1086) // 2 = 57.
    positions = layout(PASSPORT, PAPERS["4x6in"], 300)
    assert positions == [(x, y) for y in (57, 612) for x in (38, 475, 912, 1349)]
    plan = plan_sheet([PASSPORT], PAPERS["4x6in"], 300)
    assert (plan.width, plan.height, plan.landscape, plan.placed) == (1800, 1200, True, 8)


@pytest.mark.parametrize("paper, size, count, landscape", [
    # A4 2480×3508: portrait (2434 // 437 = 5) × (3462 // 555 = 6) = 30;
    #               landscape (3462 // 437 = 7) × (2434 // 555 = 4) = 28.
    ("a4", "passport", 30, False),
    # Letter 2550×3300: portrait (2504 // 437 = 5) × (3254 // 555 = 5) = 25;
    #                   landscape (3254 // 437 = 7) × (2504 // 555 = 4) = 28.
    ("letter", "passport", 28, True),
    # 2×2 in on 4×6 in: 600 + 24 + 600 > 1200 - 70, so one column; landscape 1754 // 624 = 2 × 1154 // 624 = 1 -> 2.
    ("4x6in", "us", 2, False),
    # 1 inch 295×413 on 4×6 in: portrait (1154 // 319 = 3) × (1754 // 437 = 4) = 12; landscape 5 × 2 = 10.
    ("4x6in", "1inch", 12, False),
])
def test_counts_on_other_papers(paper, size, count, landscape):
    plan = plan_sheet([PRESETS[size].pixels(300)], PAPERS[paper], 300)
    assert (plan.placed, plan.landscape) == (count, landscape)


def test_no_margins_no_gaps():
    assert len(layout((600, 600), PAPERS["4x6in"], 300, margin_mm=0, gap_mm=0)) == 6    # 3 × 2 exactly


def boxes_of(sheet, photos):
    return [(x, y, photos[i].shape[1], photos[i].shape[0]) for i, x, y in sheet.placements]


def photo_mask(shape, boxes, grow=0):
    mask = np.zeros(shape[:2], bool)
    for x, y, w, h in boxes:
        mask[max(y - grow, 0):y + h + grow, max(x - grow, 0):x + w + grow] = True
    return mask


def check_sheet(sheet, photos, paper, dpi=300):
    """Photos pixel-exact in place, inside the page, no overlaps; the rest white or guide grey,
    and no guide pixel within one pixel of a photo."""
    page = sheet.image
    assert page.dtype == np.uint8 and page.shape[2] == 3
    expected = paper.pixels(dpi, sheet.landscape)
    assert (page.shape[1], page.shape[0]) == expected
    boxes = boxes_of(sheet, photos)
    covered = np.zeros(page.shape[:2], np.int32)
    for (index, x, y), (_, _, w, h) in zip(sheet.placements, boxes):
        assert x >= 0 and y >= 0 and x + w <= page.shape[1] and y + h <= page.shape[0]
        assert np.array_equal(page[y:y + h, x:x + w], photos[index])
        covered[y:y + h, x:x + w] += 1
    assert covered.max() == 1
    outside = page[covered == 0]
    grey = np.all(outside == GUIDE_GREY, axis=1)
    assert np.all(np.all(outside == 255, axis=1) | grey)
    guides = np.all(page == GUIDE_GREY, axis=2) & (covered == 0)
    assert not (guides & photo_mask(page.shape, boxes, grow=1)).any()
    return guides


def test_sheet_of_passports():
    people = [photo(*PASSPORT, seed=1)]
    sheet = make_sheet(people, PAPERS["4x6in"], 300)
    assert sheet.image.shape == (1200, 1800, 3) and sheet.placed == 8 and sheet.landscape
    assert [(x, y) for _, x, y in sheet.placements] == layout(PASSPORT, PAPERS["4x6in"], 300)
    guides = check_sheet(sheet, people, PAPERS["4x6in"])
    assert guides.sum() > 8 * 2 * (413 + 531)              # an outline round each photo
    image, placed = sheet                                   # unpacks as (page, count)
    assert image is sheet.image and placed == 8


def test_guides_off_leave_white():
    people = [photo(*PASSPORT, seed=2)]
    sheet = make_sheet(people, PAPERS["4x6in"], 300, guides=False)
    outside = ~photo_mask(sheet.image.shape, boxes_of(sheet, people))
    assert np.all(sheet.image[outside] == 255)


def test_guides_with_no_gap_never_touch_photos():
    people = [photo(*PASSPORT, seed=3)]
    sheet = make_sheet(people, PAPERS["4x6in"], 300, margin_mm=0, gap_mm=0)
    check_sheet(sheet, people, PAPERS["4x6in"])


def test_two_people_cycle_and_copies():
    people = [photo(*PASSPORT, seed=4), photo(*PASSPORT, seed=5)]
    sheet = make_sheet(people, PAPERS["4x6in"], 300)
    assert [i for i, _, _ in sheet.placements] == [0, 1] * 4
    check_sheet(sheet, people, PAPERS["4x6in"])
    assert make_sheet(people, PAPERS["4x6in"], 300, copies=3).placed == 3
    assert make_sheet(people, PAPERS["4x6in"], 300, copies=100).placed == 8     # capped by the page


def test_transparent_photos_flattened_on_white():
    bgra = np.zeros((531, 413, 4), np.uint8)
    bgra[..., 0] = 200
    bgra[:100, :, 3] = 0                                    # transparent top
    bgra[100:200, :, 3] = 255
    bgra[200:, :, 3] = 128
    sheet = make_sheet([bgra], PAPERS["4x6in"], 300, copies=1)
    _, x, y = sheet.placements[0]
    assert np.all(sheet.image[y:y + 100, x:x + 413] == 255)
    assert np.all(sheet.image[y + 100:y + 200, x:x + 413] == (200, 0, 0))
    assert np.allclose(sheet.image[y + 200, x], (228, 127, 127), atol=1)


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_encoded_sheet_keeps_dpi(fmt):
    sheet = make_sheet([photo(*PASSPORT, seed=6)], PAPERS["4x6in"], 300)
    pil = Image.open(io.BytesIO(encode(sheet.image, fmt, 300)))
    assert pil.size == (1800, 1200) and pil.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    # 1800 px at 300 DPI = 6 in: the print is the paper's size
    assert pil.size[0] / pil.info["dpi"][0] == pytest.approx(6, abs=1e-3)


@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_a4_and_letter_sheets(paper):
    people = [photo(*PRESETS["2inch"].pixels(300), seed=7)]
    sheet = make_sheet(people, PAPERS[paper], 300)
    check_sheet(sheet, people, PAPERS[paper])
    assert sheet.placed == len(layout(people[0].shape[1::-1], PAPERS[paper], 300)) >= 20


def test_mixed_sizes():
    people = [photo(*PASSPORT, seed=8), photo(*PRESETS["1inch"].pixels(300), seed=9)]
    sheet = make_sheet(people, PAPERS["4x6in"], 300)
    check_sheet(sheet, people, PAPERS["4x6in"])
    counts = [sum(1 for i, _, _ in sheet.placements if i == k) for k in (0, 1)]
    assert min(counts) >= 1 and abs(counts[0] - counts[1]) <= 1     # balanced: cycled in turn
    tallest_row = min(y for i, _, y in sheet.placements if i == 0)
    assert tallest_row <= min(y for i, _, y in sheet.placements if i == 1)   # largest first
    two = make_sheet(people, PAPERS["4x6in"], 300, copies=2)
    assert sorted(i for i, _, _ in two.placements) == [0, 1]


def test_mixed_sizes_on_a4():
    people = [photo(*PRESETS["us"].pixels(300), seed=10), photo(*PASSPORT, seed=11),
              photo(*PRESETS["1inch"].pixels(300), seed=12)]
    sheet = make_sheet(people, PAPERS["a4"], 300)
    check_sheet(sheet, people, PAPERS["a4"])
    assert sheet.placed >= 12


def test_custom_paper_and_dpi():
    paper = parse_paper("100x150mm")
    people = [photo(*PRESETS["passport"].pixels(600), seed=13)]          # 827×1063 at 600 DPI
    sheet = make_sheet(people, paper, 600)
    check_sheet(sheet, people, paper, dpi=600)
    # 2362×3543 px, margin 71, gap 47: portrait (2267 // 874 = 2) × (3448 // 1110 = 3) = 6, landscape
    # 3 × 2 = 6 (tie: portrait). In mm: 4·35 + 3·2 = 146 > 150 - 6, so 10×15 cm holds 6, not 4×6 in's 8.
    assert (sheet.placed, sheet.landscape) == (6, False)


def test_too_large_and_bad_requests():
    with pytest.raises(IdPhotoError, match="does not fit"):
        make_sheet([photo(1300, 1300, seed=14)], PAPERS["4x6in"], 300)
    with pytest.raises(IdPhotoError):
        make_sheet([], PAPERS["4x6in"], 300)
    with pytest.raises(IdPhotoError):
        make_sheet([photo(*PASSPORT, seed=15)], PAPERS["4x6in"], 300, copies=0)
    with pytest.raises(IdPhotoError):
        make_sheet([np.zeros((10, 10), np.uint8)], PAPERS["4x6in"], 300)
