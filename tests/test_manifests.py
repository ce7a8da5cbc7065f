"""The manifest source: files, folders, stdin, lists, workloads, and clear errors."""

from __future__ import annotations

import io
import json
import textwrap

import pytest
import yaml

from audit.errors import InputError
from audit.sources.manifests import load_manifests
from tests.conftest import inventory

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx, ports: [{containerPort: 80, name: http}]}]}
"""


def test_workload_kinds_become_workloads_with_pod_counts():
    text = DEPLOY + """
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: shop}
spec:
  schedule: "0 0 * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: nightly}}
        spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: postgres}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: shop}
spec:
  parallelism: 4
  template:
    metadata: {labels: {app: once}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: old, namespace: shop}
spec:
  template:
    metadata: {labels: {app: old}}
    spec: {containers: [{name: c, image: busybox}]}
"""
    inv = inventory(text)
    got: dict[tuple[str, str], int] = {}
    for w in inv.workloads:
        got[(w.kind, w.name)] = got.get((w.kind, w.name), 0) + w.pods
    assert got == {("Deployment", "web"): 3, ("CronJob", "nightly"): 1, ("StatefulSet", "db"): 2,
                   ("Job", "once"): 4, ("ReplicationController", "old"): 1}
    # A StatefulSet's pods are named and labelled by ordinal, as its controller does.
    db = sorted((w.pod_names, dict(w.labels)["statefulset.kubernetes.io/pod-name"], dict(w.labels)["apps.kubernetes.io/pod-index"])
                for w in inv.workloads if w.name == "db")
    assert db == [(("db-0",), "db-0", "0"), (("db-1",), "db-1", "1")]
    web = next(w for w in inv.workloads if w.name == "web")
    assert dict(web.labels) == {"app": "web"} and web.ports[0].name == "http"


def test_pods_are_grouped_under_their_owner_and_replace_the_template():
    pods = "".join(f"""
---
apiVersion: v1
kind: Pod
metadata:
  name: web-5d4f8-{i}
  namespace: shop
  labels: {{app: web, pod-template-hash: 5d4f8}}
  ownerReferences: [{{apiVersion: apps/v1, kind: ReplicaSet, name: web-5d4f8, controller: true, uid: x}}]
spec: {{containers: [{{name: c, image: nginx, ports: [{{containerPort: 80, name: http}}]}}]}}
status: {{phase: Running, podIP: 10.0.0.{i}}}
""" for i in range(2))
    finished = """
---
apiVersion: v1
kind: Pod
metadata: {name: done, namespace: shop}
spec: {containers: [{name: c, image: x}]}
status: {phase: Succeeded}
"""
    inv = inventory(DEPLOY + pods + finished)
    (web,) = inv.workloads
    assert (web.kind, web.name, web.pods, web.ips) == ("Deployment", "web", 2, ("10.0.0.0", "10.0.0.1"))
    assert any("done" in n for n in inv.collection.notices)


def test_list_wrappers_and_json(tmp_path):
    items = {"apiVersion": "v1", "kind": "PodList", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "x"}, "spec": {"containers": []}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "x"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x"}},
    ]}
    (tmp_path / "dump.json").write_text(json.dumps(items))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "more.yml").write_text("apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Namespace\n    metadata: {name: x, labels: {team: t}}\n")
    (tmp_path / "notes.txt").write_text("not a manifest")
    inv = load_manifests([str(tmp_path)])
    assert [w.name for w in inv.workloads] == ["a"]
    assert dict(inv.namespaces[0].labels) == {"team": "t", "kubernetes.io/metadata.name": "x"}
    assert dict(inv.collection.skipped_kinds) == {"ConfigMap": 1}
    assert [(svc.namespace, svc.name, svc.selector) for svc in inv.services] == [("x", "s", None)]
    assert len(inv.collection.inputs) == 2


def test_stdin_and_default_namespace_and_implicit_namespaces():
    inv = load_manifests(["-"], io.StringIO("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: []}\n"))
    assert inv.workloads[0].namespace == "default"
    (ns,) = inv.namespaces
    assert (ns.name, ns.declared, dict(ns.labels)) == ("default", False, {"kubernetes.io/metadata.name": "default"})
    assert any("not declared" in n for n in inv.collection.notices)


def test_source_lines_are_recorded():
    inv = inventory("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n# comment\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\nspec: {podSelector: {}}\n")
    assert (inv.policies[0].source.document, inv.policies[0].source.line) == (2, 6)


def test_extended_policy_kinds_are_kept_and_calico_is_not_a_k8s_policy():
    inv = inventory("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: c, namespace: a}
spec: {selector: all()}
---
apiVersion: policy.networking.k8s.io/v1beta1
kind: AdminNetworkPolicy
metadata: {name: anp}
spec: {priority: 10, subject: {namespaces: {}}}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: cnp, namespace: a}
spec: {endpointSelector: {}}
""")
    assert sorted((e.kind, e.api_version.split("/")[0], e.namespace) for e in inv.policies) == [
        ("AdminNetworkPolicy", "policy.networking.k8s.io", None), ("CiliumNetworkPolicy", "cilium.io", "a"),
        ("NetworkPolicy", "projectcalico.org", "a")]
    assert dict(inv.collection.object_counts) == {"AdminNetworkPolicy": 1, "CiliumNetworkPolicy": 1, "Calico NetworkPolicy": 1}


