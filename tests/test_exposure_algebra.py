"""The class-set answer to "can any source of this pool reach this port?" equals a pairwise oracle.

The oracle asks `Analysis.allowed` (the per-port stack walk of `reach`) for every source of the
pool; `Exposure.source_of` uses peer sets, egress groups and their index instead. Any source
the index misses (a false "nobody") or invents (a class the walk denies) fails here, on every
truth-table scenario of every policy kind and on the examples.
"""

from __future__ import annotations

import pytest
import yaml

from audit.engine.analysis import Analysis
from audit.engine.connectivity import ClassGraph
from audit.engine.exposure import Exposure
from audit.sources.manifests import load_manifests
from tests.conftest import EXAMPLES, analyse
from tests.test_admin import cluster
from tests.test_checks import KUBE_DNS
from tests.test_connectivity_graph import SCENARIOS

PORTS = (80, 53, 5432, 8080, 6379)


def pools(analysis: Analysis, ids: list[int]) -> list[frozenset[int]]:
    """The whole cluster, every namespace's complement (the check's pools), and every other class."""
    out = [frozenset(ids), frozenset(ids[::2]), frozenset(ids[1::2])]
    for ns in sorted({analysis.classes[c].namespace for c in ids}):
        out.append(frozenset(c for c in ids if analysis.classes[c].namespace != ns))
    return out


def compare(analysis: Analysis) -> tuple[int, int]:
    """(questions asked, questions answered "reachable"), after checking each against the oracle.
    The pools are asked in both orders, each order with its own index: what one pool's answers
    leave in the memos must not decide another's (a pool that meets nobody, then one that does)."""
    checked = reachable = 0
    for backwards in (False, True):
        asked, yes = _compare(analysis, backwards)
        checked, reachable = checked + asked, reachable + yes
    return checked, reachable


def _compare(analysis: Analysis, backwards: bool) -> tuple[int, int]:
    graph = ClassGraph(analysis)
    exposure = Exposure(graph)
    ids = sorted(graph.ids)
    checked = reachable = 0
    asked = pools(analysis, ids)
    for pool in asked[::-1] if backwards else asked:
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


def _self_narrowed() -> tuple[dict, dict]:
    """A pod `extra` beside staging's `web`, and a Calico egress rule that narrows its own side
    (the source) to `web`."""
    from tests.test_calico import cnp

    extra = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "extra", "namespace": "staging", "labels": {"app": "extra"}},
             "spec": {"containers": [{"name": "c", "image": "i"}]}}
    policy = cnp("staging", "only-web-out", {"selector": "all()", "types": ["Egress"],
                                               "egress": [{"action": "Allow", "source": {"selector": "app == 'web'"}}]})
    return extra, policy


_SELF_NARROWED = _self_narrowed()


def test_sources_whose_egress_depends_on_themselves_are_judged_one_by_one():
    """A Calico rule that narrows its own side (here the source) gives each class its own egress
    verdict: grouping staging's pods by policy alone would judge `web` by `extra`'s denial."""
    analysis = analyse(cluster(*_SELF_NARROWED))
    graph = ClassGraph(analysis)
    staging = frozenset(c for c in graph.ids if analysis.classes[c].namespace == "staging")
    (db,) = analysis.find_workload("prod", "db")
    (web,) = analysis.find_workload("staging", "web")
    (shut,) = analysis.find_workload("staging", "extra")
    assert shut < web, "the denied class must come first for the test to mean anything"
    assert analysis.allowed(web, db, 5432).allowed and not analysis.allowed(shut, db, 5432).allowed
    assert Exposure(graph).source_of(db, 5432, staging) == web


def _egress_answers(analysis: Analysis) -> tuple[int, int]:
    """`ClassGraph.egress_allows` (kept per egress content) against the stack's own per-port walk of
    the egress side (`Analysis.allowed(...).egress`), for every source towards every class and the
    metadata address, on ports and protocols asked in turn: (questions, answered "allowed")."""
    from audit.checks.fixes import METADATA_IP

    graph = ClassGraph(analysis)
    ids = sorted(graph.ids)
    asked = allowed = 0
    for dst in [*ids, METADATA_IP]:
        for port, protocol in ((53, "UDP"), (53, "TCP"), (80, "TCP"), (5432, "TCP")):
            for src in ids:
                expected = analysis.allowed(src, dst, port, protocol).egress.allowed
                assert graph.egress_allows(src, dst, port, protocol) == expected, (analysis.classes[src].describe(), dst, port, protocol)
                asked, allowed = asked + 1, allowed + expected
    return asked, allowed


