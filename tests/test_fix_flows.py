"""`fix` says what its bundle closes, and with observed flows breaks nothing that was seen.

The oracles are the other commands a user would run on the written bundle (`flows --candidate`,
`diff --apply`, `scan` of the inputs with the bundle beside them) and verdicts stated by hand for
the domain text's lab: never the bundle's own verification.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from audit import pipeline
from audit.checks.bundle import bundle
from audit.cli import app
from audit.config import Config
from audit.engine.classes import DnsTarget
from audit.engine.ports import parse_port_set
from audit.remediation import dry_run
from audit.report.model import FindingRow
from tests.conftest import EXAMPLES, inventory

runner = CliRunner()
LAB = EXAMPLES / "lab-before"
CAPTURE = EXAMPLES / "lab-flows" / "hubble.jsonl"
CSV = EXAMPLES / "lab-flows" / "flows.csv"


def invoke(*args: str):
    return runner.invoke(app, list(args))


def fix_json(*args: str) -> dict:
    result = invoke("fix", *args, "-f", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def row(closes: list[dict], src: str, dst: str) -> dict:
    (found,) = [c for c in closes if c["source"] == src and c["destination"] == dst]
    return found


def closes_port(found: dict, spec: str) -> bool:
    return bool(parse_port_set(spec) & parse_port_set(found["ports"].replace("All Connections", "TCP 1-65535,UDP 1-65535,SCTP 1-65535")))


def test_without_flows_the_bundle_lists_the_application_it_closes():
    data = fix_json(str(LAB))
    web_api = row(data["closes"], "frontend/web[Pod]", "backend/api[Pod]")
    api_db = row(data["closes"], "backend/api[Pod]", "database/db[Pod]")
    assert closes_port(web_api, "TCP 8080") and closes_port(api_db, "TCP 5432")
    assert web_api["flows"] is None and data["traffic"] is None
    assert "not checked against observed traffic" in data["summary"]
    # Six workload pairs (every ordered pair of the three tiers) and both directions to the outside, all closed.
    assert data["closesBetweenWorkloads"] == 6 and len(data["closes"]) == 12
    assert "closes 12 connection(s) allowed today, 6 between workloads" in data["summary"]


def test_with_the_lab_capture_every_forwarded_flow_stays_allowed(tmp_path):
    out = tmp_path / "bundle"
    made = invoke("fix", str(LAB), "--flows", str(CAPTURE), "--out", str(out))
    assert made.exit_code == 0, made.output
    summary = (out / "SUMMARY.md").read_text()
    assert "Observed traffic" in summary and r"kept: frontend/web\[Pod\] -\> backend/api\[Pod\] TCP/8080" in summary
    # The oracle: the flows command over the same capture, with the bundle as the candidate.
    judged = invoke("flows", str(CAPTURE), str(LAB), "--candidate", str(out), "-f", "json")
    assert judged.exit_code == 0, judged.output
    breaks = json.loads(judged.stdout)["traffic"]["wouldBreak"]
    assert all(b["count"] == b["dropped"] for b in breaks), breaks  # only web -> db, seen DROPPED, stays denied
    assert [(b["src"], b["dst"]) for b in breaks] == [("frontend/web[Pod]", "database/db[Pod]")]
    # The findings it claims are gone once the files sit beside the manifests.
    applied = tmp_path / "applied"
    shutil.copytree(LAB, applied)
    for f in out.glob("*.yaml"):
        shutil.copy(f, applied / f"zz-{f.name}")
    after = json.loads(invoke("scan", str(applied), "-f", "json").stdout)
    data = fix_json(str(LAB), "--flows", str(CAPTURE))
    still = {f["id"] for f in after["findings"] if f["status"] == "fail"}
    assert data["resolved"] and not set(data["resolved"]) & still
    # The application's own connections are no longer among what it closes; the rest was never seen.
    assert {c["flows"] for c in data["closes"]} == {0}
    assert row(data["closes"], "frontend/web[Pod]", "backend/api[Pod]")["kind"] == "narrowed"
    assert not closes_port(row(data["closes"], "frontend/web[Pod]", "backend/api[Pod]"), "TCP 8080")
    assert data["traffic"]["stillDenied"] == [] and len(data["traffic"]["kept"]) == 2


def test_csv_flows_give_the_same_answer_as_hubble():
    hubble, csv = fix_json(str(LAB), "--flows", str(CAPTURE)), fix_json(str(LAB), "--flows", str(CSV))
    assert hubble["closes"] == csv["closes"]
    assert [k.split(" (")[0] for k in hubble["traffic"]["kept"]] == [k.split(" (")[0] for k in csv["traffic"]["kept"]]


def test_allows_go_only_on_the_side_that_denies(tmp_path):
    """frontend already allows all egress: the bundle's default-deny there leaves web's egress open, so
    only the ingress side of api needs an allow; an egress policy on web would isolate it further."""
    inputs = tmp_path / "in"
    shutil.copytree(LAB, inputs)
    (inputs / "egress.yaml").write_text(yaml.safe_dump({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "all-out", "namespace": "frontend"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}}))
    out = tmp_path / "bundle"
    made = invoke("fix", str(inputs), "--flows", str(CAPTURE), "--out", str(out))
    assert made.exit_code == 0, made.output
    names = {d["metadata"]["name"] for f in out.glob("*.yaml") for d in yaml.safe_load_all(f.read_text()) if d}
    assert "api-from-observed" in names and "web-to-observed" not in names
    assert "api-to-observed" in names and "db-from-observed" in names


def test_flows_naming_pods_the_inventory_lacks_are_listed_as_not_placed(tmp_path):
    capture = tmp_path / "flows.csv"
    capture.write_text(CSV.read_text() + "frontend/ghost,backend/api,8080,TCP,2,2026-11-30T10:00:30Z,2026-11-30T10:00:31Z,\n")
    data = fix_json(str(LAB), "--flows", str(capture))
    assert data["traffic"]["unplaced"] == 2
    assert any("ghost" in e for e in data["traffic"]["unplacedExamples"])


def test_the_mixed_example_counts_match_diff_apply(tmp_path):
    out = tmp_path / "bundle"
    made = invoke("fix", str(EXAMPLES / "mixed-cluster"), "--out", str(out))
    assert made.exit_code == 0, made.output
    compared = invoke("diff", str(EXAMPLES / "mixed-cluster"), "--apply", str(out))
    closed_lines = [line for line in compared.stdout.splitlines() if line.startswith(("- ", "-~ "))]
    data = fix_json(str(EXAMPLES / "mixed-cluster"))
    assert len(data["closes"]) == len(closed_lines) == 59
    assert f"closes {len(closed_lines)} connection(s) allowed today" in made.output
    between = [line for line in closed_lines if "[External]" not in line]
    assert data["closesBetweenWorkloads"] == len(between)


def finding(ns: str, check: str = "NP-COV-001") -> FindingRow:
    fix = yaml.safe_dump({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                          "metadata": {"name": "default-deny-all", "namespace": ns}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    return FindingRow(f"id-{ns}", check, "t", "high", "coverage", "fail", ns, "Namespace", ns, "m", "r", fix, (), None, None, ())


def test_files_go_from_the_least_observed_traffic_closed_to_the_most():
    dns = DnsTarget()
    rows = (finding("alpha"), finding("beta"), finding("gamma"))
    plain = [f.name.split("-")[1] for f in bundle(rows, (), dns)]
    assert plain[:3] == ["alpha", "beta", "gamma"]
    ordered = bundle(rows, (), dns, observed_closed={"alpha": 7, "beta": 0, "gamma": 2})
    assert [f.name.split("-")[1] for f in ordered][:3] == ["beta", "gamma", "alpha"]
    missing = bundle(rows, (), dns, observed_closed={"alpha": 1, "beta": 0})  # a namespace the map lacks closed nothing
    assert [f.name.split("-")[1] for f in missing][:3] == ["beta", "gamma", "alpha"]
    assert [f.name[:2] for f in ordered][:3] == ["10", "11", "12"]
    assert "# Observed flows this file's namespace has closed: 7" in ordered[2].text
    kept = bundle(rows, (), dns, keep={"delta": [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                                  "metadata": {"name": "x-from-observed", "namespace": "delta"}, "spec": {}}]})
    (delta,) = [f for f in kept if "delta" in f.name]
    assert "# Keeps observed traffic open: 1 allow policy" in delta.text and "(none verified)" not in delta.text.split("Resolves:")[0]


def test_dry_run_notes_follow_the_detected_cni():
    from tests.test_checks import CALICO, CILIUM, FLANNEL

    def notes(extra: str) -> list[str]:
        return list(dry_run(pipeline.analyse(inventory((LAB / "app.yaml").read_text() + extra), Config())))

    assert any("PolicyAuditMode=Enabled" in n and "policy-audit-mode" in n for n in notes(CILIUM))
    assert any("StagedKubernetesNetworkPolicy" in n for n in notes(CALICO))
    assert not any("changes nothing" in n for n in notes(CILIUM) + notes(CALICO))
    assert any("changes nothing on the network" in n for n in notes(FLANNEL))
    assert notes("") and all("Cilium" not in n and "Calico" not in n for n in notes(""))


def test_the_html_and_pdf_pages_say_the_same_and_escape_the_input(tmp_path):
    capture = tmp_path / "flows.csv"
    capture.write_text(CSV.read_text() + "frontend/ghost,backend/api,8080,TCP,1,2026-11-30T10:00:30Z,2026-11-30T10:00:31Z,\n")
    html, pdf = tmp_path / "fix.html", tmp_path / "fix.pdf"
    made = invoke("fix", str(LAB), "--flows", str(capture), "--html", str(html), "--pdf", str(pdf))
    assert made.exit_code == 0, made.output
    page = html.read_text()
    assert "kept: frontend/web[Pod] -&gt; backend/api[Pod] TCP/8080" in page and "not placed: " in page and "ghost" in page
    assert "12 connection(s) allowed today are denied" in page and "frontend/web[Pod]" in page
    pypdf = __import__("pytest").importorskip("pypdf")
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(str(pdf)).pages)
    assert "What it closes" in text and "kept open" in " ".join(text.split())


STRAY = """
---
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: v1
kind: Pod
metadata: {name: stray, namespace: apps}
spec:
  containers: [{name: main, image: busybox}]
