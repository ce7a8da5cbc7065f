"""HTML and PDF reports: numbers agree with the JSON, hostile input is inert, nothing is fetched."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import socket
import subprocess
import sys
import textwrap
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.render.html import render_html
from audit.render.json_report import render_json
from tests.conftest import EXAMPLES, ROOT, audit

pypdf = pytest.importorskip("pypdf")
runner = CliRunner()
NOW = ["--now", "2026-11-26T00:00:00Z"]


class Page(HTMLParser):
    """Just enough of the DOM: elements with attributes, and table rows per section."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.rows: dict[str, list[list[str]]] = {}
        self.text: list[str] = []
        self._section: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs))
        if tag == "section":
            self._section = attrs.get("id")
        elif tag == "tr":
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row:
            self.rows.setdefault(self._section or "", []).append(self._row)
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def mixed_report():
    from audit.config import load_config
    from audit.pipeline import run_audit
    from audit.sources.manifests import load_manifests
    from tests.conftest import NOW as FIXED

    return run_audit(load_manifests([str(EXAMPLES / "mixed-cluster")]), load_config(str(EXAMPLES / "config.yaml")), FIXED)


def test_html_numbers_agree_with_json():
    report = mixed_report()
    data = json.loads(render_json(report))
    page = Page(render_html(report))
    rows = {r[0]: r for r in page.rows["namespaces"]}
    audited = [n for n in data["namespaces"] if not n["excluded"]]
    assert set(rows) == {n["name"] for n in audited}
    for ns in audited:
        row = rows[ns["name"]]
        assert row[1] == str(ns["policies"])
        assert row[3].endswith(f"{ns['isolatedIngress']}/{ns['pods']}") and row[4].endswith(f"{ns['isolatedEgress']}/{ns['pods']}")
        assert row[5].startswith("yes" if ns["defaultDenyIngress"] else "NO")
        assert row[6].startswith("yes" if ns["defaultDenyEgress"] else "NO")
        assert row[7] == str(ns["findings"])
    text = " ".join(" ".join(page.text).split())
    s = data["summary"]
    assert f"{s['defaultDenyIngress']}/{s['auditedNamespaces']} namespaces default-deny ingress" in text
    assert f"score {s['score']}/100" in text
    finding_rows = [r for r in page.rows["findings"]]
    assert len(finding_rows) == sum(1 for f in data["findings"] if f["status"] == "fail")
    controls = page.rows["controls"]
    assert [r[3] for r in controls] == [c["status"] for c in data["controls"]]


def test_html_is_self_contained_and_locked_down():
    html = render_html(mixed_report())
    page = Page(html)
    for tag, attrs in page.elements:
        assert tag not in ("link", "img", "iframe", "object", "embed")
        assert "src" not in attrs
        if "href" in attrs:
            assert attrs["href"].startswith("#"), attrs
    scripts = [a for t, a in page.elements if t == "script"]
    assert len(scripts) == 1
    csp = next(a["content"] for t, a in page.elements if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp


HOSTILE = '"><img src=x onerror=alert(1)></script><script>alert(2)</script>'


def hostile_manifests() -> str:
    return textwrap.dedent(f"""
    apiVersion: v1
    kind: Namespace
    metadata:
      name: 'evil</style><style>body{{display:none}}</style>'
      labels: {{team: 'javascript:alert(3)'}}
    ---
    apiVersion: v1
    kind: Pod
    metadata:
      name: '{HOSTILE}'
      namespace: 'evil</style><style>body{{display:none}}</style>'
      labels: {{app: web}}
    spec: {{containers: [{{name: c, image: 'x"><svg onload=alert(4)>'}}]}}
    ---
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata:
      name: '<a href="javascript:alert(5)">click</a>'
      namespace: 'evil</style><style>body{{display:none}}</style>'
      annotations: {{netpol-audit.io/broad-selector-reason: '<b onmouseover=alert(6)>ok</b>'}}
    spec:
      podSelector: {{}}
      ingress: [{{from: [{{podSelector: {{matchLabels: {{app: web}}}}}}]}}]
    """)


def test_hostile_input_is_inert_in_html_and_pdf():
    from audit.render.pdf import render_pdf

    report = audit(hostile_manifests(), {"waivers": [{"check": "NP-COV-00*", "reason": "</script><script>alert(7)</script>"}]})
    html = render_html(report)
    page = Page(html)
    assert [t for t, _ in page.elements].count("script") == 1
    assert [t for t, _ in page.elements].count("style") == 1
    assert not [t for t, _ in page.elements if t in ("img", "svg") and any(k.startswith("on") for k in _)]
    assert all(not k.startswith("on") for _, attrs in page.elements for k in attrs)
    assert all(not v.lower().startswith("javascript:") for _, attrs in page.elements for v in attrs.values() if v)
    text = "".join(page.text)
    assert HOSTILE in text  # shown, as text
    assert "alert(7)" in text and "<b onmouseover=alert(6)>ok</b>" in text
    pdf = render_pdf(report)
    # Long names wrap anywhere in the PDF's fixed-width cells, so compare without whitespace.
    pdf_text = "".join("".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages).split())
    for literal in ('<a href="javascript:alert(5)">click</a>', "<b onmouseover=alert(6)>ok</b>",
                    "evil</style><style>body{display:none}</style>"):
        assert "".join(literal.split()) in pdf_text  # printed literally, not interpreted