def test_egress_allows_equals_the_walk_of_the_egress_side():
    """Across the scenarios and the examples, sources alike in egress content share one answer per
    (destination, port, protocol), and it is the walk's, both ways."""
    asked = allowed = 0
    for text in [s[1] for s in SCENARIOS]:
        a, b = _egress_answers(analyse(text))
        asked, allowed = asked + a, allowed + b
    for example in ("lab-solution", "war-story", "mixed-cluster"):
        a, b = _egress_answers(Analysis(load_manifests([str(EXAMPLES / example)])))
        asked, allowed = asked + a, allowed + b
    a, b = _egress_answers(analyse(UDP_DNS_ONLY))
    # Two sources, three destinations (the two classes and the metadata address), four ports:
    # kube-dns's egress is open (12 allowed); api's allows kube-dns on 53/UDP alone (1).
    assert (a, b) == (2 * 3 * 4, 12 + 1)
    asked, allowed = asked + a, allowed + b
    # Egress that depends on the source itself (no content to share): each class its own answer.
    a, b = _egress_answers(analyse(cluster(*_SELF_NARROWED)))
    asked, allowed = asked + a, allowed + b
    assert a > b > 0, (a, b)
    assert allowed > 1000 and asked - allowed > 1000, (allowed, asked)  # both answers, many times


# Egress to the DNS pods on 53/UDP only: 53/TCP and every other port are denied to the same
# destination, by the same rule.
UDP_DNS_ONLY = KUBE_DNS + """
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: app, labels: {app: api}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: dns-udp-only, namespace: app}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]
    ports: [{port: 53, protocol: UDP}]
"""


NAMED_PORT = """
apiVersion: v1
kind: Namespace
metadata: {name: db, labels: {kubernetes.io/metadata.name: db}}
---
apiVersion: v1
kind: Namespace
metadata: {name: app, labels: {kubernetes.io/metadata.name: app}}
---
apiVersion: v1
kind: Pod
metadata: {name: named, namespace: db, labels: {tier: data, which: named}}
spec: {containers: [{name: c, image: i, ports: [{containerPort: 5432, name: pg}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: db, labels: {tier: data, which: plain}}
spec: {containers: [{name: c, image: i, ports: [{containerPort: 5432}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: app, labels: {app: client}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: pg-from-app, namespace: db}
spec:
  podSelector: {matchLabels: {tier: data}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: app}}}]
    ports: [{port: pg}]
"""


def _from_client_on_5432(analysis: Analysis) -> list[dict[str, str | None]]:
    """Whether app's client reaches each database pod on 5432, asked of one Exposure per order
    (named first, plain first): what the first answer leaves in the memos must not decide the second."""
    (named,) = analysis.find_workload("db", "named")
    (plain,) = analysis.find_workload("db", "plain")
    (client,) = analysis.find_workload("app", "client")
    assert analysis.stack_for(named, "Ingress") is analysis.stack_for(plain, "Ingress")
    out = []
    for order in ((named, plain), (plain, named)):
        exposure = Exposure(ClassGraph(analysis))
        got = {dst: exposure.source_of(dst, 5432, frozenset({client})) for dst in order}
        out.append({analysis.classes[d].workloads[0].name: None if s is None else analysis.classes[s].workloads[0].name
                    for d, s in got.items()})
    return out


def test_a_named_port_is_resolved_for_each_destination_sharing_a_stack():
    """One policy (one stack) selects both database pods; its rule names the port `pg`, which only
    one of them declares: what it admits on 5432 differs, though the stack is the same."""
    analysis = analyse(NAMED_PORT)
    assert _from_client_on_5432(analysis) == [{"named": "client", "plain": None}] * 2
    assert compare(analysis)[1] > 0


def test_a_named_port_a_calico_rule_leaves_out_is_resolved_for_each_destination():
    from tests.test_calico import cnp

    text = NAMED_PORT.rsplit("---", 1)[0] + "---\n" + yaml.safe_dump(cnp("db", "all-but-pg", {
        "selector": "tier == 'data'", "types": ["Ingress"],
        "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"notPorts": ["pg"]}}]}))
    assert _from_client_on_5432(analyse(text)) == [{"named": None, "plain": "client"}] * 2
