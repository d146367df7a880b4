"""Print sheets: as many ID photos as fit on a photo paper at a DPI, centred, with light-grey cut guides.

Pixel maths: page = paper mm at ``dpi`` (4×6 in at 300 DPI is 1200×1800 px portrait); margin and gap are
rounded to whole pixels (3 mm → 35 px, 2 mm → 24 px at 300 DPI). Photos are packed in shelves (rows),
tallest first, each row left to right; the block of rows is centred on the page. Both orientations are
tried and the one that holds more wins (portrait on a tie), so 35×45 mm photos fill a 4×6 in sheet as
4 × 2 = 8 on landscape (the page comes back 1800 px wide) against 2 × 3 = 6 on portrait.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import cycle, islice

import numpy as np

from idphoto.errors import IdPhotoError
from idphoto.sizes import Paper, mm_to_px

GUIDE_GREY = 200            # cut-guide colour (BGR grey level) on the white page
MAX_PAGE_PIXELS = 120_000_000


@dataclass(frozen=True)
class SheetPlan:
    width: int                                   # page size in pixels, in the chosen orientation
    height: int
    landscape: bool
    placements: list[tuple[int, int, int]] = field(default_factory=list)   # (item index, x, y), top-left

    @property
    def placed(self) -> int:
        return len(self.placements)


@dataclass(frozen=True)
class Sheet:
    """What :func:`make_sheet` returns: the page (BGR uint8), how many photos it holds, and where.
    Unpacks as ``(image, placed)``."""
    image: np.ndarray
    placed: int
    placements: list[tuple[int, int, int]]       # (index into the photos list, x, y), top-left corners
    landscape: bool
    dpi: float

    def __iter__(self):
        """``image, placed = make_sheet(...)`` unpacks to the page and the count."""
        return iter((self.image, self.placed))


def _shelf_pack(sizes: list[tuple[int, int]], width: int, height: int, margin: int,
                gap: int) -> list[tuple[int, int, int]] | None:
    """Positions for every (w, h) in ``sizes`` (tallest first, rows left to right), centred; None if any
    does not fit inside the margins."""
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i][1], -sizes[i][0], i))
    right, bottom = width - margin, height - margin
    x, y, row_h, used_w = margin, margin, 0, 0
    spots: list[tuple[int, int, int]] = []
    for i in order:
        w, h = sizes[i]
        if w > right - margin:
            return None
        if x + w > right:                        # next shelf
            x, y, row_h = margin, y + row_h + gap, 0
        if y + h > bottom:
            return None
        spots.append((i, x, y))
        used_w = max(used_w, x + w - margin)
        x, row_h = x + w + gap, max(row_h, h)
    used_h = (y + row_h - margin) if spots else 0
    dx, dy = (width - used_w) // 2 - margin, (height - used_h) // 2 - margin
    return [(i, px + dx, py + dy) for i, px, py in spots]


def _most_that_fit(items: list[tuple[int, int]], width: int, height: int, margin: int,
                   gap: int) -> list[tuple[int, int, int]]:
    """Pack the longest prefix of ``items`` that fits (binary search over the prefix length)."""
    low, high, best = 0, len(items), []          # prefix `low` fits; search up to `high`
    full = _shelf_pack(items, width, height, margin, gap)
    if full is not None:
        return full
    while high - low > 1:
        mid = (low + high) // 2
        spots = _shelf_pack(items[:mid], width, height, margin, gap)
        if spots is None:
            high = mid
        else:
            low, best = mid, spots
    return best


def plan_sheet(sizes: list[tuple[int, int]], paper: Paper, dpi: float, copies: int | None = None,
               margin_mm: float = 3, gap_mm: float = 2) -> SheetPlan:
    """Where photos of pixel ``sizes`` (w, h) go on ``paper``: item k of the sheet is ``sizes[k % len]``
    (cycling: mixed people or sizes on one sheet). ``copies`` caps the count; None = as many as fit. The
    orientation holding more wins. Placements carry the index into ``sizes``. Raises
    :class:`IdPhotoError` if not even one photo fits."""
    if not sizes:
        raise IdPhotoError("a print sheet needs at least one photo")
    if copies is not None and copies < 1:
        raise IdPhotoError(f"copies must be at least 1, not {copies}")
    margin, gap = mm_to_px(margin_mm, dpi), mm_to_px(gap_mm, dpi)
    if margin < 0 or gap < 0:
        raise IdPhotoError("margin and gap cannot be negative")
    best: SheetPlan | None = None
    for landscape in (False, True):
        width, height = paper.pixels(dpi, landscape)
        if width * height > MAX_PAGE_PIXELS:
            raise IdPhotoError(f"the page would be {width}×{height} px at {dpi:g} DPI: choose a lower DPI "
                               f"or a smaller paper")
        usable = max(width - 2 * margin, 0) * max(height - 2 * margin, 0)
        smallest = min(w * h for w, h in sizes)
        bound = usable // max(smallest, 1) + 1   # no more than this many can fit
        count = bound if copies is None else min(copies, bound)
        items = list(islice(cycle(range(len(sizes))), count))
        spots = _most_that_fit([sizes[k] for k in items], width, height, margin, gap)
        plan = SheetPlan(width, height, landscape, [(items[k], x, y) for k, x, y in spots])
        if best is None or plan.placed > best.placed:
            best = plan
    if best.placed == 0:
        w, h = max(sizes, key=lambda s: s[0] * s[1])
        raise IdPhotoError(f"a {w}×{h} px photo does not fit on {paper.name} at {dpi:g} DPI "
                           f"with {margin_mm:g} mm margins: choose a bigger paper")
    return best


def layout(photo_px: tuple[int, int], paper: Paper, dpi: float, margin_mm: float = 3,
           gap_mm: float = 2) -> list[tuple[int, int]]:
    """Top-left corners of as many ``photo_px`` (w, h) copies as fit on ``paper``, centred, in the
    orientation that holds more (see :func:`plan_sheet` for the page size and orientation)."""
    plan = plan_sheet([tuple(photo_px)], paper, dpi, None, margin_mm, gap_mm)
    return [(x, y) for _, x, y in plan.placements]


def _flatten(photo: np.ndarray) -> np.ndarray:
    if not isinstance(photo, np.ndarray) or photo.dtype != np.uint8 or photo.ndim != 3 or \
            photo.shape[2] not in (3, 4) or photo.size == 0:
        raise IdPhotoError("sheet photos must be non-empty uint8 BGR (H×W×3) or BGRA (H×W×4) images")
    if photo.shape[2] == 3:
        return photo
    alpha = photo[:, :, 3:].astype(np.float32) / 255.0
    return np.clip(photo[:, :, :3] * alpha + 255.0 * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)


def _draw_guides(page: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> None:
    """A 1 px grey outline around each photo, one white pixel away from it, only where no photo lies
    within one pixel: the guides run through the gaps and margins and never touch a photo."""
    h, w = page.shape[:2]
    guide = np.zeros((h, w), bool)
    keep_clear = np.zeros((h, w), bool)
    for x, y, bw, bh in boxes:
        x0, y0, x1, y1 = x - 2, y - 2, x + bw + 1, y + bh + 1          # outline, inclusive corners
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
        for yy in (y0, y1):
            if 0 <= yy < h:
                guide[yy, cx0:cx1 + 1] = True
        for xx in (x0, x1):
            if 0 <= xx < w:
                guide[cy0:cy1 + 1, xx] = True
        keep_clear[max(y - 1, 0):y + bh + 1, max(x - 1, 0):x + bw + 1] = True
    page[guide & ~keep_clear] = GUIDE_GREY


def make_sheet(photos: list[np.ndarray], paper: Paper, dpi: float, copies: int | None = None,
               guides: bool = True, margin_mm: float = 3, gap_mm: float = 2) -> Sheet:
    """A white page of ``paper`` at ``dpi`` holding the photos, cycled in order until the page is full or
    ``copies`` are placed; photos may differ in pixel size (shelf packing, tallest first). BGRA photos are
    flattened on white. ``guides`` draws light-grey cut lines in the gaps. Returns a :class:`Sheet` with the
    page (BGR uint8, H×W×3, landscape when that holds more) and ``placed``, the number of photos on it;
    raises :class:`IdPhotoError` if not even one fits."""
    flat = [_flatten(p) for p in photos]
    plan = plan_sheet([(p.shape[1], p.shape[0]) for p in flat], paper, dpi, copies, margin_mm, gap_mm)
    page = np.full((plan.height, plan.width, 3), 255, np.uint8)
    boxes = []
    for index, x, y in plan.placements:
        ph, pw = flat[index].shape[:2]
        page[y:y + ph, x:x + pw] = flat[index]
        boxes.append((x, y, pw, ph))
    if guides:
        _draw_guides(page, boxes)
    return Sheet(page, plan.placed, list(plan.placements), plan.landscape, dpi)
