"""`netpol-audit fix`: one bundle that, applied, removes the findings it claims and opens nothing.

The oracle applies the bundle the way a user would (the files next to the manifests) and reads
the CLI's own JSON and connectivity outputs: it does not reuse the bundle's verification.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from audit.cli import app
from audit.engine.ports import PortSet, parse_port_set
from tests.conftest import EXAMPLES

runner = CliRunner()
NOW = ["--now", "2026-12-01T00:00:00Z"]
CASES = [("lab-before", []), ("mixed-cluster", ["-c", str(EXAMPLES / "config.yaml")]), ("war-story", []), ("flannel", [])]


def scan(folder: Path, extra: list[str]) -> dict:
    result = runner.invoke(app, ["scan", str(folder), "-f", "json", *NOW, *extra])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def claimed(bundle: Path) -> set[tuple[str, str]]:
    """(check, object) pairs the files' comments say they resolve."""
    out = set()
    for path in bundle.glob("*.yaml"):
        section = None
        for line in path.read_text().splitlines():
            if line.startswith("# Resolves:"):
                section = "resolves"
            elif line.startswith("# Offered"):
                section = "offered"
            elif section == "resolves" and (m := re.match(r"#   (NP-[A-Z]+-\d+) (\S+): ", line)):
                out.add((m.group(1), m.group(2)))
    return out


def folder(tmp_path: Path, name: str, text: str) -> Path:
    """A manifests folder holding ``text`` as one file."""
    path = tmp_path / name
    path.mkdir()
    (path / "a.yaml").write_text(text)
    return path


def with_files(tmp_path: Path, manifests: Path, files: list[Path], name: str = "applied", fix: str | None = None) -> Path:
    """A copy of ``manifests`` with ``files`` (or one ``fix`` text) beside them: applied as a user would."""
    out = tmp_path / name
    shutil.copytree(manifests, out)
    for f in files:
        shutil.copy(f, out / f"zz-{f.name}")
    if fix is not None:
        (out / "zz-fix.yaml").write_text(fix)
    return out


@pytest.mark.parametrize("name,extra", CASES, ids=[c[0] for c in CASES])
def test_the_bundle_removes_what_it_claims_and_opens_nothing(tmp_path, name, extra):
    bundle = tmp_path / "fixes"
    made = runner.invoke(app, ["fix", str(EXAMPLES / name), "--out", str(bundle), *extra])
    assert made.exit_code == 0, made.output
    files = sorted(bundle.glob("*.yaml"))
    docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    assert {d["kind"] for d in docs} <= {"NetworkPolicy", "ClusterPolicy"}
    applied = with_files(tmp_path, EXAMPLES / name, files)
    before, after = scan(EXAMPLES / name, extra), scan(applied, extra)
    still = {(f["check"], f["name"]) for f in after["findings"] if f["status"] == "fail"}
    was = {(f["check"], f["name"]) for f in before["findings"] if f["status"] == "fail"}
    claims = claimed(bundle)
    assert claims <= was and not claims & still, claims & still
    # Coverage, DNS and metadata findings with a fix are gone, unless the file says it could not.
    for check in ("NP-COV-001", "NP-COV-002", "NP-COV-004", "NP-DNS-001", "NP-EXP-001", "NP-EXP-002", "NP-PERM-002", "NP-PERM-007"):
        offered = {(f["check"], f["name"]) for f in before["findings"] if f["check"] == check and f["status"] == "fail" and f["fixYaml"]}
        assert offered <= claims, (check, offered - claims)
    # Nothing opens except DNS to the cluster DNS pods (what the DNS fixes are for).
    diff = runner.invoke(app, ["diff", str(EXAMPLES / name), str(applied)])
    opened = [line for line in diff.stdout.splitlines() if line.startswith(("+ ", "+~ ", "~ ")) and "[External]" not in line]
    assert all("kube-system/" in line and line.endswith(("UDP 53", "TCP 53,UDP 53")) for line in opened), opened
    # Outside ranges are cut anew when policies name new blocks: every range of the new listing
    # may carry no more than each old range it overlaps.
    old_lines, new_lines = listing(EXAMPLES / name, extra), listing(applied, extra)
    for (src, dst), conns in new_lines.items():
        for (osrc, odst), oconns in old_lines.items():
            if overlaps((src, dst), (osrc, odst)):
                assert not conns - oconns, ((src, dst, str(conns)), (osrc, odst, str(oconns)))


