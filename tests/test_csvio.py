"""Reading input CSV files (batch/csvio.py): encodings, dialects, templates, bad rows."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.errors import InputFileError
from batch.io import csvio
from batch.io.columns import CREATE_COLUMNS, PORTAL_CREATE_HEADER, Column, ColumnSet
from batch.io.csvio import CsvSource, Row, open_csv
from batch.io.quoting import unquote

FIXTURES = Path(__file__).parent / "fixtures"
GENERIC = ColumnSet("generic", tuple(Column(f"c{i}", help="test") for i in range(30)), extensions=False)
DELETE_COLUMNS = ColumnSet(
    "delete-test",
    (Column("objectId", ("object id",)), Column("userPrincipalName", ("upn",), graph="userPrincipalName"),
     Column("signInName", ("email",))),
    one_of=(("objectId", "userPrincipalName", "signInName"),),
    extensions=False,
)
RESTORE_COLUMNS = ColumnSet("restore-test", (Column("objectId", ("object id",), graph="id", required=True),),
                            extensions=False)
CREATE_EXPECTED = ("signInType, signInName, displayName, givenName, surname, blockSignIn, usageLocation, mail, "
                   "password, forceChangePasswordNextSignIn")
TEXT = "displayName,signInName,surname\nZoë Ångström,zoe@example.com,Ölçer\nJosé,jose@example.com,Œuvre €\n"
TEXT_ROWS = [
    {"displayName": "Zoë Ångström", "signInName": "zoe@example.com", "surname": "Ölçer"},
    {"displayName": "José", "signInName": "jose@example.com", "surname": "Œuvre €"},
]


def write(directory: Path, content: str | bytes, name: str = "in.csv") -> Path:
    path = directory / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def read(path: Path, columns: ColumnSet = CREATE_COLUMNS, **options: str) -> list[Row]:
    return list(open_csv(path, columns, **options).rows())


def cells(rows: list[Row]) -> list[dict[str, str]]:
    return [row.cells for row in rows]


def error(path: Path, columns: ColumnSet = CREATE_COLUMNS, **options: str) -> str:
    with pytest.raises(InputFileError) as caught:
        read(path, columns, **options)
    return str(caught.value)


# --- encodings ----------------------------------------------------------------------------

@pytest.mark.parametrize("content, asked, encoding", [
    (TEXT.encode("utf-8"), None, "utf-8"),
    (codecs.BOM_UTF8 + TEXT.encode("utf-8"), None, "utf-8-sig"),
    (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), None, "utf-16"),
    (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), None, "utf-16"),
    (codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"), None, "utf-32"),
    (TEXT.encode("cp1252"), "cp1252", "cp1252"),
    (TEXT.encode("cp1252"), "Windows-1252", "cp1252"),
    (TEXT.encode("utf-8"), "UTF8", "utf-8"),
    (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "cp1252", "utf-8-sig"),  # a byte order mark wins
    (TEXT.encode("utf-16-le"), "utf-16-le", "utf-16-le"),  # no BOM, but asked for: NUL bytes are fine
], ids=["utf-8", "utf-8-bom", "utf-16-le-bom", "utf-16-be-bom", "utf-32-le-bom", "cp1252", "windows-1252",
        "asked-utf8", "bom-wins", "utf-16-le-asked"])
def test_encodings(tmp_path: Path, content: bytes, asked: str | None, encoding: str) -> None:
    source = open_csv(write(tmp_path, content), CREATE_COLUMNS, encoding=asked)
    assert source.encoding == encoding
    assert source.headers == ["displayName", "signInName", "surname"]
    assert cells(list(source.rows())) == TEXT_ROWS


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_utf16_with_crlf_and_quoted_newlines(tmp_path: Path, newline: str) -> None:
    text = f'name,email{newline}"two{newline}lines",a@example.com{newline}'
    rows = read(write(tmp_path, codecs.BOM_UTF16_BE + text.encode("utf-16-be")))
    assert cells(rows) == [{"displayName": f"two{newline}lines", "signInName": "a@example.com"}]


def test_cp1252_without_encoding_says_what_to_do(tmp_path: Path) -> None:
    path = write(tmp_path, "displayName;email\nJosé;y\n".encode("cp1252"))
    assert error(path) == (f"{path}: is not valid UTF-8 (byte 0xe9 at offset 21, line 2); if Excel saved it as "
                           "'CSV (Windows)', try --encoding cp1252, or save it again as CSV UTF-8")


def test_invalid_utf8_after_a_bom_counts_the_bom_in_the_offset(tmp_path: Path) -> None:
    path = write(tmp_path, codecs.BOM_UTF8 + "displayName;email\nJosé;y\n".encode("cp1252"))
    assert "(byte 0xe9 at offset 24, line 2)" in error(path)


def test_byte_undefined_in_cp1252(tmp_path: Path) -> None:
    path = write(tmp_path, b"displayName,email\nab\x81,x\n")
    assert error(path, encoding="cp1252") == (f"{path}: is not valid cp1252 (byte 0x81 at offset 20, line 2); "
                                              "check --encoding (latin-1 accepts any byte)")
    assert cells(read(path, encoding="latin-1")) == [{"displayName": "ab\x81", "signInName": "x"}]


def test_invalid_utf16(tmp_path: Path) -> None:
    lone_surrogate = b"\x00\xd8"
    content = (codecs.BOM_UTF16_LE + "displayName,email\nab".encode("utf-16-le") + lone_surrogate
               + ",x\n".encode("utf-16-le"))
    assert "is not valid UTF-16 (byte 0x00 at offset 42, line 2)" in error(write(tmp_path, content))


@pytest.mark.parametrize("block", [1 << 20, 16], ids=["first-block", "later-block"])
def test_invalid_utf16_be_counts_lines_in_its_byte_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         block: int) -> None:
    monkeypatch.setattr(csvio, "HEAD_BYTES", block)
    monkeypatch.setattr(csvio, "_BLOCK", block)
    good = "displayName,email\na,b\nc,d\ne,f\n"
    content = codecs.BOM_UTF16_BE + good.encode("utf-16-be") + b"\xdc\x00" + ",x\n".encode("utf-16-be")
    path = write(tmp_path, content)
    expected = f"is not valid UTF-16 (byte 0xdc at offset {2 + 2 * len(good)}, line 5)"
    if block == 16:
        with pytest.raises(InputFileError, match=re.escape(expected)):
            open_csv(path, CREATE_COLUMNS).scan()
    else:
        assert expected in error(path)


def test_unknown_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, TEXT)
    assert error(path, encoding="klingon") == f"{path}: unknown encoding 'klingon'; try utf-8, cp1252 or latin-1"


def test_invalid_bytes_past_the_checked_beginning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvio, "HEAD_BYTES", 64)
    good = "".join(f"User {i},user{i}@example.com\n" for i in range(1, 1001))
    head = "displayName,email\n" + good
    path = write(tmp_path, head.encode() + b"Jos\xe9,jose@example.com\n")
    source = open_csv(path, CREATE_COLUMNS)  # the beginning is fine
    seen: list[Row] = []
    with pytest.raises(InputFileError) as caught:
        seen.extend(source.rows())
    offset = len(head.encode()) + 3
    message = str(caught.value)
    assert f"is not valid UTF-8 (byte 0xe9 at offset {offset}, line 1002)" in message
    assert 0 < len(seen) < 1001 and [r.number for r in seen] == list(range(1, len(seen) + 1))
    assert f"reading stopped after row {len(seen)}" in message
    with pytest.raises(InputFileError, match=f"offset {offset}, line 1002"):
        source.scan()


def test_scan_of_a_valid_file_counts_records_and_hashes_every_byte(tmp_path: Path) -> None:
    content = codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le")
    path = write(tmp_path, content)
    scan = open_csv(path, CREATE_COLUMNS).scan()
    assert scan.sha256 == hashlib.sha256(content).hexdigest()
    assert scan.records == len(list(open_csv(path, CREATE_COLUMNS).rows()))


@pytest.mark.parametrize("size", [10, 70_000])
def test_scan_hashes_files_larger_than_its_buffer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    monkeypatch.setattr(csvio, "_BLOCK", 4096)
    text = "displayName,email\n" + "".join(f"User {i},\"user{i}@example.com\"\n" for i in range(size)) + "\n"
    path = write(tmp_path, text.encode())
    scan = open_csv(path, CREATE_COLUMNS).scan()
    assert scan.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert scan.records == size + 1  # the blank line counts as a record; the final newline ends the last one


# --- not CSV, empty, header only ----------------------------------------------------------

@pytest.mark.parametrize("content", [
    b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00\x00\x00",
], ids=["xlsx", "xls"])
def test_excel_workbook(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path, content, "customers.xlsx")
    assert error(path, encoding="cp1252") == (
        f"{path}: is not a CSV file: this looks like an Excel workbook; save it as .xlsx (Excel Workbook), which "
        "is read as it is, or as CSV UTF-8 (File > Save As > 'CSV UTF-8 (Comma delimited)')")


def test_binary_file(tmp_path: Path) -> None:
    path = write(tmp_path, bytes(range(256)) * 4, "photo.jpg")
    assert "is not a text CSV file (it holds NUL bytes)" in error(path)
    utf16_without_bom = write(tmp_path, TEXT.encode("utf-16-le"))
    assert ("if it is UTF-16 without a byte order mark, give --encoding utf-16-le (or utf-16-be), or save it again "
            "as CSV UTF-8") in error(utf16_without_bom)


@pytest.mark.parametrize("content, message", [
    (b"", "is empty (0 bytes); expected a header line"),
    (codecs.BOM_UTF8, f"is empty; expected a header line with the columns {CREATE_EXPECTED}"),
    (b"\r\n\r\n", f"is empty; expected a header line with the columns {CREATE_EXPECTED}"),
    (b"version:v1.0,,,,\r\n", "has the admin center's version line but no header line under it"),
    (b"version:v1.0", "has the admin center's version line but no header line under it"),
    (b",,,\r\nname,email\r\n", f"the header line (the first line) is empty; expected the columns {CREATE_EXPECTED}"),
    (b"\nname,email\n", f"the header line (the first line) is empty; expected the columns {CREATE_EXPECTED}"),
    (b"version:v1.0\n , \nname\n", "the header line (the line under the version line) is empty; expected the "
                                   f"columns {CREATE_EXPECTED}"),
], ids=["0-bytes", "bom-only", "newlines-only", "version-only", "version-no-newline", "blank-header",
        "empty-first-line", "blank-header-after-version"])
def test_empty_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = write(tmp_path, content)
    assert error(path) == f"{path}: {message}"


@pytest.mark.parametrize("content", ["name,email", "name,email\n", "name,email\r\n", "version:v1.0\nname,email\n"])
def test_header_only_is_zero_rows(tmp_path: Path, content: str) -> None:
    assert read(write(tmp_path, content)) == []


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert error(tmp_path / "nope.csv") == f"{tmp_path / 'nope.csv'}: no such file"
    assert error(tmp_path) == f"{tmp_path}: is a directory, not a CSV file"


# --- delimiters and line ends -------------------------------------------------------------

@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_delimiters(tmp_path: Path, delimiter: str) -> None:
    d = delimiter
    text = (f"displayName{d}email{d}streetAddress\n"
            f'Zoë{d}zoe@example.com{d}"1, rue; du\tPort"\n'
            f'"Smith{d} Jo"{d}jo@example.com{d}\n')
    source = open_csv(write(tmp_path, text), CREATE_COLUMNS)
    assert source.delimiter == delimiter
    assert cells(list(source.rows())) == [
        {"displayName": "Zoë", "signInName": "zoe@example.com", "streetAddress": "1, rue; du\tPort"},
        {"displayName": f"Smith{d} Jo", "signInName": "jo@example.com", "streetAddress": ""},
    ]


def test_delimiters_inside_quoted_headers_are_not_counted(tmp_path: Path) -> None:
    columns = ColumnSet("sniff", (Column("a;b;c;d"), Column("x"), Column("y")))
    source = open_csv(write(tmp_path, '"a;b;c;d",x,y\n"1;2",3,4\n'), columns)
    assert source.delimiter == ","
    assert cells(list(source.rows())) == [{"a;b;c;d": "1;2", "x": "3", "y": "4"}]


def test_single_column_files_default_to_comma_or_take_the_delimiter_given(tmp_path: Path) -> None:
    path = write(tmp_path, "Object ID\nid-1\n")
    assert open_csv(path, RESTORE_COLUMNS).delimiter == ","
    assert open_csv(path, RESTORE_COLUMNS, delimiter=";").delimiter == ";"
    assert error(path, RESTORE_COLUMNS, delimiter="|") == (
        f"{path}: delimiter '|' is not one of comma, semicolon or tab")


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_line_ends_and_quoted_newlines(tmp_path: Path, newline: str) -> None:
    n = newline
    text = (f"name,email,street address{n}"
            f'"Jo ""JJ"" Smith",jo@example.com,"line 1{n}line 2, ""quoted""{n}"{n}'
            f"Al,al@example.com,{n}")
    rows = read(write(tmp_path, text))
    assert [r.number for r in rows] == [1, 2]
    assert cells(rows) == [
        {"displayName": 'Jo "JJ" Smith', "signInName": "jo@example.com",
         "streetAddress": f'line 1{n}line 2, "quoted"{n}'},
        {"displayName": "Al", "signInName": "al@example.com", "streetAddress": ""},
    ]


def test_mixed_line_ends_inside_quotes_are_kept_exactly(tmp_path: Path) -> None:
    rows = read(write(tmp_path, 'name,email\r\n"a\nb\r\nc\rd",x\r\n'))
    assert rows[0].cells["displayName"] == "a\nb\r\nc\rd"


# --- the admin center's templates ---------------------------------------------------------

def test_portal_create_template_as_excel_saves_it() -> None:
    source = open_csv(FIXTURES / "portal_create.csv", CREATE_COLUMNS)
    assert (source.encoding, source.delimiter, source.portal_template) == ("utf-8-sig", ",", True)
    assert source.headers == PORTAL_CREATE_HEADER.split(",")
    assert source.match.unknown == [] and source.match.missing == []
    rows = list(source.rows())
    assert [(r.number, r.example, r.blank, r.problem) for r in rows] == [
        (1, True, False, None), (2, False, False, None), (3, False, False, None),
        (4, False, True, None), (5, False, True, None),
    ]
    assert rows[0].cells["displayName"] == "Example: Chris Green"
    assert rows[1].cells == {
        "displayName": "Zoë Ångström", "userPrincipalName": "zoe@contoso.onmicrosoft.com",
        "password": "Xy12345678!", "blockSignIn": "Yes", "givenName": "Zoë", "surname": "Ångström",
        "jobTitle": "", "department": "", "usageLocation": "NA", "streetAddress": "12, rue de l'Église",
        "state": "", "country": "Namibia", "officeLocation": "", "city": "Windhoek", "postalCode": "0012",
        "businessPhone": "+33 612", "mobilePhone": "=1+1",
    }
    assert {k: v for k, v in rows[2].cells.items() if v} == {
        "displayName": "Null Person", "userPrincipalName": "null@contoso.onmicrosoft.com", "blockSignIn": "No",
        "givenName": "null", "surname": "NULL", "usageLocation": "FR", "postalCode": "1e5",
        "businessPhone": "TRUE",
    }


def test_portal_delete_template() -> None:
    source = open_csv(FIXTURES / "portal_delete.csv", DELETE_COLUMNS)
    assert source.portal_template and source.match.by_index == {0: "userPrincipalName"}
    rows = list(source.rows())
    assert [(r.number, r.example, r.cells) for r in rows] == [
        (1, True, {"userPrincipalName": "Example: chris@contoso.com"}),
        (2, False, {"userPrincipalName": "zoe@contoso.onmicrosoft.com"}),
        (3, False, {"userPrincipalName": "null@contoso.onmicrosoft.com"}),
    ]


def test_portal_restore_template() -> None:
    source = open_csv(FIXTURES / "portal_restore.csv", RESTORE_COLUMNS)
    assert source.portal_template
    assert [(r.number, r.example, r.cells) for r in source.rows()] == [
        (1, True, {"objectId": "Example: 1ae6f3e4-3a6a-4f43-9bd4-1a3a6f4e0c1b"}),
        (2, False, {"objectId": "0b7c3f2a-5d4e-4c4b-8a7e-2f1d3c4b5a69"}),
    ]


def test_the_delete_template_is_not_a_restore_file() -> None:
    path = FIXTURES / "portal_delete.csv"
    assert error(path, RESTORE_COLUMNS) == (
        f"{path}: missing column objectId; expected columns: objectId; the header line has: "
        "'User name [userPrincipalName] Required'")


@pytest.mark.parametrize("version", ["version:v1.0", "version:v1.0,,,,", "Version:V1.0", "version:v1.0;;",
                                     '"version:v1.0",,', "version: v1.0\t\t", "version:v2"])
def test_version_line_variants(tmp_path: Path, version: str) -> None:
    delimiter = ";" if ";" in version else "\t" if "\t" in version else ","
    source = open_csv(write(tmp_path, f"{version}\r\nname{delimiter}email\r\nA{delimiter}a@x.com\r\n"),
                      CREATE_COLUMNS)
    assert source.portal_template and source.delimiter == delimiter
    assert [(r.number, r.cells) for r in source.rows()] == [(1, {"displayName": "A", "signInName": "a@x.com"})]


@pytest.mark.parametrize("first", ["version,name,email", "version:v1.0x,name", "v1.0,name,email",
                                   "version:1.0 beta,name"])
def test_lines_that_are_not_a_version_line_are_the_header(tmp_path: Path, first: str) -> None:
    source = open_csv(write(tmp_path, f"{first}\nname,email\n"), GENERIC)
    assert not source.portal_template and source.headers == first.split(",")
    assert [r.number for r in source.rows()] == [1]


@pytest.mark.parametrize("first, example", [
    ("Example: Chris Green", True), ("example:x", True), ("  EXAMPLE: x", True), ("\ufeffExample: x", True),
    ("Examples: none", False), ("Example Chris", False), ("An example: no", False), ("", False),
])
def test_example_rows(tmp_path: Path, first: str, example: bool) -> None:
    rows = read(write(tmp_path, f'name,email\n"{first}",x@example.com\nExample: in,"a second column"\n'))
    assert rows[0].example is example
    assert rows[1].example is True


def test_example_in_another_column_is_not_an_example(tmp_path: Path) -> None:
    rows = read(write(tmp_path, "email,name\nx@example.com,Example: Chris\n"))
    assert not rows[0].example


# --- values are strings, as written -------------------------------------------------------

VALUES = ["NA", "null", "NULL", "None", "N/A", "nan", "NaN", "#N/A", "0012", "1e5", "TRUE", "false", "+33 612",
          "=1+1", "  spaced  ", "-", "@sum", "0x1F", "1,5", "", "'quoted'", '"', "1.0", "00", "\t"]


def test_values_are_kept_exactly(tmp_path: Path) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f"c{i}" for i in range(len(VALUES))])
    writer.writerow(VALUES)
    rows = read(write(tmp_path, out.getvalue()), GENERIC)
    assert list(rows[0].cells.values()) == VALUES
    assert all(type(value) is str for value in rows[0].cells.values())


# --- header matching through the reader ---------------------------------------------------

def test_missing_required_column_names_the_closest_header(tmp_path: Path) -> None:
    path = write(tmp_path, "Display Nme,Email\nJo,jo@example.com\n")
    assert error(path) == (
        f"{path}: missing column displayName (the closest header is 'Display Nme'); expected columns: "
        f"{CREATE_EXPECTED}; the header line has: 'Display Nme', 'Email'")


def test_several_missing_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "Nmae;Favourite colour\nJo;blue\n")
    assert error(path) == (
        f"{path}: missing columns displayName (the closest header is 'Nmae'); signInName or userPrincipalName or federatedIssuer; "
        f"expected columns: {CREATE_EXPECTED}; the header line has: 'Nmae', 'Favourite colour'")


def test_unknown_and_duplicate_columns_are_not_in_cells(tmp_path: Path) -> None:
    ext = "extension_0123456789abcdef0123456789abcdef_requiresMigration"
    source = open_csv(write(tmp_path, f"Name,Notes,email,{ext},Display Name,ext.loyalty\n"
                                      "Jo,hello,jo@example.com,true,Joanna,42\n"), CREATE_COLUMNS)
    assert source.match.unknown == ["Notes", "Display Name (duplicate of displayName, column 1 'Name'; ignored)"]
    assert [r.cells for r in source.rows()] == [
        {"displayName": "Jo", "signInName": "jo@example.com", ext: "true", "ext.loyalty": "42"}]


def test_headers_are_stripped(tmp_path: Path) -> None:
    source = open_csv(write(tmp_path, " name , email \nJo,jo@example.com\n"), CREATE_COLUMNS)
    assert source.headers == ["name", "email"]


# --- rows that do not fit -----------------------------------------------------------------

def test_too_many_and_too_few_fields(tmp_path: Path) -> None:
    text = "c0,c1,c2\na,b,c\na,b\na,b,c,d,e\na,b,c,,\nx\n\nd,e,f\n"
    rows = read(write(tmp_path, text), GENERIC)
    assert [(r.number, r.problem, r.blank) for r in rows] == [
        (1, None, False),
        (2, "row has 2 fields but the header has 3", False),
        (3, "row has 5 fields but the header has 3", False),
        (4, None, False),  # empty extra fields: Excel pads rows to the widest one
        (5, "row has 1 field but the header has 3", False),
        (6, None, True),
        (7, None, False),
    ]
    assert rows[1].cells == {"c0": "a", "c1": "b", "c2": ""}
    assert rows[2].cells == {"c0": "a", "c1": "b", "c2": "c"}
    assert rows[6].cells == {"c0": "d", "c1": "e", "c2": "f"}


def test_trailing_blank_header_cells_do_not_count(tmp_path: Path) -> None:
    rows = read(write(tmp_path, "c0,c1,,\na,b\na,b,,\na,b,c\n"), GENERIC)
    assert [r.problem for r in rows] == [None, None, "row has 3 fields but the header has 2"]


def test_a_field_over_several_lines_hints_at_a_missing_quote(tmp_path: Path) -> None:
    rows = read(write(tmp_path, 'c0,c1,c2\na,"b\nc\nd,e,f\n'), GENERIC)
    assert len(rows) == 1
    assert rows[0].problem == ("row has 2 fields but the header has 3; a quoted field spans several lines, "
                               'check for a missing closing quote (")')
    assert rows[0].cells == {"c0": "a", "c1": "b\nc\nd,e,f\n", "c2": ""}


def test_a_runaway_quote_fails_its_row_only(tmp_path: Path) -> None:
    """Issue 15, defect 9: a cell longer than the csv module's limit stopped the whole file."""
    path = write(tmp_path, 'c0,c1\na,b\nc,"' + "x\n" * 70_000 + "e,f\n")
    rows = read(path, GENERIC)
    assert [(r.number, r.problem) for r in rows] == [
        (1, None),
        (2, 'a quoted field has no closing quote (") before the end of the file; c1 (column 2) is 140,004 '
            "characters long, more than the 65,536 a cell may hold"),
    ]