def test_pdf_facts_metadata_and_attachment():
    from audit.render.pdf import ATTACHMENT_NAME, render_pdf

    report = mixed_report()
    pdf = render_pdf(report)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 8
    cover = reader.pages[0].extract_text()
    assert "Kubernetes NetworkPolicy Audit" in cover and report.generated_at in cover and report.tool.version in cover
    assert f"{report.summary.verdict.upper()}" in cover and "Complete" in cover
    attached = reader.attachments[ATTACHMENT_NAME][0]
    assert attached == render_json(report).encode()
    digest = hashlib.sha256(attached).hexdigest()
    assert digest in cover.replace("\n", "")
    full = "\n".join(p.extract_text() for p in reader.pages)
    assert f"Page 2 of {len(reader.pages)}" in full
    for heading in ("Executive summary", "Compliance control matrix", "Findings and remediation",
                    "Appendix A: Policy inventory", "Appendix B: Waivers", "Appendix C: Collection", "Appendix D: Methodology"):
        assert heading in full
    assert "CIS Kubernetes Benchmark" in full and "5.3.2" in full
    meta = reader.metadata
    assert meta.title.startswith("NetworkPolicy audit") and meta.author.startswith("netpol-audit")
    assert "NetworkPolicy" in meta.subject and "CIS 5.3.2" in reader.metadata.get("/Keywords")


def test_pdf_a3b_variant():
    from audit.render.pdf import render_pdf

    pdf = render_pdf(audit((EXAMPLES / "lab-before" / "app.yaml").read_text()), variant="pdf/a-3b")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    xmp = reader.xmp_metadata
    assert xmp is not None and xmp.pdfaid_part == "3" and xmp.pdfaid_conformance == "B"
    assert reader.attachments  # PDF/A-3 allows the embedded JSON


def test_rendering_fetches_nothing(monkeypatch):
    from audit.render import pdf as pdf_module

    attempts = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError("network access during rendering")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    report = audit(hostile_manifests().replace("image: 'x", "image: 'http://198.51.100.7/x.png"))
    render_html(report)
    pdf_module.render_pdf(report)
    assert attempts == []


def test_large_results_are_capped_with_totals():
    from audit.render.pdf import render_pdf

    namespaces = "".join(f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: ns-{i:04d}}}\n" for i in range(300))
    report = audit(namespaces)
    page = Page(render_html(report, max_rows=40))
    assert len(page.rows["namespaces"]) == 40
    assert "Showing 40 of 300 namespaces" in " ".join(" ".join(page.text).split())
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(render_pdf(report, max_rows=25))).pages)
    assert "Showing 25 of 300 namespaces" in " ".join(text.split())


def test_report_command_renders_a_saved_result(tmp_path):
    result = tmp_path / "result.json"
    assert runner.invoke(app, ["scan", str(EXAMPLES / "lab-solution"), "--json", str(result), *NOW]).exit_code == 0
    html, pdf = tmp_path / "r.html", tmp_path / "r.pdf"
    out = runner.invoke(app, ["report", str(result), "--html", str(html), "--pdf", str(pdf)])
    assert out.exit_code == 0, out.output
    assert "Default-deny:        ingress 3/3" in out.output
    reader = pypdf.PdfReader(str(pdf))
    assert reader.attachments["netpol-audit-result.json"][0] == result.read_bytes()
    assert "3/3" in html.read_text()
    bad = tmp_path / "bad.json"
    bad.write_text('{"schemaVersion": "9.0"}')
    out = runner.invoke(app, ["report", str(bad), "--html", str(html)])
    assert out.exit_code == 2 and "schemaVersion" in out.output


