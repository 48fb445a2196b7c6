"""The block reader (batch/io/blocks.py) against the record-by-record reader it replaced:
`CsvSource.rows()` must give exactly what `CsvSource.rows_by_record()` gives (numbers, cells,
problems, blank and example marks, the same error after the same rows), whatever the text.
The block, line and cell limits are shrunk here so that a few characters cross every
boundary the real sizes put thousands of characters apart."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import hashlib
import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from batch.errors import InputFileError
from batch.io import blocks, csvio, records
from batch.io.blocks import Blocks, Resumed
from batch.io.columns import CREATE_COLUMNS, Column, ColumnSet
from batch.io.csvio import CsvSource, Row, open_csv

GENERIC = ColumnSet("generic", tuple(Column(f"c{i}", help="test") for i in range(30)), extensions=False)

# Pieces of text that matter to a CSV reader, to the reader's checks, or to nothing at all.
PIECES = ["a", "b", "xyz", "é", "€", " ", ",", ";", "\t", '"', '""', "\r", "\n", "\r\n", "'", "'=", "''+", "'-1",
          "=", ":", "Example: ", "example:x", "\ufeff", "\u2028", "\x85", "\x01", "\x0b", "\x1f", "\x7f", "\x00",
          "a" * 9, "q" * 30]
HEADERS = [("c0", "c1", "c2"), ("c0", "zz", "c2"), ("zz", "c1"), ("c0",), ("c1", "c0", "c2", " ", ""),
           ("displayName", "password", "signInName")]
ENCODINGS = {  # codec, how the file is written, --encoding
    "utf-8": (lambda text: text.encode("utf-8"), None),
    "utf-8-sig": (lambda text: text.encode("utf-8-sig"), None),
    "utf-16": (lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"), None),
    "latin-1": (lambda text: text.encode("latin-1"), "latin-1"),
}


def outcome(rows: Iterator[Row]) -> tuple[list[Row], str | None]:
    """The rows an iterator gives, and the error it ends with, if any."""
    seen: list[Row] = []
    try:
        seen.extend(rows)
    except InputFileError as exc:
        return seen, str(exc)
    return seen, None


@st.composite
def limits(draw: st.DrawFn) -> dict[tuple[Any, str], int]:
    """Block, batch, line, cell and record sizes small enough for a few characters to cross them
    (the line limit stays at most the cell limit, as the real ones are)."""
    cell = draw(st.integers(2, 40))
    record = draw(st.integers(cell, 120))
    return {
        (blocks, "BLOCK_CHARS"): draw(st.integers(1, 80)),
        (blocks, "BATCH_LINES"): draw(st.integers(1, 5)),
        (blocks, "LINE_CHARS"): draw(st.integers(1, cell)),
        (blocks, "CELL_CHARS"): cell, (records, "CELL_CHARS"): cell, (csvio, "CELL_CHARS"): cell,
        (blocks, "RECORD_CHARS"): record, (records, "RECORD_CHARS"): record, (csvio, "RECORD_CHARS"): record,
    }


def same_as_by_record(path: Path, columns: ColumnSet, encoding: str | None,
                      sizes: dict[tuple[Any, str], int]) -> tuple[list[Row], str | None]:
    with pytest.MonkeyPatch.context() as patch:
        for (module, name), value in sizes.items():
            patch.setattr(module, name, value)
        try:
            source = open_csv(path, columns, encoding=encoding)
        except InputFileError:
            assume(False)
            raise
        expected = outcome(source.rows_by_record())
        found = outcome(source.rows())
        assert found == expected
        assert [list(row.cells) for row in found[0]] == [list(row.cells) for row in expected[0]]  # in column order
        if expected[1] is None:
            scan = source.scan()
            assert scan.records == len(expected[0])
            assert scan.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    return expected


@settings(max_examples=600, deadline=None)
@given(header=st.sampled_from(HEADERS), delimiter=st.sampled_from([",", ";", "\t"]), portal=st.booleans(),
       body=st.lists(st.sampled_from(PIECES), max_size=80), codec=st.sampled_from(sorted(ENCODINGS)),
       sizes=limits())
def test_any_text_reads_as_record_by_record(tmp_path_factory: pytest.TempPathFactory, header: tuple[str, ...],
                                            delimiter: str, portal: bool, body: list[str], codec: str,
                                            sizes: dict[tuple[Any, str], int]) -> None:
    encode, asked = ENCODINGS[codec]
    text = ("version:v1.0" + delimiter + "\r\n" if portal else "") + delimiter.join(header) + "\r\n" + "".join(body)
    try:
        content = encode(text)
    except UnicodeEncodeError:
        assume(False)
        raise
    path = tmp_path_factory.mktemp("blocks") / "in.csv"
    path.write_bytes(content)
    columns = CREATE_COLUMNS if "displayName" in header else GENERIC
    same_as_by_record(path, columns, asked, sizes)


@st.composite
def tables(draw: st.DrawFn) -> str:
    """Files as spreadsheets and scripts write them: quoted cells with delimiters, quotes and
    line breaks, blank and ragged rows, formulas neutralised for Excel, template examples."""
    cell = st.one_of(
        st.lists(st.sampled_from(list("ab ,;\"'=+-@:\r\n\té") + ["Example: ", "\x01"]), max_size=6).map("".join),
        st.lists(st.sampled_from(["ab", "c", "", '"']), max_size=16).map("\n".join),  # many short lines
    )
    width = draw(st.integers(1, 4))
    shortest, longest = (0, width + 2) if draw(st.booleans()) else (width, width)
    rows = draw(st.lists(st.lists(cell, min_size=shortest, max_size=longest), max_size=40))
    delimiter = draw(st.sampled_from([",", ";", "\t"])) if width > 1 else ","
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
                        lineterminator=draw(st.sampled_from(["\r\n", "\n"])))
    writer.writerow([f"c{i}" for i in range(width)])
    writer.writerows(rows)
    return out.getvalue()


@settings(max_examples=300, deadline=None)
@given(text=tables(), sizes=limits())
def test_written_tables_read_as_record_by_record(tmp_path_factory: pytest.TempPathFactory, text: str,
                                                 sizes: dict[tuple[Any, str], int]) -> None:
    path = tmp_path_factory.mktemp("tables") / "in.csv"
    path.write_bytes(text.encode("utf-8"))
    same_as_by_record(path, GENERIC, None, sizes)


# --- the fast path is taken -----------------------------------------------------------------

class Calm:
    suspicious = False


def clean_share(text: str, **sizes: int) -> tuple[int, int]:
    """(records in blocks proven clean, all records) of `text` read by `Blocks` past its header."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in sizes.items():
            patch.setattr(blocks, name, value)
        found = list(Blocks(io.StringIO(text, newline=""), Calm(), ",", lambda *_: None,
                            lambda *_: "malformed").blocks(1))
    return sum(len(b.records) for b in found if b.problems is None), sum(len(b.records) for b in found)


