"""`entra-batch export` end to end on the built-in emulator: columns and flattening, every
format, formula neutralising, filters, deleted customers, delta rounds, partitions, and the
round trips of an exported file into update, delete, reset-password and restore."""

from __future__ import annotations

import csv
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch.cli import main
from batch.emulator import Store
from batch.emulator.directory import Directory
from batch.export.fields import DEFAULT_COLUMNS, SelectError, choose_columns, flatten, row_flattener
from batch.export.listing import PARTITION_PREFIXES
from batch.io.quoting import neutralise, unquote

DOMAIN = "contoso.onmicrosoft.com"


@contextmanager
def directory(home: Path) -> Iterator[tuple[Directory, Any]]:
    store = Store(home / "emulator.db")
    try:
        yield Directory(store, time.time), store.tenants()[0]
    finally:
        store.close()


def customer(name: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "displayName": name.title(),
        "identities": [{"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": f"{name}@example.com"}],
        "passwordProfile": {"password": "Aa1!" + uuid.uuid4().hex[:12], "forceChangePasswordNextSignIn": False},
        "passwordPolicies": "DisablePasswordExpiration",
    }
    body.update(extra)
    return body


def seed(home: Path, *bodies: dict[str, Any]) -> list[dict[str, Any]]:
    with directory(home) as (users, tenant):
        return [users.create(tenant, body) for body in bodies]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def results(run_dir: Path) -> list[dict[str, str]]:
    return read_csv(run_dir / "results.csv")


def export(tmp_path: Path, name: str, *args: str) -> tuple[int, Path]:
    out = tmp_path / name
    status = main(["export", "--out", str(out), "--out-dir", str(tmp_path / f"run-{name}"), "--quiet", *args])
    return status, out


# ---- columns and flattening ---------------------------------------------------------------

def test_flatten_spreads_identities_one_column_per_sign_in_type() -> None:
    columns = choose_columns(None, extension_names=["extension_abc_loyaltyTier"], extensions_app_hex="abc")
    user = {
        "id": "1", "userPrincipalName": "1@contoso.onmicrosoft.com", "accountEnabled": False,
        "identities": [
            {"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": "ada@example.com"},
            {"signInType": "userName", "issuer": DOMAIN, "issuerAssignedId": "ada_l"},
            {"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "1234"},
            {"signInType": "federated", "issuer": "facebook.com", "issuerAssignedId": "99"},
            {"signInType": "userPrincipalName", "issuer": DOMAIN, "issuerAssignedId": "1@contoso.onmicrosoft.com"},
        ],
        "extension_abc_loyaltyTier": "gold", "surname": None,
    }
    record = flatten(user, columns)
    assert list(record) == [*DEFAULT_COLUMNS, "ext.loyaltyTier"]
    assert record["signIn.emailAddress"] == "ada@example.com"
    assert record["signIn.userName"] == "ada_l"
    assert record["signIn.federated"] == "google.com/1234; facebook.com/99"
    assert record["accountEnabled"] == "false"
    assert record["surname"] == "" and record["mail"] == ""
    assert record["ext.loyaltyTier"] == "gold"
    assert "identities" in columns.select and "extension_abc_loyaltyTier" in columns.select


def test_sign_in_types_are_filed_whatever_their_case() -> None:
    """External ID documents its user-name identity as `username` (how-to-sign-in-alias.md), B2C
    as `userName`; an `emailAddress1` is an email sign-in (objectidentity.md). Each lands in its
    column, through the per-row flattener and the one-pass one alike."""
    columns = choose_columns(None, extension_names=[], extensions_app_hex=None)
    user = {"id": "1", "identities": [
        {"signInType": "username", "issuer": DOMAIN, "issuerAssignedId": "ada_l"},
        {"signInType": "emailAddress1", "issuer": DOMAIN, "issuerAssignedId": "ada@example.com"},
        {"signInType": "Federated", "issuer": "google.com", "issuerAssignedId": "1234"}]}
    record = flatten(user, columns)
    assert (record["signIn.userName"], record["signIn.emailAddress"], record["signIn.federated"]) == \
        ("ada_l", "ada@example.com", "google.com/1234")
    flat = row_flattener(columns)(user)
    assert [flat[columns.names.index(n)] for n in ("signIn.userName", "signIn.emailAddress", "signIn.federated")] == \
        ["ada_l", "ada@example.com", "google.com/1234"]


def test_select_narrows_or_adds() -> None:
    narrow = choose_columns("displayName, signIn.emailAddress,JOBTITLE", extension_names=[], extensions_app_hex=None)
    assert narrow.names == ("id", "displayName", "signIn.emailAddress", "jobTitle")
    assert narrow.select == ["id", "displayName", "identities", "jobTitle"]
    added = choose_columns("+city,+ext.tier", extension_names=[], extensions_app_hex="abc")
    assert added.names == (*DEFAULT_COLUMNS, "city", "ext.tier")
    assert "extension_abc_tier" in added.select
    with pytest.raises(SelectError, match="not a property"):
        choose_columns("displayName,shoeSize", extension_names=[], extensions_app_hex=None)
    with pytest.raises(SelectError, match="not both"):
        choose_columns("displayName,+city", extension_names=[], extensions_app_hex=None)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("'=+-@\t\rab1 "), max_size=8) | st.text(max_size=12))
