"""Signed evidence: a PDF report with a PAdES signature over the whole document, and a detached
CMS (PKCS#7, DER) signature beside every other file; both checked by `netpol-audit evidence verify`.

pyHanko signs and validates (the maintained library for PAdES); the detached signatures are what
`openssl cms -verify -binary -inform DER -content FILE` checks. An optional RFC 3161 timestamp
from a TSA makes the signatures PAdES B-T / CMS with a signature timestamp.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import InputError

with warnings.catch_warnings():  # pyHanko imports cryptography's deprecated DSA types
    warnings.simplefilter("ignore")
    from asn1crypto import cms
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
    from pyhanko.sign import fields, signers, timestamps
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.registry import SimpleCertificateStore

ATTACHMENT = "netpol-audit-result.json"
FIELD = "netpol-audit"


@dataclass(frozen=True)
class SigningKey:
    """A private key and its certificate (and chain), checked to belong together and be valid now."""

    signer: Any
    subject: str
    tsa_url: str | None = None

    @classmethod
    def load(cls, key_file: Path, cert_file: Path, pass_env: str | None = None, tsa_url: str | None = None,
             now: dt.datetime | None = None) -> SigningKey:
        """Load the PEM (or DER) key and certificate; every problem is one line naming the file."""
        passphrase = None
        if pass_env:
            value = os.environ.get(pass_env)
            if value is None:
                raise InputError(f"--sign-pass-env: the environment variable {pass_env} is not set")
            passphrase = value.encode()
        key_bytes, cert_bytes = _read(key_file, "--sign-key"), _read(cert_file, "--sign-cert")
        try:
            certs = list(load_certs_from_pemder_data(cert_bytes))
        except Exception as exc:  # asn1crypto raises ValueError and TypeError alike on garbage
            raise InputError(f"{cert_file}: not a PEM or DER certificate ({_first_line(exc)})") from None
        if not certs:
            raise InputError(f"{cert_file}: no certificate in the file")
        try:
            key = load_private_key_from_pemder_data(key_bytes, passphrase=passphrase)
        except Exception as exc:
            hint = " (encrypted: give the passphrase's environment variable with --sign-pass-env)" if passphrase is None else ""
            raise InputError(f"{key_file}: not a usable private key ({_first_line(exc)}){hint}") from None
        leaf = certs[0]
        crypto_cert = x509.load_der_x509_certificate(leaf.dump())
        crypto_key = serialization.load_der_private_key(key.dump(), password=None)
        if crypto_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
                crypto_cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
            raise InputError(f"{key_file}: the key does not belong to the certificate in {cert_file}")
        moment = now or dt.datetime.now(dt.UTC)
        if not crypto_cert.not_valid_before_utc <= moment <= crypto_cert.not_valid_after_utc:
            raise InputError(f"{cert_file}: the certificate is valid from {crypto_cert.not_valid_before_utc:%Y-%m-%d} to "
                             f"{crypto_cert.not_valid_after_utc:%Y-%m-%d}, not now")
        signer = signers.SimpleSigner(signing_cert=leaf, signing_key=key, cert_registry=SimpleCertificateStore.from_certs(certs))
        return cls(signer, crypto_cert.subject.rfc4514_string(), tsa_url)

    @classmethod
    def from_dir(cls, directory: Path, tsa_url: str | None = None, now: dt.datetime | None = None) -> SigningKey | None:
        """A `kubernetes.io/tls` Secret mounted as a folder (tls.key, tls.crt): None when it holds none."""
        key, cert = directory / "tls.key", directory / "tls.crt"
        if not key.exists() and not cert.exists():
            return None
        return cls.load(key, cert, None, tsa_url, now)

    def _timestamper(self) -> Any:
        return timestamps.HTTPTimeStamper(self.tsa_url) if self.tsa_url else None

    def sign_pdf(self, pdf: bytes) -> bytes:
        """The PDF with a PAdES signature over the whole document (an incremental update)."""
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

        meta = signers.PdfSignatureMetadata(field_name=FIELD, subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256",
                                            reason="netpol-audit report", use_pades_lta=False)
        out = io.BytesIO()
        try:
            signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=self.signer, timestamper=self._timestamper(),
                             output=out)
        except Exception as exc:
            raise InputError(f"signing the PDF failed: {_first_line(exc)}") from None
        return out.getvalue()

    def sign_detached(self, data: bytes) -> bytes:
        """A detached CMS signature (DER) of ``data``, as `openssl cms -verify -binary` checks it."""
        try:
            signed = asyncio.run(self.signer.async_sign_general_data(data, "sha256", detached=True, timestamper=self._timestamper()))
        except Exception as exc:
            raise InputError(f"signing failed: {_first_line(exc)}") from None
        return bytes(signed.dump())


def _read(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot read: {exc.strerror}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# -- verification -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str


def _usage() -> Any:
    """A signing certificate asserts digital signature or non-repudiation (either will do)."""
    from pyhanko.sign.validation.settings import KeyUsageConstraints

    return KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False)


def _quiet() -> Any:
    """pyHanko logs each failed check with a traceback: the verdict says it in one line instead."""
    import contextlib
    import logging

    @contextlib.contextmanager
    def quiet() -> Any:
        logger = logging.getLogger("pyhanko")
        level = logger.level
        logger.setLevel(logging.CRITICAL + 1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            logger.setLevel(level)

    return quiet()


def _context(ca_file: Path | None) -> ValidationContext | None:
    if ca_file is None:
        return None
    try:
        roots = list(load_certs_from_pemder_data(ca_file.read_bytes()))
    except OSError as exc:
        raise InputError(f"--cert {ca_file}: cannot read: {exc.strerror}") from None
    except Exception as exc:
        raise InputError(f"--cert {ca_file}: not a PEM or DER certificate ({_first_line(exc)})") from None
    return ValidationContext(trust_roots=roots, allow_fetching=False)


def _who(cert: asn1_x509.Certificate | None) -> str:
    return cert.subject.human_friendly if cert is not None else "an unknown signer"


def verify_pdf(path: Path, ca_file: Path | None = None) -> Verdict:
    """Whether the PDF's signature is intact, covers the whole file and (with ``ca_file``) chains to
    it, and whether the attached JSON result has the digest the report prints."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    context = _context(ca_file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        sigs = reader.embedded_signatures
    except Exception as exc:
        return Verdict(False, f"{path}: not a readable PDF ({_first_line(exc)})")
    if not sigs:
        return Verdict(False, f"{path}: the PDF carries no signature")
    try:
        with _quiet():
            status = validate_pdf_signature(sigs[-1], context, key_usage_settings=_usage())
    except Exception as exc:
        return Verdict(False, f"{path}: the signature cannot be validated ({_first_line(exc)})")
    who = _who(status.signing_cert)
    if not status.intact or not status.valid:
        return Verdict(False, f"{path}: the signature by {who} does not match the document: it was changed after signing")
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        return Verdict(False, f"{path}: the signature by {who} does not cover the whole file (bytes were added after it)")
    if context is not None and not status.trusted:
        return Verdict(False, f"{path}: signed by {who}, whose certificate does not chain to {ca_file}")
    attached = _attachment(reader)
    if attached is None:
        return Verdict(False, f"{path}: signed by {who}, but the JSON result is not attached")
    result, description = attached
    digest = hashlib.sha256(result).hexdigest()
    if digest not in description:
        return Verdict(False, f"{path}: signed by {who}, but the attached JSON's SHA-256 {digest} is not the one the report states")
    try:
        version = json.loads(result).get("tool", {}).get("version", "?")
    except ValueError:
        version = "?"
    trust = f", chaining to {ca_file}" if context is not None else " (the chain not checked: give --cert CA.pem)"
    when = f", timestamped {status.timestamp_validity.timestamp:%Y-%m-%dT%H:%M:%SZ}" if status.timestamp_validity else ""
    return Verdict(True, f"{path}: valid: signed by {who}{trust}{when}; netpol-audit {version}; attached JSON SHA-256 {digest}")


