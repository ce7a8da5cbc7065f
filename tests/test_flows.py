"""Policies against observed traffic: flow files, mapping, the three answers, proposals, checks.

Fixtures are written here (and in examples/lab-flows) from Cilium's documented flow fields
(flow.proto: verdict, IP, l4, source/destination endpoints with namespace, pod_name, labels,
workloads, Type, traffic_direction, is_reply); the engine's verdicts are the oracle for every
"denied" and "allowed" below, through `reach` and `verify` as a user would run them.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from audit.cli import app
from audit.errors import InputError
from audit.observed import ReadStats
from audit.sources.flows import _read_lines, is_flow_file, read_flows
from tests.conftest import EXAMPLES, audit, findings
from tests.test_semantics import CLUSTER, policies

runner = CliRunner()
LAB = EXAMPLES / "lab-flows"
NOW = ("--now", "2026-01-01T00:00:00Z")


def flows_cmd(*args: str):
    return runner.invoke(app, ["flows", *args, *NOW])


def hubble_line(src: tuple[str, str, str], dst: tuple[str, str, str], port: int, proto: str = "TCP", **extra) -> str:
    def end(ns: str, pod: str, ip: str) -> dict:
        return {"namespace": ns, "pod_name": pod, "labels": [f"k8s:io.kubernetes.pod.namespace={ns}"]} if ns else {"labels": ["reserved:world"]}
    flow = {"time": "2026-11-30T10:00:00.5Z", "verdict": "FORWARDED", "IP": {"source": src[2], "destination": dst[2]},
            "l4": {proto: {"source_port": 40000, "destination_port": port}}, "source": end(*src), "destination": end(*dst),
            "Type": "L3_L4", "traffic_direction": "EGRESS", "is_reply": False}
    flow.update(extra)
    return json.dumps({"flow": flow})


# -- reading ------------------------------------------------------------------------------


def test_the_hubble_fixture_round_trips_every_documented_field():
    stats = ReadStats()
    got = list(_read_lines(str(LAB / "hubble.jsonl"), stats))  # line by line (read_flows groups them: see test_flowsql.py)
    assert len(got) == 16 and stats.replies == 3 and stats.skipped == {"L7": 1, "not a flow (lost_events)": 1}
    first = got[0]
    assert (first.src.namespace, first.src.name, first.src.ip, first.src.labels) == ("frontend", "web", "10.0.1.10", (("app", "web"),))
    assert (first.dst.namespace, first.dst.name, first.port, first.protocol) == ("backend", "api", 8080, "TCP")
    assert first.first == "2026-11-30T10:00:01.123456Z" and not first.dropped
    assert [f for f in got if f.dropped] == [got[-1]] and got[-1].port == 5432
    # jsonpb: the same flow with lowerCamelCase names reads the same.
    line = json.loads((LAB / "hubble.jsonl").read_text().splitlines()[0])["flow"]
    camel = dict(line, isReply=False, trafficDirection="EGRESS")
    del camel["is_reply"], camel["traffic_direction"]
    camel["source"] = {**line["source"], "podName": "web"}
    del camel["source"]["pod_name"]
    camel["l4"] = {"TCP": {"destinationPort": 8080}}
    from audit.sources.flows import _flow_of

    assert _flow_of({"flow": camel}, "x", ReadStats()) == first


def test_the_csv_form_reads_the_same_pairs_as_the_hubble_capture():
    hubble = {(f.src.text(), f.dst.name or f.dst.text(), f.port, f.protocol) for f in read_flows([str(LAB / "hubble.jsonl")], ReadStats())}
    plain = list(read_flows([str(LAB / "flows.csv")], ReadStats()))
    assert {(f.src.text(), f.dst.name, f.port, f.protocol) for f in plain} == {
        (s, "coredns" if d.startswith("coredns") else d, p, proto) for s, d, p, proto in hubble}
    assert sum(f.count for f in plain) == 16 and [f.dropped for f in plain].count(True) == 1


@pytest.mark.parametrize(("text", "message"), [
    ("src,dst\na/b,c/d\n", "header lacks port"),
    ("src,dst,port\na/b,c/d,http\n", "line 2: port: must be a port number"),
    ("src,dst,port\na/b,c/d,70000\n", "line 2: port: must be a port number"),
    ("src,dst,port,protocol\na/b,c/d,80,ICMP\n", "line 2: protocol: 'ICMP' is not TCP, UDP or SCTP"),
    ("src,dst,port\nweb,c/d,80\n", "line 2: src: 'web' is neither ns/name nor an IP address"),
    ("src,dst,port,count\na/b,c/d,80,-1\n", "line 2: count: must be a positive integer"),
    ("src,dst,port,first\na/b,c/d,80,yesterday\n", "line 2: first: not an RFC 3339 time"),
])
def test_a_bad_plain_flow_is_one_line_naming_file_line_and_field(tmp_path, text, message):
    path = tmp_path / "f.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        list(read_flows([str(path)], ReadStats()))
    result = flows_cmd(str(path), str(EXAMPLES / "lab-before"))
    assert result.exit_code == 2 and "Traceback" not in result.output and message.split(":")[-1].strip()[:20] in result.output


def test_a_bad_hubble_line_names_its_line_and_field(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text(hubble_line(("a", "p", "10.0.0.1"), ("b", "q", "10.0.0.2"), 80) + "\n{not json\n")
    with pytest.raises(InputError, match="line 2: not a JSON object"):
        list(read_flows([str(path)], ReadStats()))
    path.write_text(hubble_line(("a", "p", "10.0.0.1"), ("b", "q", "10.0.0.2"), 0) + "\n")
    with pytest.raises(InputError, match=r"line 1: flow.l4.TCP.destination_port: must be a port number"):
        list(read_flows([str(path)], ReadStats()))


def test_flow_files_are_told_from_manifests(tmp_path):
    (tmp_path / "h.json").write_text(hubble_line(("a", "p", "10.0.0.1"), ("b", "q", "10.0.0.2"), 80) + "\n")
    (tmp_path / "plain.json").write_text('[{"src": "a/p", "dst": "b/q", "port": 80}]')
    (tmp_path / "list.json").write_text('{"apiVersion": "v1", "kind": "List", "items": []}')
    (tmp_path / "svc.json").write_text('{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}}')
    assert [is_flow_file(str(tmp_path / n)) for n in ("h.json", "plain.json", "list.json", "svc.json")] == [True, True, False, False]
    assert is_flow_file(str(LAB / "flows.csv")) and not is_flow_file(str(EXAMPLES / "lab-before" / "app.yaml"))
    for name in ("h.json", "plain.json"):  # a UTF-8 byte order mark before them changes nothing
        (tmp_path / f"bom-{name}").write_bytes(b"\xef\xbb\xbf" + (tmp_path / name).read_bytes())
        assert is_flow_file(str(tmp_path / f"bom-{name}"))
    assert list(read_flows([str(tmp_path / "bom-plain.json")], ReadStats())) == list(read_flows([str(tmp_path / "plain.json")], ReadStats()))
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + (LAB / "flows.csv").read_bytes())
    assert list(read_flows([str(tmp_path / "bom.csv")], ReadStats())) == list(read_flows([str(LAB / "flows.csv")], ReadStats()))


# -- the lab: the acceptance --------------------------------------------------------


@pytest.mark.parametrize("capture", ["hubble.jsonl", "flows.csv"])
def test_the_lab_before_policies_break_nothing(capture):
    result = flows_cmd(str(LAB / capture), str(EXAMPLES / "lab-before"), "-f", "json")
    assert result.exit_code == 0, result.output
    traffic = json.loads(result.stdout)["traffic"]
    assert traffic["wouldBreak"] == [] and traffic["flows"] == 16 and traffic["dropped"] == 1
    # Flat: every workload with traffic is unsegmented, both ways.
    assert {(u["namespace"], u["direction"]) for u in traffic["unsegmented"]} >= {("database", "Ingress"), ("frontend", "Egress")}


@pytest.mark.parametrize("capture", ["hubble.jsonl", "flows.csv"])
def test_the_lab_solution_keeps_every_allowed_flow_and_denies_the_forbidden_one(capture):
    result = flows_cmd(str(LAB / capture), str(EXAMPLES / "lab-solution"), "-f", "json")
    traffic = json.loads(result.stdout)["traffic"]
    [denied] = traffic["wouldBreak"]
    assert (denied["src"], denied["dst"], denied["port"], denied["protocol"]) == ("frontend/web[Pod]", "database/db[Pod]", 5432, "TCP")
    assert any("egress of the source" in w and "denied" in w for w in denied["why"])
    assert result.exit_code == 0  # the forbidden attempt was DROPPED already: applying stops nothing new
    # The oracle: reach says the same of that pair, and allows the others.
    assert runner.invoke(app, ["reach", "frontend/web", "database/db", str(EXAMPLES / "lab-solution"), "-p", "5432"]).exit_code == 1
    assert runner.invoke(app, ["reach", "backend/api", "database/db", str(EXAMPLES / "lab-solution"), "-p", "5432"]).exit_code == 0
    assert all(r["flows"] > 0 for r in traffic["rules"])  # the solution is least privilege: every rule is used


def test_a_candidate_folder_is_judged_as_if_applied():
    result = flows_cmd(str(LAB / "hubble.jsonl"), str(EXAMPLES / "lab-before"), "--candidate", str(EXAMPLES / "lab-solution" / "policies.yaml"),
                       "-f", "json")
    traffic = json.loads(result.stdout)["traffic"]
    assert traffic["policiesFrom"] == "the inputs with the candidate applied"
    assert [(d["src"], d["dst"]) for d in traffic["wouldBreak"]] == [("frontend/web[Pod]", "database/db[Pod]")]


def test_forwarded_flows_a_candidate_denies_fail_the_command(tmp_path):
    capture = tmp_path / "f.csv"
    capture.write_text("src,dst,port\nfrontend/web,database/db,5432\n")
    result = flows_cmd(str(capture), str(EXAMPLES / "lab-before"), "--candidate", str(EXAMPLES / "lab-solution" / "policies.yaml"))
    assert result.exit_code == 1 and "Would break (1)" in result.stdout


def test_propose_on_the_lab_before_cluster_passes_the_lab_expectations(tmp_path):
    out = tmp_path / "proposed"
    result = flows_cmd(str(LAB / "hubble.jsonl"), str(EXAMPLES / "lab-before"), "--propose", str(out))
    assert result.exit_code == 0, result.output
    assert "verified by the engine" in result.output
    docs = [d for p in sorted(out.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    assert {d["metadata"]["namespace"] for d in docs} == {"frontend", "backend", "database"}
    text = json.dumps(docs)
    assert "pod-template-hash" not in text and '"port": "http"' in text and '"port": "postgres"' in text  # named ports
    verify = runner.invoke(app, ["verify", str(EXAMPLES / "lab-expectations.yaml"), str(EXAMPLES / "lab-before"), str(out)])
    assert verify.exit_code == 0, verify.output
    # And with the proposal applied, the capture breaks nothing (the DROPPED attempt stays denied).
    again = json.loads(flows_cmd(str(LAB / "hubble.jsonl"), str(EXAMPLES / "lab-before"), str(out), "-f", "json").stdout)["traffic"]
    assert [(d["src"], d["dst"]) for d in again["wouldBreak"]] == [("frontend/web[Pod]", "database/db[Pod]")]


def test_a_proposal_that_would_open_more_fails_verification():
    from audit.checks import propose as module
    from audit.engine.analysis import Analysis
    from audit.engine.flows import FlowMapper, aggregate
    from audit.sources.manifests import load_manifests

    inventory = load_manifests([str(EXAMPLES / "lab-solution")])
    analysis = Analysis(inventory)
    mapper = FlowMapper(analysis)
    traffic = aggregate(mapper, read_flows([str(LAB / "hubble.jsonl")], ReadStats()))
    proposal = module.propose(analysis, mapper, traffic, analysis.dns_target, ("kube-system",))
    assert module.verify(inventory, analysis, mapper, traffic, proposal).passed
    opened = module.Proposal(proposal.files + (module.BundleFile("x.yaml", "", ({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "open", "namespace": "database"},
        "spec": {"podSelector": {}, "ingress": [{}]}},), ()),), proposal.notes, proposal.flows)
    assert module.verify(inventory, analysis, mapper, traffic, opened).opened


# -- mapping ------------------------------------------------------------------------------


def test_the_ends_placed_are_not_kept_past_the_capture_and_a_second_read_places_them_again():
    from audit.engine.analysis import Analysis
    from audit.engine.flows import FlowMapper, aggregate
    from audit.sources.manifests import load_manifests

    mapper = FlowMapper(Analysis(load_manifests([str(EXAMPLES / "lab-solution")])))
    first = aggregate(mapper, read_flows([str(LAB / "hubble.jsonl")], ReadStats()))
    assert first.pairs and not mapper._placed  # 150,000 ends with their labels would outlive the capture
    again = aggregate(mapper, read_flows([str(LAB / "hubble.jsonl")], ReadStats()))
    assert again.pairs == first.pairs and again.unmapped == first.unmapped and again.total == first.total


def test_flows_map_by_pod_name_then_ip_then_as_outside_and_the_rest_are_counted(tmp_path):
    capture = tmp_path / "f.jsonl"
    lines = [
        hubble_line(("prod", "web-7d4b9c8f6-x2x9z", "10.9.9.9"), ("prod", "api", "10.9.9.8"), 8080),  # a generated pod name
        hubble_line(("", "", "203.0.113.7"), ("prod", "db", "10.1.1.1"), 5432),  # from outside
        hubble_line(("prod", "ghost-abc", ""), ("prod", "db", ""), 5432),  # no such workload, no IP
    ]
    capture.write_text("\n".join(lines) + "\n")
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"},
              "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
                                                                               "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    manifests = tmp_path / "m.yaml"
    manifests.write_text(CLUSTER.replace("name: web, namespace: prod", "name: web-bare, namespace: prod") + "\n---\n" + yaml.safe_dump(deploy))
    data = json.loads(flows_cmd(str(capture), str(manifests), "-f", "json").stdout)["traffic"]
    assert data["flows"] == 3 and data["pairs"] == 2
    assert data["unmapped"] == [["source no pod or workload prod/ghost-abc in the inventory", 1]]
    assert any("ghost-abc" in e for e in data["unmappedExamples"])


# -- checks -------------------------------------------------------------------------------


def flow_audit(text: str, flows_csv: str, tmp_path: Path):
    capture = tmp_path / "f.csv"
    capture.write_text("src,dst,port,protocol\n" + flows_csv)
    from audit.sources.flows import flow_input

    return audit(text, flows=flow_input([str(capture)]))


API_FROM_WEB = ("prod", {"podSelector": {"matchLabels": {"app": "api"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                                                                                  "ports": [{"port": 8080}]}]})
WEB_TO_API = ("prod", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"],
                       "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "api"}}}], "ports": [{"port": 8080}]}]})
API_FROM_ALL = ("prod", {"podSelector": {"matchLabels": {"app": "api"}}, "ingress": [{}]})

FLOW_CASES = {
    # (manifests, flows that fire it, flows that do not, namespace)
    "NP-FLOW-001": (policies(API_FROM_WEB), "prod/db,prod/api,8080,TCP\n", "prod/web,prod/api,8080,TCP\n", "prod"),
    "NP-FLOW-002": (policies(API_FROM_ALL), "prod/web,prod/api,8080,TCP\n", None, "prod"),
    "NP-FLOW-003": (policies(API_FROM_WEB, WEB_TO_API), "prod/web,prod/db,5432,TCP\n", "prod/web,prod/api,8080,TCP\n", "prod"),
}


@pytest.mark.parametrize("check_id", sorted(FLOW_CASES))
def test_flow_check_fires_on_its_case_and_not_on_the_other(check_id, tmp_path):
    manifests, positive, negative, namespace = FLOW_CASES[check_id]
    hits = findings(flow_audit(manifests, positive, tmp_path), check_id)
    assert [f for f in hits if f.namespace == namespace], f"{check_id} did not fire"
    if negative is not None:
        assert not [f for f in findings(flow_audit(manifests, negative, tmp_path), check_id) if f.namespace == namespace]
    # Without flows the check does not run, and the report does not list it as passed.
    report = audit(manifests)
    assert check_id not in {c.id for c in report.checks} and not findings(report, check_id)


def test_unused_rules_are_named_and_a_rule_used_in_part_says_how_much(tmp_path):
    text = policies(API_FROM_WEB, ("prod", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}))
    hits = findings(flow_audit(text, "prod/web,prod/api,8080,TCP\n", tmp_path), "NP-FLOW-002")
    by_name = {f.name: f.message for f in hits}
    assert set(by_name) == {"p1"} and "spec.ingress[0] (every port) was used by no flow of 1 flow(s)" in by_name["p1"]
    whole = findings(flow_audit(policies(API_FROM_ALL), "prod/web,prod/api,8080,TCP\n", tmp_path), "NP-FLOW-002")
    assert whole and "every peer on every port" in whole[0].message and "TCP/8080" in whole[0].message


def test_flow_checks_count_for_pci_1_3_only_with_flows(tmp_path):
    without = {(c.framework, c.id): c for c in audit(policies(API_FROM_ALL)).controls}
    pci = without[("PCI DSS v4.0.1", "1.3.1")]
    assert "NP-FLOW-002" not in pci.checks and "not run: no flows were given" in pci.reason
    with_flows = {(c.framework, c.id): c for c in flow_audit(policies(API_FROM_ALL), "prod/web,prod/api,8080,TCP\n", tmp_path).controls}
    judged = with_flows[("PCI DSS v4.0.1", "1.3.1")]
    assert "NP-FLOW-002" in judged.checks and judged.status == "fail" and "NP-FLOW-002" in judged.failing


def test_scan_with_flows_puts_the_window_in_every_report(tmp_path):
    html, pdf, out = tmp_path / "r.html", tmp_path / "r.pdf", tmp_path / "r.json"
    result = runner.invoke(app, ["scan", str(EXAMPLES / "lab-solution"), "--flows", str(LAB / "hubble.jsonl"), "--html", str(html),
                                 "--pdf", str(pdf), "--json", str(out), *NOW])
    assert result.exit_code == 0, result.output
    assert "Observed traffic: 16 flow(s) from 2026-11-30T10:00:01.123456Z" in result.stdout
    data = json.loads(out.read_text())
    assert data["traffic"]["first"] == "2026-11-30T10:00:01.123456Z" and data["traffic"]["files"] == [str(LAB / "hubble.jsonl")]
    assert 'id="traffic"' in html.read_text() and "Would break (1)" in html.read_text()
    import subprocess

    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Appendix D: Observed traffic" in text and "Appendix E: Methodology" in text
    again = tmp_path / "again.json"
    runner.invoke(app, ["scan", str(EXAMPLES / "lab-solution"), "--flows", str(LAB / "hubble.jsonl"), "--json", str(again), *NOW])
    assert again.read_bytes() == out.read_bytes()  # deterministic


def test_hostile_names_in_a_capture_reach_the_terminal_escaped(tmp_path):
    capture = tmp_path / "f.jsonl"
    capture.write_text(hubble_line(("prod\x1b]0;pwned\x07", "web", "10.0.0.1"), ("prod", "api", "10.0.0.2"), 80) + "\n")
    result = flows_cmd(str(capture), str(EXAMPLES / "lab-before"))
    assert "\x1b" not in result.stdout and "\\x1b" in result.stdout


def test_typed_hubble_lines_read_as_the_general_reader_reads_them(tmp_path):
    """The typed fast path (msgspec records) and the general one give the same flows, line by line;
    lines outside its shape (jsonpb names, wrappers, odd types) go the general way."""
    import msgspec

    from audit.sources.flows import _flow_of, _typed_flow

    lines = (LAB / "hubble.jsonl").read_bytes().splitlines()
    camel = json.loads(lines[0])
    camel["flow"]["isReply"] = camel["flow"].pop("is_reply")
    variants = [json.loads(lines[0]) for _ in range(6)]
    variants[0]["flow"]["is_reply"] = {"value": True}
    variants[1]["flow"]["source"]["namespace"] = 5
    variants[2]["flow"]["time"] = {"seconds": 1764496800, "nanos": 0}
    variants[3]["flow"]["source"]["labels"] = ["k8s:app=web", 7]
    variants[4]["flow"].pop("Type")
    variants[5]["flow"]["l4"] = {"ICMPv4": {"type": 8}}
    typed_count = 0
    for raw in lines + [json.dumps(v).encode() for v in [camel, *variants]]:
        general_stats, typed_stats = ReadStats(), ReadStats()
        try:
            expected = ("ok", _flow_of(msgspec.json.decode(raw), "x", general_stats))
        except InputError as exc:
            expected = ("error", str(exc).split(": ", 1)[1])
        fits, flow = _typed_flow(raw, "x", 1, typed_stats, {})
        if fits:
            typed_count += 1
            assert expected == ("ok", flow) and typed_stats.replies == general_stats.replies, raw
    assert typed_count >= 12  # the capture's own lines take the fast path


@pytest.mark.parametrize("example", ["lab-solution", "war-story", "mixed-cluster"])
def test_the_fast_verdicts_equal_the_stack_walk_for_every_observed_pair(example, tmp_path):
    """`allowed` decides pod pairs from the class graph's port sets; the oracle is `Analysis.allowed`
    (the per-port walk `reach` uses) for every pair of workloads, on declared ports and others."""
    from audit.engine.analysis import Analysis
    from audit.engine.flows import FlowMapper, aggregate, allowed
    from audit.sources.manifests import load_manifests

    analysis = Analysis(load_manifests([str(EXAMPLES / example)]))
    refs = sorted({w.ref.split("[")[0] for c in analysis.real_classes() if c.governed for w in c.workloads})
    capture = tmp_path / "all.csv"
    rows = ["src,dst,port,protocol"]
    for src in refs:
        for dst in refs:
            for port, proto in ((80, "TCP"), (8080, "TCP"), (5432, "TCP"), (6379, "TCP"), (53, "UDP")):
                rows.append(f"{src},{dst},{port},{proto}")
    rows += [f"203.0.113.9,{refs[0]},80,TCP", f"{refs[0]},169.254.169.254,80,TCP", f"{refs[-1]},8.8.8.8,53,UDP"]
    # The cluster DNS pods the analysis assumes are no class of the graph: the walk decides them.
    rows += [f"{ref},kube-system/coredns-5d78c9869d-abcde,53,UDP" for ref in refs] + [f"kube-system/coredns-5d78c9869d-abcde,{refs[0]},80,TCP"]
    capture.write_text("\n".join(rows) + "\n")
    mapper = FlowMapper(analysis)
    traffic = aggregate(mapper, read_flows([str(capture)], ReadStats()))
    fast = allowed(analysis, mapper, traffic)
    oracle = {k: analysis.allowed(mapper.endpoint(k[0]), mapper.endpoint(k[1]), k[2], k[3]).allowed for k in traffic.pairs}
    assert fast == oracle
    assert any(isinstance(k[1], int) and k[1] in analysis.dns_classes for k in oracle) and not traffic.unmapped
    assert example == "war-story" or 0 < sum(oracle.values()) < len(oracle)  # the war story denies all of these


def _traffic(manifests: str | Path, rows: str, tmp_path: Path):
    from audit.engine.analysis import Analysis
    from audit.engine.flows import FlowMapper, aggregate
    from audit.sources.manifests import load_manifests

    capture = tmp_path / "c.csv"
    capture.write_text("src,dst,port,protocol,first,last\n" + rows)
    analysis = Analysis(load_manifests([str(manifests)]))
    mapper = FlowMapper(analysis)
    return analysis, mapper, aggregate(mapper, read_flows([str(capture)], ReadStats()))


def test_the_window_spans_every_flow_with_a_time_and_ignores_those_without(tmp_path):
    _, _, traffic = _traffic(EXAMPLES / "lab-before", "frontend/web,backend/api,8080,TCP,2026-11-30T10:00:05Z,2026-11-30T10:00:09Z\n"
                                                      "frontend/web,backend/api,8080,TCP,,\n"
                                                      "backend/api,database/db,5432,TCP,2026-11-30T09:59:00.5Z,2026-11-30T10:00:01Z\n", tmp_path)
    assert (traffic.first, traffic.last, traffic.flows) == ("2026-11-30T09:59:00.500000Z", "2026-11-30T10:00:09.000000Z", 3)
    [tally] = [t for k, t in traffic.pairs.items() if k[2] == 8080]
    assert (tally.count, tally.first, tally.last) == (2, "2026-11-30T10:00:05.000000Z", "2026-11-30T10:00:09.000000Z")


def test_dns_is_recognised_in_the_dns_namespace_only(tmp_path):
    analysis, mapper, _ = _traffic(EXAMPLES / "lab-before", "", tmp_path)
    from audit.observed import FlowEnd

    assert mapper.place(FlowEnd("kube-system", "coredns-5d78c9869d-x7k2p")) == ([analysis.dns_classes[0]], None)
    assert mapper.place(FlowEnd("kube-system", "x", labels=(("k8s-app", "kube-dns"),))) == ([analysis.dns_classes[0]], None)
    assert mapper.place(FlowEnd("frontend", "coredns-abc"))[0] == []  # a pod named so elsewhere is not the DNS
    assert mapper.place(FlowEnd("kube-system", "metrics-server-1"))[0] == []
    assert mapper.place(FlowEnd("frontend"))[1] == "neither a pod nor an IP address"  # a namespace alone names no pod


def test_rows_past_the_explained_ones_say_how_to_ask(tmp_path):
    from audit.engine.flows import would_break

    analysis, mapper, traffic = _traffic(EXAMPLES / "lab-solution", "frontend/web,database/db,5432,TCP,,\nfrontend/web,database/db,5432,TCP,,\n"
                                                                    "database/db,frontend/web,80,TCP,,\n", tmp_path)
    first, second = would_break(analysis, mapper, traffic, explained=1).rows
    assert first.count == 2 and any("denied" in w for w in first.why)
    assert second.why == ("not explained past the first 1 rows: netpol-audit reach database/db frontend/web -p 80/TCP",)


def test_the_assumed_dns_pods_are_named_as_such():
    from audit.engine.flows import unsegmented

    analysis, mapper, traffic = _traffic(EXAMPLES / "lab-solution", "frontend/web,kube-system/coredns,53,UDP,,\n", Path(tempfile.mkdtemp()))
    assert [(u.namespace, u.workload, u.direction) for u in unsegmented(analysis, mapper, traffic)] == [
        ("kube-system", "(the cluster DNS pods, assumed)", "Ingress")]


def test_a_policy_none_of_whose_rules_was_used_is_one_finding(tmp_path):
    idle = ("prod", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "x"}}}]},
                                                                              {"from": [{"namespaceSelector": {}}], "ports": [{"port": 1}]}]})
    hits = findings(flow_audit(policies(API_FROM_WEB, idle), "prod/web,prod/api,8080,TCP\n", tmp_path), "NP-FLOW-002")
    assert [(f.name, f.message.split(" was used")[0]) for f in hits] == [("p1", "none of its 2 rules")]


def test_a_peer_without_stable_labels_is_not_proposed_as_a_whole_namespace(tmp_path):
    """An unlabelled client would need `podSelector: {}`, which admits its whole namespace: the
    proposal says so and leaves the flow out, and verification reports it still denied."""
    manifests = tmp_path / "m.yaml"
    manifests.write_text((EXAMPLES / "lab-before" / "app.yaml").read_text().replace("  labels:\n    app: web\n", "", 1))
    capture = tmp_path / "f.csv"
    capture.write_text("src,dst,port\nfrontend/web,backend/api,8080\nbackend/api,database/db,5432\n")
    out = tmp_path / "proposed"
    result = flows_cmd(str(capture), str(manifests), "--propose", str(out))
    assert "frontend/web[Pod]: no stable labels name it" in result.output
    assert "the proposal still denies frontend/web[Pod] -> backend/api[Pod] TCP/8080" in result.output and result.exit_code == 1
    assert "podSelector: {}\n  policyTypes:\n  - Ingress\n  ingress" not in "".join(p.read_text() for p in out.glob("*.yaml"))


def test_a_result_with_traffic_validates_and_round_trips(tmp_path):
    import jsonschema

    from audit.render.json_report import load_report, render_json, schema
    from audit.sources.flows import flow_input

    report = audit((EXAMPLES / "lab-solution" / "app.yaml").read_text() + "\n---\n" + (EXAMPLES / "lab-solution" / "policies.yaml").read_text(),
                   flows=flow_input([str(LAB / "hubble.jsonl")]))
    text = render_json(report)
    jsonschema.validate(json.loads(text), schema())
    assert load_report(text, "r.json") == report and report.traffic is not None and report.traffic.would_break
    saved = tmp_path / "r.json"
    saved.write_text(text)
    html = tmp_path / "r.html"
    assert runner.invoke(app, ["report", str(saved), "--html", str(html)]).exit_code == 0 and 'id="traffic"' in html.read_text()


def test_a_workload_with_several_pod_classes_is_narrowed_by_the_captures_labels_or_ip(tmp_path):
    """A rollout in progress: pods of one ReplicaSet with two label sets are two classes. The
    capture's labels pick one; else its IP; else the flow stands for both."""
    from audit.engine.analysis import Analysis
    from audit.engine.flows import FlowMapper
    from audit.observed import FlowEnd
    from audit.sources.manifests import load_manifests

    def pod(name: str, version: str, ip: str) -> dict:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "prod", "labels": {"app": "web", "version": version, "pod-template-hash": "5d7"},
                             "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d7", "controller": True}]},
                "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Running", "podIP": ip}}

    manifests = tmp_path / "m.yaml"
    manifests.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}},
                                             pod("web-5d7-aaaaa", "v1", "10.0.0.1"), pod("web-5d7-bbbbb", "v2", "10.0.0.2")]))
    analysis = Analysis(load_manifests([str(manifests)]))
    mapper = FlowMapper(analysis)
    v1, v2 = sorted(analysis.find_workload("prod", "web"), key=lambda c: analysis.classes[c].label_map["version"])
    by_labels = FlowEnd("prod", "web-5d7-zzzzz", labels=(("app", "web"), ("pod-template-hash", "5d7"), ("version", "v2")))
    assert mapper.place(by_labels) == ([v2], None)
    assert mapper.place(FlowEnd("prod", "web-5d7-zzzzz", ip="10.0.0.1")) == ([v1], None)
    assert sorted(mapper.place(FlowEnd("prod", "web-5d7-zzzzz", ip="10.9.9.9"))[0]) == [v1, v2]  # an IP it does not hold narrows nothing
    assert sorted(mapper.place(FlowEnd("prod", "web-5d7-zzzzz"))[0]) == [v1, v2]
    assert sorted(mapper.place(FlowEnd("prod", "web-5d7-zzzzz", labels=(("app", "other"),)))[0]) == [v1, v2]  # labels that fit none