def test_blank_rows_keep_their_numbers(tmp_path: Path) -> None:
    rows = read(write(tmp_path, "c0,c1\r\na,b\r\n\r\n,\r\n,,,,\r\n  ,\r\nc,d\r\n\r\n"), GENERIC)
    assert [(r.number, r.blank, r.problem) for r in rows] == [
        (1, False, None), (2, True, None), (3, True, None), (4, True, None), (5, False, None), (6, False, None),
        (7, True, None),
    ]
    assert rows[1].cells == rows[2].cells == {"c0": "", "c1": ""}
    assert rows[4].cells == {"c0": "  ", "c1": ""}


def test_no_row_for_the_final_newline(tmp_path: Path) -> None:
    assert len(read(write(tmp_path, "c0,c1\na,b"), GENERIC)) == 1
    assert len(read(write(tmp_path, "c0,c1\na,b\n"), GENERIC)) == 1
    assert len(read(write(tmp_path, "c0,c1\na,b\n\n"), GENERIC)) == 2


# --- streaming ----------------------------------------------------------------------------

def test_rows_can_be_read_twice(tmp_path: Path) -> None:
    source = open_csv(write(tmp_path, "c0,c1\n" + "a,b\n\nc\n" * 10), GENERIC)
    first = list(source.rows())
    assert len(first) == 30 and list(source.rows()) == first