def test_plain_rows_are_read_by_blocks_proven_clean() -> None:
    text = "a,b\r\n" + "".join(f"user{i},User {i}\r\n" for i in range(5000))
    assert clean_share(text) == (5000, 5000)


def test_quoted_line_breaks_across_block_ends_keep_blocks_clean() -> None:
    # Each record takes two lines: a block of whole lines would end inside a quoted field about
    # every other time, unless it goes on while its quotes are odd.
    text = "a,b\n" + "".join(f'{i},"street {i}\nflat {i}"\n' for i in range(2000))
    assert clean_share(text, BLOCK_CHARS=100, BATCH_LINES=3) == (2000, 2000)


def test_a_record_the_checks_stop_on_costs_one_block_only() -> None:
    text = "a,b\n" + "".join(f"{i},x\n" for i in range(1000)) + '1,"x"y\n' + "".join(f"{i},x\n" for i in range(1000))
    clean, total = clean_share(text, BLOCK_CHARS=200, BATCH_LINES=8)
    assert total == 2001 and 2001 - 50 <= clean < 2001


# --- pieces -----------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(body=st.lists(st.sampled_from([p for p in PIECES if '"' not in p]), max_size=60),
       delimiter=st.sampled_from([",", ";", "\t"]), block=st.integers(1, 40), batch=st.integers(1, 4))
def test_blocks_hold_the_csv_readers_records(body: list[str], delimiter: str, block: int, batch: int) -> None:
    """Split without the csv reader where no quote is, a block's records are still the reader's
    (an empty line a record of no field)."""
    text = "".join(body)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(blocks, "BLOCK_CHARS", block)
        patch.setattr(blocks, "BATCH_LINES", batch)
        found = Blocks(io.StringIO("h\n" + text, newline=""), Calm(), delimiter, lambda *_: None,
                       lambda *_: "malformed").blocks(1)
        assert [fields for b in found for fields in b.records] == list(
            csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))


@settings(max_examples=400, deadline=None)
@given(text=st.text(st.sampled_from(list("ab\r\n")), max_size=40), first=st.integers(1, 8), lines=st.integers(0, 6),
       wanted=st.lists(st.integers(1, 9), max_size=30))