def test_a_rule_is_used_only_by_flows_from_the_peers_it_names(tmp_path):
    two_rules = ("prod", {"podSelector": {"matchLabels": {"app": "api"}}, "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": 8080}]},
        {"from": [{"podSelector": {"matchLabels": {"app": "db"}}}], "ports": [{"port": 8080}]}]})
    from audit.engine.flows import rule_use

    analysis, mapper, traffic = _traffic_text(policies(two_rules), "prod/web,prod/api,8080,TCP,,\n", tmp_path)
    uses = {u.rule: (u.flows, u.peers_used, u.peers_allowed, u.ports_used) for u in rule_use(analysis, mapper, traffic)}
    assert uses == {"spec.ingress[0]": (1, 1, 1, ("TCP/8080",)), "spec.ingress[1]": (0, 0, 1, ())}


def test_outside_sources_are_proposed_as_the_addresses_seen_and_verified(tmp_path):
    capture = tmp_path / "f.csv"
    capture.write_text("src,dst,port\n203.0.113.7,frontend/web,80\n198.51.100.2,frontend/web,80\nfrontend/web,backend/api,8080\n")
    out = tmp_path / "proposed"
    result = flows_cmd(str(capture), str(EXAMPLES / "lab-before"), "--propose", str(out))
    assert result.exit_code == 0 and "verified by the engine" in result.output, result.output
    text = "".join(p.read_text() for p in sorted(out.glob("*.yaml")))
    assert "cidr: 198.51.100.2/32" in text and "cidr: 203.0.113.7/32" in text and "0.0.0.0/0" not in text


