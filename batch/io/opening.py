"""Opening an input file: regular files only, and never a wait.

An input file is read several times (its head, a scan for the hash and record count, the
rows), so whatever is at the path must give the same bytes each time and an end: a FIFO
would block the first open until a writer comes (and give its data once), `/dev/zero` or
`/dev/urandom` never end, a directory has no bytes. So the path is opened with
`O_NONBLOCK` (which lets a FIFO's open return at once and changes nothing for a regular
file) and the open descriptor, not the path, is checked: a file swapped for a FIFO between
a check and the open cannot slip through.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from batch.errors import InputFileError

_NOT_REGULAR = (
    (stat.S_ISDIR, "is a directory, not a CSV file"),
    (stat.S_ISFIFO, "is a named pipe (FIFO)"),
    (stat.S_ISSOCK, "is a socket"),
    (stat.S_ISCHR, "is a device"),
    (stat.S_ISBLK, "is a device"),
)


def open_input(path: Path) -> BinaryIO:
    """`path` opened for binary reading; `InputFileError` unless it is a regular file (a
    symbolic link to one is fine) that this user may read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except IsADirectoryError:
        raise InputFileError(path, "is a directory, not a CSV file") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        mode = os.fstat(fd).st_mode
        for test, what in _NOT_REGULAR:
            if test(mode):
                if test is stat.S_ISDIR:
                    raise InputFileError(path, what)
                raise InputFileError(path, f"{what}, not a regular file: entra-batch reads its input from a "
                                           "regular file only (it reads it more than once); save the data to a "
                                           "file and give that file")
        if not stat.S_ISREG(mode):
            raise InputFileError(path, "is not a regular file; save the data to a file and give that file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return _reader(fd)
    except BaseException:
        os.close(fd)
        raise


def _reader(fd: int) -> BinaryIO:
    """The buffered reader over an open descriptor (a seam for tests that count reads)."""
    return os.fdopen(fd, "rb")


__all__ = ["open_input"]