def span(end: str) -> tuple[int, int] | str:
    if not end.endswith("[External]"):
        return end
    first, last = end.removesuffix("[External]").split("-")
    return int(ipaddress.ip_address(first)), int(ipaddress.ip_address(last))


def overlaps(new: tuple[str, str], old: tuple[str, str]) -> bool:
    for a, b in zip(map(span, new), map(span, old)):
        if isinstance(a, str) or isinstance(b, str):
            if a != b:
                return False
        elif a[1] < b[0] or b[1] < a[0]:
            return False
    return any(isinstance(span(e), tuple) for e in new)


def listing(folder: Path, extra: list[str]) -> dict[tuple[str, str], PortSet]:
    config = [a for a in extra if a != "-c"]
    args = ["connectivity", str(folder), "-f", "json"] + (["--config", config[0]] if config else [])
    return {(c["src"], c["dst"]): parse_port_set(c["conn"]) for c in json.loads(runner.invoke(app, args).stdout)}


def test_metadata_fixes_close_only_the_metadata_path(tmp_path):
    manifests = folder(tmp_path, "app", """
apiVersion: v1
kind: Namespace
metadata: {name: web}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: web, labels: {app: api}}
spec: {containers: [{name: c, image: i, ports: [{containerPort: 8080}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: internet-egress, namespace: web}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]
    ports: [{port: 80}, {port: 443}]
  - ports: [{port: 53, protocol: UDP}]
""")
    before = scan(manifests, [])
    assert {"NP-EXP-001", "NP-PERM-007"} <= {f["check"] for f in before["findings"]}
    bundle = tmp_path / "fixes"
    assert runner.invoke(app, ["fix", str(manifests), "--out", str(bundle)]).exit_code == 0
    [doc] = [d for f in bundle.glob("1*.yaml") for d in yaml.safe_load_all(f.read_text())
             if d and d["metadata"]["name"] == "internet-egress"]
    assert doc["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "169.254.169.254/32"]}}]
    assert doc["spec"]["egress"][1] == {"ports": [{"port": 53, "protocol": "UDP"}]}  # the rest as written
    applied = with_files(tmp_path, manifests, sorted(bundle.glob("*.yaml")))
    after = scan(applied, [])
    assert not {"NP-EXP-001", "NP-PERM-007"} & {f["check"] for f in after["findings"]}
    reach = runner.invoke(app, ["reach", "web/api", "169.254.169.254", str(applied), "-p", "80"])
    assert reach.exit_code == 1 and "DENIED" in reach.stdout.upper()
    still = runner.invoke(app, ["reach", "web/api", "93.184.216.34", str(applied), "-p", "443"])
    assert still.exit_code == 0, still.stdout


def test_a_flat_namespace_gets_isolation_that_denies_only_metadata():
    result = runner.invoke(app, ["scan", str(EXAMPLES / "lab-before"), "-f", "json", *NOW])
    data = json.loads(result.stdout)
    [hit] = [f for f in data["findings"] if f["check"] == "NP-EXP-001" and f["namespace"] == "frontend"]
    [doc] = list(yaml.safe_load_all(hit["fixYaml"]))
    assert doc["metadata"]["name"] == "deny-cloud-metadata" and doc["spec"]["podSelector"] == {}
    assert {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}} in doc["spec"]["egress"][0]["to"]