def test_unsegmented_rows_count_the_flows_of_each_workload():
    data = json.loads(flows_cmd(str(LAB / "hubble.jsonl"), str(EXAMPLES / "lab-before"), "-f", "json").stdout)["traffic"]
    rows = {(u["namespace"], u["workload"], u["direction"]): (u["peers"], u["flows"]) for u in data["unsegmented"]}
    assert rows[("frontend", "web", "Egress")] == (3, 7)  # api (3), DNS (3), the DROPPED attempt on db (1)
    assert rows[("database", "db", "Ingress")] == (2, 4)


def test_a_pod_name_finds_its_workload_by_the_longest_cut_first(tmp_path):
    """A pod's name, then the name cut of its last one and two "-" parts: the first that names a
    workload decides, never a shorter one, never three cuts."""
    from audit.engine.analysis import Analysis
    from audit.engine.flows import FlowMapper
    from audit.observed import FlowEnd
    from audit.sources.manifests import load_manifests

    def pod(name: str, owner: str, kind: str, app: str) -> dict:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "prod", "labels": {"app": app, "pod-template-hash": "7d4"},
                             "ownerReferences": [{"kind": kind, "name": owner, "controller": True}]},
                "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Running"}}

    manifests = tmp_path / "m.yaml"  # the ReplicaSet's pods are the Deployment kafka's (kafka-7d4 names it too)
    manifests.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}},
                                             pod("kafka-broker-0", "kafka-broker", "StatefulSet", "broker"),
                                             pod("kafka-7d4-aaaaa", "kafka-7d4", "ReplicaSet", "kafka")]))
    analysis = Analysis(load_manifests([str(manifests)]))
    mapper = FlowMapper(analysis)
    (broker,) = analysis.find_workload("prod", "kafka-broker")
    (kafka,) = analysis.find_workload("prod", "kafka")
    assert broker != kafka
    assert mapper.place(FlowEnd("prod", "kafka-broker-5")) == ([broker], None)  # one cut finds it; two would find kafka
    assert mapper.place(FlowEnd("prod", "kafka-broker")) == ([broker], None)
    assert mapper.place(FlowEnd("prod", "kafka-7d4-zzzzz")) == ([kafka], None)
    assert mapper.place(FlowEnd("prod", "kafka-8e5-zzzzz")) == ([kafka], None)  # two cuts (another ReplicaSet of kafka)
    assert mapper.place(FlowEnd("prod", "other-0", workload="kafka-broker")) == ([broker], None)  # the workload first
    assert mapper.place(FlowEnd("prod", "kafka-broker-5", workload="kafka")) == ([kafka], None)
    for name in ("kafka-a-b-c", "x-kafka", "-kafka", "-"):  # three cuts, or a prefix that is no workload
        placed, why = mapper.place(FlowEnd("prod", name))
        assert placed == [] and why == f"no pod or workload prod/{name} in the inventory"


