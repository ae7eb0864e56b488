"""Server-rendered SVG charts for the web console.

The console ships no JavaScript and loads nothing from a CDN (the gateway is
self-hosted and must work air-gapped), so charts are drawn here as plain inline
SVG that a template embeds with ``{{ chart }}``. Standard library only, and the
output is deterministic so the same data always renders the same bytes.
Values are non-negative counts: the value axis always starts at 0.
"""
from __future__ import annotations

import hashlib
import math
from itertools import accumulate

from markupsafe import Markup, escape

__all__ = ["line_chart", "bar_chart", "progress_bar", "nice_ticks", "compact", "exact"]

# Every colour is at least 4.5:1 against white (WCAG asks 3:1 for graphics).
PALETTE = ("#1d4ed8", "#c2410c", "#15803d", "#7e22ce", "#be123c", "#0e7490", "#a16207", "#52525b")
# Colour alone must not tell series apart (colour blindness, greyscale printouts):
# lines also get a dash pattern and marker shape, bars a hatch.
DASHES = ("", "6 3", "2 3", "8 3 2 3", "12 4", "4 2 1 2")
MARKERS = ("circle", "square", "triangle", "diamond")
HATCHES = ("", "M0 6L6 0", "M0 3H6", "M3 0V6", "M0 0L6 6M0 6L6 0", "M0 3H6M3 0V6")
TEXT, MUTED, GRID, AXIS = "#1f2933", "#52606d", "#e4e7eb", "#9aa5b1"
CHAR_W = 6.5  # rough advance of a 12px sans-serif glyph; there are no font metrics server-side
MAX_X_LABELS = 8
ROW = 18  # legend line height
_NOT_XML = dict.fromkeys([*range(9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF])


def compact(v: float) -> str:
    """Tick text: 1200 -> "1.2k", 2500000 -> "2.5M", 0.25 -> "0.25"."""
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{v:.2f}".rstrip("0").rstrip(".")


def exact(v: float) -> str:
    """Legend and description text: 1200 -> "1,200"."""
    return f"{int(v):,}" if float(v).is_integer() else f"{v:,.2f}".rstrip("0").rstrip(".")


def nice_ticks(peak: float, integer: bool = True) -> list[float]:
    """4-5 round tick values starting at 0, the last one >= peak."""
    if peak <= 0:
        peak = 1  # nothing to scale to, but an empty chart still wants an axis
    raw = peak / 4
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if integer and step < 1:
        return [0, 1, 2, 3, 4]  # a quarter of a message is not a thing; peak < 4 here
    # The epsilon keeps 0.6 / 0.2 == 3.0000000000000004 from adding a sixth tick.
    return [round(i * step, 10) for i in range(math.ceil(peak / step - 1e-9) + 1)]


def _e(text: object) -> str:
    # Escaping alone is not enough: a stray control character from user data makes the XML invalid.
    return str(escape(str(text).translate(_NOT_XML)))


def _n(v: float) -> str:
    # A tenth of a user unit is invisible at any zoom and keeps 12.000000001 out of the markup.
    r = round(v, 1)
    return str(int(r)) if r == int(r) else str(r)


def _uid(*inputs: object) -> str:
    # Derived from the inputs, not random, so output is reproducible; distinct charts differ.
    return "chart-" + hashlib.sha256(repr(inputs).encode()).hexdigest()[:10]


def _marker(i: int, x: float, y: float) -> str:
    c, shape, r = _col(i), MARKERS[i % len(MARKERS)], 3.5
    if shape == "circle":
        return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{r}" fill="{c}"/>'
    if shape == "square":
        return f'<rect x="{_n(x - r)}" y="{_n(y - r)}" width="7" height="7" fill="{c}"/>'
    r += 1  # triangles and diamonds look smaller than a circle of the same radius
    pts = [(x, y - r), (x + r, y + r - 1), (x - r, y + r - 1)] if shape == "triangle" \
        else [(x, y - r), (x + r, y), (x, y + r), (x - r, y)]
    return f'<polygon points="{_points(pts)}" fill="{c}"/>'


def _points(pts: list) -> str:
    return " ".join(f"{_n(x)},{_n(y)}" for x, y in pts)


def _col(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _fill(uid: str, i: int) -> str:
    return f"url(#{uid}-p{i})" if HATCHES[i % len(HATCHES)] else _col(i)


def _patterns(uid: str, count: int) -> str:
    out = [f'<pattern id="{uid}-p{i}" width="6" height="6" patternUnits="userSpaceOnUse">'
           f'<rect width="6" height="6" fill="{_col(i)}"/>'
           f'<path d="{HATCHES[i % len(HATCHES)]}" stroke="#fff" stroke-width="1.2"/></pattern>'
           for i in range(count) if HATCHES[i % len(HATCHES)]]
    return f"<defs>{''.join(out)}</defs>" if out else ""


def _line_swatch(i: int, x: float, y: float) -> str:
    return (f'<line x1="{_n(x)}" y1="{_n(y)}" x2="{_n(x + 18)}" y2="{_n(y)}" stroke="{_col(i)}" '
            f'stroke-width="2" stroke-dasharray="{DASHES[i % len(DASHES)] or "none"}"/>' + _marker(i, x + 9, y))


def _box_swatch(uid: str, i: int, x: float, y: float) -> str:
    return f'<rect x="{_n(x + 3)}" y="{_n(y - 6)}" width="12" height="12" fill="{_fill(uid, i)}" stroke="{_col(i)}"/>'


def _legend(texts: list[str], swatch, x0: float, y0: float, right: float) -> tuple[str, int]:
    """Lay entries out left to right, wrapping at ``right``; returns (svg, rows)."""
    out, x, y = [], x0, y0
    for i, text in enumerate(texts):
        w = 22 + len(text) * CHAR_W + 14
        if x > x0 and x + w > right:
            x, y = x0, y + ROW
        out.append(swatch(i, x, y) + f'<text x="{_n(x + 22)}" y="{_n(y + 4)}">{_e(text)}</text>')
        x += w
    return '<g class="legend">' + "".join(out) + "</g>", (round((y - y0) / ROW) + 1 if texts else 0)


def _svg(uid: str, width: int, height: float, title: str, desc: str, body: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {_n(height)}" width="100%" '
        f'preserveAspectRatio="xMidYMid meet" style="max-width:{width}px;height:auto" role="img" '
        f'aria-labelledby="{uid}-t {uid}-d" font-family="system-ui,sans-serif" font-size="12" fill="{TEXT}">'
        f'<title id="{uid}-t">{_e(title)}</title><desc id="{uid}-d">{_e(desc)}</desc>'
        f'<text x="12" y="20" font-size="14" font-weight="600">{_e(title)}</text>{body}</svg>')


def _describe(y_label: str, labels: list[str], series: list[tuple[str, list]]) -> str:
    if not any(v for _, ys in series for v in ys if v is not None):
        return "No data yet."
    parts = []
    for name, ys in series:
        pts = [(v, label) for label, v in zip(labels, ys) if v is not None]
        if not pts:
            parts.append(f"{name}: no data")
            continue
        top, at = max(pts, key=lambda p: p[0])  # the first of equal peaks, for stable text
        parts.append(f"{name}: {exact(sum(v for v, _ in pts))} total, peak {exact(top)} at {at}")
    span = f" from {labels[0]} to {labels[-1]}" if len(labels) > 1 else f" at {labels[0]}"
    return f"{y_label or 'Values'}{span}. " + "; ".join(parts) + "."


def _axis_chart(kind: str, title: str, labels: list, series: list, y_label: str,
                width: int, height: int, horizontal: bool) -> Markup:
    width, height, n = int(width), int(height), len(labels)
    labels = [str(label) for label in labels]
    # Ragged rows (e.g. a SQL bucket missing) become gaps rather than shifting the labels.
    series = [(str(name), (list(ys) + [None] * n)[:n]) for name, ys in series]
    uid = _uid(kind, title, labels, series, y_label, width, height, horizontal)
    values = [v for _, ys in series for v in ys if v is not None]
    ticks = nice_ticks(max(values, default=0), all(float(v).is_integer() for v in values))
    empty = not any(values)
    swatch = _line_swatch if kind == "line" else (lambda i, x, y: _box_swatch(uid, i, x, y))
    legend, rows = _legend([f"{name} ({exact(sum(v for v in ys if v is not None))})" for name, ys in series],
                           swatch, 12, 38, width - 12)
    top = 38 + rows * ROW + (2 if rows else -8)
    tick_w = max(len(compact(t)) for t in ticks) * CHAR_W
    if horizontal:  # categories down the side, values along the bottom
        left = 12 + min(max(map(len, labels), default=0) * CHAR_W, width * 0.3) + 8
        right, bottom = width - 12 - tick_w / 2, height - 24 - (16 if y_label else 0)
    else:
        left, right, bottom = 12 + tick_w + 6 + (16 if y_label else 0), width - 12, height - 24
    span_v = (right - left) if horizontal else (bottom - top)
    band = ((bottom - top) if horizontal else (right - left)) / max(n, 1)

    def vpos(v: float) -> float:  # value -> position along the value axis
        frac = max(v, 0) / ticks[-1]  # clamped: negatives would leave the plot
        return left + span_v * frac if horizontal else bottom - span_v * frac

    def at(c: float, v: float) -> tuple[float, float]:  # (category offset, value) -> (x, y)
        return (vpos(v), top + c) if horizontal else (left + c, vpos(v))

    out = [legend, _patterns(uid, len(series)) if kind == "bar" else ""]
    for t in ticks:
        p = vpos(t)
        if horizontal:
            out.append(f'<line x1="{_n(p)}" y1="{_n(top)}" x2="{_n(p)}" y2="{_n(bottom)}" stroke="{GRID}"/>'
                       f'<text x="{_n(p)}" y="{_n(bottom + 16)}" text-anchor="middle">{compact(t)}</text>')
        else:
            out.append(f'<line x1="{_n(left)}" y1="{_n(p)}" x2="{_n(right)}" y2="{_n(p)}" stroke="{GRID}"/>'
                       f'<text x="{_n(left - 6)}" y="{_n(p + 4)}" text-anchor="end">{compact(t)}</text>')
    out.append(f'<polyline points="{_points([(left, top), (left, bottom), (right, bottom)])}" '
               f'fill="none" stroke="{AXIS}"/>')
    # Thin the category labels so they cannot overlap: at most MAX_X_LABELS, fewer if long.
    room = band * n / 16 if horizontal else (right - left) / (max(map(len, labels), default=1) * CHAR_W + 8)
    step = math.ceil(n / max(1, min(MAX_X_LABELS, int(room)))) if n else 1
    fit = int((left - 18) / CHAR_W)  # side labels are capped at 30% of the width; the full name stays in desc
    for i in range(0, n, step):
        c, text = band * (i + 0.5), labels[i]
        if horizontal:
            text = text if len(text) <= fit else text[:max(fit - 1, 1)] + "\u2026"
            out.append(f'<text class="cat" x="{_n(left - 6)}" y="{_n(top + c + 4)}" text-anchor="end">{_e(text)}</text>')
        else:
            out.append(f'<text class="cat" x="{_n(left + c)}" y="{_n(bottom + 16)}" text-anchor="middle">{_e(text)}</text>')
    if y_label:
        where = f'x="{_n((left + right) / 2)}" y="{_n(height - 6)}"' if horizontal \
            else f'transform="translate(16 {_n((top + bottom) / 2)}) rotate(-90)"'
        out.append(f'<text {where} text-anchor="middle">{_e(y_label)}</text>')
    if empty:
        out.append(f'<text x="{_n((left + right) / 2)}" y="{_n((top + bottom) / 2)}" text-anchor="middle" '
                   f'fill="{MUTED}">no data yet</text>')
    for s, (name, ys) in enumerate([] if empty else series):
        out.append('<g class="series">')
        if kind == "line":
            segments = [[]]
            for i, v in enumerate(ys):
                if v is None:
                    segments.append([])  # a gap in the data is a gap in the line, not a dip to 0
                else:
                    segments[-1].append(at(band * (i + 0.5), v))
            segments = [seg for seg in segments if seg]
            dash = DASHES[s % len(DASHES)]
            out += [f'<polyline points="{_points(seg)}" fill="none" stroke="{_col(s)}" stroke-width="2"'
                    + (f' stroke-dasharray="{dash}"' if dash else "") + "/>" for seg in segments]
            out += [_marker(s, x, y) for seg in segments for x, y in seg]
        else:
            thick = band * 0.8 / len(series)
            for i, v in enumerate(ys):
                if v is not None:
                    c = band * (i + 0.1) + s * thick
                    x, y = (left, top + c) if horizontal else at(c, v)
                    w, h = (vpos(v) - left, thick) if horizontal else (thick, bottom - y)
                    out.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" '
                               f'fill="{_fill(uid, s)}" stroke="{_col(s)}"/>')
        out.append("</g>")
    return _svg(uid, width, height, title, _describe(y_label, labels, series), "".join(out))


def line_chart(*, title: str, labels: list[str], series: list[tuple[str, list[float | int | None]]],
               y_label: str = "", width: int = 720, height: int = 260) -> Markup:
    """One polyline per series over the x labels; ``None`` breaks the line."""
    return _axis_chart("line", title, labels, series, y_label, width, height, False)


def bar_chart(*, title: str, labels: list[str], series: list[tuple[str, list[float | int | None]]],
              y_label: str = "", width: int = 720, height: int = 260, horizontal: bool = False) -> Markup:
    """Grouped bars, one group per label and one bar per series."""
    return _axis_chart("bar", title, labels, series, y_label, width, height, horizontal)


def progress_bar(*, title: str, parts: list[tuple[str, int]], width: int = 720, height: int = 28) -> Markup:
    """One stacked horizontal bar of counts (queued/sent/delivered/...), legend with each count."""
    width, height = int(width), int(height)
    parts = [(str(label), max(int(count), 0)) for label, count in parts]
    uid = _uid("progress", title, parts, width, height)
    total, left, right = sum(c for _, c in parts), 12, width - 12
    legend, rows = _legend([f"{label} {exact(c)}" for label, c in parts],
                           lambda i, x, y: _box_swatch(uid, i, x, y), left, 30 + height + 20, right)
    out = [_patterns(uid, len(parts)),
           f'<rect x="{left}" y="30" width="{right - left}" height="{height}" fill="{GRID}"/><g class="parts">']
    # Edges from cumulative sums, so rounding never makes the segments overshoot the track.
    edges = [left] + [round(left + (right - left) * cum / max(total, 1), 1) for cum in accumulate(c for _, c in parts)]
    for i, (label, c) in enumerate(parts):
        if c:
            out.append(f'<rect x="{_n(edges[i])}" y="30" width="{_n(edges[i + 1] - edges[i])}" height="{height}" '
                       f'fill="{_fill(uid, i)}" stroke="{_col(i)}"><title>{_e(label)}: {exact(c)}</title></rect>')
    out.append("</g>")
    if not total:
        out.append(f'<text x="{_n(width / 2)}" y="{_n(34 + height / 2)}" text-anchor="middle" '
                   f'fill="{MUTED}">no data yet</text>')
    desc = ("; ".join(f"{label}: {exact(c)} ({round(100 * c / total)}%)" for label, c in parts)
            + f"; {exact(total)} total.") if total else "No data yet."
    return _svg(uid, width, 30 + height + 12 + rows * ROW, title, desc, "".join(out) + legend)