def test_the_kyverno_policy_covers_new_namespaces_and_skips_the_excluded(tmp_path):
    bundle = tmp_path / "fixes"
    assert runner.invoke(app, ["fix", str(EXAMPLES / "lab-before"), "--out", str(bundle), "-x", "legacy-*"]).exit_code == 0
    [policy] = yaml.safe_load_all((bundle / "90-kyverno-new-namespaces.yaml").read_text())
    assert policy["kind"] == "ClusterPolicy" and policy["apiVersion"] == "kyverno.io/v1"
    rules = {r["name"]: r for r in policy["spec"]["rules"]}
    assert set(rules) == {"default-deny", "allow-dns"}
    for rule in rules.values():
        assert rule["match"]["any"][0]["resources"]["kinds"] == ["Namespace"]
        assert "legacy-*" in rule["exclude"]["any"][0]["resources"]["names"] and "kube-system" in rule["exclude"]["any"][0]["resources"]["names"]
        assert rule["generate"]["namespace"] == "{{request.object.metadata.name}}" and rule["generate"]["synchronize"] is True
    assert rules["default-deny"]["generate"]["data"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    # New namespaces only: the existing ones get the bundle's own files, reviewed one by one, not a Kyverno sweep.
    assert policy["spec"]["generateExisting"] is False


def test_a_hostile_name_cannot_leave_its_comment_or_add_a_document(tmp_path):
    hostile = Path(__file__).parent / "robustness" / "hostile-03-fixyaml-injection.yaml"
    result = runner.invoke(app, ["fix", str(hostile)])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert {d["kind"] for d in docs} <= {"NetworkPolicy", "ClusterPolicy"}
    assert all(line.startswith("#") or not line.startswith(("kind: ClusterRoleBinding",)) for line in result.stdout.splitlines())


def test_diff_and_verify_show_the_bundle_before_it_is_applied(tmp_path):
    bundle = tmp_path / "fixes"
    assert runner.invoke(app, ["fix", str(EXAMPLES / "lab-before"), "--out", str(bundle)]).exit_code == 0
    change = runner.invoke(app, ["diff", str(EXAMPLES / "lab-before"), "--apply", str(bundle), "--fail-on-opened"])
    assert change.exit_code == 0 and "0 opened or widened, 12 closed or narrowed" in change.stderr
    assert "- frontend/web[Pod] => database/db[Pod] : All Connections" in change.stdout
    # The lab's expectations of denial hold with the bundle; its allows need rules of their own.
    verified = runner.invoke(app, ["verify", str(EXAMPLES / "lab-expectations.yaml"), str(EXAMPLES / "lab-before"), str(bundle)])
    assert "PASS      Frontend cannot reach the database" in verified.stdout
    assert runner.invoke(app, ["diff", str(EXAMPLES / "lab-before")]).exit_code == 2


ENVS = """
apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: staging, labels: {env: staging}}
---
apiVersion: v1
kind: Namespace
metadata: {name: tools}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec: {containers: [{name: c, image: i, ports: [{containerPort: 5432}, {containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: staging, labels: {app: app}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: v1
kind: Pod
metadata: {name: admin, namespace: tools, labels: {app: admin}}
spec: {containers: [{name: c, image: i}]}
"""


def test_cross_environment_fix_takes_away_only_the_sensitive_ports(tmp_path):
    manifests = folder(tmp_path, "envs", ENVS)
    before = scan(manifests, [])
    assert [f["namespace"] for f in before["findings"] if f["check"] == "NP-EXP-002"] == ["prod"]
    bundle = tmp_path / "fixes"
    made = runner.invoke(app, ["fix", str(manifests), "--out", str(bundle)])
    assert made.exit_code == 0 and "opens no connection" in made.stderr, made.stderr
    applied = with_files(tmp_path, manifests, sorted(bundle.glob("*.yaml")))
    assert "NP-EXP-002" not in {f["check"] for f in scan(applied, [])["findings"] if f["status"] == "fail"}
    # With default-deny for prod in the bundle, the narrow isolation is left out (it would undo it).
    names = {d["metadata"]["name"] for f in bundle.glob("*prod*.yaml") for d in yaml.safe_load_all(f.read_text()) if d}
    assert "default-deny-all" in names and "deny-sensitive-ports-from-other-environments" not in names
    # The finding's own fix, alone: only the sensitive ports from other environments close.
    [hit] = [f for f in before["findings"] if f["check"] == "NP-EXP-002"]
    alone = with_files(tmp_path, manifests, [], "alone", hit["fixYaml"])
    assert "&id" not in hit["fixYaml"]  # plain YAML, no anchors
    assert "NP-EXP-002" not in {f["check"] for f in scan(alone, [])["findings"] if f["status"] == "fail"}

    def reach(src: str, port: str) -> int:
        return runner.invoke(app, ["reach", src, "prod/db", str(alone), "-p", port]).exit_code

    assert reach("staging/app", "5432") == 1  # the cross-environment path is closed
    assert reach("staging/app", "8080") == 0  # other ports of other environments stay open
    assert reach("tools/admin", "5432") == 0  # a namespace without the label is not another environment
    assert runner.invoke(app, ["reach", "10.1.2.3", "prod/db", str(alone), "-p", "5432"]).exit_code == 0


def test_an_empty_pod_selector_is_narrowed_to_the_workloads_serving_its_ports(tmp_path):
    pods = "".join(f"""---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: shop, labels: {{app: {name}, pod-template-hash: {i}abc}}}}
spec: {{containers: [{{name: c, image: i, ports: [{{containerPort: {port}}}]}}]}}
""" for i, (name, port) in enumerate([("api", 8080), ("api2", 8080), ("db", 5432)]))
    manifests = folder(tmp_path, "shop", pods + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-in, namespace: shop}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {}}], ports: [{port: 8080}]}]
