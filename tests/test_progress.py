"""Progress shows on a terminal only: nothing extra when piped, nothing with -q."""

from __future__ import annotations

import io
import json

from typer.testing import CliRunner

from audit.cli import app
from audit.cli.progress import QUIET, display, status
from tests.conftest import EXAMPLES

runner = CliRunner()


def test_a_terminal_sees_the_steps():
    stream = io.StringIO()
    with display(stream, force=True):
        status("reading pods: 2,000")
        status("analysing \x1b[31mred\x1b[0m [bold]markup[/bold]")
    shown = stream.getvalue()
    assert "analysing" in shown and "[bold]markup[/bold]" in shown  # input is never read as markup
    assert "\x1b[31m" not in shown and "\\x1b[31m" in shown  # nor its escape sequences sent raw


def test_quiet_and_pipes_see_nothing():
    stream = io.StringIO()
    token = QUIET.set(True)
    try:
        with display(stream, force=True):
            status("reading pods")
    finally:
        QUIET.reset(token)
    assert stream.getvalue() == ""
    piped = io.StringIO()  # not a terminal
    with display(piped):
        status("reading pods")
    assert piped.getvalue() == ""
    result = runner.invoke(app, ["-q", "scan", str(EXAMPLES / "lab-solution"), "-f", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout) and result.stderr == ""


def test_verbose_logs_each_api_request(tmp_path):
    from tests.apiserver import ApiDouble, kubeconfig
    from tests.test_cluster import cluster_objects

    kc = tmp_path / "kubeconfig"
    with ApiDouble(cluster_objects(), token="t") as api:
        kc.write_text(kubeconfig(api.url, token="t"))
        result = runner.invoke(app, ["-v", "scan", "--kubeconfig", str(kc), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert "GET /api/v1/pods" in result.stderr and "urllib3" in result.stderr
