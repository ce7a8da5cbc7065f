"""Ingress and Route objects: `{ingress-controller}` connections, as np-guard's netpol-analyzer lists them."""

from __future__ import annotations

import re

from audit.engine.connectivity import connections
from tests.conftest import analyse, inventory


def deployment(ns: str, name: str, ports: str) -> str:
    return f"""
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, image: i, ports: {ports}}}]}}
"""


SHOP = "".join([
    deployment("shop", "web", "[{containerPort: 8080, name: http}]"),
    deployment("shop", "cache", "[{containerPort: 8080, name: http}, {containerPort: 9000, name: admin}]"),
    deployment("shop", "quiet", "[]"),
    deployment("pay", "api", "[{containerPort: 9090}]"),
    """
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{name: web, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: cache, namespace: shop}
spec: {selector: {app: cache}, ports: [{port: 80, targetPort: http}, {port: 81, targetPort: admin}]}
---
apiVersion: v1
kind: Service
metadata: {name: quiet, namespace: shop}
spec: {selector: {app: quiet}, ports: [{port: 80, targetPort: 7000}]}
---
apiVersion: v1
kind: Service
metadata: {name: manual, namespace: shop}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: pay}
spec: {selector: {app: api}, ports: [{port: 9090}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  rules:
    - http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: web}}}}
          - {path: /q, pathType: Prefix, backend: {service: {name: quiet, port: {number: 80}}}}
          - {path: /m, pathType: Prefix, backend: {service: {name: manual, port: {number: 80}}}}
---
apiVersion: route.openshift.io/v1
kind: Route
metadata: {name: cache, namespace: shop}
spec: {to: {kind: Service, name: cache}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: api, namespace: pay}
spec: {defaultBackend: {service: {name: api, port: {number: 9090}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-prod, namespace: pay}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {env: prod}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cache-admin-internal, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cache}}
  ingress:
    - from: [{namespaceSelector: {}}]
      ports: [{port: 8080}]
"""])


def ingress_lines(text: str, namespaces: set[str] | None = None) -> list[str]:
    return [str(c) for c in connections(analyse(text), namespaces) if c.src == "{ingress-controller}"]


def test_ingress_controller_reaches_what_ingresses_and_routes_name_and_policies_allow():
    assert ingress_lines(SHOP) == [
        # Route without a port: every Service port, but the cache's policy admits only 8080.
        "{ingress-controller} => shop/cache[Deployment] : TCP 8080",
        # Ingress by Service port name; the target port is a number the pods declare.
        "{ingress-controller} => shop/web[Deployment] : TCP 8080",
    ]
    # pay/api: its policy admits only namespaces labelled env=prod; the controller's is not.
    # shop/quiet: the Service targets a port the pods do not declare; shop/manual has no selector.


def test_ingress_lines_sort_last_and_follow_the_namespace_filter():
    lines = [str(c) for c in connections(analyse(SHOP))]
    assert lines[-2:] == ingress_lines(SHOP)
    assert ingress_lines(SHOP, {"pay"}) == []
    assert ingress_lines(SHOP, {"shop"}) == ingress_lines(SHOP)


def test_admitting_every_namespace_admits_the_controller():
    opened = SHOP.replace("{namespaceSelector: {matchLabels: {env: prod}}}", "{namespaceSelector: {}}")
    assert "{ingress-controller} => pay/api[Deployment] : TCP 9090" in ingress_lines(opened)


def test_ingress_and_route_shapes_are_read():
    inv = inventory("""
apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: old, namespace: a}
spec: {backend: {serviceName: s1, servicePort: 80}, rules: [{http: {paths: [{backend: {serviceName: s2, servicePort: http}}]}}]}
---
apiVersion: route.openshift.io/v1
kind: Route
metadata: {name: r, namespace: a}
spec: {to: {kind: Service, name: s3}, port: {targetPort: 8443}, alternateBackends: [{kind: Service, name: s4}, {kind: Other, name: x}]}
""")
    got = {(i.kind, i.name): [(b.service, b.port) for b in i.backends] for i in inv.ingresses}
    assert got == {("Ingress", "old"): [("s1", 80), ("s2", "http")], ("Route", "r"): [("s3", 8443), ("s4", 8443)]}


def test_a_malformed_service_names_the_field():
    inv = inventory("apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: a}\nspec: {ports: [{name: x}]}\n")
    [issue] = inv.collection.invalid_objects
    assert issue.resource == "Service a/s" and re.search(r"Service s.*spec\.ports\[0\]\.port", issue.reason)
    assert not inv.services


def test_the_stand_in_pods_are_virtual_and_their_namespaces_undeclared():
    """The ingress controller and, without DNS pods in the input, the cluster DNS are virtual pods:
    no workload, no pod, never among the real classes (coverage, listings and checks count
    those), each in a namespace the inventory does not declare unless it does; a declared one is
    kept as it is."""
    from audit.engine.analysis import INGRESS_NAMESPACE

    analysis = analyse(SHOP)
    stand_ins = [analysis.ingress_controller, *analysis.dns_classes]
    assert analysis.ingress_controller is not None and len(stand_ins) == 2
    real = {c.id for c in analysis.real_classes()}
    for cid in stand_ins:
        cls = analysis.classes[cid]
        assert cls.virtual and not cls.governed and cls.pods == 0 and cls.workloads == () and cid not in real
    assert analysis.classes[analysis.ingress_controller].namespace == INGRESS_NAMESPACE
    assert analysis.namespaces[INGRESS_NAMESPACE].declared is False
    assert analysis.namespaces["kube-system"].declared is False
    declared = analyse(SHOP + f"\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {INGRESS_NAMESPACE}, labels: {{team: edge}}}}\n")
    assert declared.namespaces[INGRESS_NAMESPACE].declared is True
    assert dict(declared.namespaces[INGRESS_NAMESPACE].labels)["team"] == "edge"
