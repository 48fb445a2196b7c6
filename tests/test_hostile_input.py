"""Hostile and broken input files (issue 15, defects 7, 8 and 9): each fails its row or the
file with one clear line and a documented exit code, never a traceback, never a hang; nothing
invalid reaches Graph; memory stays bounded whatever a line's length.

The corpus at the end runs every generated file through `validate`, `create --dry-run` and
`create` against the in-process emulator, and checks the emulator's store afterwards.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.cli import main
from batch.emulator import Store
from batch.errors import InputFileError
from batch.io.columns import CREATE_COLUMNS, Column, ColumnSet
from batch.io.csvio import CELL_CHARS, RECORD_CHARS, Row, open_csv
from batch.io.quoting import shown

ROOT = Path(__file__).resolve().parent.parent
HEADER = "signInName,displayName\n"
GENERIC = ColumnSet("generic", tuple(Column(f"c{i}", help="test") for i in range(4)), extensions=False)


def write(directory: Path, content: str | bytes, name: str = "in.csv") -> Path:
    path = directory / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def read(path: Path, columns: ColumnSet = CREATE_COLUMNS, **options: str) -> list[Row]:
    return list(open_csv(path, columns, **options).rows())


def problems(path: Path, columns: ColumnSet = CREATE_COLUMNS) -> list[tuple[int, str | None]]:
    return [(row.number, row.problem) for row in read(path, columns)]


def validate(path: Path, capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, str, str]:
    status = main(["validate", str(path), "--verb", "create", *options])
    out, err = capsys.readouterr()
    return status, out, err


def live_users(home: Path) -> list[dict]:  # type: ignore[type-arg]
    if not (home / "emulator.db").exists():
        return []
    store = Store(home / "emulator.db")
    try:
        tenant = store.tenants()[0]
        return [r.data for r in store.select_users(tenant.id, "live", limit=100_000)]
    finally:
        store.close()


# --- special files (defect 7) ---------------------------------------------------------------

def test_a_fifo_is_refused_at_once_without_waiting_for_a_writer(tmp_path: Path) -> None:
    """`validate FIFO` blocked forever. The child is given a generous deadline only so that a
    regression fails instead of hanging the suite; nothing here measures time."""
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    for command in (["validate", str(fifo), "--verb", "create"], ["create", str(fifo), "--dry-run"]):
        done = subprocess.run([sys.executable, "-m", "batch", *command], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path, env={**os.environ, "ENTRA_BATCH_HOME": str(tmp_path / "h")})
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines()[-1] == (
            f"entra-batch: {fifo}: is a named pipe (FIFO), not a regular file: entra-batch reads its input from a "
            "regular file only (it reads it more than once); save the data to a file and give that file")
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null"])
def test_a_device_is_refused(special: str, capsys: pytest.CaptureFixture[str]) -> None:
    if not Path(special).exists():
        pytest.skip(f"no {special} here")
    status, _, err = validate(Path(special), capsys, "--encoding", "latin-1")
    assert status == 2
    assert err == (f"entra-batch: {special}: is a device, not a regular file: entra-batch reads its input from a "
                   "regular file only (it reads it more than once); save the data to a file and give that file\n")


def test_a_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = validate(tmp_path, capsys)
    assert (status, err) == (2, f"entra-batch: {tmp_path}: is a directory, not a CSV file\n")


def test_a_symbolic_link_to_a_regular_file_is_read(tmp_path: Path) -> None:
    target = write(tmp_path, HEADER + "a@example.com,A\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert problems(link) == [(1, None)]


# --- encodings and version lines (defect 8 and 9) ----------------------------------------

@pytest.mark.parametrize("asked, message", [
    ("rot13", "'rot13' is not a text encoding; try utf-8, cp1252 or latin-1"),
    ("base64", "'base64' is not a text encoding; try utf-8, cp1252 or latin-1"),
    ("utf-16", "has no byte order mark, which --encoding utf-16 needs; give the byte order: --encoding utf-16-le "
               "(or utf-16-be)"),
    ("UTF-32", "has no byte order mark, which --encoding UTF-32 needs; give the byte order: --encoding utf-32-le "
               "(or utf-32-be)"),
    ("klingon", "unknown encoding 'klingon'; try utf-8, cp1252 or latin-1"),
    # Text codecs by name that cannot read bytes they do not take: internal errors (exit 4).
    ("idna", "'idna' cannot read a file's text; try utf-8, cp1252 or latin-1"),
    ("undefined", "'undefined' cannot read a file's text; try utf-8, cp1252 or latin-1"),
])
def test_encodings_that_cannot_read_the_file_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           asked: str, message: str) -> None:
    """`--encoding rot13` and `--encoding utf-16` without a BOM were tracebacks (exit 1)."""
    path = write(tmp_path, (HEADER + "a@example.com,A\n").encode("utf-16-le"))
    status, out, err = validate(path, capsys, "--encoding", asked)
    assert (status, out, err) == (2, "", f"entra-batch: {path}: {message}\n")


def test_utf16_without_bom_reads_with_its_byte_order_given(tmp_path: Path) -> None:
    path = write(tmp_path, (HEADER + "a@example.com,A\n").encode("utf-16-be"))
    assert [r.cells for r in read(path, encoding="utf-16-be")] == [{"signInName": "a@example.com",
                                                                     "displayName": "A"}]


def test_two_version_lines_say_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The header was taken to be the second version line: "missing columns ... the header has
    'version:v1.0'"."""
    path = write(tmp_path, "version:v1.0\nversion:v1.0,,\n" + HEADER + "a@example.com,A\n")
    status, _, err = validate(path, capsys)
    assert (status, err) == (2, f"entra-batch: {path}: has two version lines (the first two lines); keep only the "
                                "first: the header line must come right under it\n")


