"""An app's certificate credential: a PEM file holding the private key and the certificate,
read into the credential msal signs its client assertion with.

The file is read once, and only if it is a regular file of at most `CERTIFICATE_MAX_BYTES`:
a path to a device (`/dev/zero` once grew the process to 23.9 GB), a FIFO (which would block
forever) or a huge file is refused at once with a one-line `ConfigError`."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from batch.config import CERTIFICATE_MAX_BYTES
from batch.errors import ConfigError

_HINT = "AZURE_CLIENT_CERTIFICATE_PATH (or a profile's certificate_path) must name a PEM file with the private key " \
        "and the certificate."


def read_certificate_file(path: str | Path) -> bytes:
    """The bytes of a certificate file: a regular file, at most `CERTIFICATE_MAX_BYTES`, read once."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat below refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigError(f"Cannot read the certificate file {path}: {exc.strerror or exc.__class__.__name__}. "
                          f"{_HINT}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, a FIFO or a socket)"
            raise ConfigError(f"The certificate file {path} is {kind}. {_HINT}")
        if info.st_size > CERTIFICATE_MAX_BYTES:
            raise ConfigError(f"The certificate file {path} is {info.st_size:,} bytes, more than a certificate "
                              f"file can be ({CERTIFICATE_MAX_BYTES >> 20} MiB). {_HINT}")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(CERTIFICATE_MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"Cannot read the certificate file {path}: {exc.strerror or exc.__class__.__name__}. "
                          f"{_HINT}") from None
    finally:
        os.close(fd)
    if len(data) > CERTIFICATE_MAX_BYTES:  # it grew while we read it
        raise ConfigError(f"The certificate file {path} is larger than {CERTIFICATE_MAX_BYTES >> 20} MiB. "
                          f"{_HINT}")
    return data


def load_certificate(path: str | Path, password: str | None = None) -> dict[str, str]:
    """A PEM file holding the private key and the certificate → msal's credential
    (`public_certificate` makes msal sign with PS256 and send `x5c`, GRAPH.md §14)."""
    data = read_certificate_file(path)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"The certificate file {path} is not a PEM text file (a PFX/PKCS#12 file? convert it: "
                          f"openssl pkcs12 -in app.pfx -out app.pem -nodes). {_HINT}") from None
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


__all__ = ["CERTIFICATE_MAX_BYTES", "load_certificate", "read_certificate_file"]
