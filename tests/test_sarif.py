"""SARIF that GitHub code scanning accepts, validated against the SARIF 2.1.0 schema.

Code scanning refuses a whole file when any result lacks a physical location with an artifact
URI; relative URIs need a uriBaseId; a URI must be a valid URI (no spaces, no `<stdin>`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import jsonschema
import pytest
from typer.testing import CliRunner

from audit.cli import app
from tests.conftest import EXAMPLES

runner = CliRunner()
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "sarif-2.1.0-rtm.5.json").read_text())
VALIDATOR = jsonschema.Draft4Validator(SCHEMA)
URI = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")  # RFC 3986 characters only


def accepted(doc: dict) -> list[dict]:
    """Assert the SARIF is schema-valid and meets code scanning's rules; its results."""
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    [run] = doc["runs"]
    for rule in run["tool"]["driver"]["rules"]:
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", rule["name"]), rule["name"]
        assert rule["helpUri"].startswith("https://") and rule["fullDescription"]["text"] and rule["help"]["text"]
    for result in run["results"]:
        [loc] = result["locations"]
        artifact = loc["physicalLocation"]["artifactLocation"]
        uri = artifact["uri"]
        assert URI.match(uri), uri
        parsed = urlparse(uri)
        if parsed.scheme:
            assert parsed.scheme in ("file", "cluster"), uri
        else:
            assert artifact["uriBaseId"] in run["originalUriBaseIds"] and not uri.startswith("/"), artifact
        assert result["partialFingerprints"]["netpolAudit/v1"]
    return run["results"]


def sarif(*args: str, stdin: str | None = None) -> dict:
    result = runner.invoke(app, ["scan", *args, "-f", "sarif", "--now", "2026-12-01T00:00:00Z"], input=stdin)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", ["flannel", "lab-before", "lab-solution", "mixed-cluster", "war-story"])
def test_every_example_gives_sarif_code_scanning_accepts(name):
    results = accepted(sarif(str(EXAMPLES / name)))
    assert results
    # Namespace-level findings point at the Namespace object's line, not at nothing.
    for r in results:
        if r["locations"][0]["logicalLocations"][0]["kind"] == "Namespace":
            assert r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1


def test_stdin_gets_the_name_given_and_paths_with_spaces_are_encoded(tmp_path):
    text = (EXAMPLES / "lab-before" / "cluster.yaml").read_text() if (EXAMPLES / "lab-before" / "cluster.yaml").exists() else \
        "\n---\n".join(p.read_text() for p in sorted((EXAMPLES / "lab-before").glob("*.yaml")))
    results = accepted(sarif("-", "--stdin-name", "deploy/all manifests.yaml", stdin=text))
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert uris == {"deploy/all%20manifests.yaml"}
    spaced = tmp_path / "my repo" / "k8s"
    spaced.mkdir(parents=True)
    for p in sorted((EXAMPLES / "lab-before").glob("*.yaml")):
        (spaced / p.name).write_text(p.read_text())
    doc = sarif(str(spaced), "--sarif-root", str(tmp_path / "my repo"))
    results = accepted(doc)
    assert {unquote(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]).split("/")[0] for r in results} == {"k8s"}
    assert doc["runs"][0]["originalUriBaseIds"]["SRCROOT"]["uri"] == (tmp_path / "my repo").resolve().as_uri() + "/"
    outside = sarif(str(spaced), "--sarif-root", str(tmp_path / "elsewhere"))
    assert all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("file:///") for r in accepted(outside))


def test_fingerprints_are_stable_across_runs_and_edits_elsewhere(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    for p in sorted((EXAMPLES / "mixed-cluster").glob("*.yaml")):
        (folder / p.name).write_text(p.read_text())
    first = {r["partialFingerprints"]["netpolAudit/v1"] for r in accepted(sarif(str(folder)))}
    # A comment added at the top of every file moves every line: the fingerprints stay.
    for p in folder.glob("*.yaml"):
        p.write_text("# reviewed\n# again\n" + p.read_text())
    assert {r["partialFingerprints"]["netpolAudit/v1"] for r in accepted(sarif(str(folder)))} == first


def test_a_live_scan_points_at_stable_cluster_uris(tmp_path):
    from tests.apiserver import ApiDouble, kubeconfig
    from tests.test_cluster import cluster_objects

    kc = tmp_path / "kubeconfig"
    with ApiDouble(cluster_objects(), token="t") as api:
        kc.write_text(kubeconfig(api.url, token="t"))
        doc = sarif("--kubeconfig", str(kc), "--cluster-name", "prod eu/1")
    results = accepted(doc)
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results]
    assert uris and all(u.startswith("cluster://prod%20eu%2F1") for u in uris)
    assert "originalUriBaseIds" not in doc["runs"][0]