def test_resumed_reads_as_if_nothing_had_been_read(text: str, first: int, lines: int, wanted: list[int]) -> None:
    """Lines read with one limit, put back, then read with others: as the stream alone reads."""
    def stream() -> io.TextIOWrapper:
        return io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8", newline="")

    resumed_stream = stream()
    taken = "".join(resumed_stream.readline(first) for _ in range(lines))
    resumed = Resumed(resumed_stream)
    resumed.push(taken)
    plain = stream()
    for limit in itertools.chain(wanted, itertools.repeat(100, len(text) + 1)):
        assert resumed.readline(limit) == plain.readline(limit)
    assert resumed.readline(100) == "" and resumed.drained


def test_rows_made_at_c_speed_are_the_rows_the_class_makes() -> None:
    made = csvio._new_rows(7, [{"a": "1"}, {}])
    assert made == [Row(7, {"a": "1"}), Row(8, {})]
    for row in made:
        for field in dataclasses.fields(Row):
            getattr(row, field.name)  # every slot is set
    with pytest.raises(dataclasses.FrozenInstanceError):
        made[0].number = 1  # type: ignore[misc]


# --- decoding errors --------------------------------------------------------------------------

@pytest.mark.parametrize("where", [10, 100, 8191, 8192, 9000, 16000, 40000, 65536, 70000])
def test_invalid_bytes_end_the_rows_where_they_did(tmp_path: Path, where: int) -> None:
    """The rows before the bytes that cannot be decoded, and the message, are the record-by-record
    reader's (where a decoding error surfaces depends on how much text was asked for)."""
    body = "".join(f"User {i},user{i}@example.com,Surname\n" for i in range(3000)).encode()
    where = min(where, len(body) - 1)
    while body[where:where + 1] in (b"\n", b","):
        where += 1
    path = tmp_path / "bad.csv"
    path.write_bytes(b"displayName,signInName,surname\n" + body[:where] + b"\xff" + body[where:])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(csvio, "HEAD_BYTES", 32)  # open_csv checks no more than the header line
        source = open_csv(path, CREATE_COLUMNS)
    expected = outcome(source.rows_by_record())
    assert expected[1] is not None and "is not valid UTF-8" in expected[1]
    assert outcome(source.rows()) == expected
    with pytest.raises(InputFileError) as caught:
        source.scan()
    assert str(caught.value) == expected[1]


@pytest.mark.parametrize("where, what", [(100, "\x07"), ((1 << 20) + 5000, "\x07"), ((1 << 20) - 1, "\x85"),
                                         ((1 << 21) - 300, "\x1b")],
                         ids=["first-block", "later-block", "c1-across-blocks", "near-the-end"])
def test_a_control_character_past_the_first_raw_block(tmp_path: Path, where: int, what: str) -> None:
    """The raw bytes are looked at a MiB at a time (`Inspecting`): blocks read before the first
    suspicious byte are not searched, the ones after are; a C1 character's two UTF-8 bytes may
    straddle two raw blocks."""
    line = "User {:06},user{:06}@example.com,Surname\n"
    body = "".join(line.format(i, i) for i in range((1 << 21) // len(line.format(0, 0)) + 10))
    head = "displayName,signInName,surname\n"
    at = where - len(head)
    while body[at] in ",\n":
        at -= 1
    text = head + body[:at] + what + body[at:]
    path = tmp_path / "control.csv"
    path.write_text(text, encoding="utf-8", newline="")
    if what == "\x85":  # its first byte the last of the first raw block
        assert path.read_bytes()[(1 << 20) - 1:(1 << 20) + 1] == b"\xc2\x85"
    source = open_csv(path, CREATE_COLUMNS)
    expected = outcome(source.rows_by_record())
    assert [row.number for row in expected[0] if row.problem] == [text[:text.index(what)].count("\n")]
    assert outcome(source.rows()) == expected


def test_a_million_row_file_reads_the_same(tmp_path: Path) -> None:
    """A generated file (sample_data/generate.py, with bad rows), row for row: the fast path at its
    real sizes, the same text as benchmarks/validate.py reads (there at a million rows)."""
    import subprocess
    import sys
    path = tmp_path / "gen.csv"
    subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "sample_data" / "generate.py"),
                    "20000", "--out", str(path), "--bad", "0.05"], check=True)
    source: CsvSource = open_csv(path, CREATE_COLUMNS)
    for new, old in itertools.zip_longest(source.rows(), source.rows_by_record()):
        assert new == old
