"""The rule-driven connectivity (`ClassGraph`) equals a brute-force pairwise oracle.

The oracle compares every pod class with every other and every outside segment, the way
`connectivity` worked before it had to scale; any pair the graph's candidate sets miss, or
any connection they invent, shows up here as a differing line.
"""

from __future__ import annotations

import pytest

from audit.engine.analysis import Analysis
from audit.engine.connectivity import connections, segments
from audit.engine.ports import NONE, PortSet
from audit.sources.manifests import load_manifests
from tests import test_admin, test_calico, test_cilium, test_semantics
from tests.conftest import EXAMPLES, analyse
from tests.test_netpol_analyzer_cases import canonical


def pairwise(analysis: Analysis, namespaces: set[str] | None = None) -> list[str]:
    classes = [c for c in analysis.real_classes() if c.governed]
    pairs: dict[tuple[str, str], PortSet] = {}

    def add(src: str, dst: str, conns: PortSet) -> None:
        if conns and src != dst:
            pairs[(src, dst)] = pairs.get((src, dst), NONE) | conns

    for src in classes:
        for dst in classes:
            if namespaces is not None and src.namespace not in namespaces and dst.namespace not in namespaces:
                continue
            conns = analysis.side_ports(src.id, "Egress", dst.id, dst.ports) & analysis.side_ports(dst.id, "Ingress", src.id, dst.ports)
            for s in src.workloads:
                for d in dst.workloads:
                    add(s.ref, d.ref, conns)
    for cls in classes:
        if namespaces is not None and cls.namespace not in namespaces:
            continue
        for direction in ("Egress", "Ingress"):
            for seg in segments(analysis):
                conns = analysis.side_ports(cls.id, direction, seg.probe, cls.ports if direction == "Ingress" else None)
                for w in cls.workloads:
                    if direction == "Egress":
                        add(w.ref, seg.text(), conns)
                    else:
                        add(seg.text(), w.ref, conns)
    # Cut ranges that connect alike are one line, in address order (the canonical form, written in the test).
    return canonical([f"{s} => {d} : {c}" for (s, d), c in sorted(pairs.items())])


def scenarios() -> list[tuple[str, str]]:
    out = [(f"semantics: {c[0]}", test_semantics.policies(*c[1])) for c in test_semantics.CASES]
    for module in (test_admin, test_cilium, test_calico):
        out += [(f"{module.__name__.rsplit('_', 1)[1]}: {c[0]}", test_admin.cluster(*c[1])) for c in module.CASES]
    return out


SCENARIOS = scenarios()