def test_a_pod_the_inventory_lacks_by_name_is_placed_by_its_ip(tmp_path):
    from audit.observed import FlowEnd

    manifests = tmp_path / "m.yaml"
    manifests.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}},
                                             {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"}},
                                              "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"podIP": "10.0.0.1"}}]))
    analysis, mapper, _ = _traffic(manifests, "", tmp_path)
    (web,) = analysis.find_workload("prod", "web")
    assert mapper.place(FlowEnd("prod", "renamed-pod", ip="10.0.0.1")) == ([web], None)
    assert mapper.place(FlowEnd("prod", "renamed-pod", ip="10.0.0.9"))[0] == []


def _traffic_text(text: str, rows: str, tmp_path: Path):
    manifests = tmp_path / "m.yaml"
    manifests.write_text(text)
    return _traffic(manifests, rows, tmp_path)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.ip_addresses(v=4).map(str), st.from_regex(r"[0-9. ]{1,16}", fullmatch=True), st.text(max_size=16)))
def test_an_address_is_compared_in_the_one_form_python_writes_it(text):
    """The fast path of _canonical (no colon: given back) equals parsing and writing it again."""
    import ipaddress

    from audit.engine.flows import _canonical

    try:
        expected = str(ipaddress.ip_address(text))
    except ValueError:
        expected = text
    assert _canonical(text) == expected


