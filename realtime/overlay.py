"""What is drawn on frames: the HUD, the help overlay and notices such as "camera lost".

All drawing is on BGR uint8 frames; the HUD and help go on the (mirrored)
preview only, after mirroring, so text is never mirrored.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from .controls import HOTKEYS, ViewState
from .stats import RunStats, figure


def help_lines() -> list[str]:
    """One line per hotkey: its keys, a tab, then what it does (``draw_panel`` aligns the tab)."""
    return [f"{hotkey.label}\t{hotkey.text}" for hotkey in HOTKEYS]


def keys_banner() -> str:
    """The one-line reminder printed when hotkeys come from the terminal."""
    return "Keys: " + ", ".join(f"{hotkey.label}={hotkey.text}" for hotkey in HOTKEYS)


def hud_lines(stats: RunStats, background: str, state: ViewState, now: float) -> list[str]:
    latency = list(itertools.islice(reversed(stats.latency_ms), 30))  # newest 30, no full copy
    return [
        f"{stats.output.rate(now):4.1f} fps  {stats.mattes.rate(now):4.1f} mattes/s  "
        f"latency {figure(np.median(latency) if latency else float('nan'), '.0f')} ms  "
        f"cpu {figure(stats.cpu_cores, '.1f')} cores",
        f"bg: {background}" + (f"  [{state.view}]" if state.view != "composite" else "")
        + ("  [paused]" if state.paused else ""),
    ]


#: The smallest font scale a panel shrinks to (Hershey simplex: about 6 px tall)
MIN_SCALE = 0.25


def _measure(rows: list[list[str]], scale: float, thickness: int) -> tuple[int, int, int, int]:
    """(box width, box height, line height, second column's offset) of ``rows`` at ``scale``."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    width = lambda text: cv2.getTextSize(text, font, scale, thickness)[0]  # noqa: E731
    gap = width("  ")[0]
    column = max((width(r[0])[0] for r in rows if len(r) == 2), default=0) + gap
    sizes = [(width(r[0])[0] + (column - width(r[0])[0] + width(r[1])[0] if len(r) == 2 else 0),
              max(width(part)[1] for part in r)) for r in rows]
    line_h = int(max(s[1] for s in sizes) * 1.8) + 2
    return max(s[0] for s in sizes) + 16, line_h * len(rows) + 10, line_h, column


def draw_panel(image: np.ndarray, lines: list[str], origin=(10, 10), scale: float | None = None,
               top: int = 10) -> int:
    """Text lines on a translucent dark box, in place (BGR uint8); a tab in a line starts a second,
    aligned column (the font is proportional, so spaces cannot align it). A panel taller than
    the room below ``origin`` moves up (to ``top`` at most: below the HUD); it is laid out in one
    column or in two boxes side by side, whichever has to shrink less to fit (to :data:`MIN_SCALE`
    at most): on a small frame the last lines (the help's "q quit") were cut off. Returns the y
    below the panel (0 when nothing was drawn)."""
    if not lines:
        return 0
    h, w = image.shape[:2]
    scale = scale or max(0.4, h / 1400)
    thickness = 1 if scale < 0.8 else 2
    rows = [line.split("\t", 1) for line in lines]
    x0, y0 = origin[0], max(origin[1], top)

    def fitted(groups: list) -> tuple[float, int]:  # (how much it must shrink to fit, its top)
        sizes = [_measure(group, scale, thickness)[:2] for group in groups]
        box_w, box_h = sum(s[0] for s in sizes) + 10 * (len(groups) - 1), max(s[1] for s in sizes)
        y = max(min(y0, h - box_h), top)  # moved up if need be, never over what is above
        return min(1.0, (h - y) / box_h, (w - x0) / box_w), y

    half = (len(rows) + 1) // 2
    layouts = [[rows]] + ([[rows[:half], rows[half:]]] if len(rows) > 1 else [])
    groups = max(layouts, key=lambda layout: fitted(layout)[0])  # the least shrunk; one column if the same
    room, top_y = fitted(groups)
    while room < 1 and scale > MIN_SCALE:  # (line heights and margins do not scale exactly: again)
        scale, thickness = max(MIN_SCALE, scale * room * 0.98), 1
        room, top_y = fitted(groups)
    y0 = top_y
    font, bottom = cv2.FONT_HERSHEY_SIMPLEX, 0
    for group in groups:
        box_w, box_h, line_h, column = _measure(group, scale, thickness)
        x1, y1 = min(w, x0 + box_w), min(h, y0 + box_h)
        if x1 <= x0 or y1 <= y0:
            return bottom
        bottom = max(bottom, y1)
        roi = image[y0:y1, x0:x1]
        roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)
        for i, row in enumerate(group):
            y = y0 + 6 + line_h * (i + 1) - line_h // 4
            for text, x in zip(row, (x0 + 8, x0 + 8 + column)):
                cv2.putText(image, text, (x, y), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
        x0 = x1 + 10
    return bottom


def draw_notice(image: np.ndarray, text: str) -> np.ndarray:
    """A banner at the bottom of a copy of ``image`` (e.g. "camera lost - reconnecting")."""
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.5, h / 900)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    y1 = h - 10
    y0 = max(0, y1 - th - 20)
    x0 = max(0, (w - tw) // 2 - 12)
    x1 = min(w, x0 + tw + 24)
    out[y0:y1, x0:x1] = (out[y0:y1, x0:x1].astype(np.uint16) * 2 // 5).astype(np.uint8)
    cv2.putText(out, text, (x0 + 12, y1 - 10), cv2.FONT_HERSHEY_SIMPLEX, scale, (80, 200, 255), 2, cv2.LINE_AA)
    return out
