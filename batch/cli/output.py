"""The one way the CLI talks to the administrator on stderr, and where a defect's traceback
goes instead of the terminal (`write_traceback`)."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from batch.errors import RunError
from batch.run.private import private_dir
from batch.version import __version__


def say(message: str, stream: TextIO | None = None) -> None:
    print(f"entra-batch: {message}", file=stream or sys.stderr)


def write_traceback(exc: BaseException, command: str, places: Iterable[Path], *,
                    hide: Iterable[str | None] = ()) -> tuple[Path | None, str]:
    """Append `exc`'s traceback to the first place that takes it: a file `error.log` of a
    folder, or a new file `<UTC time>-<pid>.log` in a folder named `errors`, else a new file in
    the temporary directory. Each file is private (0600) and opened without following a
    link, never a FIFO or device. Values of `hide` (the client secret) are blanked. Returns the
    file written, or None and why not."""
    text = _report(exc, command, hide)
    reasons = []
    for place in places:
        try:
            path = place / "error.log" if place.name != "errors" else _fresh_name(place)
            if place.name == "errors":
                # Made 0700 with its missing parents (the home itself, when the first command
                # fails), and refused when another user could write it: not mkdir's umask mode.
                private_dir(place, what="the folder of error logs")
            _append_private(path, text)
            return path, ""
        except OSError as failed:
            reasons.append(f"{place}: {failed.strerror or failed}")
        except RunError as unsafe:
            reasons.append(f"{place}: {unsafe}")
    try:
        fd, name = tempfile.mkstemp(prefix="entra-batch-error-", suffix=".log")  # O_EXCL, 0600
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return Path(name), ""
    except OSError as failed:
        reasons.append(f"{tempfile.gettempdir()}: {failed.strerror or failed}")
    return None, "; ".join(reasons)


def _report(exc: BaseException, command: str, hide: Iterable[str | None]) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = (f"--- entra-batch {__version__}, command {command}, {stamp}, Python {sys.version.split()[0]} on "
            f"{sys.platform}\n" + "".join(traceback.format_exception(exc)))
    for secret in hide:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def _fresh_name(folder: Path) -> Path:
    return folder / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}.log"


def _append_private(path: Path, text: str) -> None:
    """Append to `path` (made 0600 if new) without following a link or blocking on a FIFO;
    refuse anything but a regular file of ours, checked on the open descriptor."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            raise OSError(f"{path.name} is not a regular file of this user's")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(fd, 0o600)
        data = text.encode("utf-8", "backslashreplace")
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)