@pytest.mark.parametrize("text,expected", [
    ("kind: Pod\nmetadata: {name: a\n", "document 1 (line 3, column 1): invalid YAML"),
    ("apiVersion: v1\nmetadata: {name: a}\n", "document 1 (line 1): kind: required"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {namespace: x}\n", "metadata.name: required"),
    ("apiVersion: v1\nkind: List\nitems: {a: 1}\n", "items: must be a list"),
])
def test_malformed_input_names_file_document_and_field(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_manifests([str(path)])
    assert str(err.value).startswith(str(path)) and expected in str(err.value)


@pytest.mark.parametrize("text,resource,expected", [
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {version: 1.0}}\n", "Pod default/a",
     "Pod a: metadata.labels.version: label value 1.0 must be a string"),
    ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replicas: two, template: {}}\n", "Deployment default/a",
     "Deployment a: spec.replicas: must be an integer"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, ports: [{containerPort: http}]}]}\n", "Pod default/a",
     "spec.containers[0].ports[0].containerPort: must be an integer"),
    ("apiVersion: v1\nkind: Namespace\nmetadata: {name: n, labels: {a: [1]}}\n", "Namespace n", "metadata.labels.a"),
])
def test_an_invalid_object_that_is_not_a_policy_is_left_out_naming_file_document_and_field(tmp_path, text, resource, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: fine, namespace: other}\nspec: {containers: [{name: c, image: i}]}\n")
    inv = load_manifests([str(path)])
    [issue] = inv.collection.invalid_objects
    assert issue.resource == resource and issue.reason.startswith(str(path)) and expected in issue.reason
    assert issue.core and not inv.collection.complete
    assert [w.name for w in inv.workloads] == ["fine"]


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_manifests([str(tmp_path / "nope")])
    with pytest.raises(InputError, match=r"no \.yaml"):
        load_manifests([str(tmp_path)])


def test_invalid_json_names_position(tmp_path):
    (tmp_path / "x.json").write_text(textwrap.dedent('{"kind": "Pod",\n "metadata": }'))
    with pytest.raises(InputError, match=r"x.json: document 1 \(line 2, column 14\): invalid JSON"):
        load_manifests([str(tmp_path / "x.json")])


def test_documents_that_are_not_objects_are_skipped_with_a_notice(tmp_path):
    """A values file, a package.json, a YAML list: not Kubernetes objects; the folder scan goes on."""
    (tmp_path / "pods.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\nspec: {containers: [{name: c, image: i}]}\n"
                                        "---\n- just\n- a list\n")
    (tmp_path / "package.json").write_text('{"name": "app", "version": "1.0.0"}')
    (tmp_path / "values.yaml").write_text("replicaCount: 3\n")
    inv = load_manifests([str(tmp_path)])
    assert [w.name for w in inv.workloads] == ["a"]
    notices = [n for n in inv.collection.notices if "not a Kubernetes object" in n]
    assert len(notices) == 3 and any("package.json" in n for n in notices) and any("pods.yaml: document 2" in n for n in notices)