""")
    before = scan(manifests, [])
    [hit] = [f for f in before["findings"] if f["check"] == "NP-PERM-002"]
    # api and api2 share no label but pod-template-hash (per pod): no selector names exactly them.
    assert hit["fixYaml"] is None
    (manifests / "a.yaml").write_text((manifests / "a.yaml").read_text().replace("app: api2", "app: api, tier: two"))
    [hit] = [f for f in scan(manifests, [])["findings"] if f["check"] == "NP-PERM-002"]
    narrow, isolation = yaml.safe_load_all(hit["fixYaml"])
    assert narrow["spec"]["podSelector"] == {"matchLabels": {"app": "api"}}
    assert isolation["metadata"]["name"] == "web-in-isolation" and isolation["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    applied = with_files(tmp_path, manifests, [], fix=hit["fixYaml"])
    assert "NP-PERM-002" not in {f["check"] for f in scan(applied, [])["findings"]}
    change = runner.invoke(app, ["diff", str(manifests), str(applied), "--fail-on-opened"])
    assert change.exit_code == 0 and "- other/" not in change.stdout
    # Only closes: the db no longer accepts 8080 (which it never served) from every namespace.
    assert [line for line in change.stdout.splitlines() if line.startswith("- ") and line.endswith("=> shop/db[Pod] : TCP 8080")]


def test_a_sensitive_port_open_to_every_namespace_is_kept_for_its_named_clients(tmp_path):
    manifests = folder(tmp_path, "data", """
apiVersion: v1
kind: Namespace
metadata: {name: data}
---
apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Pod
metadata: {name: pg, namespace: data, labels: {app: pg}}
spec: {containers: [{name: c, image: i, ports: [{containerPort: 5432}, {containerPort: 9187}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: app, labels: {app: api}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-egress, namespace: app}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: data}}, podSelector: {matchLabels: {app: pg}}}]
    ports: [{port: 5432}]
