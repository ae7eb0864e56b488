"""Server-side SVG charts: well-formed, accessible, escaped, deterministic. No database needed."""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from gateway.console.charts import PALETTE, bar_chart, compact, exact, line_chart, nice_ticks, progress_bar

NS = "{http://www.w3.org/2000/svg}"
HOURS = [f"14:{m:02d}" for m in range(0, 60, 5)]


def parse(svg: Markup) -> ET.Element:
    assert isinstance(svg, Markup)
    return ET.fromstring(str(svg))


def find(root: ET.Element, tag: str) -> list[ET.Element]:
    return list(root.iter(NS + tag))


def polylines(root: ET.Element) -> list[list[tuple[float, float]]]:
    """Data polylines only (the axis is a polyline too, outside any series group)."""
    return [[tuple(map(float, p.split(","))) for p in line.get("points").split()]
            for g in root.iter(NS + "g") if g.get("class") == "series" for line in g.iter(NS + "polyline")]


def cat_labels(root: ET.Element) -> list[str]:
    return [t.text for t in find(root, "text") if t.get("class") == "cat"]


def tick_labels(root: ET.Element) -> list[str]:
    return [t.text for t in find(root, "text") if t.get("text-anchor") == "end" and t.get("class") != "cat"]


def test_accessible_responsive_root():
    root = parse(line_chart(title="Sent", labels=HOURS[:3], series=[("sent", [1, 2, 3])], y_label="messages"))
    assert root.tag == NS + "svg"
    assert root.get("role") == "img" and root.get("width") == "100%" and root.get("height") is None
    assert root.get("viewBox") == "0 0 720 260" and root.get("preserveAspectRatio") == "xMidYMid meet"
    assert "max-width:720px" in root.get("style")
    title_id, desc_id = root.get("aria-labelledby").split()
    assert root.find(NS + "title").get("id") == title_id and root.find(NS + "desc").get("id") == desc_id
    assert root.find(NS + "title").text == "Sent"


def test_ids_differ_between_charts_and_are_stable():
    a = line_chart(title="A", labels=["x"], series=[("s", [1])])
    b = line_chart(title="B", labels=["x"], series=[("s", [1])])
    assert parse(a).find(NS + "title").get("id") != parse(b).find(NS + "title").get("id")
    assert a == line_chart(title="A", labels=["x"], series=[("s", [1])])


def test_polyline_points_match_data():
    data = [("sent", [3, 5, 8, 13, 21, 34]), ("read", [1, 1, 2, 3, 5, 8])]
    root = parse(line_chart(title="t", labels=HOURS[:6], series=data))
    lines = polylines(root)
    assert [len(p) for p in lines] == [6, 6]
    # Larger values are drawn higher (smaller y), and x is shared between series.
    ys = [y for _, y in lines[0]]
    assert ys == sorted(ys, reverse=True)
    assert [x for x, _ in lines[0]] == [x for x, _ in lines[1]]
    # The second series is told apart by more than its colour.
    styled = [g.find(NS + "polyline") for g in root.iter(NS + "g") if g.get("class") == "series"]
    assert styled[0].get("stroke") != styled[1].get("stroke")
    assert styled[0].get("stroke-dasharray") != styled[1].get("stroke-dasharray")


def test_none_breaks_the_line():
    root = parse(line_chart(title="t", labels=HOURS[:5], series=[("sent", [1, 2, None, 4, 5])]))
    assert [len(p) for p in polylines(root)] == [2, 2]


def test_ragged_series_are_padded_not_shifted():
    root = parse(line_chart(title="t", labels=HOURS[:4], series=[("sent", [1, 2])]))
    assert [len(p) for p in polylines(root)] == [2]


def test_labels_and_titles_are_escaped():
    evil = '<script>alert("x")</script> & co'
    for svg in (line_chart(title=evil, labels=[evil, "b"], series=[(evil, [1, 2])], y_label=evil),
                bar_chart(title=evil, labels=[evil], series=[(evil, [1])], horizontal=True),
                progress_bar(title=evil, parts=[(evil, 3)])):
        assert "<script>" not in svg and "& co" not in svg and "&amp; co" in svg
        root = parse(svg)
        assert root.find(NS + "title").text == evil  # round-trips to the original text
        assert not any(el.tag == "script" or el.tag == NS + "script" for el in root.iter())


