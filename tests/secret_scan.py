"""Secret scanning of a run's outputs, the security review's method (issue 15): every password
of the run, the client secret and the access tokens searched in every file of the run folder
(SQLite files dumped with `iterdump`, and their raw bytes, WAL included) and in what the
process printed. Used by the e2e tests and the soak harness; nothing here is specific to
pytest. Findings are returned as strings, never raised, so that a soak can count them.

`passwords.csv` is where passwords belong: it is not searched for them (it is searched for
the client secret and tokens). Secrets shorter than 6 characters are not searched for: they
would be found in ordinary text by chance.
"""

from __future__ import annotations

import csv
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"
# Any JWT (an access token of any issuer): two base64url JSON parts starting `{"`.
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
MIN_SECRET = 6


def run_passwords(run_dir: Path) -> list[str]:
    """Every password of the run's passwords.csv."""
    path = run_dir / "passwords.csv"
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return [line["password"] for line in csv.DictReader(handle) if line.get("password")]


def input_passwords(source: Path) -> list[str]:
    """The passwords an input file brings itself (its `password` column)."""
    with source.open(newline="", encoding="utf-8-sig") as handle:
        return [line["password"] for line in csv.DictReader(handle) if line.get("password")]


def sqlite_dump(path: Path) -> str:
    """The SQL text of a SQLite file and its WAL, read from a copy (the run's own files are
    left untouched; a read-only open of a WAL database may still write its -shm)."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / path.name
        for suffix in ("", "-wal", "-shm"):
            source = path.with_name(path.name + suffix)
            if source.exists():
                shutil.copyfile(source, copy.with_name(copy.name + suffix))
        db = sqlite3.connect(copy)
        try:
            return "\n".join(db.iterdump())
        finally:
            db.close()


def scan_for_secrets(run_dir: Path, *, passwords: Iterable[str] = (), client_secrets: Iterable[str | None] = (),
                     tokens: Iterable[str] = (), texts: Mapping[str, str] | None = None,
                     brought: Iterable[str] = ()) -> list[str]:
    """Where any secret shows: one line per (place, kind of secret), never the secret itself.

    `passwords` come on top of those of `run_dir/passwords.csv`; `texts` are named outputs
    (stdout, stderr) searched too. Any JWT found anywhere counts as a leaked token.
    `brought`: passwords the input file itself holds, which retry.csv copies with the rows it
    holds back (README: retry.csv copies the input's cells, password included, and is as
    private as the input); anywhere else they count as leaked, and every other password counts
    in retry.csv too."""
    password_set = {p for p in [*run_passwords(run_dir), *passwords] if len(p) >= MIN_SECRET}
    verbatim = set(brought)
    others = {"client secret": {s for s in client_secrets if s and len(s) >= MIN_SECRET},
              "access token": {t for t in tokens if len(t) >= MIN_SECRET}}
    places: list[tuple[str, bytes, bool]] = []  # (name, content, may hold passwords)
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        name = str(path.relative_to(run_dir))
        places.append((name, data, path.name == "passwords.csv"))
        if data.startswith(SQLITE_MAGIC):
            places.append((f"{name} (dumped)", sqlite_dump(path).encode("utf-8"), False))
    for name, text in (texts or {}).items():
        places.append((name, text.encode("utf-8", "surrogateescape"), False))
    found: list[str] = []
    for name, data, holds_passwords in places:
        kinds = dict(others)
        if not holds_passwords:
            kinds["password"] = password_set - verbatim if name == "retry.csv" else password_set
        for kind, values in kinds.items():
            hits = sum(1 for value in values if value.encode("utf-8") in data)
            if hits:
                found.append(f"{name}: {hits} {kind}(s)")
        if JWT.search(data):
            found.append(f"{name}: a JWT (an access token)")
    return found


__all__ = ["input_passwords", "run_passwords", "scan_for_secrets", "sqlite_dump"]