"""
STRAY_FLOWS = ("apps/stray,backend/api,8080,TCP,4,2026-11-30T09:00:00Z,2026-11-30T11:00:00Z,\n"
               "apps/stray,backend/api,8080,TCP,1,2026-11-30T10:00:00Z,2026-11-30T10:00:00Z,DROPPED\n"  # counted apart
               "apps/stray,203.0.113.9,443,TCP,2,2026-11-30T09:30:00Z,2026-11-30T09:45:00Z,\n"
               # the first and the last address of the outside range the bundle closes
               "apps/stray,0.0.0.0,8443,TCP,1,2026-11-30T09:31:00Z,2026-11-30T09:31:00Z,\n"
               "apps/stray,255.255.255.255,9443,TCP,1,2026-11-30T09:32:00Z,2026-11-30T09:50:00Z,\n")


def stray_inputs(tmp_path: Path) -> Path:
    inputs = tmp_path / "in"
    shutil.copytree(LAB, inputs)
    (inputs / "stray.yaml").write_text(STRAY)
    return inputs


def test_flows_no_allow_can_keep_stay_closed_marked_with_what_was_seen(tmp_path):
    """A pod without labels: no policy can name it, so its observed flows stay closed. The bundle
    says so (exit 1, each flow named), and the closed rows carry the flows, first and last seen."""
    capture = tmp_path / "flows.csv"
    capture.write_text(CSV.read_text() + STRAY_FLOWS)
    inputs = stray_inputs(tmp_path)
    out = tmp_path / "bundle"
    made = invoke("fix", str(inputs), "--flows", str(capture), "--out", str(out), "-f", "json")
    assert made.exit_code == 1, made.output
    assert "still denies the observed flow apps/stray[Pod] -> backend/api[Pod] TCP/8080 (4 flow(s))" in made.stderr
    data = json.loads(made.stdout)
    assert data["verified"] is False and len(data["traffic"]["stillDenied"]) == 4
    assert any("stray" in n and "no stable labels" in n for n in data["traffic"]["notes"])
    assert len(data["traffic"]["kept"]) == 2 and not [k for k in data["traffic"]["kept"] if "stray" in k]  # only what is open again
    api = row(data["closes"], "apps/stray[Pod]", "backend/api[Pod]")
    assert (api["flows"], api["firstSeen"], api["lastSeen"]) == (4, "2026-11-30T09:00:00.000000Z", "2026-11-30T11:00:00.000000Z")
    (outside,) = [c for c in data["closes"] if c["source"] == "apps/stray[Pod]" and c["destination"].endswith("[External]")]
    assert (outside["destination"], outside["flows"], outside["firstSeen"]) == ("0.0.0.0-255.255.255.255[External]", 4, "2026-11-30T09:30:00.000000Z")
    assert outside["lastSeen"] == "2026-11-30T09:50:00.000000Z"
    # Flows seen on a port the bundle does not close do not count: stray -> db was never seen.
    assert row(data["closes"], "apps/stray[Pod]", "database/db[Pod]")["flows"] == 0
    assert "2 of them carried observed flows" in data["summary"]
    # Observed flows closed per namespace, at either end: apps 8, backend 4; the files go from least to most.
    order = [(f["namespace"], f["observedClosed"]) for f in data["files"]]
    assert order == [("database", 0), ("frontend", 0), ("backend", 4), ("apps", 8), (None, 0)]
    assert "# Observed flows this file's namespace has closed: 8" in (out / data["files"][3]["name"]).read_text()
    assert [p.name[:2] for p in sorted(out.glob("*.yaml"))] == ["10", "11", "12", "13", "90"]


def test_flows_the_current_policies_deny_are_not_the_bundle_s_doing(tmp_path):
    capture = tmp_path / "flows.csv"
    capture.write_text(CSV.read_text().replace("5432,TCP,1,2026-11-30T10:00:25Z,2026-11-30T10:00:25Z,DROPPED",
                                                "5432,TCP,1,2026-11-30T10:00:25Z,2026-11-30T10:00:25Z,"))
    data = fix_json(str(EXAMPLES / "lab-solution"), "--flows", str(capture))
    assert data["traffic"]["deniedToday"] == ["frontend/web[Pod] -> database/db[Pod] TCP/5432 (1 flow(s))"]
    assert data["traffic"]["stillDenied"] == [] and data["verified"] is True


def test_the_counts_and_dns_restored_on_the_mixed_example():
    data = fix_json(str(EXAMPLES / "mixed-cluster"))
    assert (data["offered"], len(data["resolved"]), data["failing"]) == (27, 26, 40)
    assert data["restoredDns"] == ["batch/nightly-report[CronJob] => kube-system/coredns[Deployment] : TCP 53,UDP 53"]
    assert data["opened"] == [] and data["traffic"] is None
    assert {f["observedClosed"] for f in data["files"]} == {None}
    assert data["noFix"].startswith("NP-COV-006, NP-EXP-002")


def test_unplaced_examples_are_capped_at_ten_with_the_count_whole(tmp_path):
    capture = tmp_path / "flows.csv"
    capture.write_text(CSV.read_text() + "".join(f"frontend/ghost-{i},backend/api,8080,TCP,1,2026-11-30T10:00:30Z,2026-11-30T10:00:31Z,\n"
                                                 for i in range(12)))
    data = fix_json(str(LAB), "--flows", str(capture))
    assert data["traffic"]["unplaced"] == 12 and len(data["traffic"]["unplacedExamples"]) == 10


def test_the_library_reports_progress_and_the_same_plan():
    from audit.remediation import fix_report, plan_fix
    from audit.sources.flows import flow_input

    said: list[str] = []
    plan = plan_fix(inventory((LAB / "app.yaml").read_text()), Config(), progress=said.append, flows=flow_input([str(CAPTURE)]))
    assert said == ["building the bundle and checking it with the engine", "keeping the observed traffic open"]
    report = fix_report(plan)
    assert report.closes_between_workloads == 6 and len(report.traffic.kept) == 2 and report.verified


def test_what_has_no_generated_fix_is_named_by_check_and_by_kind():
    from audit.checks.bundle import without_fix

    def f(check: str, kind: str, status: str = "fail", fix: str | None = None) -> FindingRow:
        return FindingRow(check + kind, check, "t", "high", "c", status, "prod", kind, "x", "m", "r", fix, (), None, None, ())

    rows = (f("NP-PERM-003", "CiliumNetworkPolicy"), f("NP-PERM-001", "CiliumNetworkPolicy"), f("NP-HYG-009", "Calico NetworkPolicy"),
            f("NP-EXP-002", "Namespace"), f("NP-PERM-002", "NetworkPolicy"), f("NP-COV-001", "Namespace", fix="x: 1"),
            f("NP-COV-002", "Namespace", status="pass"))
    assert without_fix(rows) == ("NP-EXP-002, NP-PERM-002; Calico NetworkPolicy (NP-HYG-009); "
                                 "CiliumNetworkPolicy (NP-PERM-001, NP-PERM-003)")
    assert without_fix(()) == "none"


def test_bundle_file_names_keep_fifty_characters_of_the_namespace():
    from audit.checks.bundle import file_name

    name = file_name(10, "a" * 63)
    assert name.startswith("10-" + "a" * 50 + "-") and len(name) == 3 + 50 + 1 + 6 + 5
    assert file_name(11, "--").startswith("11-namespace-")


def test_proposals_leave_dns_to_the_dns_allow_and_select_one_workload_among_several(tmp_path):
    """`flows --propose` shares its rule builder with `fix --flows`: DNS to the cluster DNS pods is the
    allow-dns policy's (no per-workload rule for it), and a workload's selector picks it alone even
    where its namespace holds another workload."""
    inputs = tmp_path / "in"
    shutil.copytree(LAB, inputs)
    (inputs / "worker.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: worker, namespace: backend, labels: {app: worker}}\n"
                                        "spec: {containers: [{name: main, image: busybox}]}\n")
    out = tmp_path / "proposal"
    made = invoke("flows", str(CSV), str(inputs), "--propose", str(out))
    assert made.exit_code == 0, made.output
    files = sorted(p.name for p in out.glob("*.yaml"))
    assert [n[:3] for n in files] == ["01-", "02-", "03-"]
    docs = {d["metadata"]["name"] + "@" + d["metadata"]["namespace"]: d for p in out.glob("*.yaml") for d in yaml.safe_load_all(p.read_text()) if d}
    assert docs["api-from-observed@backend"]["spec"]["podSelector"] == {"matchLabels": {"app": "api"}}
    web_out = docs["web-to-observed@frontend"]["spec"]["egress"]
    assert [r["ports"] for r in web_out] == [[{"protocol": "TCP", "port": "http"}]]  # no rule to DNS: allow-dns@frontend has it
    assert "allow-dns@frontend" in docs and "default-deny-all@frontend" in docs


def test_bundle_comments_cut_long_messages_and_place_fixes_without_a_namespace_by_their_finding():
    dns = DnsTarget()
    long = finding("alpha")
    long = FindingRow(long.id, long.check, long.title, long.severity, long.category, long.status, long.namespace, long.kind, long.name,
                      "m" * 200, long.remediation, long.fix_yaml, (), None, None, ())
    loose = finding("beta")
    doc = yaml.safe_load(loose.fix_yaml)
    del doc["metadata"]["namespace"]
    loose = FindingRow(loose.id, loose.check, loose.title, loose.severity, loose.category, loose.status, loose.namespace, loose.kind,
                       loose.name, "m", loose.remediation, yaml.safe_dump(doc), (), None, None, ())
    elsewhere = finding("gamma")
    elsewhere = FindingRow("id-elsewhere", "NP-DNS-001", "t", "high", "dns", "fail", "delta", "Namespace", "delta", "m", "r",
                           elsewhere.fix_yaml, (), None, None, ())  # its fix lives in another namespace
    files = bundle((long, loose, elsewhere), (), dns)
    assert ("#   NP-COV-001 alpha: " + "m" * 160 + "\n") in files[0].text
    assert [f.name.split("-")[1] for f in files] == ["alpha", "beta", "gamma", "kyverno"]
    files = bundle((long,), (), dns, verified=frozenset())  # offered, not resolved: listed as such, cut alike
    assert ("#   NP-COV-001 alpha: " + "m" * 160 + "\n") in files[0].text and "(none verified)" in files[0].text