def test_control_characters_do_not_break_the_xml():
    parse(bar_chart(title="a\x00b", labels=["c\x1bd"], series=[("e\x0bf", [1])]))


def test_desc_summarises_totals_and_peaks():
    root = parse(line_chart(title="t", labels=HOURS[:3], y_label="Messages",
                            series=[("sent", [40, 1200, 10]), ("delivered", [5, None, 7])]))
    desc = root.find(NS + "desc").text
    assert "sent: 1,250 total, peak 1,200 at 14:05" in desc
    assert "delivered: 12 total, peak 7 at 14:10" in desc
    assert desc.startswith("Messages from 14:00 to 14:10")
    legend = [t.text for g in root.iter(NS + "g") if g.get("class") == "legend" for t in g.iter(NS + "text")]
    assert legend == ["sent (1,250)", "delivered (12)"]


@pytest.mark.parametrize("series", [[], [("sent", [])], [("sent", [0, 0, 0])], [("sent", [None, None, None])]])
def test_empty_data_says_no_data_yet(series):
    for chart in (line_chart, bar_chart):
        root = parse(chart(title="t", labels=HOURS[:3] if series and series[0][1] else [], series=series))
        assert "no data yet" in [t.text for t in find(root, "text")]
        assert root.find(NS + "desc").text == "No data yet."
        assert polylines(root) == []


@pytest.mark.parametrize("peak", [1, 3, 7, 10, 11, 99, 100, 101, 1234, 5e6, 0.3, 2.75])
def test_nice_ticks(peak):
    ticks = nice_ticks(peak, integer=float(peak).is_integer())
    assert ticks[0] == 0 and ticks[-1] >= peak and 4 <= len(ticks) <= 5
    step = ticks[1]
    assert all(math.isclose(b - a, step) for a, b in zip(ticks, ticks[1:]))
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))
    assert all(len(repr(t)) < 10 for t in ticks)  # no 0.30000000000000004


def test_axis_ticks_are_rendered_compactly_and_cover_the_max():
    root = parse(line_chart(title="t", labels=HOURS[:2], series=[("sent", [1200, 3100])]))
    assert tick_labels(root) == ["0", "1k", "2k", "3k", "4k"]


def test_number_formatting():
    assert [compact(v) for v in (0, 5, 2.5, 999, 1000, 1200, 25_000, 1_500_000, 2e9)] == \
        ["0", "5", "2.5", "999", "1k", "1.2k", "25k", "1.5M", "2B"]
    assert [exact(v) for v in (0, 1200, 1234567, 12.5, 3.0)] == ["0", "1,200", "1,234,567", "12.5", "3"]


def test_x_labels_are_thinned():
    days = [f"2026-11-{d:02d}" for d in range(1, 31)]
    root = parse(line_chart(title="t", labels=days, series=[("sent", list(range(30)))]))
    shown = cat_labels(root)
    assert 1 < len(shown) <= 8 and shown[0] == days[0]
    assert len(polylines(root)[0]) == 30  # thinning only affects the labels, not the data
    assert len(cat_labels(parse(line_chart(title="t", labels=HOURS[:5], series=[("s", [1] * 5)])))) == 5


def test_no_float_noise_in_coordinates():
    values = [0.1, 0.2, 0.3, 1 / 3, 2, 3, 7]
    for svg in (line_chart(title="t", labels=[str(i) for i in range(7)], series=[("s", values)], width=701),
                bar_chart(title="t", labels=[str(i) for i in range(7)], series=[("s", values)] * 3, height=333)):
        attrs = " ".join(v for el in parse(svg).iter() for k, v in el.attrib.items() if k != "style")
        numbers = re.findall(r"\d+\.\d+", attrs)
        assert numbers and all(len(n.split(".")[1]) == 1 for n in numbers)