def test_a_pod_of_a_workload_is_narrowed_by_what_the_capture_shows_and_never_by_what_it_does_not(tmp_path):
    """A StatefulSet with a labelled pod and an unlabelled one: two classes. A capture end naming
    another pod of it without labels or address stands for both; its labels or address narrow it.
    An address that is not one (an invalid pod IP in the inventory, another in the capture) matches nothing."""
    from audit.engine.analysis import Analysis
    from audit.engine.flows import FlowMapper
    from audit.observed import FlowEnd
    from audit.sources.manifests import load_manifests

    def pod(name: str, ip: str, labels: dict | None) -> dict:
        meta = {"name": name, "namespace": "data", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "cache", "uid": "u1", "controller": True}]}
        if labels:
            meta["labels"] = labels
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [{"name": "c", "image": "i"}]},
                "status": {"podIP": ip, "phase": "Running"}}

    manifests = tmp_path / "m.yaml"
    manifests.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "data"}},
                                             pod("cache-0", "10.0.0.5", {"app": "cache", "statefulset.kubernetes.io/pod-name": "cache-0"}),
                                             pod("cache-1", "fe80::zz", None)]))
    analysis = Analysis(load_manifests([str(manifests)]))
    mapper = FlowMapper(analysis)
    labelled = next(c.id for c in analysis.classes if c.label_map.get("app") == "cache")
    bare = next(c.id for c in analysis.classes if c.namespace == "data" and not c.label_map)
    assert sorted(mapper.place(FlowEnd("data", "cache-7"))[0]) == sorted([labelled, bare])
    # The capture shows identity labels (Cilium drops the pod-name label): app=cache is the labelled pod's,
    # never the unlabelled one's (which fits any capture); labels no class has leave both.
    assert mapper.place(FlowEnd("data", "cache-7", labels=(("app", "cache"),)))[0] == [labelled]
    assert sorted(mapper.place(FlowEnd("data", "cache-7", labels=(("app", "other"),)))[0]) == sorted([labelled, bare])
    assert mapper.place(FlowEnd("data", "cache-7", ip="10.0.0.5"))[0] == [labelled]
    assert mapper.place(FlowEnd(ip="yy::zz")) == ([], "'yy::zz' is not an IP address")


