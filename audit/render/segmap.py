"""A before/after pair of segmentation maps as one SVG file (`diff --map`, `fix --out`)."""

from __future__ import annotations

from audit.render.view import environment, map_view
from audit.report.model import SegmentationMap


def render_map_pair(before: SegmentationMap, after: SegmentationMap, before_title: str, after_title: str) -> str:
    """One standalone SVG: the two maps side by side, drawn with the reports' own macro."""
    views = [map_view(before, []) or {}, map_view(after, []) or {}]
    if views[0]["graph"]:
        width, height = 560, 440
    else:
        width = 160 + len(views[0]["columns"]) * 13 + 20
        height = 100 + len(before.namespaces) * 13 + 10
    return environment().get_template("segmap-pair.svg.j2").render(
        before=views[0], after=views[1], before_title=before_title, after_title=after_title, width=width, height=height)
