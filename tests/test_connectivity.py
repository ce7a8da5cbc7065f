"""`connectivity`: every allowed connection, with port algebra and outside address ranges."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from audit.cli import app
from audit.engine.connectivity import connections
from audit.engine.ports import ALL, PortSet
from audit.report.model import is_external
from tests.conftest import EXAMPLES, analyse

runner = CliRunner()

TWO_PODS = """
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: ns, labels: {app: a}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: ns, labels: {app: b}}
spec: {containers: [{name: c, image: i, ports: [{containerPort: 8080, name: http}]}]}
"""


def lines(text: str) -> list[str]:
    return [str(c) for c in connections(analyse(TWO_PODS + text))]


def test_port_set_algebra_and_format():
    tcp = PortSet.of({"TCP": [(80, 90), (85, 100), (8080, 8080)]})
    assert str(tcp) == "TCP 80-100,8080"
    assert str(tcp & PortSet.of({"TCP": [(95, 9000)], "UDP": [(53, 53)]})) == "TCP 95-100,8080"
    assert str(tcp | PortSet.of({"UDP": [(53, 53)]})) == "TCP 80-100,8080,UDP 53"
    assert str(ALL) == "All Connections" and str(PortSet()) == "No Connections"
    assert str(ALL & PortSet.of({"SCTP": [(1, 65535)]})) == "SCTP 1-65535"


def test_no_policy_is_all_connections_everywhere():
    assert lines("") == [
        "0.0.0.0-255.255.255.255[External] => ns/a[Pod] : All Connections",
        "0.0.0.0-255.255.255.255[External] => ns/b[Pod] : All Connections",
        "ns/a[Pod] => 0.0.0.0-255.255.255.255[External] : All Connections",
        "ns/a[Pod] => ns/b[Pod] : All Connections",
        "ns/b[Pod] => 0.0.0.0-255.255.255.255[External] : All Connections",
        "ns/b[Pod] => ns/a[Pod] : All Connections",
    ]


def test_named_ports_ranges_and_protocols_on_ingress():
    policy = """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: ns}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress:
    - ports: [{port: http}, {port: 80, endPort: 90}, {port: 53, protocol: UDP}]
"""
    got = lines(policy)
    assert "ns/a[Pod] => ns/b[Pod] : TCP 80-90,8080,UDP 53" in got
    assert "0.0.0.0-255.255.255.255[External] => ns/b[Pod] : TCP 80-90,8080,UDP 53" in got
    assert "ns/b[Pod] => ns/a[Pod] : All Connections" in got


def test_egress_ip_blocks_cut_the_address_space_and_intersect_with_ingress():
    policy = """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: ns}
spec:
  podSelector: {matchLabels: {app: a}}
  policyTypes: [Egress]
  egress:
    - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]
    - to: [{podSelector: {matchLabels: {app: b}}}]
      ports: [{port: 8000, endPort: 9000}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: in, namespace: ns}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress:
    - ports: [{port: 8080}, {port: 9090}]