def test_scan_writes_html_and_pdf(tmp_path):
    html, pdf = tmp_path / "r.html", tmp_path / "r.pdf"
    out = runner.invoke(app, ["scan", str(EXAMPLES / "flannel"), "--html", str(html), "--pdf", str(pdf), *NOW])
    assert out.exit_code == 0, out.output
    assert "POLICIES ARE NOT ENFORCED" in html.read_text()
    assert "Policies are not enforced" in pypdf.PdfReader(str(pdf)).pages[0].extract_text()
    out = runner.invoke(app, ["scan", str(EXAMPLES / "flannel"), "--pdf", str(pdf), "--pdf-variant", "pdf/x-1a", *NOW])
    assert out.exit_code == 2 and "--pdf-variant" in out.output


def test_html_is_written_in_pieces_byte_for_byte_as_jinja_renders_it(tmp_path, monkeypatch):
    """`--html FILE` writes the page piece by piece (never whole in memory);
    the oracle is Jinja's own `Template.render` of the same context."""
    from audit.render import html as html_module
    from audit.render.view import environment, read_asset, view_model

    report = mixed_report()
    css, script = read_asset("report.css"), read_asset("report.js")
    context = dict(**view_model(report, html_module.DEFAULT_MAX_ROWS), css=css, script=script,
                   cluster_label=html_module.cluster_label(report), style_hash=html_module.csp_hash(css),
                   script_hash=html_module.csp_hash(script))
    template = environment().get_template("report.html.j2")
    expected = template.render(**context)
    largest = max(len(part) for part in template.generate(**context))  # what Jinja yields at once
    monkeypatch.setattr(html_module, "_PIECE", 4096)
    pieces = list(html_module.html_chunks(report))
    assert "".join(pieces) == expected and len(pieces) > len(expected) // 8192
    assert all(len(p) < 4096 + largest for p in pieces), "a piece is about _PIECE long, not the page"
    page = tmp_path / "a.html"
    out = runner.invoke(app, ["scan", str(EXAMPLES / "mixed-cluster"), "--config", str(EXAMPLES / "config.yaml"), "--html", str(page),
                                "--now", "2026-01-01T00:00:00Z"])
    assert out.exit_code in (0, 1), out.output
    assert page.read_text() == expected


