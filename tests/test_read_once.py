"""The input file is read whole twice per run, no more: once before anything is sent (hash,
record count and structure, in one pass) and once as the rows stream to Graph. The header
is read from the first MiB, which is opened once. A third pass only when rows failed, to
copy them into retry.csv."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from batch.cli import main
from batch.io import csvio, opening

ROOT = Path(__file__).resolve().parent.parent


class Reads:
    """Every binary open of one file: how far each read got before it was closed."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self.size = path.stat().st_size
        self.ends: list[int] = []

    @property
    def opens(self) -> int:
        return len(self.ends)

    @property
    def full_passes(self) -> int:
        return sum(1 for end in self.ends if end >= self.size)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Reads:
    source = tmp_path / "customers.csv"
    subprocess.run([sys.executable, str(ROOT / "sample_data" / "generate.py"), "400", "--out", str(source)], check=True)
    monkeypatch.setattr(csvio, "HEAD_BYTES", 4096)  # the head read of a small file would cover it whole
    seen = Reads(source)
    original = opening._reader
    inode = source.stat().st_ino

    class CountingReader(io.BufferedReader):
        def close(self) -> None:
            if not self.closed:
                seen.ends.append(self.raw.tell())
            super().close()

    def counting_reader(fd: int) -> Any:  # every input file is opened through batch.io.opening
        if os.fstat(fd).st_ino == inode:
            return CountingReader(io.FileIO(fd, "rb"))
        return original(fd)

    monkeypatch.setattr(opening, "_reader", counting_reader)
    return seen


def test_create_reads_the_file_whole_twice(home: Path, tmp_path: Path, reads: Reads) -> None:
    status = main(["create", str(reads.path), "--out-dir", str(tmp_path / "run"), "--quiet"])
    assert status == 0
    assert (reads.opens, reads.full_passes) == (3, 2), reads.ends


def test_resume_reads_the_file_whole_twice(home: Path, tmp_path: Path, reads: Reads) -> None:
    assert main(["create", str(reads.path), "--out-dir", str(tmp_path / "run"), "--quiet"]) == 0
    reads.ends.clear()
    assert main(["resume", str(tmp_path / "run"), "--quiet"]) == 0
    assert (reads.opens, reads.full_passes) == (3, 2), reads.ends


def test_dry_run_reads_the_file_whole_twice(home: Path, tmp_path: Path, reads: Reads) -> None:
    # Nobody in the emulator has these keys: every row would fail.
    assert main(["delete", str(reads.path), "--dry-run", "--out-dir", str(tmp_path / "run"), "--quiet"]) == 1
    assert (reads.opens, reads.full_passes) == (3, 2), reads.ends


def test_a_run_with_failed_rows_reads_the_file_once_more_for_retry_csv(home: Path, tmp_path: Path,
                                                                      reads: Reads) -> None:
    text = reads.path.read_bytes()
    first_row = text.index(b"\n") + 1
    reads.path.write_bytes(text[:first_row] + b"emailAddress,not an address,,,,,,,\r\n" + text[first_row:])
    reads.size = reads.path.stat().st_size
    assert main(["create", str(reads.path), "--out-dir", str(tmp_path / "run"), "--quiet"]) == 1
    assert (reads.opens, reads.full_passes) == (4, 3), reads.ends
    assert (tmp_path / "run" / "retry.csv").is_file()