def test_raw_api_lists_give_their_items_a_kind(tmp_path):
    """`kubectl get --raw /api/v1/pods` and client dumps: items without kind and apiVersion."""
    (tmp_path / "pods.json").write_text(json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [
        {"metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}]}))
    (tmp_path / "deployments.yaml").write_text(yaml.safe_dump({"kind": "DeploymentList", "apiVersion": "apps/v1", "items": [
        {"metadata": {"name": "api", "namespace": "shop"}, "spec": {"replicas": 2, "template": {
            "metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}]}))
    (tmp_path / "policies.yaml").write_text(yaml.safe_dump({"kind": "NetworkPolicyList", "apiVersion": "networking.k8s.io/v1", "items": [
        {"metadata": {"name": "deny", "namespace": "shop"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}]}))
    inv = load_manifests([str(tmp_path)])
    assert sorted((w.kind, w.name, w.pods) for w in inv.workloads) == [("Deployment", "api", 2), ("Pod", "web", 1)]
    assert [p.name for p in inv.policies] == ["deny"]


def test_an_empty_mapping_where_a_list_belongs_reads_as_none(tmp_path):
    """netpol-analyzer's published pod lists write `"ports": {}`: it can only mean no ports, so the
    pod is read (not left out); a non-empty mapping there is still an error."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "cog-agents-d54st", "namespace": "default", "labels": {"app": "skydive"},
                        "ownerReferences": [{"apiVersion": "extensions/v1beta1", "kind": "DaemonSet", "name": "cog-agents",
                                             "uid": "u", "controller": True}]},
           "spec": {"containers": [{"ports": {}}]}}
    path = tmp_path / "pods.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "PodList", "items": [pod]}))
    inv = load_manifests([str(path)])
    assert inv.collection.complete and [(w.kind, w.name, w.ports) for w in inv.workloads] == [("DaemonSet", "cog-agents", ())]
    pod["spec"]["containers"][0]["ports"] = {"a": 1}
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "PodList", "items": [pod]}))
    [issue] = load_manifests([str(path)]).collection.invalid_objects
    assert "spec.containers[0].ports: must be a list" in issue.reason


def _pod(ns, name, labels, owner=None):
    refs = [{"kind": owner[0], "name": owner[1], "controller": True}] if owner else []
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": ns, "name": name, "labels": labels, "ownerReferences": refs},
            "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Running"}}


@pytest.mark.parametrize("seed", range(5))
def test_workloads_are_ordered_by_namespace_kind_name_then_labels(tmp_path, seed):
    """Whatever order the pods come in: the order a tuple key gives, a StatefulSet's pods (one
    owner, labels apart) by their labels, names that are prefixes of others before them."""
    import random

    from audit.sources.objects import _label

    pods = []
    for ns in ("b", "a", "a-x", "ab"):
        for i in (3, 1, 2, 0):
            pods.append(_pod(ns, f"db-{i}", {"app": "db", "statefulset.kubernetes.io/pod-name": f"db-{i}"}, ("StatefulSet", "db")))
        pods.append(_pod(ns, "web-5d7-x", {"app": "web", "pod-template-hash": "5d7"}, ("ReplicaSet", "web-5d7")))
        pods.append(_pod(ns, "web", {"app": "web"}))
        pods.append(_pod(ns, "d", {"z": "1"}, ("DaemonSet", "d")))
        pods.append(_pod(ns, "d-2", {"a": "1"}, ("DaemonSet", "d")))
    random.Random(seed).shuffle(pods)
    path = tmp_path / "pods.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}))
    workloads = list(load_manifests([str(path)]).workloads)
    assert workloads == sorted(workloads, key=lambda w: (w.namespace, w.kind, w.name, w.labels))
    assert [(w.namespace, w.kind, w.name) for w in workloads[:7]] == [
        ("a", "DaemonSet", "d"), ("a", "DaemonSet", "d"), ("a", "Deployment", "web"), ("a", "Pod", "web"),
        ("a", "StatefulSet", "db"), ("a", "StatefulSet", "db"), ("a", "StatefulSet", "db")]
    assert [dict(w.labels).get("statefulset.kubernetes.io/pod-name") for w in workloads[4:8]] == ["db-0", "db-1", "db-2", "db-3"]
    assert workloads[2].controller == "ReplicaSet/web-5d7"
    labels = (("pod-template", "a"), ("pod-template-hash", "b"), ("pod-template-hash-x", "c"))
    assert (_label(labels, "pod-template-hash"), _label(labels, "pod-template-has"), _label(labels, "zz"), _label((), "a")) == ("b", None, None, None)


def test_items_of_a_yaml_list_keep_their_own_lines():
    text = textwrap.dedent("""\
        apiVersion: v1
        kind: List
        items:
        - apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: first, namespace: a}
          spec: {podSelector: {}}
        - apiVersion: v1
          kind: Pod
          metadata: {name: web-1, namespace: a, labels: {app: web}}
          spec: {containers: [{name: c}]}
        """)
    inv = inventory(text)
    assert [(p.name, p.source.line) for p in inv.policies] == [("first", 4)]
    assert [(w.name, w.source.line) for w in inv.workloads] == [("web-1", 8)]


def test_a_workload_lists_every_pod_and_address_once_sorted(tmp_path):
    owner = ("ReplicaSet", "web-5d7")
    pods = [_pod("a", n, {"app": "web", "pod-template-hash": "5d7"}, owner) for n in ("web-5d7-c", "web-5d7-a", "web-5d7-b")]
    for pod, ip in zip(pods, ("10.0.0.3", "10.0.0.1", "10.0.0.3")):
        pod["status"]["podIP"] = ip
    pods += [_pod("0a", "a", {"z": "1"}), _pod("0a", "b", {"a": "1"})]  # first in order, two owners: labels decide nothing
    pair = [_pod("b", n, {"app": "db"}, ("StatefulSet", "db")) for n in ("db-1", "db-0")]
    for pod, ip in zip(pair, ("10.0.1.2", "10.0.1.1")):
        pod["status"]["podIP"] = ip
    path = tmp_path / "pods.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": pods + pair}))
    first, second, web, db = load_manifests([str(path)]).workloads
    assert (first.name, second.name) == ("a", "b")
    assert (web.name, web.pods, web.pod_names, web.ips) == ("web", 3, ("web-5d7-a", "web-5d7-b", "web-5d7-c"), ("10.0.0.1", "10.0.0.3"))
    assert (db.pods, db.pod_names, db.ips) == (2, ("db-0", "db-1"), ("10.0.1.1", "10.0.1.2"))


def test_label_sets_are_shared_within_a_load_and_kept_by_none_after_it(tmp_path):
    """Pods of one workload share one label tuple; a second load makes its own: no label set
    outlives its inventory in a long-lived process (the Python API scanning cluster after cluster)."""
    pods = [_pod("a", f"web-5d7-{i}", {"app": "web", "pod-template-hash": "5d7"}, ("ReplicaSet", "web-5d7")) for i in range(2)]
    pods.append(_pod("b", "web-5d7-0", {"app": "web", "pod-template-hash": "5d7"}, ("ReplicaSet", "web-5d7")))
    path = tmp_path / "pods.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}))
    first, second = load_manifests([str(path)]), load_manifests([str(path)])
    assert [w.pods for w in first.workloads] == [2, 1]
    a, b = first.workloads
    assert a.labels == b.labels == (("app", "web"), ("pod-template-hash", "5d7"))
    assert a.labels is b.labels, "equal label sets read in one load are one tuple"
    assert all(w1.labels == w2.labels and w1.labels is not w2.labels for w1, w2 in zip(first.workloads, second.workloads, strict=True))