@pytest.mark.slow
def test_installed_wheel_renders_reports(tmp_path):
    """Build the wheel, install it into a fresh venv, and render from there (templates included)."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)], check=True)
    (wheel,) = dist.glob("netpol_audit-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    # Dependencies come from this environment's site-packages; the package itself from the wheel.
    site = next(p for p in sys.path if p.endswith("site-packages"))
    env = {"PYTHONPATH": site, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = subprocess.run([str(py), "-c", "import audit, audit.render.view as v; print(audit.__file__); print(v.templates_dir())"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    module_file, templates = probe.stdout.split()
    assert module_file.startswith(str(venv)) and templates.startswith(str(venv))
    out = subprocess.run([str(py), "-m", "audit", "scan", str(EXAMPLES / "lab-solution"), "--html", "r.html", "--pdf", "r.pdf", *NOW],
                         cwd=work, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (work / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert pypdf.PdfReader(str(work / "r.pdf")).attachments


def test_html_connectivity_section_lists_allowed_connections():
    from audit.pipeline import run_audit
    from audit.sources.manifests import load_manifests
    from tests.conftest import NOW as FIXED

    report = run_audit(load_manifests([str(EXAMPLES / "lab-solution")]), None, FIXED)
    assert report.connectivity.computed
    rows = Page(render_html(report)).rows["connectivity"]
    assert rows[:2] == [["backend", "1", "1", "no"], ["frontend", "1", "1", "no"]]  # blast radius first
    assert rows[2:] == [["backend/api[Pod]", "database/db[Pod]", "TCP 5432"], ["frontend/web[Pod]", "backend/api[Pod]", "TCP 8080"]]


def test_connectivity_is_pointed_to_not_listed_for_large_clusters(monkeypatch):
    from audit.report import build as connectivity

    text = (EXAMPLES / "lab-before" / "app.yaml").read_text()
    monkeypatch.setattr(connectivity, "REPORT_CLASSES", 2)
    report = audit(text)  # past the listing bound: the blast radius without the connections
    assert report.connectivity.computed and not report.connectivity.connections
    assert [b.namespace for b in report.connectivity.blast_radius] == ["backend", "database", "frontend"]
    rows = Page(render_html(report)).rows["connectivity"]
    assert rows == [["backend", "2", "2", "yes"], ["database", "2", "2", "yes"], ["frontend", "2", "2", "yes"]]
    monkeypatch.setattr(connectivity, "BLAST_CLASSES", 2)
    report = audit(text)  # past both bounds: a pointer to the command
    assert not report.connectivity.computed and "`netpol-audit connectivity` (-f blast" in report.connectivity.note
    assert "too many for a report" in render_html(report)


def test_blast_radius_per_namespace():
    from audit.pipeline import run_audit
    from audit.sources.manifests import load_manifests
    from tests.conftest import NOW as FIXED

    before = run_audit(load_manifests([str(EXAMPLES / "lab-before")]), None, FIXED).connectivity.blast_radius
    assert [(b.namespace, b.workloads, b.namespaces, b.outside) for b in before] == [
        ("backend", 2, 2, True), ("database", 2, 2, True), ("frontend", 2, 2, True)]
    after = run_audit(load_manifests([str(EXAMPLES / "lab-solution")]), None, FIXED).connectivity.blast_radius
    assert [(b.namespace, b.workloads, b.namespaces, b.outside) for b in after] == [
        ("backend", 1, 1, False), ("frontend", 1, 1, False)]


def test_scope_configuration_and_inputs_are_part_of_the_evidence(tmp_path):
    """An auditor can tie the verdicts to exact inputs and settings: the config file and its
    digest, every override, exclusion and waiver in force, every input file with its digest,
    the check catalogue's digest; the cluster name given is used; completeness is worded for files."""
    config = EXAMPLES / "config.yaml"
    folder = EXAMPLES / "mixed-cluster"
    pdf, html, out = tmp_path / "r.pdf", tmp_path / "r.html", tmp_path / "r.json"
    result = runner.invoke(app, ["scan", str(folder), "-c", str(config), "--cluster-name", "prod-eu-1", "--json", str(out),
                                 "--html", str(html), "--pdf", str(pdf), "--now", "2026-12-01T00:00:00Z"])
    assert result.exit_code in (0, 1), result.output
    data = json.loads(out.read_text())
    ev = data["evidence"]
    assert ev["config"]["path"] == str(config) and ev["config"]["sha256"] == hashlib.sha256(config.read_bytes()).hexdigest()
    assert ev["config"]["severityOverrides"] == {"NP-COV-005": "medium"} and ev["config"]["waivers"] == 2
    files = sorted(folder.glob("*.yaml"))
    assert [(f["path"], f["sha256"], f["size"]) for f in ev["inputFiles"]] == [
        (str(p), hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size) for p in files]
    assert len(ev["catalogueSha256"]) == 64 and ev["checks"] == len(data["checks"])
    assert ev["completeness"].startswith("Complete: every input file") and "cluster" not in ev["completeness"]
    assert data["scan"]["cluster"] == "prod-eu-1"
    overridden = [f for f in data["findings"] if f["check"] == "NP-COV-005"]
    assert overridden and all(f["severity"] == "medium" and f["defaultSeverity"] == "low" for f in overridden)
    assert all(f["defaultSeverity"] is None for f in data["findings"] if f["check"] != "NP-COV-005")
    page = html.read_text()
    assert "prod-eu-1" in page and ev["config"]["sha256"] in page and ev["inputFiles"][0]["sha256"] in page
    assert "the check&#39;s own: low" in page or "the check's own: low" in page
    text = "".join("".join(p.extract_text() for p in pypdf.PdfReader(str(pdf)).pages).split())
    for needle in ("prod-eu-1", "NP-COV-005settomedium", str(config).replace(" ", ""), ev["inputFiles"][0]["sha256"][:32],
                   ev["catalogueSha256"][:32], "Complete:everyinputfile"):
        assert needle in text, needle