def test_memory_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("signInName,displayName,givenName,surname,city\r\n")
        for i in range(100_000):
            out.write(f"user{i}@example.com,User {i},Given,Surname,City\r\n")
    source = open_csv(path, CREATE_COLUMNS)
    tracemalloc.start()
    try:
        count = sum(1 for _ in source.rows())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    assert peak < 2_000_000, f"reading held {peak:,} bytes at its peak"


@pytest.mark.slow
def test_a_million_rows_in_seconds(tmp_path: Path) -> None:
    path = tmp_path / "million.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(CREATE_COLUMNS.template) + "\r\n")
        for i in range(1_000_000):
            out.write(f"emailAddress,user{i}@example.com,User {i},Given,Surname,No,US,c{i}@example.org,,TRUE\r\n")
    start = time.perf_counter()
    count = sum(1 for row in open_csv(path, CREATE_COLUMNS).rows() if row.problem is None)
    elapsed = time.perf_counter() - start
    assert count == 1_000_000
    assert elapsed < 15, f"1,000,000 rows took {elapsed:.1f} s"


# --- properties ---------------------------------------------------------------------------

# Any text but NUL and lone surrogates (which no UTF encoding can write).
# Any character a cell may hold: no surrogate, no control character but tab and line breaks.
CELL = st.text(st.characters(exclude_categories=["Cs", "Cc"], include_characters="\t\r\n"), max_size=12)
ENCODINGS: dict[str, Callable[[str], bytes]] = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8-sig": lambda text: text.encode("utf-8-sig"),
    "utf-16-le": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16-be": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
}


