"""The export files of a fixed set of users are byte for byte what they were before the
export's hot path was rewritten for speed (issue 16): tests/fixtures/export_golden holds the
files the per-record code wrote (CSV and JSON Lines as bytes, XLSX and Parquet as the values
read back), with the summary counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

GOLDEN = Path(__file__).parent / "fixtures" / "export_golden"
D = "contoso.onmicrosoft.com"


def _user(i: int, **extra: Any) -> dict[str, Any]:
    uid = f"{i:08x}-0000-4000-8000-{i:012x}"
    return {"id": uid, "userPrincipalName": f"{uid}@{D}", "displayName": f"Customer {i}", "givenName": "Customer",
            "surname": str(i), "mail": f"c{i}@example.com", "accountEnabled": True, "usageLocation": "FR",
            "createdDateTime": f"2025-0{1 + i % 9}-01T00:00:00Z", "creationType": "LocalAccount",
            "identities": [{"signInType": "emailAddress", "issuer": D, "issuerAssignedId": f"c{i}@example.com"},
                           {"signInType": "userPrincipalName", "issuer": D, "issuerAssignedId": f"{uid}@{D}"}],
            **extra}


USERS: list[dict[str, Any]] = [
    _user(1),
    _user(2, displayName="=HYPERLINK(\"http://x\")", surname="+33 1 23", givenName="-minus", mail=None,
          accountEnabled=False, usageLocation=None, extension_abc_loyaltyTier="@gold"),
    _user(3, displayName="'=quoted already", surname="O'Brien", givenName="\ttab", businessPhones=["+1 555", "2"],
          identities=[{"signInType": "userName", "issuer": D, "issuerAssignedId": "ada"},
                      {"signInType": "emailAddress", "issuer": D, "issuerAssignedId": "a@x.org"},
                      {"signInType": "emailAddress", "issuer": D, "issuerAssignedId": "b@x.org"},
                      {"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "123"},
                      {"signInType": "federated", "issuer": "facebook.com", "issuerAssignedId": "456"}]),
    _user(4, displayName="Zoë \"quotes\", commas\r\nand lines", surname="", mail="", createdDateTime=None,
          accountEnabled=None, identities=None, extension_abc_loyaltyTier={"tier": "x", "n": 1}),
    _user(5, displayName="\rcarriage", usageLocation="  ", createdDateTime="garbage", identities=[],
          employeeId=12345, **{"@removed": {"reason": "changed"}}),
    {"id": "not-a-uuid", "@removed": {"reason": "deleted"}},
    _user(7, identities=[{"signInType": "userName", "issuer": D, "issuerAssignedId": ""},
                         {"signInType": "federated", "issuer": "x.com"}], displayName="日本語 ✓"),
]

# name, --select, format, --raw, --sign-in-type, delta columns
CASES: list[tuple[str, str | None, str, bool, str | None, bool]] = [
    ("default", None, "csv", False, None, False),
    ("raw", None, "csv", True, None, False),
    ("narrow", "displayName,signIn.federated,ext.loyaltyTier,businessPhones,employeeId", "csv", False, None, False),
    ("email", None, "csv", False, "emailAddress", False),
    ("delta", "id,displayName", "csv", False, None, True),
    ("lines", None, "jsonl", False, None, False),
    ("lines_delta", "+ext.loyaltyTier", "jsonl", False, "userName", True),
    ("book", "+ext.loyaltyTier", "xlsx", False, None, False),
    ("table", "+ext.loyaltyTier,+employeeId", "parquet", False, None, False),
]


def content(path: Path, fmt: str) -> str:
    """What is compared: the bytes of a text format, the values of a binary one."""
    if fmt in ("csv", "jsonl"):
        return path.read_bytes().decode("utf-8")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return json.dumps(pq.read_table(path).to_pylist(), ensure_ascii=False, sort_keys=True)
    import openpyxl

    sheet = openpyxl.load_workbook(path).active
    return json.dumps([[(c.value, c.quotePrefix) for c in row] for row in sheet.iter_rows()], ensure_ascii=False)


def write_cases(out: Path) -> None:
    """Every case's file and counts under `out`, written page by page as an export does."""
    from batch.export.fields import COUNTED_COLUMNS, choose_columns
    from batch.export.output import ExportFile
    from batch.export.rows import row_maker

    for name, select, fmt, raw, sign_in, delta in CASES:
        columns = choose_columns(select, extension_names=["extension_abc_loyaltyTier"], extensions_app_hex="abc",
                                 delta=delta)
        fetched = columns.including(COUNTED_COLUMNS)
        file = ExportFile(out / f"{name}.{fmt}", fmt, columns.names, fetched.names, raw=raw)
        convert = row_maker(fetched, None, sign_in)
        file.write(convert(USERS[:3]))
        file.write(convert(USERS[3:]))
        written = file._writer.finish()
        (out / f"{name}.{fmt}.txt").write_text(content(written, fmt), encoding="utf-8")
        (out / f"{name}.counts.json").write_text(json.dumps(file.counts.to_dict(), sort_keys=True), encoding="utf-8")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_export_files_are_what_the_per_record_code_wrote(tmp_path: Path, case: tuple[Any, ...]) -> None:
    write_cases(tmp_path)
    name, fmt = case[0], case[2]
    assert (tmp_path / f"{name}.{fmt}.txt").read_text(encoding="utf-8") == \
        (GOLDEN / f"{name}.{fmt}.txt").read_text(encoding="utf-8")
    assert json.loads((tmp_path / f"{name}.counts.json").read_text(encoding="utf-8")) == \
        json.loads((GOLDEN / f"{name}.counts.json").read_text(encoding="utf-8"))


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6),
                    st.lists(st.text(max_size=3), max_size=2), st.dictionaries(st.text(max_size=2), st.text(max_size=2),
                                                                              max_size=1))