def test_the_catalogue_digest_changes_with_the_catalogue():
    from audit.checks.catalogue import all_checks
    from audit.report.build import catalogue_digest

    checks = all_checks()
    assert catalogue_digest(checks) == catalogue_digest(list(reversed(checks)))
    changed = [dataclasses.replace(checks[0], severity="info" if checks[0].severity != "info" else "low"), *checks[1:]]
    assert catalogue_digest(changed) != catalogue_digest(checks)


def test_terminal_puts_the_worst_namespaces_first_in_80_columns():
    from audit.render.terminal import render_terminal

    docs = []
    for i in range(60):
        ns = f"team-{i:02d}"
        docs.append(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n")
        docs.append(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: {ns}, labels: {{app: p}}}}\nspec: {{containers: [{{name: c, image: i}}]}}\n")
        docs.append(f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: deny, namespace: {ns}}}\n"
                    "spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n")
    # Alphabetically last, and the only namespace without any policy: the worst one.
    docs.append("apiVersion: v1\nkind: Namespace\nmetadata: {name: zz-a-very-long-namespace-name-that-goes-on}\n")
    docs.append("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: zz-a-very-long-namespace-name-that-goes-on}\n"
                "spec: {containers: [{name: c, image: i}]}\n")
    text = render_terminal(audit("---\n".join(docs)), max_rows=50)
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Namespace "))
    table = lines[start:start + 52]
    assert table[2].startswith("zz-a-very-long-namespac~") and "NONE" in table[2] and "high" in table[2]
    assert all(len(line) <= 80 for line in lines[start - 1:start + 53]), max(lines[start - 1:start + 53], key=len)
    assert lines[start + 52].startswith("... 11 more namespaces, none worse than those above")


def test_findings_share_one_budget_small_checks_whole():
    from audit.render.view import share

    assert share([3, 1000, 200], 500) == [3, 297, 200]
    assert share([3, 4], 500) == [3, 4]
    assert share([100, 100, 100], 30) == [10, 10, 10]
    assert share([100, 100, 100, 100, 100, 100, 100], 10) == [5] * 7  # each check still shows a few


def test_html_puts_findings_and_namespaces_before_the_connection_listing():
    page = render_html(audit((EXAMPLES / "mixed-cluster" / "20-frontend.yaml").read_text()))
    order = [page.index(f'<section id="{sid}">') for sid in ("summary", "findings", "namespaces", "controls", "connectivity")]
    assert order == sorted(order)
    small = render_html(audit("\n---\n".join(p.read_text() for p in sorted((EXAMPLES / "lab-solution").glob("*.yaml")))))
    assert "<details open><summary><strong>Allowed connections (2)" in small
    many = "\n---\n".join(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: n}}\nspec: {{containers: [{{name: c, image: i}}]}}"
                          for i in range(8))
    assert "<details><summary><strong>Allowed connections (72)" in render_html(audit(many))


def test_the_segmentation_map_is_the_connection_listing_by_namespace(tmp_path):
    """Every cell follows from the listing (read here from `connectivity -f json`): a cell where
    some connection runs, red where one is open on every port; outside addresses in `internet`."""
    folder = EXAMPLES / "mixed-cluster"
    data = json.loads(runner.invoke(app, ["scan", str(folder), "-f", "json", "--now", "2026-12-01T00:00:00Z"]).stdout)
    seg = data["connectivity"]["map"]
    cells = {(c["src"], c["dst"]): c for c in seg["cells"]}
    listing = json.loads(runner.invoke(app, ["connectivity", str(folder), "-f", "json"]).stdout)
    expected: dict[tuple[str, str], bool] = {}
    for c in listing:
        if "[" not in c["src"] or c["src"].endswith("[External]"):
            continue
        dst = "internet" if c["dst"].endswith("[External]") else c["dst"].split("/")[0]
        key = (c["src"].split("/")[0], dst)
        expected[key] = expected.get(key, False) or c["conn"] == "All Connections"
    assert {k: v["level"] == "all" for k, v in cells.items() if k[1] != "sensitive"} == expected
    # The sensitive column: redis serves 6379 in data; staging reaches it (NP-EXP-002's finding).
    assert ("staging", "sensitive") in cells and ("data", "sensitive") not in cells
    page = tmp_path / "r.html"
    runner.invoke(app, ["scan", str(folder), "--html", str(page)])
    html = page.read_text()
    links = re.findall(r'<a href="#(pair-[^"]+)">', html)
    assert links and all(f'id="{target}"' in html for target in links)