@st.composite
def csv_files(draw: st.DrawFn, *, ragged: bool) -> tuple[bytes, int, list[list[str]]]:
    """A header c0..c(width-1) and rows written by Python's csv module in any dialect we accept."""
    width = draw(st.integers(1, 6))
    shortest, longest = (0, width + 3) if ragged else (width, width)
    table = draw(st.lists(st.lists(CELL, min_size=shortest, max_size=longest), max_size=12))
    # One column gives the sniffer no delimiter to see: such files are read as comma-separated.
    delimiter = draw(st.sampled_from([",", ";", "\t"])) if width > 1 else ","
    quoting: Literal[0, 1] = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    terminator = draw(st.sampled_from(["\r\n", "\n"]))
    if terminator == "\n" and quoting == csv.QUOTE_MINIMAL:
        # Python 3.11's writer leaves a lone "\r" unquoted when lines end in "\n", which no
        # reader can tell from a line end; such a file is not a valid CSV file.
        table = [[value.replace("\r", "\n") for value in row] for row in table]
    out = io.StringIO(newline="")
    if draw(st.booleans()):
        out.write("version:v1.0" + delimiter * draw(st.integers(0, width)) + terminator)
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator=terminator)
    writer.writerow([f"c{i}" for i in range(width)])
    writer.writerows(table)
    encode = ENCODINGS[draw(st.sampled_from(sorted(ENCODINGS)))]
    return encode(out.getvalue()), width, table


