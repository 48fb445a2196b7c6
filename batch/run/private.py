"""Files and folders only their owner may touch: run folders, the files of a run (they hold
customer data, passwords.csv holds secrets) and export files.

The threat is another local user who can write where the files go: a symbolic link or a file
of theirs planted under a name we are about to write would receive what we write, and a
folder they can write lets them swap a file under us at any moment. So:

- a folder we write into is ours, writable by nobody else, and made 0700 (`private_dir`);
- a new file is created with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600 (`create_private`), a
  temporary under a fresh name (`write_replacing`), then renamed into place (a rename
  replaces a link at the destination; it never writes through it);
- a file that must already be there is opened with O_NOFOLLOW and checked on the open
  descriptor (`open_existing`: regular, ours, no group/other bits), never by path first.

Every mode is set with fchmod on the descriptor, so the umask (even 000) changes nothing.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from batch.errors import ConfigError, RunFolderUnsafe

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = os.O_NOFOLLOW


def _me() -> int:
    return os.geteuid()


def private_dir(path: Path, *, what: str = "the run folder") -> Path:
    """Make `path` (and any missing parent) a folder that only we can use, or refuse it.

    A folder that exists must be ours and writable by no one else (a file planted in it could
    catch what we write); one that others can only read is tightened to 0700. A missing one is
    made 0700, and so are the parents made for it. An ancestor that anyone may write (without
    the sticky bit, as /tmp has) is refused too: whoever can write it can swap the folder."""
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    if not missing:
        check_dir(path, what=what, tighten=True)
        _check_ancestors(path.resolve().parents, what=what)
        return path
    _check_ancestors((probe.resolve(), *probe.resolve().parents), what=what)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_DIR)
        except FileExistsError:
            pass  # made meanwhile (a concurrent run): checked below like any folder
        check_dir(folder, what=what, tighten=True)
    return path


def check_dir(path: Path, *, what: str = "the run folder", tighten: bool = True) -> None:
    """`path` is a folder of ours that nobody else can write; others' read bits are taken off
    (`tighten`). Checked on the open folder, so a swap between check and chmod changes nothing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    except NotADirectoryError:
        raise RunFolderUnsafe(f"{path} is not a folder; choose a folder for {what}") from None
    try:
        info = os.fstat(fd)
        if info.st_uid != _me():
            raise RunFolderUnsafe(f"{path} belongs to another user (uid {info.st_uid}), who could read or replace "
                                  f"what entra-batch writes there; choose a folder of your own for {what}")
        if info.st_mode & 0o022:
            raise RunFolderUnsafe(f"{path} can be written by other users (mode {_mode(info.st_mode)}), who could plant "
                                  f"files there to catch customer data and passwords; choose a folder only you can "
                                  f"write for {what} (or check what is in it and `chmod 700 {path}`)")
        if tighten and stat.S_IMODE(info.st_mode) != PRIVATE_DIR:
            os.fchmod(fd, PRIVATE_DIR)
    finally:
        os.close(fd)


def _check_ancestors(folders: Iterable[Path], *, what: str) -> None:
    for folder in folders:
        mode = folder.stat().st_mode
        if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
            raise RunFolderUnsafe(f"{folder} can be written by every user and has no sticky bit, so anyone could "
                                  f"replace {what} inside it; choose a place under a folder that only you can write")


def create_private(path: Path, flags: int = os.O_WRONLY) -> int:
    """A new file, 0600 whatever the umask; FileExistsError when anything (a link too) is there."""
    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_existing(path: Path, flags: int, *, tighten: bool, advice: str) -> int:
    """An existing file of the run, opened without following a link and checked on its
    descriptor: a regular file of ours. Group/other permission bits are taken off when
    `tighten`, else refused (for passwords.csv). FileNotFoundError when it is not there;
    RunFolderUnsafe, ending with `advice`, when it is not what we wrote."""
    try:
        # O_NONBLOCK: a planted FIFO fails here instead of blocking until someone opens it.
        fd = os.open(path, flags | _NOFOLLOW | os.O_NONBLOCK | _CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise RunFolderUnsafe(f"{path} is a symbolic link, not the file entra-batch wrote; {advice}") from None
        if exc.errno in (errno.ENXIO, errno.EISDIR, errno.ENODEV, errno.EOPNOTSUPP):
            raise RunFolderUnsafe(f"{path} is not a regular file; {advice}") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RunFolderUnsafe(f"{path} is not a regular file; {advice}")
        if info.st_uid != _me():
            raise RunFolderUnsafe(f"{path} belongs to another user (uid {info.st_uid}); {advice}")
        if info.st_mode & 0o077:
            if not tighten:
                raise RunFolderUnsafe(f"{path} can be read by other users (mode {_mode(info.st_mode)}); {advice}")
            os.fchmod(fd, PRIVATE_FILE)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_or_create(path: Path, flags: int, *, advice: str) -> tuple[int, bool]:
    """A file of the run that is new, or was made by an earlier part of the same run (the lock,
    the journal, plan.csv): (descriptor, whether it was created now)."""
    try:
        return create_private(path, flags), True
    except FileExistsError:
        return open_existing(path, flags, tighten=True, advice=advice), False


def write_replacing(path: Path, fill: Callable[[BinaryIO], None]) -> Path:
    """Write `path` whole: `fill` writes a fresh temporary beside it (0600, O_EXCL under a new
    name, so nothing planted is followed or reused), which is fsynced and renamed over `path`."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE_FILE)
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(name, path)
    except BaseException:
        try:
            os.unlink(name)
        except OSError:
            pass
        raise
    return path


def writing(data: bytes) -> Callable[[BinaryIO], None]:
    """A `write_replacing` fill that writes `data`."""
    def fill(handle: BinaryIO) -> None:
        handle.write(data)
    return fill


def check_replaceable(path: Path, *, force: bool, option: str = "--out") -> None:
    """What is at `path` (`export --out` and `--report`, `template --out`) may be replaced by a
    new file: nothing, or a regular file of ours; a symbolic link (the link itself) or another
    user's file only with `force`; a folder or a special file (a device, a FIFO) never.
    ConfigError otherwise, naming the `option` that gave the path."""
    try:
        found = os.lstat(path)
    except OSError:
        return  # nothing there, or no way there: writing the file reports that
    if stat.S_ISDIR(found.st_mode):
        raise ConfigError(f"{option} {path} is a folder; give a file name")
    if stat.S_ISLNK(found.st_mode):
        if not force:
            raise ConfigError(f"{option} {path} is a symbolic link; entra-batch does not write through links. "
                              "Give the file's real path, or --force to replace the link itself with the file")
        return
    if not stat.S_ISREG(found.st_mode):
        raise ConfigError(f"{option} {path} is not a regular file (a device, a FIFO or a socket) and is never "
                          f"replaced; give a file name{' (or - for standard output)' if option == '--out' else ''}")
    if found.st_uid != os.geteuid() and not force:
        raise ConfigError(f"{option} {path} belongs to another user (uid {found.st_uid}); choose another {option}, or "
                          "--force to replace it")


def _mode(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o}"


__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "check_dir", "check_replaceable", "create_private", "open_existing", "open_or_create",
           "private_dir", "write_replacing"]
