"""Live cluster source: paginated raw lists through the official client, read-only.

The kubernetes client's typed models cost 5-30x the raw JSON; every list here is fetched with
the client's HTTP layer (auth, TLS, kubeconfig and in-cluster configuration included) and
parsed from bytes, page by page, straight into the compact inventory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import urllib3
import yaml

from audit import __version__
from audit.engine.cni import ConfigRef, config_refs, named_reads
from audit.engine.kinds import resources as policy_resources
from audit.errors import AuditError, InputError
from audit.gcpause import gc_paused
from audit.inventory import Collection, CollectionIssue, ConfigObject, Inventory, SourceRef
from audit.sources import slim
from audit.sources.objects import InventoryBuilder, ObjectError, config_object

USER_AGENT = f"netpol-audit/{__version__}"

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
    _loads = json.loads

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class ClusterError(AuditError):
    """The cluster cannot be reached or refuses our credentials: nothing was scanned."""

    exit_code = 3


@dataclass(frozen=True)
class Resource:
    """A resource the scanner lists, at the first of its known ``versions`` that serves it."""

    name: str
    group: str
    versions: tuple[str | None, ...]
    kind: str
    core: bool
    policy: bool = False
    """A policy kind: once discovery shows it, failing to read it leaves every verdict in doubt
    (a missed Allow can hide an exposure), so the scan is incomplete."""
    namespaced: bool = False
    """Listed per namespace when the scan is scoped to namespaces (`-n`): what a Role allows."""
    same_as: str | None = None
    """The label of a resource that serves the same objects: when it was read, this one is not."""

    @property
    def essential(self) -> bool:
        return self.core or self.policy

    @property
    def label(self) -> str:
        return f"{self.name}.{self.group}" if self.group else self.name


_CONTEXT: tuple[Resource, ...] = (
    Resource("namespaces", "", ("v1",), "Namespace", core=True),
    Resource("pods", "", ("v1",), "Pod", core=True, namespaced=True),
    Resource("daemonsets", "apps", ("v1",), "DaemonSet", core=True, namespaced=True),
    Resource("nodes", "", ("v1",), "Node", core=False),
    # What an ingress controller sends outside traffic to (connectivity's {ingress-controller}).
    Resource("services", "", ("v1",), "Service", core=False, namespaced=True),
    # Calico selects pods by their service account's labels (pcsa.*).
    Resource("serviceaccounts", "", ("v1",), "ServiceAccount", core=False, namespaced=True),
    Resource("ingresses", "networking.k8s.io", ("v1",), "Ingress", core=False, namespaced=True),
    Resource("routes", "route.openshift.io", ("v1",), "Route", core=False, namespaced=True),
)


def resources() -> tuple[Resource, ...]:
    """What the scanner reads; `netpol-audit rbac` grants get/list on exactly these. The policy
    kinds come from their declarations (audit.engine.kinds): a group may serve several versions
    (network-policy-api's v1alpha1 and v1alpha2 at once), and its preferred version need not have
    every resource, so each is found by name."""
    policies = tuple(Resource(r.plural, r.group, r.versions, r.kind, core=kind.declaration.core, policy=True, namespaced=r.namespaced,
                              same_as=r.same_as) for kind, r in policy_resources())
    return _CONTEXT[:2] + policies + _CONTEXT[2:]


@dataclass
class ConnectOptions:
    kubeconfig: str | None = None
    context: str | None = None
    request_timeout: float = 30.0
    page_size: int = 500
    cluster_name: str | None = None
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 20.0
    deadline: float = 1800.0
    """Seconds the whole collection may take; past it every list still to read is a collection issue."""
    namespaces: tuple[str, ...] = ()
    """`-n`: read namespaced resources only in these namespaces (a namespace-scoped Role suffices
    for them); cluster-scoped ones are still tried, and a refusal is a collection issue."""
    progress: Callable[[str], None] | None = field(default=None, compare=False, repr=False)
    """Told what is being read (a terminal shows it); never required."""


@dataclass
class Connection:
    """An authenticated client, and who we are talking to."""

    api: Any
    context: str | None
    cluster: str | None
    server: str


def _in_cluster() -> bool:
    sa_dir = os.environ.get("NETPOL_AUDIT_SERVICE_ACCOUNT_DIR", SERVICE_ACCOUNT_DIR)
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and Path(sa_dir, "token").is_file()


def connect(opts: ConnectOptions) -> Connection:
    """Build a client from --kubeconfig/--context, KUBECONFIG, the default file, or in-cluster."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import InClusterConfigLoader

    cfg = client.Configuration()
    context_name = cluster_name = None
    explicit = opts.kubeconfig or opts.context or os.environ.get("KUBECONFIG")
    try:
        if not explicit and _in_cluster():
            sa_dir = os.environ.get("NETPOL_AUDIT_SERVICE_ACCOUNT_DIR", SERVICE_ACCOUNT_DIR)
            InClusterConfigLoader(str(Path(sa_dir, "token")), str(Path(sa_dir, "ca.crt"))).load_and_set(cfg)
            context_name = "in-cluster"
        else:
            # KUBECONFIG=a:b is merged as kubectl merges it (the client's KubeConfigMerger: the first
            # file to set a value wins); missing files in the list are skipped, as kubectl does.
            listed = [opts.kubeconfig] if opts.kubeconfig else [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
            listed = listed or [os.path.expanduser("~/.kube/config")]
            present = [p for p in listed if Path(p).is_file()]
            if not present:
                raise ClusterError(f"no kubeconfig at {os.pathsep.join(listed)} and not running in a pod: give --kubeconfig, "
                                   "set KUBECONFIG, or pass manifest paths")
            path = os.pathsep.join(present)
            contexts, current = config.list_kube_config_contexts(config_file=path)
            chosen = next((c for c in contexts if c["name"] == opts.context), None) if opts.context else current
            if opts.context and chosen is None:
                names = ", ".join(c["name"] for c in contexts)
                raise ClusterError(f"{path}: no context named {opts.context!r} (contexts: {names})")
            if chosen:
                context_name = chosen["name"]
                cluster_name = chosen.get("context", {}).get("cluster")
            config.load_kube_config(config_file=path, context=opts.context, client_configuration=cfg, persist_config=False)
    except ConfigException as exc:
        raise ClusterError(f"cannot load cluster configuration: {exc}") from None
    except yaml.YAMLError as exc:
        where = opts.kubeconfig or os.environ.get("KUBECONFIG") or "the kubeconfig"
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise InputError(f"{where}{at}: the kubeconfig is not valid YAML: {str(getattr(exc, 'problem', '') or exc)[:160]}") from None
    except (TypeError, AttributeError, KeyError) as exc:
        # The client's loaders assume a well-formed file: a wrong type anywhere surfaces here.
        where = opts.kubeconfig or os.environ.get("KUBECONFIG") or "the kubeconfig"
        raise InputError(f"{where}: not a valid kubeconfig ({type(exc).__name__}: {str(exc)[:160]}): "
                           "clusters, contexts and users must be lists of named entries") from None
    except (OSError, ValueError) as exc:
        raise ClusterError(f"cannot load cluster configuration: {exc}") from None
    cfg.retries = 0  # retries are ours: bounded, with backoff, honouring Retry-After
    api = client.ApiClient(cfg)
    # The scanner's own name in the API server's audit log, not the client's generic one.
    api.user_agent = USER_AGENT
    return Connection(api, context_name, opts.cluster_name or cluster_name, cfg.host)


@dataclass
class Response:
    status: int
    body: bytes
    headers: Any


@dataclass
class Lister:
    """GETs with bounded retries; counts requests. Read-only by construction: it only GETs."""

    conn: Connection
    opts: ConnectOptions
    sleep: Callable[[float], None] = time.sleep
    requests: int = 0
    notices: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def get(self, path: str, query: list[tuple[str, Any]] | None = None) -> Response:
        api = self.conn.api
        last_problem = ""
        for attempt in range(self.opts.max_attempts):
            if time.monotonic() - self.started > self.opts.deadline:
                raise _GiveUp(f"the collection's deadline of {self.opts.deadline:g}s has passed" + (f" ({last_problem})" if last_problem else ""))
            method, url, headers, _, _ = api.param_serialize(
                "GET", path, query_params=query or [], header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            self.requests += 1
            try:
                raw = api.call_api(method, url, header_params=headers, _request_timeout=self.opts.request_timeout)
                resp = Response(raw.status, _read_body(raw.response, time.monotonic() + self.opts.request_timeout), raw.headers)
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ReadTimeoutError, _Deadline) as exc:
                last_problem = f"timed out after {self.opts.request_timeout:g}s ({type(exc).__name__.lstrip('_')})"
            except urllib3.exceptions.HTTPError as exc:
                reason = getattr(exc, "reason", None) or exc
                if attempt == 0 and path == "/version":
                    raise ClusterError(f"cannot reach the API server at {self.conn.server}: {reason}") from None
                last_problem = f"connection failed: {reason}"
            else:
                if resp.status not in (429, 500, 502, 503, 504):
                    return resp
                last_problem = f"HTTP {resp.status}{_status_message(resp.body)}"
                retry_after = _retry_after(resp.headers)
                if retry_after is not None and attempt + 1 < self.opts.max_attempts:
                    self.sleep(min(retry_after, self.opts.backoff_cap, self._left()))
                    continue
            if attempt + 1 < self.opts.max_attempts:
                delay = min(self.opts.backoff_cap, self.opts.backoff_base * 2 ** attempt)
                self.sleep(min(delay * (0.5 + random.random() / 2), self._left()))
        raise _GiveUp(f"{last_problem}; gave up after {self.opts.max_attempts} attempts")

    def _left(self) -> float:
        return max(0.0, self.opts.deadline - (time.monotonic() - self.started))

    def _page(self, path: str, token: str | None) -> Response:
        query: list[tuple[str, Any]] = [("limit", self.opts.page_size)]
        if token:
            query.append(("continue", token))
        return self.get(path, query)

    def get_object(self, path: str) -> dict[str, Any]:
        """One object (GET), as a mapping."""
        resp = self.get(path)
        if resp.status != 200:
            raise _HttpError(resp.status, _status_message(resp.body))
        obj = _loads(resp.body)
        if not isinstance(obj, dict):
            raise _GiveUp("the answer is not an object")
        return obj

    def list(self, path: str, pods: bool = False) -> Iterator[Any]:
        """Yield every item of a collection, page by page (restarting once on 410 Gone).

        With ``pods``, pages are decoded with only the fields the audit reads of a pod
        (audit.sources.slim); a page that does not fit that shape is decoded whole.

        The next page is fetched in the background while the caller reduces this one, so the
        server's time and ours overlap instead of adding up. Every page must be a List (a
        mapping with an ``items`` list of objects); a continue token seen twice, a run of empty
        pages or more pages than MAX_PAGES end the list as a collection issue, never an endless
        loop or a silently empty answer.
        """
        token: str | None = None
        restarted = False
        seen_tokens: set[str] = set()
        pages = empty_run = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="netpol-audit-fetch") as pool:
            pending = pool.submit(self._page, path, None)
            while True:
                resp = pending.result()
                if resp.status == 410 and token and not restarted:
                    restarted = True
                    token = None
                    seen_tokens.clear()  # a fresh list may hand out the same tokens again
                    self.notices.append(f"{path}: the continue token expired (410 Gone); the list was restarted from the beginning")
                    pending = pool.submit(self._page, path, None)
                    continue
                if resp.status != 200:
                    raise _HttpError(resp.status, _status_message(resp.body))
                pages += 1
                if pages > MAX_PAGES:
                    raise _GiveUp(f"more than {MAX_PAGES} pages: the server keeps paging; the list was abandoned")
                # Ask for the next page before parsing this one when the token can be read off
                # the bytes: parsing then overlaps the server's work too.
                token = peek_continue(resp.body)
                if token and token not in seen_tokens:
                    pending = pool.submit(self._page, path, token)
                page = _list_page(resp.body, pods)
                parsed = page["metadata"].get("continue")
                if parsed is not None and not isinstance(parsed, str):
                    raise _GiveUp("a malformed list page (metadata.continue is not a string)")
                if token is _UNKNOWN or parsed != token:
                    if token:  # the peek was wrong: drop its page, ask for the right one
                        pending.cancel() or pending.exception()
                    token = parsed
                    if token:
                        pending = pool.submit(self._page, path, token)
                items = page["items"]
                empty_run = 0 if items else empty_run + 1
                if token and token in seen_tokens:
                    raise _GiveUp("the server repeated a continue token: the list would never end; it was abandoned")
                if token and empty_run > MAX_EMPTY_PAGES:
                    raise _GiveUp(f"{empty_run} empty pages in a row with a continue token: the list was abandoned")
                if token:
                    seen_tokens.add(token)
                yield from items
                if not token:
                    return


_UNKNOWN = ""
_CONTINUE = re.compile(rb'"continue"\s*:\s*"([^"\\]*)"')
MAX_PAGES = 100_000
"""Pages of one list at the most (at 500 a page: 50 million objects)."""
MAX_EMPTY_PAGES = 50
"""Empty pages in a row that still carry a continue token before the list is abandoned."""


class _Deadline(Exception):
    """A response that did not arrive in full within the request's time (a drip-fed body)."""


def _read_body(response: Any, deadline: float) -> bytes:
    """The whole body, or _Deadline when it takes longer than the request may: the socket
    timeout bounds one read, this bounds the request."""
    chunks: list[bytes] = []
    try:
        while True:
            if time.monotonic() > deadline:
                raise _Deadline("the response body did not arrive in time")
            chunk = response.read1(1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except _Deadline:
        response.close()
        raise
    finally:
        response.release_conn()


def _list_page(body: bytes, pods: bool = False) -> dict[str, Any]:
    """A List page checked for shape: a mapping whose ``items`` is a list of objects (with
    ``pods``, decoded slim when it fits)."""
    if pods:
        try:
            typed = slim.decode_pod_page(body)
        except slim.Unfit:
            return _list_page(body)  # not a plain page of valid pods: the general path says why, or reads it
        if typed.kind != "Status":
            return {"kind": typed.kind, "metadata": typed.metadata, "items": typed.items}
    try:
        page = _loads(body)
    except ValueError:
        snippet = body[:60].decode("utf-8", "replace")
        raise _GiveUp(f"the server answered 200 with something that is not JSON ({snippet!r}...)") from None
    if not isinstance(page, dict):
        raise _GiveUp(f"the server answered 200 with a JSON {type(page).__name__}, not a List")
    if page.get("kind") == "Status":
        raise _GiveUp(f"the server answered 200 with a Status, not a List{_status_message(body)}")
    items = page.get("items")
    if not isinstance(items, list):
        raise _GiveUp("the server answered 200 with a List that has no items list" if items is None
                      else f"the server answered 200 with items that are a {type(items).__name__}, not a list")
    if not all(isinstance(item, dict) for item in items):
        raise _GiveUp("the server answered 200 with items that are not objects")
    meta = page.get("metadata", {})
    if not isinstance(meta, dict):
        raise _GiveUp("the server answered 200 with a List whose metadata is not an object")
    page["metadata"] = meta
    return page


def peek_continue(body: bytes) -> str | None:
    """A List page's continue token read from the bytes before its items, without parsing.

    None when the page's metadata (before the items) has no token: the last page.
    ``_UNKNOWN`` (empty) when the metadata does not come before the items: parse to know.
    """
    items = body.find(b'"items"')
    head = body[:items] if items >= 0 else body
    if b'"metadata"' not in head:
        return _UNKNOWN
    found = _CONTINUE.search(head)
    return found.group(1).decode() if found else None


class _GiveUp(Exception):
    pass


class _HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}{message}")
        self.status = status


def _version_of(body: bytes) -> str | None:
    try:
        data = _loads(body)
    except ValueError:
        return None
    version = data.get("gitVersion") if isinstance(data, dict) else None
    return version if isinstance(version, str) else None


def _status_message(body: bytes) -> str:
    try:
        data = _loads(body)
    except ValueError:
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, str) or not message:
        return ""
    return f": {message[:300]}"


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _served_versions(lister: Lister) -> dict[str, tuple[list[str], str | None]] | None:
    """group -> (served versions, preferred version), from /apis; None when discovery failed."""
    try:
        resp = lister.get("/apis")
    except _GiveUp:
        return None
    if resp.status != 200:
        return None
    try:
        body = _loads(resp.body)
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("groups"), list):
        return None
    groups: dict[str, tuple[list[str], str | None]] = {}
    for g in body["groups"]:
        if not isinstance(g, dict) or not isinstance(g.get("name"), str):
            continue
        versions = [str(v["version"]) for v in g.get("versions") or [] if isinstance(v, dict) and isinstance(v.get("version"), str)]
        preferred = g.get("preferredVersion")
        chosen = preferred.get("version") if isinstance(preferred, dict) else None
        groups[g["name"]] = (versions, chosen if isinstance(chosen, str) else None)
    return groups


