"""The PDF report: a print design of its own, with the JSON result attached and its digest printed."""

from __future__ import annotations

import hashlib
import io
import logging
from typing import Any

from audit.errors import OutputError
from audit.render.html import cluster_label
from audit.render.json_report import render_json_bytes
from audit.render.safe import map_strings, printable
from audit.render.view import environment, read_asset, view_model
from audit.report.model import Report

DEFAULT_MAX_ROWS = 500
ATTACHMENT_NAME = "netpol-audit-result.json"
PDF_VARIANTS = ("pdf/a-3b", "pdf/a-3u")


def _no_fetch_class() -> Any:
    from weasyprint import URLFetcher

    class NoFetch(URLFetcher):  # type: ignore[misc]  # weasyprint ships no type information
        """Refuses every URL: the report is rendered from its own HTML and nothing else."""

        attempts: list[str] = []

        def fetch(self, url: str, headers: Any = None) -> Any:
            NoFetch.attempts.append(url)
            raise ValueError(f"netpol-audit renders PDFs offline and refused to fetch {url}")

    return NoFetch


def _weasyprint() -> Any:
    try:
        import weasyprint
    except OSError as exc:  # WeasyPrint loads Pango and HarfBuzz when imported
        raise OutputError(f"--pdf needs the Pango and HarfBuzz system libraries ({str(exc).splitlines()[0][:160]}); on Debian: "
                          "apt-get install --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 "
                          "fonts-dejavu-core") from None
    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # it warns about CSS it ignores; the pages are ours
    return weasyprint


def html_to_pdf(html: str) -> bytes:
    """A PDF of ``html``, rendered offline: every URL is refused."""
    pdf: bytes = _weasyprint().HTML(string=html, url_fetcher=_no_fetch_class()(), base_url=None).write_pdf()
    return pdf


def render_pdf(report: Report, max_rows: int = DEFAULT_MAX_ROWS, variant: str | None = None) -> bytes:
    """Render the PDF bytes. ``variant`` is a WeasyPrint PDF variant such as ``pdf/a-3b``."""
    weasyprint = _weasyprint()
    HTML, Attachment = weasyprint.HTML, weasyprint.Attachment
    if variant is not None and variant not in PDF_VARIANTS:
        raise OutputError(f"--pdf-variant {variant!r} is not supported (use one of {', '.join(PDF_VARIANTS)})")
    result_json = render_json_bytes(report)
    digest = hashlib.sha256(result_json).hexdigest()
    printed = map_strings(report, printable)  # bounded strings: layout stays linear; the JSON keeps them whole
    html = environment().get_template("report-pdf.html.j2").render(
        # Findings first: policy inventory, blast radius and connections get a tenth of the rows.
        **view_model(printed, max_rows, max(25, max_rows // 10)), css=read_asset("report-pdf.css"), cluster_label=cluster_label(printed),
        digest=digest, attachment_name=ATTACHMENT_NAME,
    )
    fetcher = _no_fetch_class()()
    when = report.generated_datetime
    attachment = Attachment(
        file_obj=io.BytesIO(result_json), name=ATTACHMENT_NAME, url_fetcher=fetcher,
        description=f"netpol-audit JSON result, SHA-256 {digest}", created=when, modified=when, relationship="Data",
    )
    document = HTML(string=html, url_fetcher=fetcher, base_url=None)
    pdf: bytes = document.write_pdf(
        attachments=[attachment], pdf_variant=variant, pdf_identifier=digest[:32].encode(),
        custom_metadata=True,
    )
    return pdf

