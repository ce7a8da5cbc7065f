"""HTTP requests judged by Cilium's L7 rules: methods, paths and hosts as regular expressions matched
whole and case-sensitive (the path with its query string), headers by presence or exact value
(names in any case), headerMatches with a mismatch action never refusing, `http: [{}]` and
`http: []`, an L4-only allow letting every request through, both sides, and `verify`."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from audit.cli import app
from audit.engine.l7 import parse_request
from audit.engine.reach import check_paths, resolve
from audit.errors import InputError
from tests.conftest import analyse

runner = CliRunner()


def pod(ns: str, name: str, port: int = 8080) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": port}]}]}}


def cnp(name: str, spec: dict, ns: str = "production") -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def ingress_http(rules: list | None, name: str = "api", port: str = "8080", protocol: str = "TCP") -> dict:
    to_ports: dict = {"ports": [{"port": port, "protocol": protocol}]}
    if rules is not None:
        to_ports["rules"] = {"http": rules}
    return cnp(name, {"endpointSelector": {"matchLabels": {"app": "api-gateway"}},
                      "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "web-frontend"}}], "toPorts": [to_ports]}]})


# The domain text's example: GET /api/v1/products.* and POST /api/v1/orders.
SHOP = [{"method": "GET", "path": "/api/v1/products.*"}, {"method": "POST", "path": "/api/v1/orders"}]


def cluster(*objs: dict) -> str:
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "production"}},
            pod("production", "web-frontend"), pod("production", "api-gateway"), *objs]
    return "\n---\n".join(yaml.safe_dump(d) for d in docs)


def ask(text: str, request: str | None, headers: tuple[str, ...] = (), port: str = "8080") -> str:
    a = analyse(text)
    (result,) = check_paths(a, resolve(a, "production/web-frontend"), resolve(a, "production/api-gateway"), port,
                            parse_request(request, headers) if request else None)
    return result.answer


@pytest.mark.parametrize("request_line,headers,expected", [
    ("GET /api/v1/products/42", (), "allowed"),
    ("GET /api/v1/products", (), "allowed"),  # `.*` may be empty
    ("POST /api/v1/orders", (), "allowed"),
    ("POST /api/v1/products/42", (), "denied"),  # the method belongs to the rule
    ("POST /api/v1/orders/7", (), "denied"),  # matched whole: no prefix match
    ("POST /api/v1/admin", (), "denied"),
    ("GET /x/api/v1/products", (), "denied"),  # matched whole: anchored at the start too
    ("get /api/v1/products", (), "denied"),  # case-sensitive
    ("POST /api/v1/orders?debug=1", (), "denied"),  # the path includes the query string
    ("DELETE /api/v1/products/1", (), "denied"),
])
def test_http_rules_truth_table(request_line, headers, expected):
    assert ask(cluster(ingress_http(SHOP)), request_line, headers) == expected


@pytest.mark.parametrize("rule,headers,expected", [
    ({"headers": ["X-Env: prod"]}, (), "denied"),
    ({"headers": ["X-Env: prod"]}, ("X-Env: prod",), "allowed"),
    ({"headers": ["X-Env: prod"]}, ("x-env: prod",), "allowed"),  # header names in any case
    ({"headers": ["X-Env: prod"]}, ("X-Env: Prod",), "denied"),  # values exactly
    ({"headers": ["X-Token"]}, ("X-Token: anything",), "allowed"),  # presence only
    ({"headers": ["X-Token"]}, (), "denied"),
    ({"headerMatches": [{"name": "X-Env", "value": "prod", "mismatch": "LOG"}]}, (), "allowed"),  # logs, never refuses
    ({"headerMatches": [{"name": "X-Env", "value": "prod", "mismatch": "REPLACE"}]}, ("X-Env: dev",), "allowed"),
    ({"headerMatches": [{"name": "X-Env", "value": "prod"}]}, ("X-Env: dev",), "denied"),
    ({"headerMatches": [{"name": "X-Env", "value": "prod"}]}, ("X-Env: prod",), "allowed"),
    ({"headerMatches": [{"name": "X-Key", "secret": {"name": "s", "namespace": "production"}}]}, ("X-Key: v",), "unknown"),
    ({"host": "api\\.example\\.com"}, ("Host: api.example.com",), "allowed"),
    ({"host": "api\\.example\\.com"}, ("Host: api.example.com:8080",), "denied"),  # the authority with its port
    ({"host": "api\\.example\\.com"}, (), "denied"),
    ({"method": "GET|POST"}, (), "allowed"),
    ({"method": "(?i)get"}, (), "allowed"),
    ({"method": "PUT"}, (), "denied"),
    ({}, (), "allowed"),  # http: [{}] lets every request through the proxy
])
def test_http_rule_parts(rule, headers, expected):
    assert ask(cluster(ingress_http([rule])), "GET /anything", headers) == expected


def test_an_empty_http_list_is_a_plain_layer_4_allow():
    assert ask(cluster(ingress_http([])), "DELETE /whatever") == "allowed"


def test_an_l4_only_allow_for_the_same_peer_lets_every_request_through():
    l4_only = ingress_http(None, name="l4")
    assert ask(cluster(ingress_http(SHOP), l4_only), "DELETE /api/v1/admin") == "allowed"
    assert ask(cluster(ingress_http(SHOP)), "DELETE /api/v1/admin") == "denied"


def test_rules_of_several_policies_add_up():
    other = ingress_http([{"method": "DELETE", "path": "/api/v1/admin"}], name="admin")
    assert ask(cluster(ingress_http(SHOP), other), "DELETE /api/v1/admin") == "allowed"
    assert ask(cluster(ingress_http(SHOP), other), "PUT /api/v1/admin") == "denied"


def test_kafka_rules_refuse_http():
    kafka = cnp("api", {"endpointSelector": {"matchLabels": {"app": "api-gateway"}}, "ingress": [{
        "fromEndpoints": [{"matchLabels": {"app": "web-frontend"}}],
        "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}], "rules": {"kafka": [{"topic": "orders"}]}}]}]})
    assert ask(cluster(kafka), "GET /") == "denied"


def test_another_l7_parser_refuses_http():
    proto = cnp("api", {"endpointSelector": {"matchLabels": {"app": "api-gateway"}}, "ingress": [{
        "fromEndpoints": [{"matchLabels": {"app": "web-frontend"}}],
        "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}], "rules": {"l7proto": "cassandra", "l7": [{"query_action": "select"}]}}]}]})
    a = analyse(cluster(proto))
    (result,) = check_paths(a, resolve(a, "production/web-frontend"), resolve(a, "production/api-gateway"), "8080", parse_request("GET /"))
    assert result.answer == "denied" and "speak cassandra" in result.l7[1].reason


def test_the_egress_side_is_judged_too():
    egress = cnp("web", {"endpointSelector": {"matchLabels": {"app": "web-frontend"}}, "egress": [{
        "toEndpoints": [{"matchLabels": {"app": "api-gateway"}}],
        "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}], "rules": {"http": [{"method": "GET"}]}}]}]})
    assert ask(cluster(egress), "GET /x") == "allowed"
    assert ask(cluster(egress), "POST /x") == "denied"
    # Both sides must let it through.
    assert ask(cluster(egress, ingress_http([{"path": "/y"}])), "GET /x") == "denied"
    assert ask(cluster(egress, ingress_http([{"path": "/x"}])), "GET /x") == "allowed"


def test_reach_names_the_rule_and_lists_the_shapes(tmp_path):
    path = tmp_path / "in.yaml"
    path.write_text(cluster(ingress_http(SHOP)))
    args = ["reach", "production/web-frontend", "production/api-gateway", "--port", "8080", str(path)]
    plain = runner.invoke(app, args)
    assert plain.exit_code == 0
    assert "allowed at L4 for: GET /api/v1/products.*; POST /api/v1/orders" in plain.output
    ok = runner.invoke(app, [*args, "--http", "GET /api/v1/products/42"])
    assert ok.exit_code == 0 and "CiliumNetworkPolicy/production/api ingress[0] spec.ingress[0].toPorts[0].rules.http[0]" in ok.output
    refused = runner.invoke(app, [*args, "--http", "POST /api/v1/admin"])
    assert refused.exit_code == 1 and "DENIED" in refused.output and "no HTTP rule matches POST /api/v1/admin" in refused.output
    secret = tmp_path / "secret.yaml"
    secret.write_text(cluster(ingress_http([{"headerMatches": [{"name": "X-Key", "secret": {"name": "s", "namespace": "production"}}]}])))
    unknown = runner.invoke(app, ["reach", "production/web-frontend", "production/api-gateway", "-p", "8080", str(secret),
                                  "--http", "GET /", "--header", "X-Key: v"])
    assert unknown.exit_code == 6 and "UNKNOWN" in unknown.output
    assert runner.invoke(app, [*args, "--header", "X: y"]).exit_code == 2  # a header without a request


@pytest.mark.parametrize("text", ["GET", "/path", "GET path", "GET /a b", "G3T /x"])
def test_a_malformed_request_is_a_usage_error(text):
    with pytest.raises(InputError, match="give a method and a path"):
        parse_request(text)


def test_verify_takes_http(tmp_path):
    path = tmp_path / "in.yaml"
    path.write_text(cluster(ingress_http(SHOP)))
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"expectations": [
        {"from": "production/web-frontend", "to": "production/api-gateway", "port": 8080, "http": "GET /api/v1/products/1", "expect": "allowed"},
        {"from": "production/web-frontend", "to": "production/api-gateway", "port": 8080, "http": "POST /api/v1/admin", "expect": "denied"}]}))
    assert runner.invoke(app, ["verify", str(good), str(path)]).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"expectations": [
        {"from": "production/web-frontend", "to": "production/api-gateway", "port": 8080, "http": "POST /api/v1/admin", "expect": "allowed"}]}))
    result = runner.invoke(app, ["verify", str(bad), str(path)])
    assert result.exit_code == 1 and "no HTTP rule matches" in result.output