def collect(opts: ConnectOptions, conn: Connection | None = None, sleep: Callable[[float], None] = time.sleep) -> Inventory:
    """List everything the audit needs from the cluster into a compact Inventory."""
    conn = conn or connect(opts)
    lister = Lister(conn, opts, sleep=sleep)
    started = _now()
    try:
        version_resp = lister.get("/version")
    except _GiveUp as exc:
        version_resp = Response(0, b"", {})
        lister.notices.append(f"/version could not be read ({exc}): the server version is unknown")
    if version_resp.status == 401:
        raise ClusterError(f"the API server at {conn.server} rejected the credentials (401 Unauthorized): the token is invalid or expired")
    server_version = _version_of(version_resp.body) if version_resp.status == 200 else None
    served = _served_versions(lister)
    discovered: dict[tuple[str, str], frozenset[str] | None] = {}

    builder = InventoryBuilder()
    issues: list[CollectionIssue] = []
    read: set[str] = set()
    with gc_paused(), _responsive_fetch():
        for res in resources():
            if res.same_as in read:
                continue
            version, problem = _pick_version(res, served, lambda group, v: _group_resources(lister, group, v, discovered))
            if version is None:
                if problem is None:
                    lister.notices.append(f"{res.label}: not installed")
                else:
                    issues.append(CollectionIssue(res.label, problem, core=res.essential))
                continue
            prefix = f"/api/{version}" if not res.group else f"/apis/{res.group}/{version}"
            targets: list[tuple[str, str | None]]
            if opts.namespaces and (res.namespaced or res.kind == "Namespace"):
                # Scoped: each namespace's list, or the Namespace object itself (get, not list).
                targets = [(f"{prefix}/namespaces/{quote(ns, safe='')}" + ("" if res.kind == "Namespace" else f"/{res.name}"), ns)
                           for ns in opts.namespaces]
            else:
                targets = [(f"{prefix}/{res.name}", None)]
            if opts.progress:
                opts.progress(f"reading {res.label}")
            for path, scope in targets:
                label = f"{res.label} in {scope}" if scope else res.label
                count = 0
                try:
                    items = [lister.get_object(path)] if scope and res.kind == "Namespace" else lister.list(path, pods=res.kind == "Pod" and not res.group)
                    for item in items:
                        if type(item) is dict:  # typed pods (audit.sources.slim) need no kind
                            item.setdefault("kind", res.kind)
                            item.setdefault("apiVersion", f"{res.group}/{version}" if res.group else version)
                        builder.add(item, SourceRef(), label)
                        count += 1
                        if opts.progress and count % 2000 == 0:
                            opts.progress(f"reading {label}: {count:,}")
                    read.add(res.label)
                except _HttpError as exc:
                    if exc.status == 401:
                        raise ClusterError(f"the API server at {conn.server} rejected the credentials (401 Unauthorized)") from None
                    if exc.status == 404 and not res.essential:
                        lister.notices.append(f"{label}: not installed")
                        break
                    verb = "get" if scope and res.kind == "Namespace" else "list"
                    reason = f"forbidden (403): the scanner's role does not allow {verb}" if exc.status == 403 else str(exc)
                    issues.append(CollectionIssue(label, f"{reason}{'' if exc.status != 403 else _detail(str(exc))}", core=res.essential))
                except _GiveUp as exc:
                    issues.append(CollectionIssue(label, str(exc), core=res.essential))
        # What the CNIs found read their settings from, each object by name (get, never list).
        for ref, namespace in config_refs(builder.agents()):
            _read_config(lister, builder, ref, namespace, conn.server)
    if opts.namespaces:
        lister.notices.append(f"scoped to the namespaces {', '.join(opts.namespaces)}: pods and policies of other namespaces "
                              "were not read, so they are not known as peers (exposure from them is not assessed)")
    collection = Collection(
        source="cluster", inputs=(conn.server,), cluster=conn.cluster, context=conn.context, server=conn.server,
        server_version=server_version, started=started, finished=_now(), issues=tuple(issues),
        notices=tuple(lister.notices), api_requests=lister.requests,
    )
    return builder.build(collection)