@pytest.mark.parametrize("horizontal", [False, True])
def test_grouped_bars(horizontal):
    root = parse(bar_chart(title="By channel", labels=["whatsapp", "sms", "messenger"], horizontal=horizontal,
                           series=[("sent", [100, 50, 25]), ("failed", [4, None, 1])]))
    groups = [g for g in root.iter(NS + "g") if g.get("class") == "series"]
    bars = [g.findall(NS + "rect") for g in groups]
    assert [len(b) for b in bars] == [3, 2]
    length = "width" if horizontal else "height"
    sizes = [float(r.get(length)) for r in bars[0]]
    assert sizes[0] == pytest.approx(2 * sizes[1], abs=0.2) == pytest.approx(4 * sizes[2], abs=0.4)
    assert bars[1][0].get("fill") != bars[0][0].get("fill")  # a hatch, not only another colour
    assert cat_labels(root) == ["whatsapp", "sms", "messenger"]


def test_long_side_labels_are_clipped_but_kept_in_desc():
    name = "a very long agent display name that goes on and on and on and on and on"
    root = parse(bar_chart(title="t", labels=[name], series=[("handled", [3])], horizontal=True))
    assert cat_labels(root)[0].endswith("\u2026") and len(cat_labels(root)[0]) < len(name)
    assert name in root.find(NS + "desc").text


def test_progress_bar_widths_are_proportional_and_fill_the_track():
    counts = [("queued", 100), ("sent", 1200), ("delivered", 800), ("read", 300), ("failed", 20), ("skipped", 0)]
    root = parse(progress_bar(title="Campaign", parts=counts, width=600))
    track = root.find(NS + "rect")  # the grey track, drawn before the parts
    rects = [r for g in root.iter(NS + "g") if g.get("class") == "parts" for r in g.findall(NS + "rect")]
    assert len(rects) == 5  # a zero count draws nothing but stays in the legend
    widths = [float(r.get("width")) for r in rects]
    total, track_w = sum(c for _, c in counts), float(track.get("width"))
    assert sum(widths) == pytest.approx(track_w, abs=0.05)
    for w, (_, c) in zip(widths, counts):
        assert w == pytest.approx(track_w * c / total, abs=0.15)
    xs = [float(r.get("x")) for r in rects]
    assert all(math.isclose(x + w, nx, abs_tol=0.05) for x, w, nx in zip(xs, widths, xs[1:]))
    legend = [t.text for g in root.iter(NS + "g") if g.get("class") == "legend" for t in g.iter(NS + "text")]
    assert legend == ["queued 100", "sent 1,200", "delivered 800", "read 300", "failed 20", "skipped 0"]
    assert "2,420 total" in root.find(NS + "desc").text


def test_progress_bar_empty():
    root = parse(progress_bar(title="Campaign", parts=[("queued", 0), ("sent", 0)]))
    assert "no data yet" in [t.text for t in find(root, "text")]
    assert parse(progress_bar(title="Campaign", parts=[])).find(NS + "desc").text == "No data yet."


def test_legend_wraps_instead_of_overflowing():
    series = [(f"channel number {i}", [i, i + 1]) for i in range(12)]
    root = parse(line_chart(title="t", labels=["a", "b"], series=series, width=400))
    legend = next(g for g in root.iter(NS + "g") if g.get("class") == "legend")
    rows = {t.get("y") for t in legend.iter(NS + "text")}
    assert len(rows) > 1
    assert all(float(t.get("x")) + len(t.text) * 6.5 <= 400 for t in legend.iter(NS + "text"))


def test_deterministic_output():
    def render():
        return (line_chart(title="t", labels=HOURS, series=[("sent", list(range(12))), ("read", [None] * 12)]),
                bar_chart(title="b", labels=["x", "y"], series=[("s", [1.5, 2])], horizontal=True),
                progress_bar(title="p", parts=[("sent", 1), ("read", 2)]))
    assert render() == render()


def test_palette_contrast_against_white():
    def luminance(hex_colour: str) -> float:
        rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    assert len(set(PALETTE)) >= 6
    assert all(1.05 / (luminance(c) + 0.05) >= 3 for c in PALETTE)
