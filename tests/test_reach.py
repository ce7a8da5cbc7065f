"""`reach` and `verify`: explanations that name the deciding policy and rule, expectations, JUnit."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest
import yaml
from typer.testing import CliRunner

from audit.cli import app
from audit.errors import InputError
from audit.sources.documents import load_expectations
from tests.conftest import EXAMPLES, analyse

runner = CliRunner()
LAB = str(EXAMPLES / "lab-solution")
EXPECTATIONS = str(EXAMPLES / "lab-expectations.yaml")


def test_allowed_path_names_the_allowing_rule_on_each_side():
    result = runner.invoke(app, ["reach", "frontend/web", "backend/api", "--port", "8080", LAB])
    assert result.exit_code == 0, result.output
    assert "frontend/web -> backend/api : 8080/TCP  ALLOWED" in result.output
    assert "allowed by frontend/web-egress-to-api egress[0]" in result.output
    assert "allowed by backend/api-ingress-from-web ingress[0]" in result.output


def test_blocked_path_names_policy_and_rule_on_each_side():
    result = runner.invoke(app, ["reach", "frontend/web", "backend/api", "-p", "9090", LAB])
    assert result.exit_code == 1
    out = result.output
    assert "DENIED" in out
    assert "egress of the source: isolated by frontend/allow-dns, frontend/default-deny-all, frontend/web-egress-to-api" in out
    assert "frontend/web-egress-to-api egress[0]: 9090/TCP is not among its ports" in out
    assert "backend/api-ingress-from-web ingress[0]: 9090/TCP is not among its ports" in out


def test_blocked_by_peer_and_default_ports():
    result = runner.invoke(app, ["reach", "frontend/web", "database/db", LAB])  # db declares 5432
    assert result.exit_code == 1
    assert "database/db-ingress-from-api ingress[0]: source matches none of its peers" in result.output
    assert ": 5432/TCP  DENIED" in result.output


def test_namespace_selector_ip_and_dns_endpoints():
    ok = runner.invoke(app, ["reach", "backend", "dns", "-p", "53/UDP", "-l", "app=api", LAB])
    assert ok.exit_code == 0 and "ALLOWED" in ok.output
    outside = runner.invoke(app, ["reach", "203.0.113.7", "database/db", "-p", "5432", LAB])
    assert outside.exit_code == 1 and "not governed by NetworkPolicy" in outside.output


@pytest.mark.parametrize("args,message", [
    (["nope/web", "backend/api", "-p", "80"], "no namespace 'nope'"),
    (["frontend/nope", "backend/api", "-p", "80"], "no pod or workload named 'nope'"),
    (["frontend/web", "backend/api", "-p", "80/ICMP"], "protocol must be one of"),
    (["frontend/web", "203.0.113.1"], "declares no container port; give --port"),
    (["frontend", "backend/api", "-l", "app in web", "-p", "80"], "use key=value"),
])
def test_reach_input_errors(args, message):
    result = runner.invoke(app, ["reach", *args, LAB])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_lab_success_criteria_pass_on_the_solution(tmp_path):
    junit = tmp_path / "verify.xml"
    result = runner.invoke(app, ["verify", EXPECTATIONS, LAB, "--junit", str(junit)])
    assert result.exit_code == 0, result.output
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "7" and suite.get("failures") == "0"


def test_lab_success_criteria_fail_before_policies(tmp_path):
    junit = tmp_path / "verify.xml"
    result = runner.invoke(app, ["verify", EXPECTATIONS, str(EXAMPLES / "lab-before"), "--junit", str(junit)])
    assert result.exit_code == 1
    failures = [c for c in ET.parse(junit).getroot().iter("testcase") if c.find("failure") is not None]
    assert {c.get("name") for c in failures} == {"Frontend cannot reach the database directly",
                                                 "Nothing outside the cluster reaches the database"}


def test_removing_a_policy_fails_the_expectation_it_served(tmp_path):
    lab = tmp_path / "lab"
    shutil.copytree(EXAMPLES / "lab-solution", lab)
    docs = [d for d in yaml.safe_load_all((lab / "policies.yaml").read_text()) if d]
    kept = [d for d in docs if d["metadata"]["name"] != "api-ingress-from-web"]
    (lab / "policies.yaml").write_text(yaml.safe_dump_all(kept))
    result = runner.invoke(app, ["verify", EXPECTATIONS, str(lab), "-f", "json"])
    assert result.exit_code == 1
    import json

    outcomes = {o["name"]: o for o in json.loads(result.stdout)}
    failed = outcomes["Frontend can reach the backend API on 8080"]
    assert not failed["passed"] and "ingress of the destination: isolated by backend/default-deny-all" in failed["detail"]
    assert sum(1 for o in outcomes.values() if not o["passed"]) == 1


@pytest.mark.parametrize("text,message", [
    ("expectations: []", "expectations: required"),
    ("expectations:\n  - {from: a/b, to: c/d, port: 80}", "expectations[0].expect: required"),
    ("expectations:\n  - {from: a/b, to: c/d, port: 80, expect: maybe}", "must be allowed or denied"),
    ("expectations:\n  - {from: a/b, to: c/d, port: http, expect: allowed}", "not a port number"),
    ("expectations:\n  - {from: a/b, to: c/d, port: 80, expect: allowed, form: x}", "expectations[0].form: unknown field"),
])
def test_expectation_file_errors_name_the_field(tmp_path, text, message):
    path = tmp_path / "e.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_expectations(str(path))


def test_unresolvable_endpoint_is_a_failed_expectation_not_a_crash(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("expectations:\n  - {from: ghost/app, to: backend/api, port: 8080, expect: denied}\n")
    result = runner.invoke(app, ["verify", str(path), LAB])
    assert result.exit_code == 1 and "cannot evaluate" in result.output and "no namespace 'ghost'" in result.output


def test_reach_evaluates_calico_policies_too(tmp_path):
    extra = tmp_path / "calico.yaml"
    extra.write_text("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: lock}\n"
                     "spec: {order: 10, selector: app == 'api', ingress: [{action: Deny}]}\n")
    result = runner.invoke(app, ["reach", "frontend/web", "backend/api", "-p", "8080", LAB, str(extra)])
    assert result.exit_code == 1 and "denied by Calico GlobalNetworkPolicy/lock ingress[0]" in result.output


NAMED = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: i}]}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: db}}
  template: {metadata: {labels: {app: db}}, spec: {containers: [{name: c, image: i, ports: [{containerPort: 5432}]}]}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: shop}
spec:
  schedule: "@daily"
  jobTemplate: {spec: {template: {metadata: {labels: {app: report}}, spec: {containers: [{name: c, image: i}]}}}}
"""


