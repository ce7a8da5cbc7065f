"""The reports' view model: anchors, shares of the row budget, the worst-first order and the map's
layout, each held to values worked out by hand (never by the code under test)."""

from __future__ import annotations

from types import SimpleNamespace

from audit.render.view import anchor, cap, connection_anchors, map_view, pct, share, worst_first
from audit.report.model import ConnectionRow, MapCell, SegmentationMap


def test_anchors_are_a_short_slug_and_a_digest():
    assert anchor("ns", "Prod Web") == "ns-prod-web-51af7b3c"
    assert anchor("f", "x" * 60) == "f-" + "x" * 40 + "-42f2d973"  # the slug cut at 40 characters
    assert anchor("ns", "---") == "ns-cb3f91d5"  # nothing left of the slug: the digest alone
    assert anchor("ns", None) == anchor("ns", "") == "ns-e3b0c442"


def test_percentages_round_and_never_divide_by_zero():
    assert [pct(1, 3), pct(2, 3), pct(5, 5), pct(0, 7), pct(3, 0)] == [33, 67, 100, 0, 0]


def test_tables_share_the_row_budget():
    assert share([3, 4], 10) == [3, 4]  # within the budget: whole
    assert share([3, 4], 7) == [3, 4]
    rows = cap(list(range(10)), 4)
    assert rows.rows == [0, 1, 2, 3] and rows.total == 10 and rows.hidden == 6
    assert share([100, 5, 50], 40) == [17, 5, 17]  # the highest cap that fits: 17 + 5 + 17 = 39
    assert share([100, 5, 50], 39) == [17, 5, 17]
    assert share([100, 5, 50], 38) == [16, 5, 16]
    assert share([100, 100], 6) == [5, 5]  # never under the floor
    assert share([100, 2], 6, floor=3) == [4, 2]  # 4 + 2 fits the budget exactly


def _ns(name: str, pods: int = 1, ingress: bool = False, egress: bool = False) -> SimpleNamespace:
    return SimpleNamespace(name=name, pods=pods, default_deny_ingress=ingress, default_deny_egress=egress)


def _finding(namespace: str | None, severity: str, status: str = "fail") -> SimpleNamespace:
    return SimpleNamespace(namespace=namespace, severity=severity, status=status)


def test_namespaces_are_ranked_worst_first():
    report = SimpleNamespace(
        namespaces=[_ns("calm", pods=50, ingress=True, egress=True), _ns("crit"), _ns("highs"), _ns("waived"),
                    _ns("open-big", pods=9), _ns("open-small", pods=2), _ns("half", pods=2, ingress=True), _ns("a-open", pods=2),
                    _ns("out-only", pods=1, egress=True), _ns("closed", pods=99, ingress=True, egress=True)],
        findings=[_finding("crit", "critical"),  # 20
                  _finding("highs", "high"), _finding("highs", "high"), _finding("highs", "medium"),  # 12
                  _finding("waived", "critical", status="waived"), _finding(None, "critical"),  # neither counts
                  _finding("calm", "low")])  # 0.5
    order = worst_first(report)  # type: ignore[arg-type]
    assert sorted(order, key=order.__getitem__) == [
        "crit", "highs", "calm",  # by weighted findings (a waived one, or one without a namespace, weighs nothing)
        "open-big", "a-open", "open-small", "waived",  # no default-deny: more pods first, then the name
        "half", "out-only",  # one direction closed, either one
        "closed",  # both
    ]
    assert order["crit"] == 0 and order["closed"] == 9


def test_the_map_draws_few_namespaces_as_a_graph():
    cells = (MapCell("a", "b", "all", 1), MapCell("b", "a", "some", 2), MapCell("a", "a", "all", 3), MapCell("a", "internet", "some", 1))
    view = map_view(SegmentationMap(("a", "b"), cells, 2), [])
    assert view is not None and view["graph"]
    # Two namespaces on a circle of radius 170 around (260, 220), the first at the top.
    assert view["nodes"] == {"a": (260.0, 50.0), "b": (260.0, 390.0), "internet": (520.0, 40.0)}
    # Each edge moved 4 to its own right, so a -> b and b -> a are drawn side by side; no edge to itself.
    assert [(c.src, c.dst, start, end) for c, start, end in view["edges"]] == [
        ("a", "b", (256.0, 50.0), (256.0, 390.0)),
        ("b", "a", (264.0, 390.0), (264.0, 50.0)),
        ("a", "internet", (260.2, 54.0), (520.2, 44.0)),
    ]
    assert view["columns"] == ["a", "b", "internet", "sensitive"]
    # Three: 120 degrees apart (260 +- 170 cos 30, 220 + 170 sin 30); an edge at a slant moved 4 to its right.
    three = map_view(SegmentationMap(("a", "b", "c"), (MapCell("b", "internet", "some", 1),), 3), [])
    assert three is not None
    assert three["nodes"] == {"a": (260.0, 50.0), "b": (407.2, 305.0), "c": (112.8, 305.0), "internet": (520.0, 40.0)}
    assert [(start, end) for _, start, end in three["edges"]] == [((410.9, 306.6), (523.7, 41.6))]
    eight = map_view(SegmentationMap(tuple(f"n{i}" for i in range(8)), (), 8), [])
    assert eight is not None and eight["graph"] and eight["nodes"]["n1"] == (380.2, 99.8) and len(eight["nodes"]) == 9
    one = map_view(SegmentationMap(("a",), (), 1), [])
    assert one is not None and one["graph"] and one["nodes"] == {"a": (260.0, 50.0), "internet": (520.0, 40.0)}
    for count in (0, 9):  # none, or more than a graph holds: a matrix
        matrix = map_view(SegmentationMap(tuple(f"n{i}" for i in range(count)), (), count), [])
        assert matrix is not None and not matrix["graph"] and matrix["nodes"] == {} and matrix["edges"] == []
    assert map_view(None, []) is None


def test_each_namespace_pair_links_its_first_connection_row():
    rows = [ConnectionRow("a/x[Deployment]", "b/y[Deployment]", "All"),
            ConnectionRow("a/z[Deployment]", "b/w[Deployment]", "TCP 80"),  # the same pair: no anchor
            ConnectionRow("1.2.3.4/32[External]", "a/x[Deployment]", "All"),  # from outside: no anchor
            ConnectionRow("a/x[Deployment]", "8.8.8.8/32[External]", "All"),
            ConnectionRow("b/y[Deployment]", "0.0.0.0/0", "All")]  # an address without a kind is outside too
    assert connection_anchors(rows) == [anchor("pair", "a > b"), None, None, anchor("pair", "a > internet"), anchor("pair", "b > internet")]