def _read_config(lister: Lister, builder: InventoryBuilder, ref: ConfigRef, namespace: str | None, server: str) -> None:
    """Get one object a CNI reads its settings from. Missing (404): the CNI runs on its defaults.
    Unreadable (403, errors): what it holds is unknown, said in the notices, never guessed."""
    label = f"{ref.kind} {namespace}/{ref.name}" if namespace else f"{ref.kind} {ref.name}"
    problem = ""
    try:
        obj = lister.get_object(ref.path(namespace))
    except _HttpError as exc:
        if exc.status == 401:
            raise ClusterError(f"the API server at {server} rejected the credentials (401 Unauthorized)") from None
        if exc.status == 404:
            builder.add_config(ConfigObject(ref.kind, namespace, ref.name, state="missing"))
            return
        problem = f"forbidden (403): the scanner's role does not allow get{_detail(str(exc))}" if exc.status == 403 else str(exc)
    except (_GiveUp, ValueError) as exc:
        problem = str(exc) or type(exc).__name__
    else:
        if ref.plural != "deployments":
            builder.add_config(config_object(obj, ref.kind, namespace, ref.name, SourceRef()))
            return
        obj.setdefault("kind", ref.kind)
        obj.setdefault("apiVersion", f"{ref.group}/{ref.version}")
        try:
            builder.add(obj, SourceRef(), label)
            return
        except ObjectError as exc:
            problem = str(exc)
    lister.notices.append(f"{label} could not be read ({problem}): what the CNI enforces is judged without it")
    builder.add_config(ConfigObject(ref.kind, namespace, ref.name, state="unreadable", reason=problem))