def test_neutralising_is_a_bijection(value: str) -> None:
    written = neutralise(value)
    assert unquote(written) == value
    assert not written.startswith(("=", "+", "-", "@", "\t", "\r"))  # Excel never sees a formula


def test_neutralising_is_undone_by_the_reader() -> None:
    for value in ["=1+2", "+1 555 0100", "-3", "@SUM(A1)", "\tx", "\rx", "'=already", "''+x", "O'Brien", "'tis", ""]:
        assert unquote(neutralise(value)) == value
    assert neutralise("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert neutralise("O'Brien") == "O'Brien"


def test_partitions_cover_every_character_a_upn_may_start_with() -> None:
    from batch import rules

    allowed = {c.lower() for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'._!#^~-"
               if rules.upn_problem(f"{c}x@{DOMAIN}") is None}
    assert allowed <= set(PARTITION_PREFIXES)
    assert list(PARTITION_PREFIXES) == sorted(set(PARTITION_PREFIXES))


# ---- formats ------------------------------------------------------------------------------

@pytest.fixture
def people(home: Path) -> list[dict[str, Any]]:
    return seed(
        home,
        customer("ada", givenName="Ada", usageLocation="GB"),
        customer("grace", accountEnabled=False, usageLocation="US", displayName="=HYPERLINK(\"http://evil\",\"x\")"),
        customer("amelie", displayName="Amélie Poulain", mobilePhone="+33 6 12 34 56 78", usageLocation="FR"),
    )


def test_csv_export_lists_every_customer_with_excel_safe_cells(home: Path, tmp_path: Path,
                                                              people: list[dict[str, Any]]) -> None:
    status, out = export(tmp_path, "all.csv", "--select", "+mobilePhone")
    assert status == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # a BOM, so that Excel reads UTF-8
    rows = read_csv(out)
    assert {r["id"] for r in rows} == {p["id"] for p in people}
    by_mail = {r["signIn.emailAddress"]: r for r in rows}
    assert by_mail["grace@example.com"]["displayName"] == "'=HYPERLINK(\"http://evil\",\"x\")"
    assert by_mail["grace@example.com"]["accountEnabled"] == "false"
    assert by_mail["amelie@example.com"]["displayName"] == "Amélie Poulain"
    assert by_mail["amelie@example.com"]["mobilePhone"] == "'+33 6 12 34 56 78"
    assert not (tmp_path / "all.csv.partial").exists()
    summary = json.loads((tmp_path / "run-all.csv" / "summary.json").read_text())
    assert summary["customers"] == 3 and summary["counts"]["by_status"] == {"enabled": 2, "blocked": 1}

    status, raw = export(tmp_path, "raw.csv", "--raw")
    assert status == 0
    assert {r["displayName"] for r in read_csv(raw)} >= {"=HYPERLINK(\"http://evil\",\"x\")"}


def test_jsonl_export_keeps_types(home: Path, tmp_path: Path, people: list[dict[str, Any]]) -> None:
    status, out = export(tmp_path, "all.jsonl")
    assert status == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    grace = next(line for line in lines if line["signIn.emailAddress"] == "grace@example.com")
    assert grace["accountEnabled"] is False and grace["givenName"] is None
    assert grace["displayName"] == "=HYPERLINK(\"http://evil\",\"x\")"  # JSON is not opened by Excel


def test_xlsx_export_writes_text_cells_with_a_quote_prefix(home: Path, tmp_path: Path,
                                                           people: list[dict[str, Any]]) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    status, out = export(tmp_path, "all.xlsx")
    assert status == 0
    sheet = openpyxl.load_workbook(out).active
    header = [c.value for c in sheet[1]]
    assert header == list(DEFAULT_COLUMNS)
    rows = {row[header.index("signIn.emailAddress")].value: row for row in sheet.iter_rows(min_row=2)}
    assert len(rows) == 3
    cell = rows["grace@example.com"][header.index("displayName")]
    assert cell.value == "=HYPERLINK(\"http://evil\",\"x\")" and cell.data_type == "s"  # a string, never a formula
    assert cell.quotePrefix
    assert not rows["ada@example.com"][header.index("displayName")].quotePrefix
    assert sheet.freeze_panes == "A2"


def test_parquet_export_has_a_typed_schema(home: Path, tmp_path: Path, people: list[dict[str, Any]]) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    status, out = export(tmp_path, "all.parquet")
    assert status == 0
    table = pq.read_table(out)
    assert table.num_rows == 3
    assert str(table.schema.field("accountEnabled").type) == "bool"
    rows = {r["signIn.emailAddress"]: r for r in table.to_pylist()}
    assert rows["grace@example.com"]["accountEnabled"] is False
    assert rows["ada@example.com"]["surname"] is None


# ---- filters ------------------------------------------------------------------------------

def test_friendly_filters_and_odata_pass_through(home: Path, tmp_path: Path, people: list[dict[str, Any]]) -> None:
    seed(home, customer("bjorn", identities=[{"signInType": "userName", "issuer": DOMAIN, "issuerAssignedId": "bjorn_o"}]))

    def ids(*args: str) -> set[str]:
        status, out = export(tmp_path, f"f{uuid.uuid4().hex[:6]}.csv", *args)
        assert status == 0
        return {r["signIn.emailAddress"] or r["signIn.userName"] for r in read_csv(out)}

    assert ids("--blocked") == {"grace@example.com"}
    assert ids("--enabled") == {"ada@example.com", "amelie@example.com", "bjorn_o"}
    assert ids("--sign-in-type", "userName") == {"bjorn_o"}
    assert ids("--filter", "usageLocation eq 'FR'") == {"amelie@example.com"}
    assert ids("--filter", "usageLocation eq 'FR'", "--sequential") == {"amelie@example.com"}
    tomorrow = (datetime.utcnow() + timedelta(days=1)).strftime("%Y-%m-%d")
    assert ids("--created-after", tomorrow) == set()  # createdDateTime needs Graph's advanced query mode
    assert len(ids("--created-before", tomorrow)) == 4


def test_a_filter_graph_refuses_is_a_usage_error(home: Path, tmp_path: Path, people: list[dict[str, Any]],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    status, out = export(tmp_path, "bad.csv", "--filter", "shoeSize eq 42")
    assert status == 2
    assert "Graph refused the export's query" in capsys.readouterr().err
    assert not out.exists()
    assert main(["export", "--since", str(tmp_path / "s.json"), "--blocked", "--quiet"]) == 2


def test_custom_attributes_are_exported_under_their_short_names(home: Path, tmp_path: Path) -> None:
    with directory(home) as (users, tenant):
        attribute = users.store.add_extension_property(tenant.id, "loyaltyTier")  # declared before it is written
    seed(home, customer("ada", **{attribute: "gold"}), customer("alan"))
    status, out = export(tmp_path, "ext.csv")
    assert status == 0
    rows = {r["signIn.emailAddress"]: r for r in read_csv(out)}
    assert rows["ada@example.com"]["ext.loyaltyTier"] == "gold"
    assert rows["alan@example.com"]["ext.loyaltyTier"] == ""


def test_a_misspelt_custom_attribute_is_refused_naming_the_tenant_s(home: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # `--select ext.loyaltyTeir` exported an all-blank column (found by a bug hunt).
    with directory(home) as (users, tenant):
        users.store.add_extension_property(tenant.id, "loyaltyTier")
    seed(home, customer("ada"))
    capsys.readouterr()
    assert export(tmp_path, "typo.csv", "--select", "id,ext.loyaltyTeir")[0] == 2
    assert "--select ext.loyaltyTeir: the tenant has no such custom attribute (its custom attributes: " \
           "ext.loyaltyTier)" in capsys.readouterr().err
    assert export(tmp_path, "case.csv", "--select", "id,ext.LOYALTYTIER")[0] == 0
    assert list(read_csv(tmp_path / "case.csv")[0]) == ["id", "ext.loyaltyTier"]


# ---- deleted customers --------------------------------------------------------------------

def test_deleted_export_says_until_when_each_can_be_restored(home: Path, tmp_path: Path,
                                                            people: list[dict[str, Any]]) -> None:
    with directory(home) as (users, tenant):
        users.delete(tenant, people[0]["id"])
    status, out = export(tmp_path, "deleted.csv", "--deleted")
    assert status == 0
    (row,) = read_csv(out)
    assert row["id"] == people[0]["id"]
    deleted = datetime.fromisoformat(row["deletedDateTime"].replace("Z", "+00:00"))
    until = datetime.fromisoformat(row["restorableUntil"].replace("Z", "+00:00"))
    assert until - deleted == timedelta(days=30)


# ---- delta --------------------------------------------------------------------------------

def test_since_marks_added_changed_and_removed_customers(home: Path, tmp_path: Path,
                                                         people: list[dict[str, Any]]) -> None:
    state = tmp_path / "state.json"
    status, first = export(tmp_path, "d1.csv", "--since", str(state))
    assert status == 0 and state.exists()
    rows = read_csv(first)
    assert {r["change"] for r in rows} == {"added"} and len(rows) == 3
    assert list(rows[0])[:2] == ["change", "removal"]

    time.sleep(1.1)  # createdDateTime has a one-second resolution
    ada, grace, amelie = people
    (newcomer,) = seed(home, customer("newcomer"))
    with directory(home) as (users, tenant):
        users.update(tenant, ada["id"], {"jobTitle": "Analyst"})
        users.delete(tenant, grace["id"])
        users.delete(tenant, amelie["id"])
        users.purge(tenant, amelie["id"])
    status, second = export(tmp_path, "d2.csv", "--since", str(state))
    assert status == 0
    changes = {r["id"]: (r["change"], r["removal"]) for r in read_csv(second)}
    assert changes == {newcomer["id"]: ("added", ""), ada["id"]: ("changed", ""),
                       grace["id"]: ("removed", "deleted"), amelie["id"]: ("removed", "purged")}

    status, third = export(tmp_path, "d3.csv", "--since", str(state))
    assert status == 0 and read_csv(third) == []


def test_a_state_file_of_another_tenant_is_refused(home: Path, tmp_path: Path, people: list[dict[str, Any]],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.json"
    assert export(tmp_path, "d1.csv", "--since", str(state))[0] == 0
    saved = json.loads(state.read_text())
    saved["target"]["tenant_id"] = "another"
    state.write_text(json.dumps(saved))
    assert export(tmp_path, "d2.csv", "--since", str(state))[0] == 2
    assert "another target" in capsys.readouterr().err


# ---- partitions ---------------------------------------------------------------------------

def test_partitions_list_everyone_once_in_a_stable_order(home: Path, tmp_path: Path) -> None:
    upns = ["!bang", "#hash", "'quote", "-dash", "_under", "^caret", "~tilde", "Zed", "zoe", "9lives", "a.b"]
    seed(home, *(customer(f"u{i}", userPrincipalName=f"{u}@{DOMAIN}") for i, u in enumerate(upns)),
         *(customer(f"gen{i}") for i in range(40)))
    status, sequential = export(tmp_path, "seq.csv", "--sequential")
    assert status == 0
    status, partitioned = export(tmp_path, "part.csv", "--concurrency", "5")
    assert status == 0
    status, again = export(tmp_path, "again.csv")
    assert status == 0
    seq_ids = [r["id"] for r in read_csv(sequential)]
    part = read_csv(partitioned)
    assert len(seq_ids) == len(set(seq_ids)) == 51
    assert sorted(r["id"] for r in part) == sorted(seq_ids)  # everyone, once
    assert read_csv(again) == part  # the same directory gives the same file
    firsts = [unquote(r["userPrincipalName"])[0].lower() for r in part]
    assert firsts == sorted(firsts, key=PARTITION_PREFIXES.index)  # grouped by the first character
    assert not list(tmp_path.glob(".export-spool-*"))


# ---- round trips --------------------------------------------------------------------------

def test_an_export_feeds_update_delete_reset_and_restore_unchanged(home: Path, tmp_path: Path,
                                                                   people: list[dict[str, Any]]) -> None:
    status, out = export(tmp_path, "all.csv", "--select", "+mobilePhone")
    assert status == 0

    assert main(["update", str(out), "--out-dir", str(tmp_path / "u1"), "--quiet"]) == 0
    assert [r["status"] for r in results(tmp_path / "u1")] == ["skipped"] * 3  # neutralised cells read back as they were

    edited = read_csv(out)
    ada = next(i for i, r in enumerate(edited) if r["signIn.emailAddress"] == "ada@example.com")
    edited[ada]["displayName"] = "Edited In Excel"
    with out.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(edited[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(edited)
    assert main(["update", str(out), "--out-dir", str(tmp_path / "u2"), "--quiet"]) == 0
    assert [r["status"] for r in results(tmp_path / "u2")] == ["updated" if i == ada else "skipped" for i in range(3)]

    assert main(["reset-password", str(out), "--out-dir", str(tmp_path / "r"), "--quiet"]) == 0
    assert [r["status"] for r in results(tmp_path / "r")] == ["password_reset"] * 3

    assert main(["delete", str(out), "--yes", "--out-dir", str(tmp_path / "d"), "--quiet"]) == 0
    assert [r["status"] for r in results(tmp_path / "d")] == ["deleted"] * 3

    status, deleted = export(tmp_path, "deleted.csv", "--deleted")
    assert status == 0
    assert main(["restore", str(deleted), "--out-dir", str(tmp_path / "rs"), "--quiet"]) == 0
    assert [r["status"] for r in results(tmp_path / "rs")] == ["restored"] * 3
    with directory(home) as (users, tenant):
        assert users.get_live(tenant, people[0]["id"]).data["displayName"] == "Edited In Excel"
        assert users.get_live(tenant, people[1]["id"]).data["displayName"] == "=HYPERLINK(\"http://evil\",\"x\")"


def test_summary_is_printed(home: Path, tmp_path: Path, people: list[dict[str, Any]],
                            capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = export(tmp_path, "all.csv", "--summary")
    assert status == 0
    printed = capsys.readouterr().out
    assert "export: 3 customers" in printed
    for heading in ("Status", "Sign-in type", "Usage location", "Creation month"):
        assert heading in printed


def test_report_of_a_real_export_opens_in_a_browser(home: Path, tmp_path: Path, people: list[dict[str, Any]]) -> None:
    from test_export_report import find_chromium, run_chromium

    page = tmp_path / "report.html"
    status, _ = export(tmp_path, "all.csv", "--report", str(page))
    assert status == 0
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "http://" not in html and "https://" not in html
    chromium = find_chromium()
    dumped = run_chromium(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    assert dumped.stdout.count("<svg") == 4
    assert "<b>3</b>" in dumped.stdout  # the customer count in the header


def test_a_page_that_cannot_be_fetched_stops_the_export_and_says_what_is_left(
        home: Path, tmp_path: Path, people: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from batch.errors import GraphRequestFailed
    from batch.export import listing

    real = listing.pages

    async def failing(client: Any, source: Any) -> Any:
        async for body in real(client, source):
            yield body
        raise GraphRequestFailed("GET /users", status=503, code="ServiceUnavailable", detail="gave up after 15 minutes")

    monkeypatch.setattr(listing, "pages", failing)
    status, out = export(tmp_path, "cut.csv", "--sequential")
    assert status == 3
    err = capsys.readouterr().err
    assert "ServiceUnavailable" in err and "cut.csv.partial holds what was written so far" in err
    assert not out.exists()
    assert len(read_csv(tmp_path / "cut.csv.partial")) == 3


# ---- what a review found ------------------------------------------------------------------

def test_narrow_columns_still_count_and_mark_changes_right(home: Path, tmp_path: Path,
                                                           people: list[dict[str, Any]]) -> None:
    state = tmp_path / "state.json"
    args = ["--select", "id,displayName", "--sign-in-type", "emailAddress", "--since", str(state)]
    status, first = export(tmp_path, "n1.csv", *args)
    assert status == 0 and len(read_csv(first)) == 3
    summary = json.loads((tmp_path / "run-n1.csv" / "summary.json").read_text())["counts"]
    assert summary["by_status"] == {"enabled": 2, "blocked": 1}  # counted though not exported
    assert summary["by_sign_in_type"] == {"emailAddress": 3}
    time.sleep(1.1)
    (newcomer,) = seed(home, customer("newcomer"))
    with directory(home) as (users, tenant):
        users.update(tenant, people[0]["id"], {"jobTitle": "Analyst"})
    status, second = export(tmp_path, "n2.csv", *args)
    assert status == 0
    assert {r["id"]: r["change"] for r in read_csv(second)} == {newcomer["id"]: "added", people[0]["id"]: "changed"}
    assert list(read_csv(second)[0]) == ["change", "removal", "id", "displayName"]


def test_refused_queries_write_nothing(home: Path, tmp_path: Path, people: list[dict[str, Any]]) -> None:
    assert export(tmp_path, "bad.csv", "--filter", "foo eq 'x'")[0] == 2
    assert export(tmp_path, "bad-deleted.csv", "--deleted", "--filter", "foo eq 'x'")[0] == 2
    assert not list(tmp_path.glob("bad*.csv*"))
    assert export(tmp_path, "old.xls")[0] == 2


def test_unwritable_places_are_reported_without_a_traceback(home: Path, tmp_path: Path, people: list[dict[str, Any]],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["export", "--out-dir", str(blocker / "run"), "--quiet"]) == 2
    assert main(["export", "--out", str(blocker / "x.csv"), "--out-dir", str(tmp_path / "r1"), "--quiet"]) == 3
    status = main(["export", "--out", str(tmp_path / "ok.csv"), "--report", str(blocker / "r.html"),
                   "--out-dir", str(tmp_path / "r2"), "--quiet"])
    assert status == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "cannot write" in err and "complete in" in err
    assert len(read_csv(tmp_path / "ok.csv")) == 3


def test_a_custom_attribute_selected_in_another_case_is_found(home: Path, tmp_path: Path) -> None:
    with directory(home) as (users, tenant):
        attribute = users.store.add_extension_property(tenant.id, "loyaltyTier")  # declared before it is written
    seed(home, customer("ada", **{attribute: "gold"}))
    status, out = export(tmp_path, "ext.csv", "--select", "id,ext.LOYALTYTIER,ext.loyaltyTier")
    assert status == 0
    assert read_csv(out) == [{"id": read_csv(out)[0]["id"], "ext.loyaltyTier": "gold"}]


# ---- the Python API -----------------------------------------------------------------------

async def test_the_python_api_exports_in_the_callers_event_loop(tmp_path: Path) -> None:
    """`batch.run_export` as a library, awaited in this test's own loop, with the emulator in
    process as the Graph: no CLI, no environment, a typed frozen report matching summary.json."""
    import asyncio
    from dataclasses import FrozenInstanceError

    import batch
    from batch.emulator import EmulatorApp
    from batch.emulator.inprocess import EmulatorTransport

    loop = asyncio.get_running_loop()
    store = Store(tmp_path / "emulator.db")
    try:
        tenant, app = store.tenants()[0], store.default_app()
        users = Directory(store, time.time)
        ada = users.create(tenant, customer("ada", usageLocation="GB"))
        grace = users.create(tenant, customer("grace", accountEnabled=False, usageLocation="US"))
        target = batch.Target("local", "http://emulator.local/v1.0", tenant_id=tenant.id, client_id=app.client_id,
                              client_secret=app.secret or "", authority_host="http://emulator.local",
                              domain=tenant.default_domain, extensions_app_id=tenant.extensions_app_id)
        transport = EmulatorTransport(EmulatorApp(store))
        seen: list[tuple[int, int | None]] = []
        started: list[Path] = []
        report = await batch.run_export(
            batch.ExportRequest(out=str(tmp_path / "customers.jsonl"), sequential=True, select="id,displayName"),
            target, runs_root=tmp_path / "runs", transport=transport, on_start=started.append,
            on_progress=lambda progress: seen.append((progress.customers, progress.total)))
        state = tmp_path / "state.json"
        changes = await batch.run_export(batch.ExportRequest(out=str(tmp_path / "changes.csv"), since=str(state)),
                                         target, runs_root=tmp_path / "runs", transport=transport)
    finally:
        store.close()
    assert asyncio.get_running_loop() is loop

    assert isinstance(report, batch.ExportReport)
    assert started == [report.run_dir] and report.run_dir.parent == tmp_path / "runs"
    assert (report.customers, report.pages, report.mode, report.format) == (2, 1, "sequential", "jsonl")
    assert report.columns == ("id", "displayName") and report.target == "local" and report.throttled_429 == 0
    assert report.notes == () and report.report_path is None and report.customers_per_second is not None
    assert report.counts.total == 2 and dict(report.counts.by_status) == {"enabled": 1, "blocked": 1}
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)
    lines = [json.loads(line) for line in report.path.read_text(encoding="utf-8").splitlines()]
    assert report.path == tmp_path / "customers.jsonl" and not Path(f"{report.path}.partial").exists()
    assert {(line["id"], line["displayName"]) for line in lines} == {(ada["id"], "Ada"), (grace["id"], "Grace")}
    assert json.loads((report.run_dir / "summary.json").read_text(encoding="utf-8")) == report.as_json()
    assert report.as_json()["counts"]["by_usage_location"] == {"GB": 1, "US": 1}  # counted though not exported
    with pytest.raises(FrozenInstanceError):
        report.customers = 3  # type: ignore[misc]

    assert changes.mode == "delta" and changes.customers == 2 and changes.since == str(state)
    assert {row["change"] for row in read_csv(changes.path)} == {"added"}
    assert json.loads(state.read_text(encoding="utf-8"))["target"]["tenant_id"] == tenant.id


# ---- expired page tokens and delta links (GRAPH.md §15.3) ---------------------------------

class SteppedClock:
    """Graph's clock for the emulator in process: real time plus what a test skips ahead."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.time() + self.skipped


@contextmanager
def expiring_graph(tmp_path: Path, count: int, **settings: Any) -> Iterator[tuple[Any, Any, SteppedClock, list[str]]]:
    """An emulator in process whose page tokens last a minute (or as `settings` say), holding
    `count` customers: (target, transport, clock, their ids)."""
    import batch
    from batch.emulator import EmulatorApp, EmulatorSettings
    from batch.emulator.inprocess import EmulatorTransport

    store = Store(tmp_path / "emulator.db")
    try:
        tenant, app = store.tenants()[0], store.default_app()
        users = Directory(store, time.time)
        # UPNs that all start with "u": one partition holds everyone, page after page.
        ids = [users.create(tenant, customer(f"user{i:03d}", userPrincipalName=f"user{i:03d}@{DOMAIN}"))["id"]
               for i in range(count)]
        target = batch.Target("local", "http://emulator.local/v1.0", tenant_id=tenant.id, client_id=app.client_id,
                              client_secret=app.secret or "", authority_host="http://emulator.local",
                              domain=tenant.default_domain, extensions_app_id=tenant.extensions_app_id)
        clock = SteppedClock()
        emulator = EmulatorApp(store, EmulatorSettings(**{"page_token_ttl_seconds": 60, **settings}), clock)
        yield target, EmulatorTransport(emulator), clock, ids
    finally:
        store.close()


def pause_after(clock: SteppedClock, customers: list[int]) -> Any:
    """An on_progress that, once `customers[0]` customers have arrived (then the next number...),
    lets two minutes pass on Graph's clock before the next request: the next link's page
    token has expired by then. An empty list pauses after every page."""
    every = not customers

    def on_progress(progress: Any) -> None:
        if every or (customers and progress.customers >= customers[0]):
            customers[:1] = []
            clock.skipped += 120
    return on_progress


@pytest.mark.parametrize("mode", [{"sequential": True}, {"sequential": False, "concurrency": 2}])
async def test_an_expired_page_token_restarts_the_listing_without_duplicates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: dict[str, Any]) -> None:
    import batch
    from batch.export import listing

    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    with expiring_graph(tmp_path, 9) as (target, transport, clock, ids):
        report = await batch.run_export(
            batch.ExportRequest(out=str(tmp_path / "all.jsonl"), select="id", **mode), target,
            runs_root=tmp_path / "runs", transport=transport, on_progress=pause_after(clock, [2, 6]))
    exported = [json.loads(line)["id"] for line in report.path.read_text(encoding="utf-8").splitlines()]
    assert sorted(exported) == sorted(ids)  # every customer, once
    assert report.customers == 9
    unbroken = 5 + (0 if mode["sequential"] else len(listing.PARTITION_PREFIXES) - 1)  # pages without a restart
    if mode["sequential"]:
        assert report.pages > unbroken  # the listing was started again, its pages read again
    else:  # the partition was read again (more requests), but its pages are counted once
        assert report.pages == unbroken and report.requests > unbroken + 4
    assert not list(tmp_path.glob(".export-*")) and not list(tmp_path.glob("runs/*/.export-*"))


async def test_page_tokens_that_keep_expiring_end_the_export_with_a_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import batch
    from batch.export import listing
    from batch.graph.paging import PageTokenExpired

    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    with expiring_graph(tmp_path, 5) as (target, transport, clock, _):
        with pytest.raises(PageTokenExpired) as failed:
            await batch.run_export(
                batch.ExportRequest(out=str(tmp_path / "all.csv"), sequential=True), target, runs_root=tmp_path / "runs",
                transport=transport, on_progress=pause_after(clock, []))
    assert "Directory_ExpiredPageToken" in str(failed.value)
    assert f"started again {listing.MAX_RESTARTS} times" in str(failed.value)


async def test_an_expired_next_link_restarts_a_delta_round(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import batch
    from batch.export import listing

    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    with expiring_graph(tmp_path, 7) as (target, transport, clock, ids):
        asked = counting(transport, "/users/delta")
        report = await batch.run_export(
            batch.ExportRequest(out=str(tmp_path / "d.csv"), since=str(tmp_path / "state.json")), target,
            runs_root=tmp_path / "runs", transport=asked, on_progress=pause_after(clock, [1]))
    rows = read_csv(report.path)
    assert sorted(r["id"] for r in rows) == sorted(ids) and {r["change"] for r in rows} == {"added"}
    # 7 customers in pages of 2; the round read again from its start (more requests than its 4
    # pages), and its pages counted once.
    assert asked.count > 5 and report.pages == 4
    assert not list(tmp_path.glob("runs/*/.export-*"))


def counting(inner: Any, path: str) -> Any:
    """`inner`, counting the requests to `path` (`.count`)."""
    import httpx

    class Counting(httpx.AsyncBaseTransport):
        count = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith(path):
                Counting.count += 1
            return await inner.handle_async_request(request)

    return Counting()


async def test_a_delta_round_read_again_reports_what_happened_meanwhile(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # A round whose next link expired was written as it came, and the pass read again skipped
    # the customers already written: one written `changed` and deleted meanwhile was never
    # reported removed, and a first round kept one deleted meanwhile as `added` for good (found
    # by a review). The pass cut short is now dropped whole.
    import batch
    from batch.export import listing

    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    state = tmp_path / "state.json"
    with expiring_graph(tmp_path, 7) as (target, transport, clock, ids):
        store = Store(tmp_path / "emulator.db")
        users, tenant = Directory(store, time.time), store.tenants()[0]

        def delete_then_pause(progress: Any) -> None:
            if progress.customers >= 2 and not gone:  # after the first page of the first pass
                users.delete(tenant, ids[0])
                gone.append(ids[0])
                clock.skipped += 120  # the next link expires

        gone: list[str] = []
        first = await batch.run_export(batch.ExportRequest(out=str(tmp_path / "1.csv"), since=str(state)), target,
                                       runs_root=tmp_path / "runs", transport=transport, on_progress=delete_then_pause)
        assert gone and sorted(r["id"] for r in read_csv(first.path)) == sorted(ids[1:])  # not `added`: gone
        for user_id in ids[1:]:
            users.update(tenant, user_id, {"jobTitle": "changed"})
        gone.clear()
        ids = ids[1:]
        second = await batch.run_export(batch.ExportRequest(out=str(tmp_path / "2.csv"), since=str(state)), target,
                                        runs_root=tmp_path / "runs", transport=transport, on_progress=delete_then_pause)
        store.close()
    rows = {r["id"]: r["change"] for r in read_csv(second.path)}
    assert rows[ids[0]] == "removed" and sorted(rows) == sorted(ids), rows  # deleted during the round: reported


@pytest.mark.parametrize("answer", ["syncStateNotFound", "410"])
async def test_an_expired_delta_link_asks_for_a_full_export(tmp_path: Path, answer: str) -> None:
    import batch
    from batch.errors import ConfigError

    state = tmp_path / "state.json"
    with expiring_graph(tmp_path, 2, delta_token_ttl_seconds=3600, delta_expiry=answer) as (target, transport, clock, _):
        await batch.run_export(batch.ExportRequest(out=str(tmp_path / "d1.csv"), since=str(state)), target,
                               runs_root=tmp_path / "runs", transport=transport)
        clock.skipped += 3600
        with pytest.raises(ConfigError, match="has expired .* delete the state file and run again for a full export"):
            await batch.run_export(batch.ExportRequest(out=str(tmp_path / "d2.csv"), since=str(state)), target,
                                   runs_root=tmp_path / "runs", transport=transport)


def test_a_filter_graph_serves_only_as_an_advanced_query_is_sent_as_one(
        home: Path, tmp_path: Path, people: list[dict[str, Any]]) -> None:
    status, out = export(tmp_path, "adv.csv", "--filter", "companyName eq 'nobody'")
    assert status == 0 and read_csv(out) == []


def test_a_refused_filter_is_one_line_with_graphs_words_and_the_remedy(
        home: Path, tmp_path: Path, people: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = export(tmp_path, "bad.csv", "--filter", "endswith(displayName,'a')")
    assert status == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "Graph refused" in line]
    assert len(lines) == 1 and "Traceback" not in err
    assert ("Unsupported or invalid query filter clause specified for property 'displayName' of resource 'User'."
            in lines[0])
    assert "advanced query" in lines[0] and "https://aka.ms/graph-aad-query-advanced" in lines[0]


async def test_a_partition_read_again_is_counted_once_in_progress(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress (and summary.json's pages) count each customer and page of the file once,
    though a partition whose page token expired was read again from its start."""
    import batch
    from batch.export import listing

    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    seen: list[int] = []
    with expiring_graph(tmp_path, 9) as (target, transport, clock, _):
        pause = pause_after(clock, [4])

        def on_progress(progress: Any) -> None:
            seen.append(progress.customers)
            pause(progress)

        report = await batch.run_export(
            batch.ExportRequest(out=str(tmp_path / "all.csv"), select="id", concurrency=2), target,
            runs_root=tmp_path / "runs", transport=transport, on_progress=on_progress)
        clean = await batch.run_export(
            batch.ExportRequest(out=str(tmp_path / "clean.csv"), select="id", concurrency=2), target,
            runs_root=tmp_path / "runs", transport=transport)
    assert report.customers == 9 and max(seen) == seen[-1] == 9  # never more than there are
    assert report.pages == clean.pages  # the pages of the file, not the pages fetched
    assert report.requests > clean.requests  # and yet the partition was read again


# ---- one page ahead (issue 16) ------------------------------------------------------------

async def test_ahead_gives_every_item_in_order_fetching_one_ahead_and_never_more() -> None:
    import asyncio

    from batch.export.listing import ahead

    events: list[str] = []

    async def source() -> Any:
        for i in range(5):
            events.append(f"fetch {i}")
            await asyncio.sleep(0)
            yield i

    got = []
    async for item in ahead(source()):
        await asyncio.sleep(0.01)  # the caller writes the page; the next is fetched meanwhile
        events.append(f"wrote {item}")
        got.append(item)
    assert got == [0, 1, 2, 3, 4]
    for i in range(4):  # page i+1 was asked for before page i was written, page i+2 only after
        assert events.index(f"fetch {i + 1}") < events.index(f"wrote {i}")
        if i + 2 < 5:
            assert events.index(f"fetch {i + 2}") > events.index(f"wrote {i}")


async def test_ahead_raises_a_failure_after_the_items_before_it() -> None:
    from batch.errors import GraphRequestFailed
    from batch.export.listing import ahead

    async def source() -> Any:
        yield 1
        yield 2
        raise GraphRequestFailed("GET /users", status=503, code="ServiceUnavailable", detail="down")

    got = []
    with pytest.raises(GraphRequestFailed):
        async for item in ahead(source()):
            got.append(item)
    assert got == [1, 2]


async def test_ahead_cancels_the_fetch_and_closes_the_source_when_the_caller_stops() -> None:
    import asyncio
    import contextlib

    from batch.export.listing import ahead

    state = {"closed": False, "cancelled": False}
    release = asyncio.Event()

    async def source() -> Any:
        try:
            yield 1
            try:
                await release.wait()  # the next page never comes
            except asyncio.CancelledError:
                state["cancelled"] = True
                raise
            yield 2
        finally:
            state["closed"] = True

    with pytest.raises(RuntimeError, match="the writer failed"):
        async with contextlib.aclosing(ahead(source())) as items:
            async for _ in items:
                await asyncio.sleep(0)  # the fetch of the next one is under way
                raise RuntimeError("the writer failed")
    assert state == {"closed": True, "cancelled": True}
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]  # nothing left running


@pytest.mark.parametrize("since", [False, True])
async def test_a_sequential_export_asks_for_the_next_page_while_it_writes_this_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, since: bool) -> None:
    """The writer of page 1 waits (10 s at most) to see page 2 asked for: without a page
    ahead it never is, and the order of events says so."""
    import threading

    import httpx

    import batch
    from batch.export import listing
    from batch.export.output import ExportFile

    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    events: list[str] = []
    second_asked = threading.Event()
    real_write = ExportFile.write

    def write(self: ExportFile, rows: list[list[str]]) -> None:
        if not events:  # page 1
            events.append("page 2 asked while page 1 was written" if second_asked.wait(10) else "page 2 not asked")
        real_write(self, rows)

    monkeypatch.setattr(ExportFile, "write", write)
    with expiring_graph(tmp_path, 7) as (target, transport, _, ids):
        class Recording(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if "skiptoken" in str(request.url).lower() or "deltatoken" in str(request.url).lower():
                    second_asked.set()
                return await transport.handle_async_request(request)

        request = batch.ExportRequest(out=str(tmp_path / "a.csv"), select="id",
                                      **({"since": str(tmp_path / "s.json")} if since else {"sequential": True}))
        report = await batch.run_export(request, target, runs_root=tmp_path / "runs", transport=Recording())
    assert events == ["page 2 asked while page 1 was written"]
    assert sorted(r["id"] for r in read_csv(report.path)) == sorted(ids)  # every customer once, in Graph's order


# ---- a directory that changes during the export ----------------------------------------------


async def test_a_customer_renamed_into_a_partition_not_read_yet_is_listed_once(tmp_path: Path) -> None:
    # Partitions are read one after another: a customer of partition 'a', read already, renamed
    # into partition 'y' before it is read, was listed by both (found by a review).
    import httpx

    import batch
    from batch.emulator import EmulatorApp
    from batch.emulator.inprocess import EmulatorTransport

    store = Store(tmp_path / "emulator.db")
    try:
        tenant, app = store.tenants()[0], store.default_app()
        users = Directory(store, time.time)
        made = [users.create(tenant, customer(f"{c}{i}", userPrincipalName=f"{c}{i}@{DOMAIN}"))
                for c in "az" for i in range(3)]
        renamed: list[str] = []

        class Renaming(httpx.AsyncBaseTransport):
            inner = EmulatorTransport(EmulatorApp(store))

            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if not renamed and "%27y%27" in str(request.url):  # the first request of partition 'y'
                    users.update(tenant, f"a0@{DOMAIN}", {"userPrincipalName": f"y0@{DOMAIN}"})
                    renamed.append(str(request.url))
                return await self.inner.handle_async_request(request)

        target = batch.Target("local", "http://emulator.local/v1.0", tenant_id=tenant.id, client_id=app.client_id,
                              client_secret=app.secret or "", authority_host="http://emulator.local",
                              domain=tenant.default_domain)
        report = await batch.run_export(batch.ExportRequest(out=str(tmp_path / "out.jsonl"), select="id",
                                                            concurrency=1),
                                        target, runs_root=tmp_path / "runs", transport=Renaming())
    finally:
        store.close()
    assert renamed
    listed = [json.loads(line)["id"] for line in report.path.read_text(encoding="utf-8").splitlines()]
    assert sorted(listed) == sorted(user["id"] for user in made)