# --- control characters (defect 9) ----------------------------------------------------------

def test_a_nul_past_the_first_mib_fails_its_row(tmp_path: Path) -> None:
    """A NUL in the first MiB refused the file; one further on was sent to Graph."""
    filler = "".join(f"user{i}@example.com,User {i}\n" for i in range(60_000))  # > 1 MiB
    path = write(tmp_path, HEADER + filler + "nul@example.com,N\x00ul\n" + "z@example.com,Z\n")
    rows = read(path)
    assert len(rows) == 60_002
    assert rows[-2].problem == ("displayName (column 2) holds the control character \\x00 at character 2; remove "
                                "it (control characters are never sent)")
    assert rows[-1].problem is None and not any(r.problem for r in rows[:-2])


def test_a_stray_nul_in_the_first_mib_fails_its_row_not_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "a@example.com,A\x00\nb@example.com,B\n")
    assert problems(path) == [
        (1, "displayName (column 2) holds the control character \\x00 at character 2; remove it (control characters "
            "are never sent)"),
        (2, None)]


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x80", "\x85",
                                  "\x9b", "\x9f"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "latin-1"])
def test_every_control_character_fails_its_row_in_every_encoding(tmp_path: Path, char: str, encoding: str) -> None:
    text = HEADER + "a@example.com,A\n" + f'"b{char}@example.com",B\n' + "c@example.com,C\n"
    path = write(tmp_path, text.encode(encoding))
    rows = read(path, encoding="latin-1") if encoding == "latin-1" else read(path)
    assert [(row.number, row.problem) for row in rows] == [
        (1, None),
        (2, f"signInName (column 1) holds the control character {shown(char)} at character 2; remove it (control "
            "characters are never sent)"),
        (3, None)]


def test_a_c1_character_split_across_read_blocks_is_found(tmp_path: Path) -> None:
    """UTF-8 writes U+0085 as two bytes; the raw bytes are checked a MiB at a time."""
    prefix = HEADER + "a@example.com,A\n"
    pad = (1 << 20) - len(prefix.encode()) - len("b@example.com,") - 1  # the \xc2 ends the first MiB
    path = write(tmp_path, prefix + "b@example.com," + "x" * pad + "\x85\n")
    assert problems(path)[1][1] is not None and "\\x85" in str(problems(path)[1][1])


def test_tabs_and_line_breaks_inside_quoted_cells_stay_cells(tmp_path: Path) -> None:
    path = write(tmp_path, 'c0,c1\n"a\tb","line 1\r\nline 2"\n')
    assert [(r.problem, r.cells) for r in read(path, GENERIC)] == [
        (None, {"c0": "a\tb", "c1": "line 1\r\nline 2"})]


CONTROL = st.sampled_from([chr(c) for c in [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)]])
PLAIN = st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=8)


@settings(max_examples=60, deadline=None)
@given(before=PLAIN, control=CONTROL, after=PLAIN, column=st.integers(0, 3))
def test_any_control_character_in_any_column_is_named(tmp_path_factory: pytest.TempPathFactory, before: str,
                                                      control: str, after: str, column: int) -> None:
    import csv
    import io

    cells = ["x"] * 4
    cells[column] = before + control + after
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[f"c{i}" for i in range(4)], cells, ["ok"] * 4])
    path = write(tmp_path_factory.mktemp("ctl"), out.getvalue())
    (first, second) = read(path, GENERIC)
    assert first.problem is not None
    assert f"c{column} (column {column + 1}) holds the control character {shown(control)}" in first.problem
    assert second.problem is None