def test_an_ipv6_address_is_placed_when_no_policy_names_ipv6():
    """Dual-stack captures: with only IPv4 blocks in the policies, every IPv6 address is one outside range."""
    from audit.engine.analysis import Analysis
    from audit.engine.flows import FlowMapper
    from audit.observed import FlowEnd
    from audit.sources.manifests import load_manifests

    mapper = FlowMapper(Analysis(load_manifests([str(EXAMPLES / "mixed-cluster")])))
    (end,), why = mapper.place(FlowEnd(ip="2001:db8::5"))
    assert why is None and end[0] == "outside" and mapper.segments[end[1]].version == 6
    assert mapper.place(FlowEnd(ip="2001:DB8:0::5")) == ([end], None)  # written otherwise, the same address
    assert mapper.describe(end) == "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff[External]"
    for first_or_last in ("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"):  # the range is the whole space
        assert mapper.place(FlowEnd(ip=first_or_last)) == ([end], None)


def test_ipv6_ranges_come_from_the_policies_when_one_names_ipv6(tmp_path):
    """With an IPv6 block in a policy, its boundaries cut the IPv6 space (no extra whole-space range on top)."""
    from audit.engine.analysis import Analysis
    from audit.engine.connectivity import segments
    from audit.engine.flows import FlowMapper
    from audit.observed import FlowEnd
    from audit.sources.manifests import load_manifests

    manifests = tmp_path / "m.yaml"
    manifests.write_text(policies(("prod", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "2001:db8::/32"}}]}]})))
    analysis = Analysis(load_manifests([str(manifests)]))
    mapper = FlowMapper(analysis)
    assert [s for s in mapper.segments if s.version == 6] == [s for s in segments(analysis) if s.version == 6]
    (inside,), _ = mapper.place(FlowEnd(ip="2001:db8::9"))
    (beyond,), _ = mapper.place(FlowEnd(ip="2001:db9::9"))
    assert inside != beyond and mapper.segments[inside[1]].text().startswith("2001:db8::")