def test_few_namespaces_are_drawn_as_a_graph_many_as_a_matrix():
    few = render_html(audit("\n---\n".join(p.read_text() for p in sorted((EXAMPLES / "lab-solution").glob("*.yaml")))))
    assert "segmentation map: who can reach whom" in few and "<line " in few
    many = render_html(audit("\n---\n".join(p.read_text() for p in sorted((EXAMPLES / "mixed-cluster").glob("*.yaml")))))
    assert "segmentation matrix: rows can reach columns" in many


@pytest.mark.parametrize("example", ["mixed-cluster", "lab-before", "war-story", "flannel"])
def test_the_json_written_piece_by_piece_is_byte_for_byte_the_whole(example, tmp_path):
    """`scan --json FILE` writes the result in pieces (never whole in memory): the same bytes as
    the result rendered at once, with flows (the traffic section) and with empty lists alike."""
    import datetime as dt

    from audit import api
    from audit.render.json_report import json_chunks, render_json_bytes

    flows = [EXAMPLES / "lab-flows" / "hubble.jsonl"] if example == "lab-before" else []
    report = api.scan([str(EXAMPLES / example)], now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), flows=flows)
    whole = render_json_bytes(report)
    pieces = list(json_chunks(report))
    assert b"".join(pieces) == whole and len(pieces) > 20 and (report.traffic is not None) == bool(flows)
    # The oracle: Python's own json module over the dict form (orjson is handed the dataclasses).
    from audit.serde import to_jsonable

    assert whole == (json.dumps(to_jsonable(report), indent=2, ensure_ascii=False) + "\n").encode()
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["scan", str(EXAMPLES / example), "--json", str(out), "--now", "2026-01-01T00:00:00Z", "-f", "json"])
    assert out.read_bytes() == result.stdout.encode()


HOSTILE_TEXTS = ["", "plain", "<script>alert('x')</script>", 'a"b', "a&amp;b", "tab\tand\nnewline", "nul\0inside", "\0", "ünïcode ✓", "{{ 7*7 }}"]


def test_row_helpers_write_what_jinja_macros_wrote():
    """The per-row helpers (Python, for speed) against the macros they replaced, rendered by Jinja
    with autoescape: the oracle is Jinja's escaping, not ours, for hostile text and every branch."""
    import jinja2

    from audit.render.view import list_items, location, object_name, policy_ref
    from audit.report.model import SourceLocation

    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    macros = env.from_string(
        '{% macro location(src) %}{% if src and src.file %}<span class="loc">{{ src.file }}{% if src.line %}:{{ src.line }}{% endif %}</span>{% endif %}{% endmacro %}'
        '{% macro object_name(f) %}{% if f.namespace and f.kind != "Namespace" %}{{ f.namespace }}/{{ f.name }}{% else %}{{ f.name }}{% endif %}{% endmacro %}'
        '{% macro policy_ref(p) -%}\n<span class="muted small">{{ p.kind }}</span> {% if p.namespace %}{{ p.namespace }}/{% endif %}{{ p.name }}\n{%- endmacro %}'
        '{% macro items(values, limit) %}{% for o in values[:limit] %}<li>{{ o }}</li>{% endfor %}{% endmacro %}').module

    class Row:
        def __init__(self, **fields):
            self.__dict__.update(fields)

    for text in HOSTILE_TEXTS:
        for line in (None, 0, 7):
            src = SourceLocation(text, line, 1)
            assert str(location(src)) == str(macros.location(src))
        for ns in (None, "", text, "ns<&>"):
            for kind in ("Namespace", "Workload", text):
                row = Row(namespace=ns, kind=kind, name=text)
                assert str(object_name(row)) == str(macros.object_name(row))
                assert str(policy_ref(row)) == str(macros.policy_ref(row))
    assert str(location(None)) == str(macros.location(None)) == ""
    for values in ([], HOSTILE_TEXTS, HOSTILE_TEXTS[::-1], ["a", "b\0c", "d"], ["only"], [1, 2]):
        for limit in (0, 1, 3, 100):
            assert str(list_items(values, limit)) == str(macros.items(values, limit)), (values, limit)