# --- quoting (defect 9) ---------------------------------------------------------------------

@pytest.mark.parametrize("record, column", [
    ('"a@b.com"x,A', "signInName (column 1)"),
    ('a@b.com,"A"x', "displayName (column 2)"),
    ('"a@b.com" ,A', "signInName (column 1)"),
    ('"a@b.com""x"y,A', "signInName (column 1)"),
])
def test_text_after_a_closing_quote_fails_its_row(tmp_path: Path, record: str, column: str) -> None:
    """`"a@b.com"x` was read as `a@b.comx`, and created."""
    path = write(tmp_path, HEADER + record + "\nc@example.com,C\n")
    assert problems(path) == [
        (1, f'{column} has text after its closing quote ("); put the whole value between the quotes and double '
            'each quote that is part of it ("")'),
        (2, None)]


def test_the_records_after_a_bad_quote_keep_their_numbers(tmp_path: Path) -> None:
    """The strict reader stops inside the line; the record is read again, whole, as before:
    here it goes on over two lines (a quoted field opens after the stray character)."""
    text = 'c0,c1,c2\n"a"x,"b\nc",d\ne,f,g\n'
    rows = read(write(tmp_path, text), GENERIC)
    assert [(r.number, r.cells) for r in rows] == [(1, {"c0": "ax", "c1": "b\nc", "c2": "d"}),
                                                   (2, {"c0": "e", "c1": "f", "c2": "g"})]
    assert rows[0].problem is not None and rows[1].problem is None


def test_a_quote_open_at_the_end_of_the_file_fails_its_row(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + 'a@example.com,A\nb@example.com,"B\n')
    assert problems(path) == [(1, None), (2, 'a quoted field has no closing quote (") before the end of the file')]


def test_doubled_quotes_and_quoted_delimiters_are_fine(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + '"a@example.com","Jo ""JJ"", Smith"\n')
    assert [(r.problem, r.cells["displayName"]) for r in read(path)] == [(None, 'Jo "JJ", Smith')]


# --- sizes (defects 7 and 9) ----------------------------------------------------------------

def test_an_oversized_cell_fails_its_row_and_reading_goes_on(tmp_path: Path) -> None:
    big = "x" * (CELL_CHARS + 1)
    path = write(tmp_path, HEADER + f"a@example.com,{big}\nb@example.com,B\n")
    assert problems(path) == [
        (1, f"displayName (column 2) is {CELL_CHARS + 1:,} characters long, more than the {CELL_CHARS:,} a cell "
            "may hold"),
        (2, None)]


OVERSIZED = (f"row is longer than {RECORD_CHARS:,} characters (a customer's properties take far less): it was "
             "skipped unread; check that this is the right file, and for a quoted field that lacks its closing "
             'quote (") in or before this row')


