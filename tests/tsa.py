"""A throwaway PKI and a local RFC 3161 Time Stamping Authority for the signing tests.

The CA, the signer's certificate and the TSA's certificate (extended key usage timeStamping, as
RFC 3161 requires) are made with `cryptography`; the TSA answers HTTP POSTs of a TimeStampReq
(application/timestamp-query) with pyHanko's test time stamper.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import warnings
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "netpol-audit tests")])


def _cert(subject: str, key: Any, issuer: x509.Certificate | None, issuer_key: Any, *, ca: bool = False, eku: Any = None,
          not_before: dt.datetime | None = None, not_after: dt.datetime | None = None) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer.subject if issuer else _name(subject))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before or NOW - dt.timedelta(days=1)).not_valid_after(not_after or NOW + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=not ca, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                                            encipher_only=False, decipher_only=False), critical=True))
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=True)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: Any, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@dataclass
class Pki:
    """Files in ``folder``: ca.pem, signer.key/signer.crt (chain in the cert file), other.key (not
    the signer's), expired.key/expired.crt, tsa.key/tsa.crt, encrypted.key (passphrase ``secret``)."""

    folder: Path

    @classmethod
    def make(cls, folder: Path) -> Pki:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert("netpol-audit test CA", ca_key, None, None, ca=True)
        signer_key = ec.generate_private_key(ec.SECP256R1())
        signer = _cert("netpol-audit scanner", signer_key, ca, ca_key)
        expired_key = ec.generate_private_key(ec.SECP256R1())
        expired = _cert("expired scanner", expired_key, ca, ca_key, not_before=NOW - dt.timedelta(days=60),
                        not_after=NOW - dt.timedelta(days=30))
        tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # pyHanko's test stamper signs with RSA only
        tsa = _cert("netpol-audit test TSA", tsa_key, ca, ca_key, eku=ExtendedKeyUsageOID.TIME_STAMPING)
        other = ec.generate_private_key(ec.SECP256R1())
        files = {
            "ca.pem": _pem(ca), "signer.key": _key_pem(signer_key), "signer.crt": _pem(signer) + _pem(ca),
            "expired.key": _key_pem(expired_key), "expired.crt": _pem(expired), "tsa.key": _key_pem(tsa_key), "tsa.crt": _pem(tsa),
            "other.key": _key_pem(other), "encrypted.key": _key_pem(signer_key, b"secret"),
        }
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        return cls(folder)

    def __truediv__(self, name: str) -> Path:
        return self.folder / name


class LocalTsa:
    """An RFC 3161 TSA over HTTP on localhost (a context manager); ``url`` to give --tsa-url."""

    def __init__(self, pki: Pki):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pyhanko.keys import load_cert_from_pemder, load_private_key_from_pemder
            from pyhanko.sign.timestamps import DummyTimeStamper
            from pyhanko_certvalidator.registry import SimpleCertificateStore

        cert = load_cert_from_pemder(str(pki / "tsa.crt"))
        stamper = DummyTimeStamper(cert, load_private_key_from_pemder(str(pki / "tsa.key"), passphrase=None),
                                   SimpleCertificateStore.from_certs([cert, load_cert_from_pemder(str(pki / "ca.pem"))]))
        self.requests = 0
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                from asn1crypto import tsp

                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                tsa.requests += 1
                response = asyncio.run(stamper.async_request_tsa_response(tsp.TimeStampReq.load(body)))
                data = response.dump()
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/tsa"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LocalTsa:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
