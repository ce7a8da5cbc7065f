"""The class-set answer to "can any source of this pool reach this port?" equals a pairwise oracle.

The oracle asks `Analysis.allowed` (the per-port stack walk of `reach`) for every source of the
pool; `Exposure.source_of` uses peer sets, egress groups and their index instead. Any source
the index misses (a false "nobody") or invents (a class the walk denies) fails here, on every
truth-table scenario of every policy kind and on the examples.
"""

from __future__ import annotations

import pytest

from audit.engine.analysis import Analysis
from audit.engine.connectivity import ClassGraph
from audit.engine.exposure import Exposure
from audit.sources.manifests import load_manifests
from tests.conftest import EXAMPLES, analyse
from tests.test_admin import cluster
from tests.test_connectivity_graph import SCENARIOS

PORTS = (80, 53, 5432, 8080, 6379)


def pools(analysis: Analysis, ids: list[int]) -> list[frozenset[int]]:
    """The whole cluster, every namespace's complement (the check's pools), and every other class."""
    out = [frozenset(ids), frozenset(ids[::2]), frozenset(ids[1::2])]
    for ns in sorted({analysis.classes[c].namespace for c in ids}):
        out.append(frozenset(c for c in ids if analysis.classes[c].namespace != ns))
    return out


def compare(analysis: Analysis) -> tuple[int, int]:
    """(questions asked, questions answered "reachable"), after checking each against the oracle."""
    graph = ClassGraph(analysis)
    exposure = Exposure(graph)
    ids = sorted(graph.ids)
    checked = reachable = 0
    for pool in pools(analysis, ids):
        for dst in ids:
            ports = {p.port for p in analysis.classes[dst].ports if isinstance(p.port, int)} | set(PORTS)
            for port in sorted(ports):
                expected = {s for s in pool if analysis.allowed(s, dst, port).allowed}
                got = exposure.source_of(dst, port, pool)
                assert (got is None) == (not expected), (analysis.classes[dst].describe(), port, sorted(expected), got)
                assert got is None or got in expected
                checked += 1
                reachable += bool(expected)
    return checked, reachable


@pytest.mark.parametrize("text", [s[1] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_source_of_equals_pairwise_oracle(text):
    assert compare(analyse(text))[0] > 0


def test_the_scenarios_ask_both_answers_often():
    """Across the scenarios, many questions are answered each way: the oracle is not trivial."""
    checked = reachable = 0
    for _, text in SCENARIOS:
        asked, yes = compare(analyse(text))
        checked, reachable = checked + asked, reachable + yes
    assert 0.1 < reachable / checked < 0.9, (reachable, checked)


@pytest.mark.parametrize("example", ["lab-before", "lab-solution", "war-story", "mixed-cluster"])
def test_source_of_equals_pairwise_oracle_on_examples(example):
    checked, reachable = compare(Analysis(load_manifests([str(EXAMPLES / example)])))
    assert 0 < reachable and (example == "lab-before" or reachable < checked)  # lab-before is flat: all reachable


def test_sources_whose_egress_depends_on_themselves_are_judged_one_by_one():
    """A Calico rule that narrows its own side (here the source) gives each class its own egress
    verdict: grouping staging's pods by policy alone would judge `web` by `extra`'s denial."""
    from tests.test_calico import cnp

    extra = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "extra", "namespace": "staging", "labels": {"app": "extra"}},
             "spec": {"containers": [{"name": "c", "image": "i"}]}}
    policy = cnp("staging", "only-web-out", {"selector": "all()", "types": ["Egress"],
                                               "egress": [{"action": "Allow", "source": {"selector": "app == 'web'"}}]})
    analysis = analyse(cluster(extra, policy))
    graph = ClassGraph(analysis)
    staging = frozenset(c for c in graph.ids if analysis.classes[c].namespace == "staging")
    (db,) = analysis.find_workload("prod", "db")
    (web,) = analysis.find_workload("staging", "web")
    (shut,) = analysis.find_workload("staging", "extra")
    assert shut < web, "the denied class must come first for the test to mean anything"
    assert analysis.allowed(web, db, 5432).allowed and not analysis.allowed(shut, db, 5432).allowed
    assert Exposure(graph).source_of(db, 5432, staging) == web