def test_a_pod_address_written_another_way_is_the_pod(tmp_path):
    """An IPv6 pod address matches the capture's however either writes it (zeros, case)."""
    from audit.engine.analysis import Analysis
    from audit.engine.flows import FlowMapper
    from audit.observed import FlowEnd
    from audit.sources.manifests import load_manifests

    manifests = tmp_path / "m.yaml"
    manifests.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "v6"}}, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "solo", "namespace": "v6", "labels": {"app": "solo"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"podIP": "fd00::1", "phase": "Running"}}]))
    analysis = Analysis(load_manifests([str(manifests)]))
    mapper = FlowMapper(analysis)
    (cls,) = [c.id for c in analysis.classes if c.namespace == "v6"]
    assert mapper.place(FlowEnd(ip="FD00:0:0::1")) == ([cls], None)


def test_a_pod_name_is_cut_at_most_at_its_two_generated_suffixes():
    """<deployment>-<hash>-<id>: backend/api-gateway-7d4b-x2x9 is no pod of backend/api (four parts cut three times would say so)."""
    from audit.engine.analysis import Analysis
    from audit.engine.flows import FlowMapper
    from audit.observed import FlowEnd
    from audit.sources.manifests import load_manifests

    analysis = Analysis(load_manifests([str(EXAMPLES / "mixed-cluster")]))
    mapper = FlowMapper(analysis)
    api = mapper.by_name[("backend", "api")]
    assert mapper.place(FlowEnd("backend", "api-7d4b-x2x9"))[0] == api
    assert mapper.place(FlowEnd("backend", "api-gateway-7d4b-x2x9")) == (
        [], "no pod or workload backend/api-gateway-7d4b-x2x9 in the inventory")


