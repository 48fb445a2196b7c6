"""An app's certificate credential: a PEM file holding the private key and the certificate, or
a PFX/PKCS#12 file (with its password), read into the credential msal signs its client
assertion with; with `send_x5c` off (the default, as azure-identity's), an assertion signer
that leaves the chain out.

The file is read once, and only if it is a regular file of at most `CERTIFICATE_MAX_BYTES`:
a path to a device (`/dev/zero` once grew the process to 23.9 GB), a FIFO (which would block
forever) or a huge file is refused at once with a one-line `ConfigError`."""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

from batch.config import CERTIFICATE_MAX_BYTES, ENVIRONMENT, Sources
from batch.errors import AuthError, ConfigError

EXPIRY_WARNING_DAYS = 30
"""A certificate that expires within this many days is a warning in `entra-batch doctor`."""

_HINT = "AZURE_CLIENT_CERTIFICATE_PATH (or a profile's certificate_path) must name a PEM file with the private key " \
        "and the certificate, or a PFX/PKCS#12 file."


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
    """A PEM file (private key and certificate) or a PFX/PKCS#12 file (with `password` when it
    has one) → msal's credential: the private key as unencrypted PEM (in memory only) and the
    certificate chain as PEM (`public_certificate`: msal then signs with PS256, sends
    `x5t#S256` and the chain as `x5c`, GRAPH.md §14; `client_assertion_signer` signs without
    the chain). A wrong password, or a file that is neither, is a one-line `ConfigError`."""
    data = read_certificate_file(path)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:  # binary: a PFX/PKCS#12 file is DER
        return _pkcs12(path, data, password)
    key = re.search(r"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----.*?-----END (?:RSA |EC |ENCRYPTED )?"
                    r"PRIVATE KEY-----", text, re.DOTALL)
    certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.DOTALL)
    if key is None or not certs:
        missing = "private key" if key is None else "certificate"
        raise ConfigError(f"The certificate file {path} holds no {missing}. It must be a PEM file with both the "
                          "private key and the certificate (e.g. cat key.pem cert.pem > app.pem), or a PFX/PKCS#12 "
                          "file.")
    private_key = key.group(0) + "\n"
    if password or "ENCRYPTED" in key.group(0) or "Proc-Type: 4,ENCRYPTED" in private_key:
        private_key = _decrypted(path, private_key.encode("ascii"), password)
    return {"private_key": private_key, "public_certificate": "\n".join(certs) + "\n"}


_PASSWORD_HINT = "Set AZURE_CLIENT_CERTIFICATE_PASSWORD (or a profile's certificate_password_env) to its password."


def _decrypted(path: str | Path, pem: bytes, password: str | None) -> str:
    """An encrypted PEM key opened with `password`, as unencrypted PKCS#8 PEM (in memory)."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(pem, password.encode("utf-8") if password else None)
    except TypeError:
        # cryptography says TypeError both for a password missing and for one given to a key that has none.
        if password:
            raise ConfigError(f"The private key in {path} is not encrypted, but a password was given: unset "
                              "AZURE_CLIENT_CERTIFICATE_PASSWORD (or the profile's certificate_password_env), or give "
                              "the encrypted key.") from None
        raise ConfigError(f"The private key in {path} is encrypted and no password was given. "
                          f"{_PASSWORD_HINT}") from None
    except ValueError:
        raise ConfigError(f"The private key in {path} cannot be opened: the password is wrong, or the key is "
                          f"damaged. {_PASSWORD_HINT}") from None
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def _pkcs12(path: str | Path, data: bytes, password: str | None) -> dict[str, str]:
    """A PFX/PKCS#12 file's key and certificates, as PEM (in memory)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode("utf-8") if password else None)
    except ValueError:
        what = "the password is wrong" if password else "it needs a password"
        raise ConfigError(f"The certificate file {path} is not a PEM text file (nor a PFX/PKCS#12 file that opens: "
                          f"{what}, or it is neither). {_PASSWORD_HINT} A PEM file works too: "
                          "openssl pkcs12 -in app.pfx -out app.pem -nodes") from None
    if key is None or cert is None:
        missing = "private key" if key is None else "certificate"
        raise ConfigError(f"The PFX/PKCS#12 file {path} holds no {missing}: export it with both the private key "
                          "and the certificate.")
    chain = [cert, *extra]
    return {
        "private_key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode("ascii"),
        "public_certificate": "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in chain),
    }


def client_assertion_signer(credential: dict[str, str], client_id: str,
                            token_endpoint: Callable[[], str]) -> Callable[[], str]:
    """A client assertion without the certificate chain (`send_x5c` off, azure-identity's
    default): signed by msal's own `JwtAssertionCreator` with PS256 and `x5t#S256` (what msal
    signs with when it knows the certificate), a new one (new jti, 10 minutes) for each token
    request ("Microsoft identity platform application authentication certificate
    credentials": x5t#S256 header, aud = the token endpoint, iss = sub = the client id)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from msal.oauth2cli.assertion import JwtAssertionCreator

    leaf = x509.load_pem_x509_certificate(credential["public_certificate"].encode("ascii"))
    creator = JwtAssertionCreator(credential["private_key"], algorithm="PS256",
                                  sha256_thumbprint=leaf.fingerprint(hashes.SHA256()).hex())

    def sign() -> str:
        assertion = creator.create_normal_assertion(audience=token_endpoint(), issuer=client_id)
        return assertion.decode("ascii") if isinstance(assertion, bytes) else str(assertion)

    return sign


def not_after(credential: dict[str, str]) -> dt.datetime:
    """When the credential's certificate (the first of its chain, the one the assertion names)
    stops being valid (its notAfter, UTC)."""
    from cryptography import x509

    leaf = x509.load_pem_x509_certificate(credential["public_certificate"].encode("ascii"))
    return leaf.not_valid_after_utc


def refuse_expired(path: str | Path, credential: dict[str, str], sources: Sources = ENVIRONMENT,
                   now: dt.datetime | None = None) -> dt.datetime:
    """The certificate's notAfter, or `AuthError` (exit 3, as the token endpoint's refusal
    would be) when it has passed: Entra refuses a client assertion signed with an expired
    certificate (AADSTS700027, "Client assertion contains an invalid signature ... the key
    used is expired"), so the run stops here, before anything is sent, saying which file and when."""
    ends = not_after(credential)
    if ends <= (now or dt.datetime.now(dt.UTC)):
        raise AuthError(f"The certificate in {path} ({sources.certificate_path}) expired on "
                        f"{ends:%Y-%m-%d %H:%M} UTC, and the identity platform refuses an expired certificate "
                        "(AADSTS700027). Create a new certificate, upload its public part to the app registration's "
                        f"Certificates & secrets, and point {sources.certificate_path} at it (with its private key).",
                        code="700027", error="certificate_expired")
    return ends


__all__ = ["CERTIFICATE_MAX_BYTES", "EXPIRY_WARNING_DAYS", "client_assertion_signer", "load_certificate", "not_after",
           "read_certificate_file", "refuse_expired"]