_IDENTITY = st.fixed_dictionaries({}, optional={
    "signInType": st.sampled_from(["emailAddress", "userName", "federated", "userPrincipalName", "phoneNumber"]),
    "issuer": st.text(max_size=3), "issuerAssignedId": st.one_of(st.none(), st.text(max_size=4))})
_USER = st.fixed_dictionaries({}, optional={
    "id": st.text(max_size=4), "displayName": _VALUES, "accountEnabled": _VALUES, "businessPhones": _VALUES,
    "extension_abc_loyaltyTier": _VALUES, "deletedDateTime": st.one_of(st.none(), st.just("2025-01-31T10:00:00Z"),
                                                                       st.text(max_size=4)),
    "identities": st.one_of(st.none(), st.lists(_IDENTITY, max_size=4))})


@settings(max_examples=300, deadline=None)
@given(_USER)
def test_the_fast_flattening_gives_what_flatten_gives(user: dict[str, Any]) -> None:
    from batch.export.fields import choose_columns, flatten, row_flattener

    columns = choose_columns("+businessPhones", extension_names=["extension_abc_loyaltyTier"],
                             extensions_app_hex="abc", deleted=True)
    record = flatten(user, columns)
    assert row_flattener(columns)(user) == [record[name] for name in columns.names]


def test_a_file_whose_columns_do_not_lead_the_fetched_ones_picks_them_out(tmp_path: Path) -> None:
    from batch.export.output import ExportFile

    file = ExportFile(tmp_path / "p.csv", "csv", ("displayName", "id", "jobTitle"), ("id", "displayName", "usageLocation"),
                      raw=False)
    file.write([["1", "=Ada", "FR"], ["2", "Grace", ""]])
    assert file._writer.finish().read_bytes().decode("utf-8-sig") == \
        "displayName,id,jobTitle\r\n'=Ada,1,\r\nGrace,2,\r\n"
    assert file.counts.to_dict()["by_usage_location"] == {"FR": 1, "(not set)": 1}


if __name__ == "__main__":  # python tests/test_export_golden.py OUT: write the golden files with the code on the path
    import sys

    write_cases(Path(sys.argv[1]))