"""
    got = [line for line in lines(policy) if line.startswith("ns/a")]
    assert got == [
        "ns/a[Pod] => 10.0.0.0-10.0.255.255[External] : All Connections",
        "ns/a[Pod] => 10.2.0.0-10.255.255.255[External] : All Connections",
        "ns/a[Pod] => ns/b[Pod] : TCP 8080",
    ]


def test_lab_solution_has_exactly_the_two_designed_paths():
    result = runner.invoke(app, ["connectivity", str(EXAMPLES / "lab-solution")])
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "backend/api[Pod] => database/db[Pod] : TCP 5432",
        "frontend/web[Pod] => backend/api[Pod] : TCP 8080",
    ]


def test_formats_and_namespace_filter(tmp_path):
    mixed = str(EXAMPLES / "mixed-cluster")
    data = json.loads(runner.invoke(app, ["connectivity", mixed, "-f", "json", "-n", "payments"]).stdout)
    assert data and all("payments/" in c["src"] or "payments/" in c["dst"] for c in data)
    assert {"src", "dst", "conn"} == set(data[0])
    csv_out = runner.invoke(app, ["connectivity", mixed, "-f", "csv"]).stdout.splitlines()
    assert csv_out[0] == "src,dst,conn" and len(csv_out) > 10
    dot = runner.invoke(app, ["connectivity", mixed, "-f", "dot"]).stdout
    assert dot.startswith("digraph {") and "subgraph cluster_" in dot and "->" in dot
    matrix = runner.invoke(app, ["connectivity", mixed, "-f", "matrix"]).stdout
    assert "from \\ to" in matrix and "external" in matrix
    out = tmp_path / "c.txt"
    assert runner.invoke(app, ["connectivity", mixed, "-o", str(out)]).exit_code == 0 and " => " in out.read_text()


def test_port_set_text_round_trips():
    from audit.engine.ports import parse_port_set

    for text in ("All Connections", "No Connections", "TCP 80-90,8080,UDP 53", "SCTP 1-65535,TCP 1-65535,UDP 1-5352,5354-65535"):
        assert str(parse_port_set(text)) == text


def test_diff_between_manifest_sets_and_saved_connectivity(tmp_path):
    before, after = str(EXAMPLES / "lab-before"), str(EXAMPLES / "lab-solution")
    result = runner.invoke(app, ["diff", before, after])
    assert result.exit_code == 0
    out = result.stdout.splitlines()
    assert "-~ backend/api[Pod] => database/db[Pod] : All Connections -> TCP 5432" in out
    assert "- database/db[Pod] => frontend/web[Pod] : All Connections" in out
    assert not [line for line in out if line.startswith("+ ")]
    saved = tmp_path / "solution.json"
    saved.write_text(runner.invoke(app, ["connectivity", after, "-f", "json"]).stdout)
    opened = runner.invoke(app, ["diff", str(saved), before, "--fail-on-opened"])
    assert opened.exit_code == 1
    assert "+ 0.0.0.0-255.255.255.255[External] => database/db[Pod] : All Connections" in opened.stdout
    assert runner.invoke(app, ["diff", str(saved), after]).stderr.strip().endswith("0 opened or widened, 0 closed or narrowed")


def test_external_suffix_the_bare_option_and_old_saved_files(tmp_path):
    """Outside ranges carry netpol-analyzer's `[External]` in every format; `--bare-ranges` gives the
    older form; a file saved in the older form still diffs as equal to today's listing."""
    before = str(EXAMPLES / "lab-before")
    txt = runner.invoke(app, ["connectivity", before]).stdout.splitlines()
    assert "0.0.0.0-255.255.255.255[External] => database/db[Pod] : All Connections" in txt
    csv_out = runner.invoke(app, ["connectivity", before, "-f", "csv"]).stdout.splitlines()
    assert "0.0.0.0-255.255.255.255[External],database/db[Pod],All Connections" in csv_out
    items = json.loads(runner.invoke(app, ["connectivity", before, "-f", "json"]).stdout)
    assert {"src": "database/db[Pod]", "dst": "0.0.0.0-255.255.255.255[External]", "conn": "All Connections"} in items
    bare = runner.invoke(app, ["connectivity", before, "--bare-ranges"]).stdout.splitlines()
    assert "0.0.0.0-255.255.255.255 => database/db[Pod] : All Connections" in bare
    assert not [line for line in bare if "[External]" in line] and len(bare) == len(txt)
    old = tmp_path / "old.json"
    old.write_text(runner.invoke(app, ["connectivity", before, "-f", "json", "--bare-ranges"]).stdout)
    assert "[External]" not in old.read_text()
    same = runner.invoke(app, ["diff", str(old), before])
    assert same.exit_code == 0 and same.stderr.strip().endswith("0 opened or widened, 0 closed or narrowed")
    dot = runner.invoke(app, ["connectivity", before, "-f", "dot"]).stdout
    assert '\t"0.0.0.0-255.255.255.255[External]" [label="0.0.0.0-255.255.255.255[External]" color="red2"' in dot
    matrix = runner.invoke(app, ["connectivity", before, "-f", "matrix"]).stdout
    assert "external" in matrix and "0.0.0.0" not in matrix


