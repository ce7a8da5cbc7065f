"""Fix YAML written from directly built nodes equals what PyYAML's own representer writes."""

from __future__ import annotations

import json

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from audit.checks.fixes import _DUMPER, dump
from audit.cli import app
from tests.conftest import EXAMPLES


def reference(*docs) -> str:
    return yaml.dump_all(list(docs), Dumper=_DUMPER, sort_keys=False, default_flow_style=False, explicit_start=False, width=1000)


TRICKY = st.sampled_from(["true", "false", "yes", "No", "on", "null", "~", "", " lead", "trail ", "1", "0x1F", "1e3", "1.5", "08",
                          "a: b", "# not a comment", "- item", "*alias", "&anchor", "!tag", "%x", "@x", "`x", "'q'", '"q"', "x\ny",
                          "2026-12-01", "12:30", ".inf", "<<", "{}", "[]", "é", "\u2028", "kubernetes.io/metadata.name"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), TRICKY, st.text(max_size=12))
TREES = st.recursive(SCALARS, lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.one_of(TRICKY, st.text(max_size=8)), kids, max_size=4)),
                     max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.one_of(TRICKY, st.text(max_size=8)), TREES, max_size=5), min_size=1, max_size=3))
def test_dump_equals_pyyaml_on_any_tree(docs):
    assert dump(*docs) == reference(*docs)


NAMES = st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,12}", fullmatch=True), st.sampled_from(["80", "1e3", "yes", "1:20", "0o17", "2026-12-01", "1_000", "Null"]))
NAME_TREES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), NAMES),
                          lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(NAMES, kids, max_size=4)), max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.dictionaries(NAMES, NAME_TREES, min_size=1, max_size=5), min_size=1, max_size=3))
def test_the_direct_writer_equals_pyyaml_on_trees_of_names(docs):
    """Names (written directly) and the look-alikes YAML would read as numbers, booleans or times (quoted by the emitter)."""
    assert dump(*docs) == reference(*docs)


def test_the_direct_writer_writes_plain_trees_without_the_emitter(monkeypatch):
    import audit.checks.fixes as fixes

    doc = {"apiVersion": "networking.k8s.io/v1", "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [
        {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "web"}}}], "ports": [{"port": 5432}]}], "egress": []}}
    expected, quoted = reference(doc), reference({"a": "yes", "b": ["::/0"]})
    assert dump({"a": "yes", "b": ["::/0"]}) == quoted  # values YAML 1.1 would misread: quoted as the emitter quotes them, asked once
    monkeypatch.setattr(fixes, "_emit", lambda docs: "emitter")
    assert dump(doc) == expected and dump(doc, doc) == reference(doc, doc)
    assert dump({"a": "yes", "b": ["::/0"]}) == quoted, "a value's quoted form is asked of the emitter once, then reused"
    assert dump({"a: b": 1}) == "emitter"  # a key that needs quoting: the emitter writes the document
    assert dump({"a": "x\ny"}) == "emitter"  # a value over lines: the emitter writes the document


def test_values_over_lines_and_long_values_are_the_emitters_at_any_depth():
    """A quoted value's continuation lines are indented by where it stands: never reused from another depth."""
    for text in ("x\ny", "a b\n\nc", "it's\nhere", "w " * 150 + "end", "w " * 497 + "e"):  # the last folds at 1,000 columns when indented
        for doc in ({"a": text}, {"a": {"b": text}}, {"a": [text, {"c": [text]}]}, {"s": {"t": {"u": [[text]]}}}):
            assert dump(doc) == reference(doc), (text, doc)


def test_dump_equals_pyyaml_on_every_fix_of_the_examples():
    seen = 0
    for example in ("lab-before", "war-story", "mixed-cluster", "flannel"):
        out = CliRunner().invoke(app, ["scan", str(EXAMPLES / example), "-f", "json", "--now", "2026-01-01T00:00:00Z"])
        for finding in json.loads(out.stdout)["findings"]:
            if finding.get("fixYaml"):
                docs = [d for d in yaml.safe_load_all(finding["fixYaml"]) if d is not None]
                assert dump(*docs) == reference(*docs)
                seen += 1
    assert seen > 10


def test_the_sensitive_ports_fix_with_its_client_peers_set_in_equals_a_plain_dump():
    """The spliced text (client peers written once, indented into each policy) equals dump() of the whole policy."""
    from audit.checks.fixes import FixWriter, sensitive_ports_policy
    from audit.engine.analysis import Analysis
    from audit.sources.manifests import load_manifests

    analysis = Analysis(load_manifests([str(EXAMPLES / "mixed-cluster")]))
    classes = [c for c in analysis.real_classes() if c.governed]
    checked = 0
    writer = FixWriter()  # one writer for the whole run, as the checks share one: its cache must not leak between destinations
    for dst in classes:
        for clients in ([], [c.id for c in classes if c.namespace != dst.namespace][:7], [c.id for c in classes][::3]):
            doc = sensitive_ports_policy(analysis, dst.id, (5432, 6379), clients)
            written = writer.sensitive_ports_yaml(analysis, dst.id, (5432, 6379), clients)
            assert (doc is None) == (written is None)
            if doc is not None:
                assert written == (dump(doc), len(doc["spec"]["ingress"][1]["from"]) - 1)
                checked += bool(written[1])
    assert checked > 3