@pytest.mark.parametrize("name,workload", [
    ("shop/web-7d4b9c8f6d-x2x7k", "web"), ("shop/db-2", "db"), ("shop/web[Deployment]", "web"),
    ("shop/report-29012345-abcde", "report"), ("shop/web", "web"),
])
def test_names_as_users_type_them(name, workload):
    from audit.engine.reach import resolve
    a = analyse(NAMED)
    (target,) = resolve(a, name)
    assert workload in {w.name for w in a.classes[target.endpoint].workloads}


def test_a_statefulset_pod_answers_for_itself_and_the_workload_for_each_pod():
    from audit.engine.reach import resolve
    a = analyse(NAMED)
    (pod,) = resolve(a, "shop/db-2")
    assert dict(a.classes[pod.endpoint].labels)["statefulset.kubernetes.io/pod-name"] == "db-2" and pod.label == "shop/db-2"
    assert len(resolve(a, "shop/db[StatefulSet]")) == len(resolve(a, "shop/db")) == 3
    with pytest.raises(InputError, match="no pod or workload named 'db-7'"):
        resolve(a, "shop/db-7")  # the StatefulSet has three pods: there is no db-7


ONE_POD_ALLOWED = NAMED + """
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: prometheus, namespace: monitoring}
spec:
  selector: {matchLabels: {app: prometheus}}
  template: {metadata: {labels: {app: prometheus}}, spec: {containers: [{name: c, image: i}]}}
---
apiVersion: v1
kind: Namespace
metadata: {name: monitoring}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-0-metrics, namespace: shop}
spec:
  podSelector: {matchLabels: {statefulset.kubernetes.io/pod-name: db-0}}
  policyTypes: [Ingress]
  ingress:
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
      ports: [{port: 9187}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-deny, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
"""


def test_reach_a_pod_a_policy_selects_by_its_name(tmp_path):
    path = tmp_path / "in.yaml"
    path.write_text(ONE_POD_ALLOWED)
    assert runner.invoke(app, ["reach", "monitoring/prometheus", "shop/db-0", "-p", "9187", str(path)]).exit_code == 0
    denied = runner.invoke(app, ["reach", "monitoring/prometheus", "shop/db-1", "-p", "9187", str(path)])
    assert denied.exit_code == 1 and "DENIED" in denied.output
    every = runner.invoke(app, ["reach", "monitoring/prometheus", "shop/db", "-p", "9187", str(path)])
    assert every.exit_code == 1 and every.output.count("ALLOWED") == 1 and every.output.count("DENIED") == 2


def test_an_unknown_name_suggests_close_matches():
    from audit.engine.reach import resolve
    with pytest.raises(InputError, match=r"did you mean shop/web\?"):
        resolve(analyse(NAMED), "shop/wbe")
    with pytest.raises(InputError) as raised:
        resolve(analyse(NAMED), "shop/zzzzzz")
    assert "did you mean" not in str(raised.value)


@pytest.mark.parametrize("text,yes,no", [
    ("app in (web,api)", [{"app": "web"}, {"app": "api", "x": "1"}], [{"app": "db"}, {}]),
    ("app notin (web, api)", [{"app": "db"}, {}], [{"app": "web"}]),
    ("tier", [{"tier": "x"}], [{"app": "web"}]),
    ("!tier", [{"app": "web"}], [{"tier": "x"}]),
    ("app==web,tier!=db", [{"app": "web"}, {"app": "web", "tier": "fe"}], [{"app": "web", "tier": "db"}, {"app": "api"}]),
    ("app in (web),!legacy,env", [{"app": "web", "env": "p"}], [{"app": "web", "env": "p", "legacy": "1"}, {"app": "web"}]),
])
def test_selectors_take_kubectl_set_based_syntax(text, yes, no):
    from audit.engine.reach import parse_label_selector

    selector = parse_label_selector(text)
    assert selector is not None
    assert all(selector.matches(labels) for labels in yes) and not any(selector.matches(labels) for labels in no)


@pytest.mark.parametrize("bad", ["app in web", "app in (a", "=x", "a b"])
def test_a_selector_kubectl_would_refuse_is_one_clear_error(bad):
    from audit.engine.reach import parse_label_selector
    from audit.errors import InputError

    with pytest.raises(InputError, match="selector"):
        parse_label_selector(bad)