---
apiVersion: v1
kind: Pod
metadata: {name: job, namespace: other, labels: {app: job}}
spec: {containers: [{name: c, image: i}]}
""")
    [hit] = [f for f in scan(manifests, [])["findings"] if f["check"] == "NP-PERM-008"]
    assert hit["fixYaml"].startswith("# Closes 5432 to every other namespace but the clients")
    applied = with_files(tmp_path, manifests, [], fix=hit["fixYaml"])
    assert "NP-PERM-008" not in {f["check"] for f in scan(applied, [])["findings"] if f["status"] == "fail"}

    def reach(src: str, port: str) -> int:
        return runner.invoke(app, ["reach", src, "data/pg", str(applied), "-p", port]).exit_code

    assert reach("app/api", "5432") == 0  # the client its egress policy names
    assert reach("other/job", "5432") == 1  # any other namespace: closed
    assert reach("other/job", "9187") == 0  # other ports: as before
    change = runner.invoke(app, ["diff", str(manifests), str(applied), "--fail-on-opened"])
    assert change.exit_code == 0, change.stdout


def test_a_before_and_after_picture_comes_with_the_bundle_and_with_diff(tmp_path):
    import xml.etree.ElementTree as ET

    svg = "{http://www.w3.org/2000/svg}"
    bundle = tmp_path / "fixes"
    assert runner.invoke(app, ["fix", str(EXAMPLES / "mixed-cluster"), "--out", str(bundle)]).exit_code == 0

    def open_cells(path: Path) -> list[int]:
        root = ET.parse(path).getroot()
        return [sum(1 for r in g.iter(f"{svg}rect") if r.get("fill") != "#f2f4f7") for g in root.findall(f"{svg}g")]

    before, after = open_cells(bundle / "segmentation-before-after.svg")
    assert before > after > 0  # the bundle closes paths; DNS and the intended ones stay
    picture = tmp_path / "d.svg"
    result = runner.invoke(app, ["diff", str(EXAMPLES / "lab-before"), str(EXAMPLES / "lab-solution"), "--map", str(picture)])
    assert result.exit_code == 0 and len(open_cells(picture)) == 2
    saved = tmp_path / "c.json"
    saved.write_text(runner.invoke(app, ["connectivity", str(EXAMPLES / "lab-before"), "-f", "json"]).stdout)
    refused = runner.invoke(app, ["diff", str(saved), str(EXAMPLES / "lab-solution"), "--map", str(tmp_path / "x.svg")])
    assert refused.exit_code == 2 and "--map draws manifests" in refused.stderr


def test_a_narrow_isolation_is_kept_where_the_bundle_has_no_default_deny_beside_it(tmp_path):
    """With the coverage findings waived, the bundle has no default-deny for prod: the isolation
    that takes away only the sensitive ports stays (and it is the only ingress policy there)."""
    manifests = folder(tmp_path, "envs", ENVS)
    config = tmp_path / "c.yaml"
    config.write_text("waivers:\n" + "".join(f"  - {{check: {c}, reason: later, expires: 2099-01-01}}\n"
                                             for c in ("NP-COV-001", "NP-COV-002", "NP-COV-003", "NP-COV-004", "NP-COV-005")))
    bundle = tmp_path / "fixes"
    made = runner.invoke(app, ["fix", str(manifests), "-c", str(config), "--out", str(bundle)])
    assert made.exit_code == 0, made.stderr
    docs = {d["metadata"]["name"]: d for f in bundle.glob("*prod*.yaml") for d in yaml.safe_load_all(f.read_text()) if d}
    assert "deny-sensitive-ports-from-other-environments" in docs and "deny-cloud-metadata" in docs
    assert not [n for n in docs if n.startswith("default-deny")]
    names = sorted(p.name for p in bundle.glob("*.yaml"))
    assert names[0].startswith("10-") and names[-1] == "90-kyverno-new-namespaces.yaml"


def test_the_bundle_says_which_offered_fixes_do_not_resolve_their_finding(tmp_path):
    bundle = tmp_path / "fixes"
    assert runner.invoke(app, ["fix", str(EXAMPLES / "mixed-cluster"), "--out", str(bundle)]).exit_code == 0
    [monitoring] = list(bundle.glob("*monitoring*.yaml"))
    head, offered = monitoring.read_text().split("# Offered, but the finding stays", 1)
    assert "#   NP-COV-003 monitoring:" in offered.split("apiVersion")[0] and "#   NP-COV-003 monitoring:" not in head


def test_a_null_egress_rule_is_narrowed_like_an_empty_one():
    from tests.conftest import audit

    report = audit("""
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: batch, labels: {app: p}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: open, namespace: batch}
spec: {podSelector: {matchLabels: {app: p}}, policyTypes: [Egress], egress: [null]}
""")
    [hit] = [f for f in report.findings if f.check == "NP-PERM-007"]
    [doc] = yaml.safe_load_all(hit.fix_yaml)
    assert {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}} in doc["spec"]["egress"][0]["to"]


def test_clients_with_the_same_labels_in_many_namespaces_share_one_peer(tmp_path):
    """The same client in two namespaces gets one peer listing both namespaces: the same pods as
    a peer each, and the other namespace's pod with those labels stays closed."""
    docs = [f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {n}}}" for n in ("data", "app1", "app2", "other")]
    docs.append("apiVersion: v1\nkind: Pod\nmetadata: {name: pg, namespace: data, labels: {app: pg}}\n"
                "spec: {containers: [{name: c, image: i, ports: [{containerPort: 5432}]}]}")
    for ns in ("app1", "app2", "other"):
        docs.append(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: api, namespace: {ns}, labels: {{app: api}}}}\n"
                    "spec: {containers: [{name: c, image: i}]}")
    for ns in ("app1", "app2"):
        docs.append(f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: api-egress, namespace: {ns}}}\n"
                    "spec:\n  podSelector: {matchLabels: {app: api}}\n  policyTypes: [Egress]\n  egress:\n"
                    "  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: data}}, podSelector: {matchLabels: {app: pg}}}]\n"
                    "    ports: [{port: 5432}]")
    manifests = folder(tmp_path, "data", "\n---\n".join(docs) + "\n")
    [hit] = [f for f in scan(manifests, [])["findings"] if f["check"] == "NP-PERM-008"]
    [policy] = [d for d in yaml.safe_load_all(hit["fixYaml"]) if d]
    peers = policy["spec"]["ingress"][1]["from"]
    assert peers[1:] == [{"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["app1", "app2"]}]},
                          "podSelector": {"matchLabels": {"app": "api"}}}]
    applied = with_files(tmp_path, manifests, [], fix=hit["fixYaml"])
    for src, code in (("app1/api", 0), ("app2/api", 0), ("other/api", 1)):
        assert runner.invoke(app, ["reach", src, "data/pg", str(applied), "-p", "5432"]).exit_code == code, src


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 65535), max_size=8) | st.sampled_from([[1], [65535], [1, 2], [65534, 65535], [5432, 5433], [1, 65535]]))
@example([3])  # gaps of one and two ports: a range of two ports is not one port
@example([5432, 5434])
@example([2, 4, 7])
@example([65533])
def test_every_port_but_the_sensitive_ones_is_allowed_and_nothing_else(excluded):
    """The other-environments fix keeps every TCP port but the sensitive ones (as ranges) and all of
    UDP and SCTP: the ranges, spelled out, against the set they stand for."""
    from audit.checks.fixes import _ports_except

    ports = _ports_except(tuple(excluded))
    tcp: set[int] = set()
    for p in (p for p in ports if p["protocol"] == "TCP"):
        assert 1 <= p["port"] <= p.get("endPort", p["port"]) <= 65535 and ("endPort" not in p or p["endPort"] > p["port"])
        tcp.update(range(p["port"], p.get("endPort", p["port"]) + 1))
    assert tcp == set(range(1, 65536)) - set(excluded)
    assert sum(p.get("endPort", p["port"]) - p["port"] + 1 for p in ports if p["protocol"] == "TCP") == len(tcp), "no range overlaps another"
    assert [p for p in ports if p["protocol"] != "TCP"] == [{"protocol": "UDP", "port": 1, "endPort": 65535},
                                                            {"protocol": "SCTP", "port": 1, "endPort": 65535}]


DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")  # Kubernetes' IsDNS1123Subdomain


@pytest.mark.parametrize("suffix", ["isolation", "sensitive-ports", "from-observed", "to-observed"])
def test_a_generated_name_is_a_valid_object_name_whatever_the_base_length(suffix):
    from audit.checks.fixes import object_name

    for length in range(225, 254):
        for base in ("a" * length, ("ab." * 90)[:length].rstrip(".") or "a"):
            name = object_name(base, suffix)
            assert len(name) <= 253 and DNS_SUBDOMAIN.match(name), (length, name[-20:])
            assert f"{base}-{suffix}".startswith(name) and len(name) >= min(len(base) + len(suffix) + 1, 253) - 2


def test_the_sensitive_ports_fix_of_a_long_named_workload_applies(tmp_path):
    """A 242-character name plus "-sensitive-ports" cut at 253 ended in "-": kubectl refused the fix."""
    name = "d" * 242
    (tmp_path / "m.yaml").write_text(f"""
apiVersion: v1
kind: Namespace
metadata: {{name: db, labels: {{kubernetes.io/metadata.name: db}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: web, labels: {{kubernetes.io/metadata.name: web}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: db}}
spec:
  selector: {{matchLabels: {{app: pg}}}}
  template:
    metadata: {{labels: {{app: pg}}}}
    spec: {{containers: [{{name: pg, image: pg, ports: [{{containerPort: 5432}}]}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: web}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: web}}]}}
""")
    out = runner.invoke(app, ["scan", str(tmp_path), "-f", "json", "--now", "2026-01-01T00:00:00Z"])
    fixes = [f["fixYaml"] for f in json.loads(out.stdout)["findings"] if f["check"] == "NP-PERM-008" and f.get("fixYaml")]
    assert fixes, "the check offers a fix"
    names = [d["metadata"]["name"] for text in fixes for d in yaml.safe_load_all(text) if d]
    assert names and all(len(n) <= 253 and DNS_SUBDOMAIN.match(n) for n in names), names