@pytest.mark.parametrize("shape", ["one line", "quoted lines", "quoted with quotes", "delimiters", "crlf"])
def test_an_oversized_record_is_skipped_and_reading_goes_on(tmp_path: Path, shape: str) -> None:
    n = RECORD_CHARS + 10
    record = {
        "one line": "a@example.com," + "y" * n + "\n",
        "quoted lines": 'a@example.com,"' + "y\n" * (n // 2) + '"\n',
        "quoted with quotes": 'a@example.com,"' + 'y""\n' * (n // 4) + '"\n',
        "delimiters": "," * n + "\n",
        "crlf": 'a@example.com,"' + "y\r\n" * (n // 3) + '"\r\n',
    }[shape]
    path = write(tmp_path, HEADER + "a@example.com,A\n" + record + "c@example.com,C\n")
    assert problems(path) == [(1, None), (2, OVERSIZED), (3, None)]
    source = open_csv(path, CREATE_COLUMNS)
    assert source.scan().records == 3


def test_a_header_line_longer_than_the_limit_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "signInName,displayName," + "z" * (RECORD_CHARS + 1) + "\n")
    status, _, err = validate(path, capsys)
    assert (status, err) == (2, f"entra-batch: {path}: the header line is longer than {RECORD_CHARS:,} characters; "
                                "is this the right file? (a quote left open in the header line makes it run on)\n")


MEASURE = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from batch.errors import InputFileError
    from batch.io.columns import CREATE_COLUMNS
    from batch.io.csvio import open_csv
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        source = open_csv(Path(sys.argv[1]), CREATE_COLUMNS, encoding=sys.argv[2])
        rows = [r.problem is not None for r in source.rows()]
        records = source.scan().records
        outcome = [sum(rows), len(rows), records]
    except InputFileError as exc:
        outcome = str(exc)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_kib": after - before, "outcome": outcome}))
""")


def peak_growth(path: Path, encoding: str = "utf-8") -> tuple[int, object]:
    """How much the peak RSS of a fresh process grows while it reads `path` (KiB)."""
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path), encoding], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    report = json.loads(done.stdout)
    return report["growth_kib"], report["outcome"]


@pytest.mark.parametrize("case", ["data line", "zero bytes", "header line"])
def test_memory_stays_bounded_whatever_the_line_length(tmp_path: Path, case: str) -> None:
    """A 800 MB file without a line break peaked at 1.6 GB; `/dev/zero` read as latin-1 at
    4.3 GB. CI-sized here: 48 MiB on one line must not cost more than ~40 MiB of memory
    (the limits hold a record to 1 Mi characters, 4 MiB at most, plus read buffers)."""
    size = 48 << 20
    path = tmp_path / "long.csv"
    with path.open("wb") as out:
        if case == "data line":
            out.write(HEADER.encode() + b"a@example.com,")
        elif case == "header line":
            out.write(b"signInName,displayName,")
        chunk = (b"\x00" if case == "zero bytes" else b"y") * (1 << 20)
        for _ in range(size >> 20):
            out.write(chunk)
        if case == "data line":
            out.write(b"\nb@example.com,B\n")
    growth, outcome = peak_growth(path, "latin-1")
    assert growth < 40 * 1024, (growth, outcome)
    if case == "data line":
        assert outcome == [1, 2, 2]
    else:  # zero bytes read as latin-1 are one 48 Mi-character header line
        assert isinstance(outcome, str) and "the header line is longer than" in outcome


# --- messages that quote cells (defect 9) ---------------------------------------------------

def test_validate_never_writes_a_control_sequence_to_the_terminal(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """An ANSI clear-screen in a sign-in name was executed by the terminal running validate."""
    path = write(tmp_path, "signInName,displayName,usageLocation,ext.\x1b[31mred\n"
                           "\x1b[2Ja@example.com,A,FR,1\n"
                           "b@example.com,B,\u202eRF,2\n")
    status, out, err = validate(path, capsys)
    assert status == 1
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", out + err), out + err
    assert "holds the control character \\x1b at character 1" in out
    assert "usageLocation '\\u202eRF' is not an ISO 3166-1 two-letter country code" in out


def test_cell_values_in_messages_are_capped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "signInName,displayName,usageLocation\na@example.com,A," + "x" * 5000 + "\n")
    status, out, _ = validate(path, capsys)
    assert status == 1
    assert len(out.splitlines()[0]) < 400, out
    assert "usageLocation '" + "x" * 200 + "… (5,000 characters)' is not an ISO 3166-1" in out


def test_a_line_break_in_a_one_line_property_fails_its_row(tmp_path: Path) -> None:
    from batch.verbs.registry import VerbSettings, build_verb

    verb = build_verb("create", VerbSettings(domain="contoso.onmicrosoft.com"))
    path = write(tmp_path, 'signInName,displayName,streetAddress\na@example.com,"Jo\nSmith","1 Main St\nFlat 2"\n'
                           'b@example.com,B,"1 Main St\nFlat 2"\n')
    first, second = (verb.validate(row) for row in read(path))
    assert getattr(first, "problems", None) == (
        "displayName holds a line break at character 3; it is shown on one line: remove it (only streetAddress may "
        "span lines)",)
    assert not hasattr(second, "problems")


# --- the corpus: every hostile file through validate, create --dry-run and create ------------

def _corpus() -> dict[str, tuple[bytes, tuple[str, ...]]]:
    """name → (file content, extra options). Each file holds one good row (`good@example.com`)
    where it can, so that a run shows the good rows still go through."""
    good = "good@example.com,Good\n"
    files: dict[str, tuple[bytes, tuple[str, ...]]] = {
        "nul in a cell": ((HEADER + "n@example.com,N\x00ul\n" + good).encode(), ()),
        "escape sequence": ((HEADER + "\x1b[2Je@example.com,E\n" + good).encode(), ()),
        "c1 and del": ((HEADER + "c@example.com,C\x85\x7f\n" + good).encode(), ()),
        "glued after quote": ((HEADER + '"glued@example.com"x,G\n' + good).encode(), ()),
        "quote never closed": ((HEADER + good + 'open@example.com,"O\n').encode(), ()),
        "quote in unquoted cell": ((HEADER + 'q"uote@example.com,Q\n' + good).encode(), ()),
        "oversized cell": ((HEADER + "big@example.com," + "b" * (CELL_CHARS + 5) + "\n" + good).encode(), ()),
        "oversized record": ((HEADER + "big@example.com," + "b" * (RECORD_CHARS + 5) + "\n" + good).encode(), ()),
        "ragged rows": ((HEADER + "r@example.com\nr2@example.com,R,extra\n" + good).encode(), ()),
        "two version lines": (("version:v1.0\nversion:v1.0\n" + HEADER + good).encode(), ()),
        "only a bom": (codecs.BOM_UTF8, ()),
        "empty": (b"", ()),
        "binary": (bytes(range(256)) * 64, ()),
        "workbook": (b"PK\x03\x04" + bytes(200), ()),
        "utf-16 bom": (codecs.BOM_UTF16_LE + (HEADER + good).encode("utf-16-le"), ()),
        "utf-16 no bom": ((HEADER + good).encode("utf-16-le"), ()),
        "utf-16 no bom asked utf-16": ((HEADER + good).encode("utf-16-le"), ("--encoding", "utf-16")),
        "rot13": ((HEADER + good).encode(), ("--encoding", "rot13")),
        "invalid utf-8 late": ((HEADER + good * 70_000 + "bad@example.com,\xff\n").encode("latin-1"), ()),
        "latin-1 zeros": (HEADER.encode() + bytes(3 << 20), ("--encoding", "latin-1")),
        "cp1252 controls": ((HEADER + "w@example.com,W\x81\n" + good).encode("latin-1"), ("--encoding", "cp1252")),
        "bidi override": ((HEADER + "b\u202e@example.com,B\n" + good).encode(), ()),
        "tab in display name": ((HEADER + 't@example.com,"T\tab"\n' + good).encode(), ()),
        "header only": (HEADER.encode(), ()),
        "blank lines": ((HEADER + "\n\n,\n" + good).encode(), ()),
        "version padded": (("version:v1.0,,\r\n" + HEADER + good).encode(), ()),
    }
    return files


CORPUS = _corpus()
SPECIALS: dict[str, Callable[[Path], Path]] = {
    "fifo": lambda d: (os.mkfifo(d / "fifo.csv"), d / "fifo.csv")[1],
    "directory": lambda d: d,
    "missing": lambda d: d / "nowhere.csv",
    "device": lambda d: Path("/dev/zero"),
}


def _bad(value: object) -> bool:
    """Does a value stored by the emulator hold what must never be sent?"""
    text = json.dumps(value, ensure_ascii=False)
    return bool(re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\\\\u00[01]", text)) or "glued@example.comx" in text


@pytest.mark.parametrize("name", [*CORPUS, *SPECIALS])
def test_corpus(name: str, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    if name in CORPUS:
        content, options = CORPUS[name]
        path = write(folder, content)
    else:
        path, options = SPECIALS[name](folder), ()
        if name == "device" and not path.exists():
            pytest.skip("no /dev/zero here")
    for number, command in enumerate((["validate", str(path), "--verb", "create"],
                                      ["create", str(path), "--dry-run", "--quiet", "--out-dir", str(tmp_path / "d")],
                                      ["create", str(path), "--quiet", "--out-dir", str(tmp_path / "r")])):
        status = main([*command, *options])
        out, err = capsys.readouterr()
        assert status in (0, 1, 2), (command, status, err)
        assert "Traceback" not in out + err
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", out + err), (command, out, err)
        if status == 2:
            assert len(err.strip().splitlines()) <= 2, err  # the target notice, then one line
        if number == 2 and status != 2:
            results = (tmp_path / "r" / "results.csv").read_text(encoding="utf-8")
            assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", results), results[:500]
    users = live_users(home)
    assert not [u for u in users if _bad(u)], users
    created = {i["issuerAssignedId"] for u in users for i in u.get("identities", [])
               if i.get("signInType") in ("emailAddress", "userName")}
    assert created <= {"good@example.com"}, created


def test_the_corpus_has_the_cases_the_issue_names() -> None:
    for case in ("nul in a cell", "glued after quote", "oversized cell", "escape sequence", "two version lines",
                 "rot13", "utf-16 no bom asked utf-16", "latin-1 zeros"):
        assert case in CORPUS
    assert {"fifo", "device", "directory"} <= set(SPECIALS)


def test_input_file_error_is_a_one_line_message(tmp_path: Path) -> None:
    with pytest.raises(InputFileError) as caught:
        open_csv(tmp_path / "nowhere.csv", CREATE_COLUMNS)
    assert "\n" not in str(caught.value)