@contextlib.contextmanager
def _responsive_fetch() -> Iterator[None]:
    """Hand the GIL over more often while listing.

    The fetching thread needs the GIL for short moments between socket reads; at the default
    5 ms switch interval it queues behind the page reduction each time, and the overlap of
    the server's work with ours is lost.
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def _detail(message: str) -> str:
    _, _, detail = message.partition(": ")
    return f" ({detail})" if detail else ""


def _group_resources(lister: Lister, group: str, version: str,
                     memo: dict[tuple[str, str], frozenset[str] | None]) -> frozenset[str] | None:
    """Resource names that ``group/version`` serves (its discovery document); None when unreadable."""
    key = (group, version)
    if key not in memo:
        try:
            resp = lister.get(f"/apis/{group}/{version}")
        except _GiveUp:
            resp = None
        names = None
        if resp is not None and resp.status == 200:
            body = _loads(resp.body)
            listed = body.get("resources") if isinstance(body, dict) else None
            if isinstance(listed, list):
                names = frozenset(r["name"] for r in listed if isinstance(r, dict) and isinstance(r.get("name"), str))
        memo[key] = names
    return memo[key]


def _pick_version(res: Resource, served: dict[str, tuple[list[str], str | None]] | None,
                  resources_of: Callable[[str, str], frozenset[str] | None]) -> tuple[str | None, str | None]:
    """(version to list, None) or (None, why not): None as the reason means "not installed".

    A core group is listed at its one version. Another group is looked up by resource: the
    first known version whose discovery lists the resource; a group that serves it only at
    versions this tool does not read, or whose discovery cannot be read, is a collection issue.
    """
    if not res.group or res.core:
        return res.versions[0], None  # listed whatever discovery says: a failure there is the list's own issue
    if served is None:
        return None, "API discovery failed: whether it exists is unknown"
    if res.group not in served:
        return None, None
    versions, preferred = served[res.group]
    unreadable = []
    for wanted in res.versions:
        if wanted not in versions:
            continue
        names = resources_of(res.group, wanted)
        if names is None:
            unreadable.append(wanted)
        elif res.name in names:
            return wanted, None
    if unreadable:
        return None, f"discovery of {', '.join(f'{res.group}/{v}' for v in unreadable)} failed: whether it serves {res.name} is unknown"
    others = [v for v in ([preferred] if preferred else []) + versions if v and v not in res.versions]
    elsewhere = [v for v in dict.fromkeys(others) if (names := resources_of(res.group, v)) is not None and res.name in names]
    if elsewhere:
        return None, (f"served only at {', '.join(f'{res.group}/{v}' for v in elsewhere)}, a version this netpol-audit "
                      f"does not read (it reads {', '.join(v for v in res.versions if v)}): its policies were not read")
    return None, None


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def rbac_cluster_role(name: str = "netpol-audit") -> dict[str, Any]:
    """The ClusterRole the scanner needs: get and list on exactly the resources it reads."""
    by_group: dict[str, list[str]] = {}
    for res in resources():
        names = by_group.setdefault(res.group, [])
        if res.name not in names:
            names.append(res.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "netpol-audit"}},
        "rules": [
            {"apiGroups": [group], "resources": sorted(names), "verbs": ["get", "list"]}
            for group, names in sorted(by_group.items())
        ] + [
            # The CNIs' settings: only the objects of these names, and only get.
            {"apiGroups": [group], "resources": [plural], "resourceNames": sorted(names), "verbs": ["get"]}
            for (group, plural), names in sorted(named_reads().items())
        ],
    }


def rbac_namespace_roles(namespaces: list[str], name: str = "netpol-audit") -> list[dict[str, Any]]:
    """For `scan -n`: a Role per namespace granting get and list on the namespaced resources the
    scanner reads there, and get on that Namespace (authorized within it); nothing cluster-wide."""
    by_group: dict[str, list[str]] = {}
    for res in resources():
        if res.namespaced:
            names = by_group.setdefault(res.group, [])
            if res.name not in names:
                names.append(res.name)
    roles: list[dict[str, Any]] = []
    for ns in namespaces:
        rules: list[dict[str, Any]] = [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [ns], "verbs": ["get"]}]
        rules += [{"apiGroups": [group], "resources": sorted(names), "verbs": ["get", "list"]} for group, names in sorted(by_group.items())]
        roles.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                      "metadata": {"name": name, "namespace": ns, "labels": {"app.kubernetes.io/name": "netpol-audit"}},
                      "rules": rules})
    return roles
