"""A small Kubernetes API-server double for tests: list JSON, paging, discovery and faults.

It serves GET only, like the scanner needs, and records every request so tests can compare
what was asked with the RBAC the tool prints.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# (group, version, resource, kind, namespaced)
COLLECTIONS = {
    ("", "v1", "namespaces"): ("Namespace", False),
    ("", "v1", "pods"): ("Pod", True),
    ("", "v1", "nodes"): ("Node", False),
    ("", "v1", "services"): ("Service", True),
    ("", "v1", "serviceaccounts"): ("ServiceAccount", True),
    ("networking.k8s.io", "v1", "ingresses"): ("Ingress", True),
    ("route.openshift.io", "v1", "routes"): ("Route", True),
    ("networking.k8s.io", "v1", "networkpolicies"): ("NetworkPolicy", True),
    ("apps", "v1", "daemonsets"): ("DaemonSet", True),
    ("policy.networking.k8s.io", "v1alpha1", "adminnetworkpolicies"): ("AdminNetworkPolicy", False),
    ("policy.networking.k8s.io", "v1alpha1", "baselineadminnetworkpolicies"): ("BaselineAdminNetworkPolicy", False),
    ("policy.networking.k8s.io", "v1alpha2", "clusternetworkpolicies"): ("ClusterNetworkPolicy", False),
    ("cilium.io", "v2", "ciliumnetworkpolicies"): ("CiliumNetworkPolicy", True),
    ("cilium.io", "v2", "ciliumclusterwidenetworkpolicies"): ("CiliumClusterwideNetworkPolicy", False),
    ("crd.projectcalico.org", "v1", "networkpolicies"): ("NetworkPolicy", True),
    ("crd.projectcalico.org", "v1", "globalnetworkpolicies"): ("GlobalNetworkPolicy", False),
    ("projectcalico.org", "v3", "networkpolicies"): ("NetworkPolicy", True),
    ("projectcalico.org", "v3", "globalnetworkpolicies"): ("GlobalNetworkPolicy", False),
    ("crd.projectcalico.org", "v1", "tiers"): ("Tier", False),
    ("projectcalico.org", "v3", "tiers"): ("Tier", False),
    # Read by name only (the CNIs' settings): never listed by the scanner.
    ("", "v1", "configmaps"): ("ConfigMap", True),
    ("apps", "v1", "deployments"): ("Deployment", True),
    ("operator.tigera.io", "v1", "installations"): ("Installation", False),
}


def collection_path(group: str, version: str, resource: str) -> str:
    return f"/api/{version}/{resource}" if not group else f"/apis/{group}/{version}/{resource}"


@dataclass
class Faults:
    forbidden: set[str] = field(default_factory=set)  # collection paths answering 403
    gone_after_first_page: set[str] = field(default_factory=set)  # 410 on the first continue, once
    fail_once: dict[str, int] = field(default_factory=dict)  # path -> status returned once (500, 429)
    slow: dict[str, float] = field(default_factory=dict)  # path -> seconds to wait before answering
    unauthorized: bool = False
    hostile: dict[str, str] = field(default_factory=dict)  # path -> a misbehaviour of HOSTILE
    fail_get: dict[str, int] = field(default_factory=dict)  # path of one object -> status it always answers


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    user_agent: str | None = None


_NAMESPACED = re.compile(r"^(/api/v1|/apis/[^/]+/[^/]+)/namespaces/([^/]+)(?:/([^/]+))?$")
"""A request scoped to one namespace: its list of a namespaced resource, or the Namespace itself."""
_NAMED = re.compile(r"^(/api/v1|/apis/[^/]+/[^/]+)(?:/namespaces/([^/]+))?/([^/]+)/([^/]+)$")
"""A GET of one object by name: namespaced (…/namespaces/NS/RESOURCE/NAME) or cluster-scoped (…/RESOURCE/NAME)."""


def request_attributes(path: str) -> tuple[str, str, str, str | None, str | None] | None:
    """(verb, group, resource, name, namespace) as RBAC sees a GET; None for discovery, which
    every authenticated user may read (the system:discovery role)."""
    if path in ("/version", "/apis", "/api", "/api/v1") or (path.startswith("/apis/") and path.count("/") == 3):
        return None
    core = path.startswith("/api/v1")
    parts = path.strip("/").split("/")[2:] if core else path.strip("/").split("/")[3:]
    group = "" if core else path.split("/")[2]
    namespace = None
    if len(parts) >= 2 and parts[0] == "namespaces":
        if len(parts) == 2:
            return "get", group, "namespaces", parts[1], None
        namespace, parts = parts[1], parts[2:]
    resource, name = parts[0], (parts[1] if len(parts) > 1 else None)
    return ("get" if name else "list"), group, resource, name, namespace


def role_allows(rules: list[dict[str, Any]], verb: str, group: str, resource: str, name: str | None) -> bool:
    """Whether a ClusterRole's rules allow the request (resourceNames restrict get by name; a list
    is never allowed by a rule with resourceNames)."""
    for rule in rules:
        names = rule.get("resourceNames") or []
        if (group in rule.get("apiGroups", []) and resource in rule.get("resources", []) and verb in rule.get("verbs", [])
                and (not names or (name is not None and name in names))):
            return True
    return False

HOSTILE = ("empty-200", "status-200", "continue-loop", "continue-loop-empty", "empty-pages-new-token", "items-wrong-types",
           "items-dict", "page-is-list", "metadata-string", "invalid-json", "truncated-json", "html-200",
           "duplicate-continue-json", "slow-drip")


class ApiDouble:
    """Serve ``objects`` (API-style dicts) grouped into the collections above."""

    def __init__(self, objects: list[dict[str, Any]], groups: set[str] | None = None, faults: Faults | None = None,
                 token: str | None = None, tls: tuple[str, str] | None = None, version: str = "v1.31.2",
                 page_size_cap: int | None = None, versions: dict[str, list[str]] | None = None,
                 role: dict[str, Any] | None = None):
        # role: a ClusterRole; when given, every request it does not allow answers 403, as a real
        # server's authorizer would for a ServiceAccount bound to exactly that role.
        # versions: group -> the versions it serves, preferred first (default: every version of
        # COLLECTIONS for the group, in its order); a collection at a version not served is 404.
        self.faults = faults or Faults()
        self.role = role
        self.denied: list[str] = []
        self.token = token
        self.version = version
        self.page_size_cap = page_size_cap
        self.requests: list[Recorded] = []
        self.raw_pages: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._generation = 1
        self.groups = groups if groups is not None else {"networking.k8s.io", "apps"}
        self.versions = versions or {}
        self.items: dict[str, list[dict]] = {}
        for key, (kind, _ns) in COLLECTIONS.items():
            group, version_, resource = key
            if (group and group not in self.groups) or (group in self.versions and version_ not in self.versions[group]):
                continue
            self.items[collection_path(group, version_, resource)] = [
                o for o in objects if o.get("kind") == kind and _group_of(o) == group
            ]
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        host, port = self._server.server_address[:2]
        self.url = f"{scheme}://{host}:{port}"
        self.port = port
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> ApiDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def collection_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path in self.items or r.path in self.faults.forbidden]

    def _handler(self):
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _status(self, code: int, reason: str, message: str, headers: dict[str, str] | None = None) -> None:
                self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "message": message, "reason": reason, "code": code}, headers)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                path, query = parts.path, parse_qs(parts.query)
                with double._lock:
                    double.requests.append(Recorded("GET", path, query, self.headers.get("Authorization"), self.headers.get("User-Agent")))
                auth = (self.headers.get("Authorization") or "").split(" ", 1)
                # The auth scheme is case-insensitive (the in-cluster loader sends "bearer").
                if double.faults.unauthorized or (double.token and (auth[0].lower() != "bearer" or auth[-1] != double.token)):
                    return self._status(401, "Unauthorized", "Unauthorized")
                attributes = request_attributes(path)
                if double.role is not None and attributes is not None:
                    verb, group, resource, name, _ns = attributes
                    if not role_allows(double.role["rules"], verb, group, resource, name):
                        double.denied.append(path)
                        return self._status(403, "Forbidden", f'{resource} "{name or ""}" is forbidden: User '
                                            f'"system:serviceaccount:audit:netpol-audit" cannot {verb} resource "{resource}"')
                if path in double.faults.slow:
                    time.sleep(double.faults.slow[path])
                with double._lock:
                    status = double.faults.fail_once.pop(path, None)
                if status == 429:
                    return self._status(429, "TooManyRequests", "slow down", {"Retry-After": "0"})
                if status is not None:
                    return self._status(status, "InternalError", "etcd leader changed")
                if path == "/version":
                    return self._send(200, {"major": "1", "minor": "31", "gitVersion": double.version})
                if path == "/apis":
                    return self._send(200, double._discovery())
                if path.count("/") == 3 and path.startswith("/apis/") and path not in double.faults.forbidden:
                    listing = double._resources(*path.split("/")[2:4])
                    if listing is not None:
                        return self._send(200, listing)
                if path in double.faults.forbidden:
                    resource = path.rsplit("/", 1)[-1]
                    return self._status(403, "Forbidden",
                                        f'{resource} is forbidden: User "system:serviceaccount:audit:netpol-audit" cannot list resource "{resource}" at the cluster scope')
                scoped = _NAMESPACED.match(path)
                if scoped and path not in double.faults.forbidden:
                    prefix, ns, resource = scoped.groups()
                    if resource is None:  # GET one namespace
                        obj = next((o for o in double.items.get("/api/v1/namespaces", []) if o["metadata"]["name"] == ns), None)
                        if obj is None:
                            return self._status(404, "NotFound", f'namespaces "{ns}" not found')
                        return self._send(200, obj)
                    if f"{prefix}/{resource}" in double.items:
                        return self._list(f"{prefix}/{resource}", query, ns)
                named = _NAMED.match(path)
                if named and path not in double.faults.forbidden and f"{named[1]}/{named[3]}" in double.items:
                    prefix, ns, resource, name = named.groups()
                    if path in double.faults.fail_get:
                        return self._status(double.faults.fail_get[path], "InternalError", "etcd leader changed")
                    obj = next((o for o in double.items[f"{prefix}/{resource}"] if o["metadata"]["name"] == name
                                and (ns is None or (o["metadata"].get("namespace") or "default") == ns)), None)
                    if obj is None:
                        return self._status(404, "NotFound", f'{resource} "{name}" not found')
                    return self._send(200, obj)  # a GET of one object carries its kind and apiVersion
                if path not in double.items:
                    return self._status(404, "NotFound", "the server could not find the requested resource")
                if path in double.faults.hostile:
                    return self._hostile(double.faults.hostile[path], path, query)
                return self._list(path, query)

            def _hostile(self, scenario: str, path: str, query: dict[str, list[str]]) -> None:
                """What a broken, compromised or confused server (or a proxy before it) sends."""
                items = [{k: v for k, v in item.items() if k not in ("kind", "apiVersion")} for item in double.items[path]]
                kind = COLLECTIONS_BY_PATH[path] + "List"
                n = sum(1 for r in double.requests if r.path == path)

                def page(items: list[Any], token: str | None = None) -> dict[str, Any]:
                    meta: dict[str, Any] = {"resourceVersion": "1"}
                    if token:
                        meta["continue"] = token
                    return {"kind": kind, "apiVersion": "v1", "metadata": meta, "items": items}

                bodies: dict[str, Any] = {
                    "empty-200": {},
                    "status-200": {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "etcd timeout", "code": 500},
                    "continue-loop": page(items, "loop-token"),
                    "continue-loop-empty": page([], "loop-token"),
                    "empty-pages-new-token": page([], f"token-{n}"),
                    "items-wrong-types": page([5, "x", None]),
                    "items-dict": {"kind": kind, "metadata": {}, "items": {"a": {}}},
                    "page-is-list": items,
                    "metadata-string": {"kind": kind, "metadata": "oops", "items": items},
                }
                if scenario in bodies:
                    return self._send(200, bodies[scenario])
                raw = {
                    "invalid-json": b"{not json at all",
                    "truncated-json": json.dumps(page(items)).encode()[:40],
                    "html-200": b"<html><body>Please sign in via SSO</body></html>",
                    "duplicate-continue-json": b'{"kind":"PodList","apiVersion":"v1","items":' + json.dumps(items).encode()
                                               + b',"metadata":{"continue":"again"}}',
                }
                if scenario in raw:
                    return self._send(200, raw[scenario])
                if scenario == "vanish":  # the server goes away after the first page
                    if "continue" not in query:
                        return self._list(path, query)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                if scenario == "slow-drip":  # a byte at a time: each read is quick, the response never ends in time
                    body = json.dumps(page(items)).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    try:
                        for i in range(len(body)):
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(0.2)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return None
                raise AssertionError(f"unknown hostile scenario {scenario}")

            def _list(self, path: str, query: dict[str, list[str]], namespace: str | None = None) -> None:
                items = double.items[path]
                if namespace is not None:  # /namespaces/NS/...: that namespace's objects only
                    items = [o for o in items if (o.get("metadata") or {}).get("namespace", "default") == namespace]
                limit = int(query.get("limit", ["0"])[0]) or len(items) or 1
                if double.page_size_cap:
                    limit = min(limit, double.page_size_cap)
                start = 0
                if "continue" in query:
                    _generation, offset = base64.b64decode(query["continue"][0]).decode().split(":")
                    if path in double.faults.gone_after_first_page:
                        double.faults.gone_after_first_page.discard(path)
                        return self._status(410, "Expired", "The provided continue parameter is too old to display a consistent list result.")
                    start = int(offset)
                page = items[start:start + limit]
                meta: dict[str, Any] = {"resourceVersion": "12345"}
                if start + limit < len(items):
                    meta["continue"] = base64.b64encode(f"{double._generation}:{start + limit}".encode()).decode()
                kind = COLLECTIONS_BY_PATH[path]
                # As a real server does, items of a list carry neither kind nor apiVersion.
                page = [{k: v for k, v in item.items() if k not in ("kind", "apiVersion")} for item in page]
                body = json.dumps({"kind": f"{kind}List", "apiVersion": "v1", "metadata": meta, "items": page}).encode()
                self._send(200, body)

        return Handler

    def _resources(self, group: str, version: str) -> dict[str, Any] | None:
        """The APIResourceList of one group version (None: not served)."""
        served = [(r, kind, ns) for (g, v, r), (kind, ns) in COLLECTIONS.items()
                  if g == group and v == version and collection_path(g, v, r) in self.items]
        if not served:
            return None
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}", "resources": [
            {"name": r, "singularName": "", "namespaced": ns, "kind": kind, "verbs": ["get", "list", "watch"]}
            for r, kind, ns in served]}

    def _discovery(self) -> dict[str, Any]:
        versions: dict[str, list[str]] = {}
        for group, version, _resource in COLLECTIONS:
            if group and group in self.groups:
                versions.setdefault(group, [])
                if version not in versions[group]:
                    versions[group].append(version)
        for group, listed in self.versions.items():
            if group in versions:
                versions[group] = list(listed)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
             "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
            for g, vs in sorted(versions.items())
        ]}


COLLECTIONS_BY_PATH = {collection_path(g, v, r): kind for (g, v, r), (kind, _ns) in COLLECTIONS.items()}


def _group_of(obj: dict[str, Any]) -> str:
    api_version = obj.get("apiVersion", "v1")
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def kubeconfig(url: str, token: str = "test-token", context: str = "test", ca_file: str | None = None) -> str:
    """A kubeconfig pointing at the double."""
    cluster: dict[str, Any] = {"server": url}
    if ca_file:
        cluster["certificate-authority"] = ca_file
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": f"{context}-cluster", "cluster": cluster}],
        "users": [{"name": f"{context}-user", "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": f"{context}-cluster", "user": f"{context}-user"}},
                     {"name": "other", "context": {"cluster": f"{context}-cluster", "user": f"{context}-user"}}],
    })
