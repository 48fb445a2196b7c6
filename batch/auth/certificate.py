"""An app's certificate credential: a PEM file holding the private key and the certificate,
read into the credential msal signs its client assertion with."""

from __future__ import annotations

import re
from pathlib import Path

from batch.errors import ConfigError


def load_certificate(path: str | Path, password: str | None = None) -> dict[str, str]:
    """A PEM file holding the private key and the certificate → msal's credential
    (`public_certificate` makes msal sign with PS256 and send `x5c`, GRAPH.md §14)."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the certificate file {path}: {exc.__class__.__name__}. "
                          "AZURE_CLIENT_CERTIFICATE_PATH must name a PEM file with the private key and "
                          "the certificate.") from None
    key = re.search(r"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----.*?-----END (?:RSA |EC |ENCRYPTED )?"
                    r"PRIVATE KEY-----", text, re.DOTALL)
    certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.DOTALL)
    if key is None or not certs:
        missing = "private key" if key is None else "certificate"
        raise ConfigError(f"The certificate file {path} holds no {missing}. It must be a PEM file with both the "
                          "private key and the certificate (e.g. cat key.pem cert.pem > app.pem).")
    credential = {"private_key": key.group(0) + "\n", "public_certificate": "\n".join(certs) + "\n"}
    if password:
        credential["passphrase"] = password
    return credential


__all__ = ["load_certificate"]