def test_outside_ranges_follow_np_guard_conventions():
    """np-guard's netpol-analyzer cuts the address space at every block any policy names (ANP
    networks included), prints each piece on its own line even when neighbours get the same
    connections, and sorts lines as text."""
    text = """
apiVersion: v1
kind: Namespace
metadata: {name: ns1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: ns1}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: c, image: i}]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: egress-control}
spec:
  priority: 10
  subject: {namespaces: {}}
  egress:
    - {name: deny-resolver, action: Deny, to: [{networks: [9.9.9.9/32]}], ports: [{portNumber: {protocol: UDP, port: 53}}]}
    - {name: partner, action: Allow, to: [{networks: [203.0.113.0/24]}]}
    - {name: rest, action: Pass, to: [{networks: [0.0.0.0/0]}]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  egress:
    - {name: no-internet, action: Deny, to: [{networks: [0.0.0.0/0]}]}
"""
    got = [str(c) for c in connections(analyse(text))]
    # Ranges the policies cut but that connect alike are one line (netpol-analyzer prints the five
    # cut ranges of the source side apart, and sorts them as text).
    assert got == [
        "0.0.0.0-255.255.255.255[External] => ns1/app[Deployment] : All Connections",
        "ns1/app[Deployment] => 203.0.113.0-203.0.113.255[External] : All Connections",
    ]


REPLICA_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web-7d4b9c-x1
  namespace: ns
  labels: {app: web, pod-template-hash: 7d4b9c}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-7d4b9c, uid: u, controller: true}]
spec: {containers: [{name: c, image: i}]}
status: {podIP: 10.0.0.5}
"""


def test_live_pods_are_named_by_their_own_controller_as_np_guard_does():
    text = REPLICA_POD + """
---
apiVersion: v1
kind: Pod
metadata:
  name: job-1-abcde
  namespace: ns
  labels: {job-name: job-1}
  ownerReferences: [{apiVersion: batch/v1, kind: Job, name: job-1, uid: v, controller: true}]
spec: {containers: [{name: c, image: i}]}
"""
    analysis = analyse(text)
    assert [w.ref for w in analysis.inventory.workloads] == ["ns/web[Deployment]", "ns/job-1[Job]"]  # reports
    got = [str(c) for c in connections(analysis) if "=>" in str(c) and not is_external(c.src) and not is_external(c.dst)]
    assert got == ["ns/job-1[Job] => ns/web-7d4b9c[ReplicaSet] : All Connections",
                   "ns/web-7d4b9c[ReplicaSet] => ns/job-1[Job] : All Connections"]


def test_a_replicaset_name_from_the_listing_works_in_reach():
    analysis = analyse(REPLICA_POD)
    assert analysis.find_workload("ns", "web-7d4b9c") == analysis.find_workload("ns", "web") != []


def test_owner_without_kind_groups_by_owner_name_and_a_node_mirror_pod_is_itself():
    """netpol-analyzer's naming: a controller reference without `kind` names the workload after the
    owner, as `[Pod]`; a Node owns static (mirror) pods, which stay their own workload; a reference
    that is not the controller names nothing."""
    def pod(name: str, labels: str, owner: str) -> str:
        return f"""---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default, labels: {labels}, ownerReferences: [{owner}]}}
spec: {{containers: [{{name: c, image: i}}]}}
"""
    text = (pod("pod-1", "{app: a, tier: agent}", "{name: internal-security, controller: true}")
            + pod("pod-2", "{app: b, tier: analyzer}", "{name: internal-security, controller: true}")
            + pod("etcd-node1", "{component: etcd}", "{apiVersion: v1, kind: Node, name: node1, controller: true, uid: n}")
            + pod("helper", "{app: h}", "{apiVersion: apps/v1, kind: ReplicaSet, name: other, controller: false, uid: o}"))
    analysis = analyse(text)
    refs = sorted({c.src for c in connections(analysis) if not is_external(c.src)})
    assert refs == ["default/etcd-node1[Pod]", "default/helper[Pod]", "default/internal-security[Pod]"]
    # The two label variants stay two pod classes: a policy may tell them apart.
    assert sorted(len(c.workloads) for c in analysis.real_classes() if c.namespace == "default") == [1, 1, 1, 1]