def _attachment(reader: Any) -> tuple[bytes, str] | None:
    """The attached JSON result and its description (which states its digest)."""
    try:
        names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
    except (KeyError, TypeError):
        return None
    for i in range(0, len(names) - 1, 2):
        if str(names[i]) == ATTACHMENT:
            spec = names[i + 1].get_object()
            stream = spec["/EF"]["/F"].get_object()
            return stream.data, str(spec.get("/Desc", ""))
    return None


def verify_detached(path: Path, signature: Path, ca_file: Path | None = None) -> Verdict:
    """Whether ``signature`` (detached CMS) signs ``path``'s exact bytes, by a certificate that
    (with ``ca_file``) chains to it."""
    from pyhanko.sign.validation import async_validate_detached_cms

    context = _context(ca_file)
    try:
        data, raw = path.read_bytes(), signature.read_bytes()
    except OSError as exc:
        raise InputError(f"{exc.filename}: cannot read: {exc.strerror}") from None
    try:
        info = cms.ContentInfo.load(raw)
        signed_data = info["content"]
        with _quiet():
            status = asyncio.run(async_validate_detached_cms(data, signed_data, context, key_usage_settings=_usage()))
    except Exception as exc:
        return Verdict(False, f"{signature}: not a detached CMS signature ({_first_line(exc)})")
    who = _who(status.signing_cert)
    if not status.intact or not status.valid:
        return Verdict(False, f"{path}: does not match the signature by {who} in {signature}: it was changed after signing")
    if context is not None and not status.trusted:
        return Verdict(False, f"{path}: signed by {who}, whose certificate does not chain to {ca_file}")
    trust = f", chaining to {ca_file}" if context is not None else " (the chain not checked: give --cert CA.pem)"
    return Verdict(True, f"{path}: valid: signed by {who}{trust}; SHA-256 {hashlib.sha256(data).hexdigest()}")