def _analysis_of(tmp_path, text: str):
    from audit.engine.analysis import Analysis
    from audit.sources.manifests import load_manifests

    (tmp_path / "m.yaml").write_text(text)
    return Analysis(load_manifests([str(tmp_path / "m.yaml")]))


EGRESS_POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: out, namespace: app}}
spec:
  podSelector: {{}}
  policyTypes: [Egress]
  egress: {egress}
"""


def test_the_metadata_fix_changes_only_what_reaches_the_metadata_address(tmp_path):
    from audit.checks.fixes import METADATA_CIDR, without_metadata

    def fix(egress: str):
        analysis = _analysis_of(tmp_path, EGRESS_POLICY.format(egress=egress))
        [policy] = analysis.policies
        return without_metadata(analysis, policy)

    # Port 80 to addresses that do not hold the metadata address, or the metadata address on 443 only: nothing to fix.
    assert fix("[{to: [{ipBlock: {cidr: 10.0.0.0/8}}], ports: [{port: 80}]}]") is None
    assert fix("[{to: [{ipBlock: {cidr: 0.0.0.0/0}}], ports: [{port: 443}]}]") is None
    # A pod peer beside an address block on port 80: only the block gets the except.
    doc = fix("[{to: [{namespaceSelector: {}}, {ipBlock: {cidr: 0.0.0.0/0}}], ports: [{port: 80}]}]")
    assert doc is not None
    [rule] = doc["spec"]["egress"]
    assert rule["to"] == [{"namespaceSelector": {}}, {"ipBlock": {"cidr": "0.0.0.0/0", "except": [METADATA_CIDR]}}]
    assert rule["ports"] == [{"port": 80}]
    assert list(doc["spec"]) == ["podSelector", "policyTypes", "egress"], "the spec's keys in the order fixes write them: selector, types, then the rules"


def test_the_metadata_fix_is_never_written_for_another_kind(tmp_path):
    from audit.checks.fixes import without_metadata

    analysis = _analysis_of(tmp_path, """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: out, namespace: app}