@pytest.mark.parametrize("count,expected", [(3, "w0, w1, w2"), (4, "w0, w1, w2 (+1)")])
def test_a_class_of_many_workloads_is_named_by_its_first_three(count, expected, tmp_path):
    from audit.engine.analysis import Analysis
    from audit.engine.flows import _workload_names
    from audit.sources.manifests import load_manifests

    def deploy(name: str) -> dict:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "x"},
                "spec": {"selector": {"matchLabels": {"app": "same"}},
                         "template": {"metadata": {"labels": {"app": "same"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}

    manifests = tmp_path / "m.yaml"
    manifests.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}]
                                            + [deploy(f"w{i}") for i in range(count)]))
    analysis = Analysis(load_manifests([str(manifests)]))
    (cls,) = [c for c in analysis.classes if c.namespace == "x"]
    assert _workload_names(analysis, cls.id) == expected


def _statefulset_mapper(tmp_path: Path, *labels: dict):
    """The analysis and flow mapper of namespace data with StatefulSet db's pods db-0, db-1, ... labelled each as given."""
    from audit.engine.analysis import Analysis
    from audit.engine.flows import FlowMapper
    from audit.sources.manifests import load_manifests

    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"db-{i}", "namespace": "data", "labels": pod_labels, "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "u2", "controller": True}]},
        "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Running"}} for i, pod_labels in enumerate(labels)]
    manifests = tmp_path / "m.yaml"
    manifests.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "data"}}, *pods]))
    analysis = Analysis(load_manifests([str(manifests)]))
    return analysis, FlowMapper(analysis)


def test_a_capture_end_is_the_class_that_shows_the_most_of_its_labels(tmp_path):
    """Two classes of one StatefulSet, {app} and {app, tier}: a capture showing both labels is the second's
    pod (the first fits too, showing fewer), one showing app alone is the first's."""
    from audit.observed import FlowEnd

    analysis, mapper = _statefulset_mapper(tmp_path, {"app": "db"}, {"app": "db", "tier": "primary"})
    plain = next(c.id for c in analysis.classes if c.label_map == {"app": "db"})
    primary = next(c.id for c in analysis.classes if c.label_map == {"app": "db", "tier": "primary"})
    assert mapper.place(FlowEnd("data", "db-5", labels=(("app", "db"), ("tier", "primary"))))[0] == [primary]
    assert mapper.place(FlowEnd("data", "db-5", labels=(("app", "db"),)))[0] == [plain]


def test_classes_that_show_as_many_of_the_captures_labels_are_all_the_pods_and_a_repeated_label_counts_once(tmp_path):
    """Two classes fit a capture's labels with as many identity labels each: the end stands for both
    (neither is dropped for the other). A label the capture repeats counts with its last value."""
    from audit.observed import FlowEnd

    analysis, mapper = _statefulset_mapper(tmp_path, {"app": "db"}, {"app": "db", "tier": "a"}, {"app": "db", "zone": "x"})
    plain, tier, zone = (next(c.id for c in analysis.classes if c.label_map == labels)
                         for labels in ({"app": "db"}, {"app": "db", "tier": "a"}, {"app": "db", "zone": "x"}))
    both = mapper.place(FlowEnd("data", "db-7", labels=(("app", "db"), ("tier", "a"), ("zone", "x"))))[0]
    assert sorted(both) == sorted([tier, zone])
    assert mapper.place(FlowEnd("data", "db-8", labels=(("app", "db"), ("tier", "a"), ("tier", "b"))))[0] == [plain]


def test_each_answer_is_computed_once_per_analysis_and_mapper(monkeypatch):
    """The checks and the report ask the same questions of the same traffic: asked again, the same
    answer object; asked of another analysis (a candidate applied), computed for it."""
    import audit.engine.flows as engine
    from audit.engine.analysis import Analysis
    from audit.sources.manifests import load_manifests

    analysis = Analysis(load_manifests([str(EXAMPLES / "lab-solution")]))
    mapper = engine.FlowMapper(analysis)
    traffic = engine.aggregate(mapper, read_flows([str(LAB / "hubble.jsonl")], ReadStats()))
    calls: list[str] = []
    for name in ("_allowed", "_would_break", "_rule_use", "_unsegmented"):
        original = getattr(engine, name)
        monkeypatch.setattr(engine, name, lambda *a, _o=original, _n=name: calls.append(_n) or _o(*a))
    first = [engine.would_break(analysis, mapper, traffic), engine.rule_use(analysis, mapper, traffic), engine.unsegmented(analysis, mapper, traffic)]
    again = [engine.would_break(analysis, mapper, traffic), engine.rule_use(analysis, mapper, traffic), engine.unsegmented(analysis, mapper, traffic)]
    assert all(a is b for a, b in zip(first, again)) and first[0].rows  # the solution denies web -> db, which the capture saw
    assert sorted(calls) == ["_allowed", "_rule_use", "_unsegmented", "_would_break"]
    other = Analysis(load_manifests([str(EXAMPLES / "lab-before")]))
    assert engine.would_break(other, mapper, traffic).rows == ()  # no policy: nothing denied
    assert calls.count("_would_break") == 2 and calls.count("_allowed") == 2
    assert engine.would_break(analysis, mapper, traffic, explained=0) is not first[0]  # another question


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)),
       st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)))
def test_a_time_kept_in_microseconds_reads_back_as_the_readers_write_it_and_keeps_its_order(a, b):
    """A tally keeps its times as microseconds: each gives back the readers' text (UTC,
    microseconds, fixed width), and two compare as their texts do (the window's first and last)."""
    from audit.engine.pairs import stamp_micros, stamp_text
    from audit.sources.flows import _utc

    ta, tb = (_utc(t.replace(tzinfo=dt.UTC)) for t in (a, b))
    assert stamp_text(stamp_micros(ta)) == ta and stamp_text(stamp_micros(tb)) == tb
    assert (stamp_micros(ta) < stamp_micros(tb)) == (ta < tb)  # type: ignore[operator]
    assert stamp_micros(ta) == (a - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    assert stamp_micros(None) is None and stamp_text(None) is None
