"""The public certificate an app registration holds, read from a file the way the Entra admin
center's "Certificates & secrets > Upload certificate" takes it: the certificate only (a `.cer`,
`.pem` or `.crt`, PEM or DER), never a private key. A PEM file that also holds the key (what
`openssl pkcs12 -nodes` writes, and what a client signs with) is accepted for convenience: its
first certificate is taken and the key is neither kept nor returned.

An app's key credential is valid from the certificate's notBefore to its notAfter (Graph's
keyCredential `startDateTime`/`endDateTime`, keycredential.md): outside them the identity
platform refuses a client assertion signed with it (assertions.py).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\s+.+?-----END CERTIFICATE-----", re.S)


@dataclass(frozen=True)
class RegisteredCertificate:
    pem: str  # the certificate alone, PEM
    thumbprint: str  # SHA-1 of the DER, upper-case hex, as the admin center shows it
    subject: str
    not_before: datetime
    not_after: datetime
    had_private_key: bool


def read_certificate(data: bytes) -> RegisteredCertificate:
    """The first certificate of a PEM or DER file, or ValueError saying what the file is not."""
    found = _PEM_CERTIFICATE.search(data)
    try:
        certificate = (x509.load_pem_x509_certificate(found.group(0)) if found
                       else x509.load_der_x509_certificate(data))
    except ValueError:
        raise ValueError("holds no certificate (give the public certificate as PEM or DER: a .pem, .cer "
                         "or .crt file; from a PFX: openssl pkcs12 -in app.pfx -nokeys -out app.cer)") from None
    der = certificate.public_bytes(serialization.Encoding.DER)
    return RegisteredCertificate(
        pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        thumbprint=hashlib.sha1(der).hexdigest().upper(),
        subject=certificate.subject.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        had_private_key=b"PRIVATE KEY-----" in data,
    )