spec:
  endpointSelector: {}
  egress: [{toCIDR: [0.0.0.0/0], toPorts: [{ports: [{port: "80", protocol: TCP}]}]}]
""")
    [policy] = analysis.policies
    assert policy.family != "NetworkPolicy" and without_metadata(analysis, policy) is None


def _narrowed(tmp_path, pods: list[tuple[str, dict[str, str], int]], policy: str):
    """narrowed_selector of the one policy in namespace shop, its pods given as (name, labels, port)."""
    from audit.checks.fixes import narrowed_selector

    docs = "".join(f"""---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: shop, labels: {json.dumps(labels)}}}
spec: {{containers: [{{name: c, image: i, ports: [{{containerPort: {port}}}]}}]}}
""" for name, labels, port in pods)
    analysis = _analysis_of(tmp_path, docs + "---\n" + policy)
    [compiled] = [p for p in analysis.policies if p.namespace == "shop"]
    return narrowed_selector(analysis, compiled)


INGRESS_8080 = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-in, namespace: shop}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {}}], ports: [{port: 8080}]}]
"""


def test_narrowing_selects_by_the_labels_every_serving_workload_shares(tmp_path):
    pods = [("a", {"app": "x", "extra": "1", "tier": "db"}, 8080), ("b", {"app": "y", "tier": "db"}, 8080),
            ("c", {"app": "z", "extra": "1", "tier": "db"}, 8080), ("d", {"app": "w"}, 9090)]
    narrow, isolation = _narrowed(tmp_path, pods, INGRESS_8080)
    assert narrow["spec"]["podSelector"] == {"matchLabels": {"tier": "db"}}  # "extra" is a's and c's, not b's
    assert isolation["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_no_narrowing_when_the_shared_labels_select_one_more_workload(tmp_path):
    pods = [("a", {"app": "x", "tier": "db"}, 8080), ("b", {"app": "y", "tier": "db"}, 8080), ("d", {"app": "w", "tier": "db"}, 9090)]
    assert _narrowed(tmp_path, pods, INGRESS_8080) is None  # tier=db selects d too, which does not serve 8080


def test_without_ports_the_policy_is_narrowed_to_the_workload_it_is_named_after(tmp_path):
    pods = [("api", {"app": "api"}, 8080), ("worker", {"app": "worker"}, 8080), ("db", {"app": "db"}, 5432)]
    policy = INGRESS_8080.replace("name: web-in", "name: api").replace(", ports: [{port: 8080}]", "")
    narrow, isolation = _narrowed(tmp_path, pods, policy)
    assert narrow["spec"]["podSelector"] == {"matchLabels": {"app": "api"}} and isolation["metadata"]["name"] == "api-isolation"


def test_narrowing_keeps_the_others_egress_as_it_was(tmp_path):
    pods = [("a", {"app": "a"}, 8080), ("b", {"app": "b"}, 9090)]
    dns = "  egress: [{to: [{namespaceSelector: {}}], ports: [{port: 53, protocol: UDP}]}]\n"
    typed = INGRESS_8080.replace("  podSelector: {}\n", "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n")
    narrow, isolation = _narrowed(tmp_path, pods, typed + dns)
    assert narrow["spec"]["podSelector"] == {"matchLabels": {"app": "a"}} and isolation["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert isolation["spec"]["egress"] == [{"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}]}]
    # Egress isolated with no egress rule: the others stay isolated, with no rule either.
    narrow, isolation = _narrowed(tmp_path, pods, typed)
    assert narrow["spec"]["podSelector"] == {"matchLabels": {"app": "a"}}
    assert isolation["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    # An egress rule that is not DNS only: narrowing would take it from the others, so no fix.
    assert _narrowed(tmp_path, pods, typed + "  egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0}}]}]\n") is None