@pytest.mark.parametrize("text", [s[1] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_graph_equals_pairwise_oracle(text):
    analysis = analyse(text)
    expected = pairwise(analysis)
    assert expected, "a scenario with no connection at all would prove nothing"
    assert [str(c) for c in connections(analysis)] == expected


@pytest.mark.parametrize("example", ["lab-before", "lab-solution", "war-story", "flannel", "mixed-cluster"])
def test_graph_equals_pairwise_oracle_on_examples(example):
    analysis = Analysis(load_manifests([str(EXAMPLES / example)]))
    assert [str(c) for c in connections(analysis)] == pairwise(analysis)
    some = sorted(analysis.classes_by_ns)[:2]
    assert [str(c) for c in connections(analysis, set(some))] == pairwise(analysis, set(some))


def test_streamed_formats_equal_whole_documents(tmp_path):
    import csv
    import io
    import json

    from audit.render.connectivity import render

    analysis = Analysis(load_manifests([str(EXAMPLES / "mixed-cluster")]))
    conns = list(connections(analysis))
    assert len(conns) > 10
    as_json = "".join(render(iter(conns), "json"))
    assert as_json == json.dumps([{"src": c.src, "dst": c.dst, "conn": str(c.conns)} for c in conns], indent=2) + "\n"
    assert "".join(render(iter([]), "json")) == "[]\n"
    rows = list(csv.reader(io.StringIO("".join(render(iter(conns), "csv")))))
    assert rows[0] == ["src", "dst", "conn"] and rows[1:] == [[c.src, c.dst, str(c.conns)] for c in conns]
    assert "".join(render(iter(conns), "txt")).splitlines() == [str(c) for c in conns]


def test_a_failing_stream_leaves_the_old_file(tmp_path):
    from audit.ops.atomic import write_atomic_chunks

    target = tmp_path / "conns.txt"
    target.write_text("old\n")

    def chunks():
        yield "new line\n"
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_atomic_chunks(target, chunks())
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["conns.txt"]


def blast_from_lines(lines: list) -> list[tuple]:
    """The blast radius read off the listing: the definition the class-level count must meet."""
    reach: dict[str, tuple[set, set, list]] = {}
    for c in lines:
        if "[" not in c.src or c.src.endswith("[External]"):
            continue
        ns = c.src.split("/", 1)[0]
        workloads, namespaces, outside = reach.setdefault(ns, (set(), set(), [False]))
        if "[" in c.dst and not c.dst.endswith("[External]"):
            workloads.add(c.dst)
            if c.dst.split("/", 1)[0] != ns:
                namespaces.add(c.dst.split("/", 1)[0])
        else:
            outside[0] = True
    return sorted(((ns, len(w), len(n), o[0]) for ns, (w, n, o) in reach.items()), key=lambda r: (-r[1], r[0]))


def rows(radius) -> list[tuple]:
    return [(r.namespace, r.workloads, r.namespaces, r.outside) for r in radius]


SELF_ONLY = "".join(f"""
---
apiVersion: v1
kind: Pod
metadata: {{name: p{i}, namespace: {ns}, labels: {{app: p{i}}}}}
spec: {{containers: [{{name: c, image: i}}]}}""" for i, ns in enumerate(["a", "a-b", "a", "b", "solo"]))


@pytest.mark.parametrize("text", [s[1] for s in SCENARIOS] + [SELF_ONLY], ids=[s[0] for s in SCENARIOS] + ["self-only"])
def test_blast_radius_counts_what_the_listing_shows(text):
    from audit.engine.connectivity import blast_radius

    analysis = analyse(text)
    assert rows(blast_radius(analysis)) == blast_from_lines(list(connections(analysis)))


@pytest.mark.parametrize("example", ["lab-before", "lab-solution", "war-story", "flannel", "mixed-cluster"])
def test_blast_radius_counts_what_the_listing_shows_on_examples(example):
    from audit.engine.connectivity import blast_radius

    analysis = Analysis(load_manifests([str(EXAMPLES / example)]))
    assert rows(blast_radius(analysis)) == blast_from_lines(list(connections(analysis)))
    focus = set(sorted(analysis.classes_by_ns)[:2])
    assert rows(blast_radius(analysis, focus)) == [r for r in blast_from_lines(list(connections(analysis))) if r[0] in focus]


def test_blast_format():
    from typer.testing import CliRunner

    from audit.cli import app
    from audit.engine.connectivity import blast_radius

    mixed = str(EXAMPLES / "mixed-cluster")
    out = CliRunner().invoke(app, ["connectivity", mixed, "-f", "blast"])
    assert out.exit_code == 0 and out.output.startswith("Blast radius")
    expected = blast_radius(Analysis(load_manifests([mixed])))
    assert len(expected) > 3
    for row in expected:
        assert any(line.split()[:3] == [row.namespace, str(row.workloads), str(row.namespaces)] for line in out.output.splitlines())


def test_outside_segments_cover_each_address_space_from_its_first_address():
    """The outside address space is cut at every block's edges and covers each version whole, from
    its first address to its last, with no gap and no extra cut (IPv6 only when a policy names it)."""
    from audit.engine.connectivity import segments
    from tests.conftest import analyse
    from tests.test_semantics import policies

    egress = ("prod", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [
        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}, {"ipBlock": {"cidr": "fd00::/8"}}]}]})
    found = [(s.version, s.first, s.last) for s in segments(analyse(policies(egress)))]
    ten, ten_one = 10 << 24, (10 << 24) | (1 << 16)
    fd = 0xFD << 120
    assert found == [
        (4, 0, ten - 1), (4, ten, ten_one - 1), (4, ten_one, ten_one + (1 << 16) - 1), (4, ten_one + (1 << 16), (11 << 24) - 1),
        (4, 11 << 24, 2**32 - 1),
        (6, 0, fd - 1), (6, fd, fd + (1 << 120) - 1), (6, fd + (1 << 120), 2**128 - 1)]
    assert [(s.version, s.first, s.last) for s in segments(analyse(policies()))] == [(4, 0, 2**32 - 1)]