@settings(max_examples=300, deadline=None)
@given(csv_files(ragged=False))
def test_any_table_reads_back_exactly(tmp_path_factory: pytest.TempPathFactory,
                                      case: tuple[bytes, int, list[list[str]]]) -> None:
    content, width, table = case
    path = write(tmp_path_factory.mktemp("prop"), content)
    rows = read(path, GENERIC)
    assert [r.number for r in rows] == list(range(1, len(table) + 1))
    # A cell neutralised for Excel ('=…) is read without its quote (batch.io.quoting).
    assert [r.cells for r in rows] == [dict(zip([f"c{i}" for i in range(width)], map(unquote, values)))
                                       for values in table]
    assert [r.problem for r in rows] == [None] * len(table)
    assert [r.blank for r in rows] == [not any(values) for values in table]


@settings(max_examples=300, deadline=None)
@given(csv_files(ragged=True))
def test_ragged_rows_are_flagged_and_numbering_holds(tmp_path_factory: pytest.TempPathFactory,
                                                     case: tuple[bytes, int, list[list[str]]]) -> None:
    content, width, table = case
    path = write(tmp_path_factory.mktemp("prop"), content)
    rows = read(path, GENERIC)
    assert [r.number for r in rows] == list(range(1, len(table) + 1))
    for row, values in zip(rows, table):
        blank = not any(values)
        fits = blank or (len(values) >= width and not any(values[width:]))
        assert row.blank is blank
        assert (row.problem is None) is fits
        if not fits:
            assert row.problem is not None and row.problem.startswith(f"row has {len(values)} field")
        assert row.cells == {f"c{i}": unquote(values[i]) if i < len(values) else "" for i in range(width)}


def test_source_is_a_plain_record(tmp_path: Path) -> None:
    source = open_csv(write(tmp_path, TEXT), CREATE_COLUMNS)
    assert isinstance(source, CsvSource)
    assert source.path == tmp_path / "in.csv"
    assert source.match.by_index == {0: "displayName", 1: "signInName", 2: "surname"}


def test_a_password_keeps_its_leading_quote_other_cells_lose_it(tmp_path: Path) -> None:
    from batch.io.columns import CREATE_COLUMNS

    path = tmp_path / "q.csv"
    path.write_text("displayName,signInName,password,mobilePhone\r\n'=Eve,eve@example.com,'-Str0ng!Pass,'+1 555\r\n",
                    encoding="utf-8")
    (row,) = list(open_csv(path, CREATE_COLUMNS).rows())
    assert row.cells["displayName"] == "=Eve"
    assert row.cells["password"] == "'-Str0ng!Pass"
    assert row.cells["mobilePhone"] == "+1 555"
