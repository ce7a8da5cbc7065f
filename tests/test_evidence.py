"""Signed evidence with a throwaway CA: poppler's pdfsig finds the PDF's signature valid and a byte
changed inside the signed range invalid; `openssl cms -verify` accepts the JSON's detached signature
and rejects a changed file; `evidence verify` agrees with both; an RFC 3161 timestamp from a local
TSA; rotated runs sign every file; bad keys and certificates are one line, nothing written."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit.cli import app
from tests.conftest import EXAMPLES
from tests.tsa import LocalTsa, Pki

runner = CliRunner()
NOW = ["--now", "2026-12-01T00:00:00Z"]
LAB = str(EXAMPLES / "lab-solution")


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki.make(tmp_path_factory.mktemp("pki"))


def sign_args(pki: Pki) -> list[str]:
    return ["--sign-key", str(pki / "signer.key"), "--sign-cert", str(pki / "signer.crt")]


@pytest.fixture(scope="module")
def signed(pki, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("signed")
    result = runner.invoke(app, ["scan", LAB, "--pdf", str(out / "r.pdf"), "--json", str(out / "r.json"), *sign_args(pki), *NOW])
    assert result.exit_code == 0, result.output
    return out


def pdfsig(path: Path) -> str:
    return subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout


def openssl_verify(content: Path, signature: Path, ca: Path) -> int:
    return subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(signature), "-content", str(content),
                           "-CAfile", str(ca), "-purpose", "any", "-out", "/dev/null"], capture_output=True).returncode


def verify(*args: str):
    return runner.invoke(app, ["evidence", "verify", *args])


def corrupt(source: Path, target: Path, marker: bytes) -> Path:
    data = bytearray(source.read_bytes())
    at = data.find(marker)
    assert at > 0
    data[at + len(marker)] ^= 0x01
    target.write_bytes(bytes(data))
    return target


def test_pdfsig_finds_the_signature_valid_and_a_changed_byte_invalid(signed, tmp_path, pki):
    out = pdfsig(signed / "r.pdf")
    assert "Signature is Valid." in out and "Total document signed" in out and "ETSI.CAdES.detached" in out
    ok = verify(str(signed / "r.pdf"), "--cert", str(pki / "ca.pem"))
    assert ok.exit_code == 0 and "valid: signed by" in ok.output and "netpol-audit scanner" in ok.output
    assert "attached JSON SHA-256" in ok.output and "chaining to" in ok.output
    changed = corrupt(signed / "r.pdf", tmp_path / "changed.pdf", b"/Producer")  # inside the signed range
    assert "Digest Mismatch" in pdfsig(changed) or "Signature is Invalid" in pdfsig(changed)
    bad = verify(str(changed), "--cert", str(pki / "ca.pem"))
    assert bad.exit_code == 1 and "changed after signing" in bad.output and len(bad.output.strip().splitlines()) == 1


def test_bytes_appended_after_the_signature_are_refused(signed, tmp_path, pki):
    appended = tmp_path / "appended.pdf"
    appended.write_bytes((signed / "r.pdf").read_bytes() + b"\n% appended\n")
    bad = verify(str(appended), "--cert", str(pki / "ca.pem"))
    assert bad.exit_code == 1


def test_openssl_accepts_the_json_signature_and_rejects_a_changed_file(signed, tmp_path, pki):
    assert openssl_verify(signed / "r.json", signed / "r.json.sig", pki / "ca.pem") == 0
    ok = verify(str(signed / "r.json"), "--cert", str(pki / "ca.pem"))
    assert ok.exit_code == 0 and "valid: signed by" in ok.output
    changed = tmp_path / "r.json"
    shutil.copy(signed / "r.json.sig", tmp_path / "r.json.sig")
    changed.write_bytes(signed.joinpath("r.json").read_bytes().replace(b'"grade"', b'"Grade"', 1))
    assert openssl_verify(changed, tmp_path / "r.json.sig", pki / "ca.pem") != 0
    bad = verify(str(changed), "--cert", str(pki / "ca.pem"))
    assert bad.exit_code == 1 and "changed after signing" in bad.output


def test_a_signer_of_another_ca_does_not_chain(signed, tmp_path):
    other = Pki.make(tmp_path / "other")
    result = verify(str(signed / "r.pdf"), "--cert", str(other / "ca.pem"))
    assert result.exit_code == 1 and "does not chain" in result.output
    assert verify(str(signed / "r.json"), "--cert", str(other / "ca.pem")).exit_code == 1
    assert verify(str(signed / "r.pdf")).exit_code == 0  # without --cert the chain is not checked, and it says so


def test_an_unsigned_pdf_is_invalid(tmp_path):
    result = runner.invoke(app, ["scan", LAB, "--pdf", str(tmp_path / "u.pdf"), *NOW])
    assert result.exit_code == 0
    bad = verify(str(tmp_path / "u.pdf"))
    assert bad.exit_code == 1 and "carries no signature" in bad.output


def test_a_timestamp_from_a_local_tsa(pki, tmp_path):
    with LocalTsa(pki) as tsa:
        result = runner.invoke(app, ["scan", LAB, "--pdf", str(tmp_path / "t.pdf"), "--json", str(tmp_path / "t.json"),
                                     *sign_args(pki), "--tsa-url", tsa.url, *NOW])
        assert result.exit_code == 0, result.output
        assert tsa.requests >= 2  # the PDF's signature (pyHanko also sizes the token first) and the JSON's
    ok = verify(str(tmp_path / "t.pdf"), "--cert", str(pki / "ca.pem"))
    assert ok.exit_code == 0 and "timestamped" in ok.output
    assert "Signature is Valid." in pdfsig(tmp_path / "t.pdf")
    assert openssl_verify(tmp_path / "t.json", tmp_path / "t.json.sig", pki / "ca.pem") == 0


def test_an_encrypted_key_takes_its_passphrase_from_the_environment(pki, tmp_path, monkeypatch):
    args = ["scan", LAB, "--json", str(tmp_path / "e.json"), "--sign-key", str(pki / "encrypted.key"), "--sign-cert",
            str(pki / "signer.crt"), "--sign-pass-env", "SIGNING_PASS", *NOW]
    missing = runner.invoke(app, args)
    assert missing.exit_code == 2 and "SIGNING_PASS is not set" in missing.output and not (tmp_path / "e.json").exists()
    monkeypatch.setenv("SIGNING_PASS", "secret")
    assert runner.invoke(app, args).exit_code == 0 and (tmp_path / "e.json.sig").exists()
    monkeypatch.setenv("SIGNING_PASS", "wrong")
    assert runner.invoke(app, args).exit_code == 2


@pytest.mark.parametrize("key,cert,message", [
    ("other.key", "signer.crt", "the key does not belong to the certificate"),
    ("expired.key", "expired.crt", "not now"),
    ("missing.key", "signer.crt", "cannot read"),
    ("signer.key", "ca.pem", "the key does not belong to the certificate"),
    ("signer.key", "signer.key", "no certificate in the file"),
    ("encrypted.key", "signer.crt", "give the passphrase's environment variable"),
])
def test_a_bad_key_or_certificate_is_one_line_and_nothing_is_written(pki, tmp_path, key, cert, message):
    result = runner.invoke(app, ["scan", LAB, "--json", str(tmp_path / "x.json"), "--pdf", str(tmp_path / "x.pdf"),
                                 "--sign-key", str(pki / key), "--sign-cert", str(pki / cert), *NOW])
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_options_that_need_each_other(pki, tmp_path):
    assert "go together" in runner.invoke(app, ["scan", LAB, "--sign-key", str(pki / "signer.key"), *NOW]).output
    assert runner.invoke(app, ["scan", LAB, "--tsa-url", "http://x", *NOW]).exit_code == 2


def test_rotated_runs_sign_every_file_latest_included(pki, tmp_path):
    out = tmp_path / "reports"
    result = runner.invoke(app, ["scan", LAB, "--output-dir", str(out), "--formats", "json,html,pdf", *sign_args(pki), *NOW])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    run = next(n for n in names if n.endswith(".json")).removesuffix(".json") if names else ""
    assert {f"{run}.json", f"{run}.json.sig", f"{run}.html", f"{run}.html.sig", f"{run}.pdf", "latest.json", "latest.json.sig",
            "latest.html.sig", "latest.pdf"} <= set(names)
    for name in ("latest.json", "latest.html", f"{run}.html"):
        assert verify(str(out / name), "--cert", str(pki / "ca.pem")).exit_code == 0, name
    assert verify(str(out / "latest.pdf"), "--cert", str(pki / "ca.pem")).exit_code == 0


def test_a_mounted_tls_secret_signs_and_an_empty_one_does_not(pki, tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    unsigned = runner.invoke(app, ["scan", LAB, "--json", str(tmp_path / "a.json"), "--sign-dir", str(secret), *NOW])
    assert unsigned.exit_code == 0 and not (tmp_path / "a.json.sig").exists()
    shutil.copy(pki / "signer.key", secret / "tls.key")
    shutil.copy(pki / "signer.crt", secret / "tls.crt")
    signed = runner.invoke(app, ["scan", LAB, "--json", str(tmp_path / "b.json"), "--sign-dir", str(secret), *NOW])
    assert signed.exit_code == 0 and verify(str(tmp_path / "b.json"), "--cert", str(pki / "ca.pem")).exit_code == 0


def test_report_signs_a_saved_result(signed, pki, tmp_path):
    result = runner.invoke(app, ["report", str(signed / "r.json"), "--pdf", str(tmp_path / "again.pdf"), *sign_args(pki)])
    assert result.exit_code == 0, result.output
    assert verify(str(tmp_path / "again.pdf"), "--cert", str(pki / "ca.pem")).exit_code == 0


def test_verify_usage_errors(tmp_path):
    assert verify(str(tmp_path / "nope.pdf")).exit_code == 2
    (tmp_path / "x.json").write_text("{}")
    result = verify(str(tmp_path / "x.json"))
    assert result.exit_code == 2 and "no detached signature" in result.output


def test_a_scan_without_signing_options_never_loads_pyhanko(tmp_path):
    """pyHanko and cryptography cost about 40 MB of a 150k-pod scan's peak: loaded only to sign."""
    import sys

    script = ("import sys\nfrom audit.cli import app\n"
              f"sys.argv = ['netpol-audit', 'scan', {LAB!r}, '--json', {str(tmp_path / 'r.json')!r}, '--now', '2026-12-01T00:00:00Z']\n"
              "try:\n    app()\nexcept SystemExit as exc:\n    code = exc.code\n"
              "print(code, sorted(m for m in ('pyhanko', 'cryptography', 'asn1crypto') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()[-1]
    assert out in ("0 []", "1 []"), out
    assert (tmp_path / "r.json").stat().st_size > 0
