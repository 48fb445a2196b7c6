"""A local certificate authority and a loopback server certificate for `emulator --tls`.

msal accepts only https authorities (GRAPH.md §14), so the emulator can serve TLS with a CA
made on first start. Clients trust it through `SSL_CERT_FILE` / `REQUESTS_CA_BUNDLE` or a
`verify=` argument; nothing is installed system-wide.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def ensure_tls_files(folder: Path) -> TlsFiles:
    """Reuse the CA and certificate in `folder` while they are valid; make them otherwise."""
    _private_folder(folder)
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    if all(p.exists() for p in (files.ca_cert, files.server_cert, files.server_key)) and _ours(files):
        cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
        if cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=7):
            if files.server_key.stat().st_mode & 0o077:
                files.server_key.chmod(0o600)
            return files
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-batch emulator local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=397))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _replace_file(files.server_key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()), 0o600)
    _replace_file(files.server_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _replace_file(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    # The CA key is not kept: nothing else is ever signed with it.
    return files


def _ours(files: TlsFiles) -> bool:
    """Whether the files are regular files of ours (not links planted by someone else)."""
    for path in (files.ca_cert, files.server_cert, files.server_key):
        info = path.lstat()
        if path.is_symlink() or not path.is_file() or info.st_uid != os.getuid():
            return False
    return True


def _private_folder(folder: Path) -> None:
    """The folder, made 0700 if new; an existing one of ours loses group and other write
    (clients trust whatever ca.pem it holds)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.lstat()
    if folder.is_symlink() or not folder.is_dir():
        raise OSError(f"{folder} is not a folder")
    if info.st_uid == os.getuid() and info.st_mode & 0o022:
        folder.chmod(info.st_mode & 0o755)


def _replace_file(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to a new file beside `path` (O_EXCL|O_NOFOLLOW, created with `mode`, so the
    key is never readable by others, whatever the umask), then rename it over `path`: a link or
    a file planted at `path` is replaced, never written through."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode & 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
