"""The files a run writes for people (issue 12, findings 5 and 8): retry.csv and the loop of
fixing it and running it again, results.csv's `line` (the row number a spreadsheet shows),
the outputs in the input's dialect (delimiter; UTF-8 with a BOM, so that Excel reads `helène`
right), passwords.csv with whom to give each password to, and the hint to `--on-existing skip`."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from batch.cli import main
from batch.emulator import Store
from batch.errors import InputFileError, RunFolderUnsafe
from batch.io.columns import CREATE_COLUMNS
from batch.io.csvio import open_csv
from batch.io.dialect import OutputDialect
from batch.io.quoting import neutralise, neutralise_rows, neutralised_in_sql
from batch.outcome import RESULT_COLUMNS, Outcome, SentRow, Status
from batch.run.files import PasswordsFile, PlanFile, write_results, write_retry
from batch.run.journal import Journal
from batch.run.request import RunRequest
from batch.run.summary import _plan_counts
from batch.verbs.base import ACTIONS, Change, PlanLine, planned

HEADER = "signInType,signInName,displayName,mail\r\n"


def read(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    """A file of the run folder as a script reads it (a BOM skipped)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def excel_records(data: bytes, delimiter: str) -> list[list[str]]:
    """The rows Excel shows for a CSV file's bytes: with a UTF-8 BOM it reads UTF-8, without
    one the ANSI code page (Windows-1252 in Western locales); a quoted line break stays
    inside its cell, so every record is one row."""
    text = data[3:].decode("utf-8") if data.startswith(codecs.BOM_UTF8) else data.decode("cp1252")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def live_users(home: Path) -> list[dict]:
    store = Store(home / "emulator.db")
    try:
        return [r.data for r in store.select_users(store.tenants()[0].id, "live", limit=100_000)]
    finally:
        store.close()


# ---- finding 5: rerun what failed -----------------------------------------------------------

LOOP_ROWS = [
    "emailAddress,ann@example.com,Ann,\r\n",                # 1 created
    "emailAddress,bob@example.com,,\r\n",                    # 2 invalid: no display name
    "emailAddress,old@example.com,Old,\r\n",                 # 3 failed: exists already
    'emailAddress,cy@example.com,"Cy\r\nSmith",\r\n',        # 4 invalid: a line break in the name
    "\r\n",                                                   # 5 blank: skipped
    'emailAddress,dee@example.com,"Dee ""D"" Doe",\r\n',     # 6 created
    "emailAddress,eve@example.com,Eve,not-an-address\r\n",   # 7 invalid: mail
]


def test_retry_csv_holds_the_failed_rows_verbatim_and_running_it_fixed_finishes(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "old.csv").write_text(HEADER + "emailAddress,old@example.com,Old,\r\n", encoding="utf-8", newline="")
    assert main(["create", str(tmp_path / "old.csv"), "--out-dir", str(tmp_path / "first"), "--quiet"]) == 0
    source = tmp_path / "week.csv"
    source.write_text("version:v1.0,,,\r\n" + HEADER + "".join(LOOP_ROWS), encoding="utf-8", newline="")

    capsys.readouterr()
    assert main(["create", str(source), "--out-dir", str(tmp_path / "a"), "--quiet"]) == 1
    assert f"to fix and run again: {tmp_path / 'a' / 'retry.csv'} (the 4 rows that ended invalid or failed)" in \
        capsys.readouterr().out
    statuses = [r["status"] for r in read(tmp_path / "a" / "results.csv")]
    assert statuses == ["created", "invalid", "failed", "invalid", "skipped", "created", "invalid"]
    retry = tmp_path / "a" / "retry.csv"
    expected = "version:v1.0,,,\r\n" + HEADER + "".join(LOOP_ROWS[i] for i in (1, 2, 3, 6))
    assert retry.read_bytes() == codecs.BOM_UTF8 + expected.encode("utf-8")
    assert oct(retry.stat().st_mode & 0o777) == "0o600"

    # The administrator fixes the rows in Excel (a name, a line break, a mail, a new address
    # for the one taken) and runs retry.csv itself: every row ends created.
    fixed = (retry.read_bytes().decode("utf-8-sig").replace("bob@example.com,,", "bob@example.com,Bob,")
             .replace("old@example.com,Old", "old2@example.com,Old")
             .replace('"Cy\r\nSmith"', "Cy Smith").replace("not-an-address", "eve@example.org"))
    retry.write_text(fixed, encoding="utf-8-sig", newline="")
    assert main(["create", str(retry), "--out-dir", str(tmp_path / "b"), "--quiet"]) == 0
    assert [r["status"] for r in read(tmp_path / "b" / "results.csv")] == ["created"] * 4
    assert not (tmp_path / "b" / "retry.csv").exists()  # nothing left to fix
    names = {i["issuerAssignedId"] for u in live_users(home) for i in u["identities"]}
    assert {"ann@example.com", "bob@example.com", "old2@example.com", "cy@example.com", "dee@example.com",
            "eve@example.com"} <= names


def test_a_dry_run_writes_retry_csv_with_its_invalid_rows(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "dry.csv"
    source.write_text(HEADER + LOOP_ROWS[0] + LOOP_ROWS[1], encoding="utf-8", newline="")
    assert main(["create", str(source), "--dry-run", "--out-dir", str(tmp_path / "d"), "--quiet"]) == 1
    assert (tmp_path / "d" / "retry.csv").read_bytes().decode("utf-8-sig") == HEADER + LOOP_ROWS[1]


def test_a_dry_run_interrupted_between_plan_csv_and_its_journal_writes_no_line_twice(home: Path,
                                                                                   tmp_path: Path) -> None:
    # An interrupted dry run had appended a group's plan.csv lines, not yet journaled its rows
    # `done`: the resume planned those rows again and wrote their lines a second time.
    rows = [f"emailAddress,c{i}@example.com,\"Customer, {i}\",\r\n" for i in range(1, 41)]
    rows[6] = "emailAddress,not-an-email,Seven,\r\n"  # invalid: plan.csv says it would fail
    rows[20] = "emailAddress,c21@example.com,=1+1,\r\n"  # a formula, neutralised in plan.csv
    source = tmp_path / "in.csv"
    source.write_text(HEADER + "".join(rows), encoding="utf-8", newline="")
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(["create", str(source), "--dry-run", "--out-dir", str(whole), "--quiet"]) == 1
    assert main(["create", str(source), "--dry-run", "--out-dir", str(cut), "--quiet"]) == 1
    journal = Journal(cut)
    journal._db.execute("DELETE FROM rows WHERE row > 25")  # noqa: SLF001 - the rows a kill left unjournaled
    journal._db.commit()  # noqa: SLF001
    journal.close()
    assert main(["resume", str(cut), "--quiet"]) == 1
    assert (cut / "plan.csv").read_bytes() == (whole / "plan.csv").read_bytes()
    assert [r["row"] for r in read(cut / "plan.csv")] == [str(n) for n in range(1, 41)]
    assert (cut / "results.csv").read_bytes() == (whole / "results.csv").read_bytes()


def test_cutting_plan_csv_after_a_row_finds_records_that_span_lines(tmp_path: Path) -> None:
    plan = PlanFile(tmp_path, OutputDialect(";"))
    plan.append([PlanLine(1, "a", "create", reason="one"), PlanLine(2, "b", "fail", reason="two\r\nlines; \"x\""),
                 PlanLine(3, "c", "fail", reason="3\r\n4"), PlanLine(4, "d", "create")])
    plan.close()
    written = (tmp_path / "plan.csv").read_bytes()
    assert PlanFile(tmp_path, OutputDialect(";")).keep_rows_up_to(4) == 4  # the last row kept
    assert (tmp_path / "plan.csv").read_bytes() == written
    assert PlanFile(tmp_path, OutputDialect(";")).keep_rows_up_to(2) == 2
    assert [r["row"] for r in read(tmp_path / "plan.csv", ";")] == ["1", "2"]
    assert written.startswith((tmp_path / "plan.csv").read_bytes())
    assert [r["reason"] for r in read(tmp_path / "plan.csv", ";")] == ["one", 'two\r\nlines; "x"']
    assert PlanFile(tmp_path / "nowhere").keep_rows_up_to(0) == 0
    (tmp_path / "plan.csv").write_bytes(written + b"5;\xff\xfe\r\n")  # not what we wrote: one clear error
    with pytest.raises(RunFolderUnsafe, match="is not the plan.csv entra-batch wrote .*start the dry run again"):
        PlanFile(tmp_path, OutputDialect(";")).keep_rows_up_to(9)


def test_raw_records_walk_the_wanted_rows_alongside_the_file(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(HEADER + "".join(LOOP_ROWS) + "emailAddress,last@example.com,Last,", encoding="utf-8",
                      newline="")
    opened = open_csv(source, CREATE_COLUMNS)
    assert list(opened.raw_records(iter([4, 8]))) == [HEADER, LOOP_ROWS[3],
                                                      "emailAddress,last@example.com,Last,\r\n"]
    assert list(opened.raw_records(iter([]))) == [HEADER]


def test_existing_customers_fail_with_the_way_to_skip_them(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "one.csv"
    source.write_text(HEADER + LOOP_ROWS[0], encoding="utf-8", newline="")
    assert main(["create", str(source), "--out-dir", str(tmp_path / "a"), "--quiet"]) == 0
    assert main(["create", str(source), "--out-dir", str(tmp_path / "b"), "--quiet"]) == 1
    [line] = read(tmp_path / "b" / "results.csv")
    assert line["status"] == "failed"
    assert "to skip existing customers when running a file again, use --on-existing skip" in line["error_message"]


# ---- finding 8: outputs that open well ------------------------------------------------------

def test_line_is_the_row_excel_shows_with_a_version_row_and_quoted_line_breaks(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "week.csv"
    data = ("version:v1.0,,,\r\n" + HEADER + "".join(LOOP_ROWS)).encode("utf-8")
    source.write_bytes(data)
    assert main(["create", str(source), "--out-dir", str(tmp_path / "a"), "--quiet"]) == 1
    lines = read(tmp_path / "a" / "results.csv")
    assert list(lines[0]) == list(RESULT_COLUMNS) and RESULT_COLUMNS[-1] == "line"
    shown = excel_records(data, ",")
    for result in lines:
        excel_row = int(result["line"])
        assert excel_row == int(result["row"]) + 2
        key = result["key"]
        assert (key in shown[excel_row - 1]) if key else not any(shown[excel_row - 1])
    assert [r["line"] for r in lines] == ["3", "4", "5", "6", "7", "8", "9"]  # row 4 holds a quoted line break


def test_semicolon_windows_1252_input_gives_semicolon_utf8_outputs_excel_reads(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "excel.csv"
    source.write_bytes(("signInType;signInName;displayName;mail\r\n"
                        "emailAddress;helene@example.com;helène Müller;\r\n"
                        "emailAddress;bad;Zoë;\r\n").encode("cp1252"))
    assert main(["create", str(source), "--encoding", "cp1252", "--out-dir", str(tmp_path / "a"), "--quiet"]) == 1
    for name in ("results.csv", "passwords.csv", "retry.csv"):
        data = (tmp_path / "a" / name).read_bytes()
        assert data.startswith(codecs.BOM_UTF8), name
        assert all(len(record) > 1 for record in excel_records(data, ";")), name  # columns, not one
    passwords = excel_records((tmp_path / "a" / "passwords.csv").read_bytes(), ";")
    assert passwords[0] == ["row", "sign_in_name", "object_id", "password", "display_name", "contact"]
    assert passwords[1][4] == "helène Müller" and passwords[1][5] == "helene@example.com"
    assert excel_records((tmp_path / "a" / "retry.csv").read_bytes(), ";")[1] == ["emailAddress", "bad", "Zoë", ""]
    # retry.csv goes back in as it is (its BOM wins over --encoding).
    assert main(["validate", str(tmp_path / "a" / "retry.csv"), "--verb", "create", "--encoding", "cp1252"]) == 1


def test_an_input_with_bom_and_semicolons_keeps_both(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "bom.csv"
    source.write_bytes(codecs.BOM_UTF8 + "signInType;signInName;displayName\r\nemailAddress;hé@example.com;hé\r\n"
                       .encode())
    assert main(["create", str(source), "--out-dir", str(tmp_path / "a"), "--quiet"]) in (0, 1)
    data = (tmp_path / "a" / "results.csv").read_bytes()
    assert data.startswith(codecs.BOM_UTF8 + b"row;key;status")
    assert excel_records(data, ";")[1][1] == "hé@example.com"


def test_passwords_csv_names_whom_to_give_each_password(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    source.write_text(HEADER + "emailAddress,ann@example.com,Ann Lee,\r\n"
                      "userName,bobby,Bob Roe,bob@home.example\r\n"
                      "userName,cyd,Cyd,\r\n", encoding="utf-8", newline="")
    assert main(["create", str(source), "--out-dir", str(tmp_path / "a"), "--quiet"]) == 0
    lines = read(tmp_path / "a" / "passwords.csv")
    assert [(p["sign_in_name"], p["display_name"], p["contact"]) for p in lines] == [
        ("ann@example.com", "Ann Lee", "ann@example.com"), ("bobby", "Bob Roe", "bob@home.example"),
        ("cyd", "Cyd", "")]
    ids = {p["sign_in_name"]: p["object_id"] for p in lines}
    (tmp_path / "reset.csv").write_text(f"objectId\r\n{ids['bobby']}\r\n{ids['ann@example.com']}\r\n",
                                        encoding="utf-8", newline="")
    assert main(["reset-password", str(tmp_path / "reset.csv"), "--out-dir", str(tmp_path / "r"), "--quiet"]) == 0
    reset = read(tmp_path / "r" / "passwords.csv")
    assert [(p["display_name"], p["contact"]) for p in reset] == [("Bob Roe", "bob@home.example"),
                                                                 ("Ann Lee", "ann@example.com")]


def test_a_passwords_csv_of_the_previous_version_still_reconciles_on_resume(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "create.csv"
    source.write_text(HEADER + "emailAddress,c1@example.com,C1,\r\nemailAddress,c2@example.com,C2,\r\n",
                      encoding="utf-8", newline="")
    assert main(["create", str(source), "--out-dir", str(tmp_path / "created"), "--quiet"]) == 0
    created = {r["key"]: r["object_id"] for r in read(tmp_path / "created" / "results.csv")}
    reset = tmp_path / "reset.csv"
    reset.write_text("signInName\r\nc1@example.com\r\nc2@example.com\r\n", encoding="utf-8", newline="")
    # A reset run of the previous version, killed after row 1's password reached its 4-column
    # passwords.csv (comma, no BOM) and before row 2's answer came: its journal has no dialect.
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    journal = Journal(run_dir)
    journal.set_meta(request=asdict(RunRequest(verb="reset-password", input=str(reset.resolve()))),
                     fingerprint=hashlib.sha256(reset.read_bytes()).hexdigest(), target="local", started=time.time())
    journal.mark_sent([SentRow(1, "c1@example.com", time.time(), True, 1),
                       SentRow(2, "c2@example.com", time.time(), True, 1)])
    journal.close()
    old = f"row,sign_in_name,object_id,password\r\n1,c1@example.com,{created['c1@example.com']},Kept-Password-1!\r\n"
    (run_dir / "passwords.csv").write_text(old, encoding="utf-8", newline="")
    (run_dir / "passwords.csv").chmod(0o600)
    assert main(["resume", str(run_dir), "--quiet"]) == 0
    results = read(run_dir / "results.csv")
    assert [r["status"] for r in results] == ["password_reset", "password_reset"]
    assert "password in passwords.csv" in results[0]["error_message"]  # reconciled, not reset twice
    text = (run_dir / "passwords.csv").read_bytes().decode("utf-8")
    assert text.startswith(old)  # the file goes on in its own format
    [second] = list(csv.reader(io.StringIO(text[len(old):], newline="")))
    assert second[:3] == ["2", "c2@example.com", created["c2@example.com"]] and len(second) == 4


def test_passwords_file_reads_both_formats(tmp_path: Path) -> None:
    new = tmp_path / "new"
    new.mkdir(mode=0o700)
    writing = PasswordsFile(new, OutputDialect(";", 1))
    writing.append([(1, "a@example.com", "id-1", "Pass;word-1!", "A", "a@example.com"),
                    (2, "b@example.com", "id-2", "Pass-word-2!")])
    writing.close()
    assert PasswordsFile(new).rows_present({1, 2, 3}) == {1, 2}  # the delimiter taken from its header
    assert (new / "passwords.csv").read_bytes().startswith(codecs.BOM_UTF8 + b"row;sign_in_name;")


def test_a_journal_without_a_dialect_gives_the_defaults() -> None:
    assert OutputDialect.from_meta(None) == OutputDialect(",", 1)
    assert OutputDialect.from_meta({"delimiter": "|", "header_lines": 1}) == OutputDialect(",", 1)
    assert OutputDialect.from_meta(OutputDialect("\t", 2).as_meta()) == OutputDialect("\t", 2)


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_plan_csv_speaks_the_input_dialect(home: Path, tmp_path: Path, delimiter: str) -> None:
    create = tmp_path / "c.csv"
    create.write_text(HEADER + LOOP_ROWS[0], encoding="utf-8", newline="")
    assert main(["create", str(create), "--out-dir", str(tmp_path / "c"), "--quiet"]) == 0
    update = tmp_path / "u.csv"
    update.write_text(delimiter.join(["signInName", "displayName"]) + "\r\n"
                      + delimiter.join(["ann@example.com", "Ann Ève"]) + "\r\n", encoding="utf-8", newline="")
    assert main(["update", str(update), "--dry-run", "--out-dir", str(tmp_path / "u"), "--quiet"]) == 0
    data = (tmp_path / "u" / "plan.csv").read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    records = excel_records(data, delimiter)
    assert records[0][:2] == ["row", "key"] and any("Ann Ève" in cell for cell in records[1])


def test_retry_csv_is_not_written_from_an_input_changed_since_the_run_read_it(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(HEADER + LOOP_ROWS[0] + LOOP_ROWS[1], encoding="utf-8", newline="")
    opened = open_csv(source, CREATE_COLUMNS)
    same = hashlib.sha256(source.read_bytes()).hexdigest()
    assert list(opened.raw_records(iter([2]), sha256=same)) == [HEADER, LOOP_ROWS[1]]
    with pytest.raises(InputFileError, match="changed since the run read it"):
        list(opened.raw_records(iter([2]), sha256="0" * 64))
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    journal = Journal(run)
    try:
        assert write_retry(journal, run, opened) is None  # nothing failed
        journal.mark_done([Outcome(2, "bob@example.com", Status.INVALID)])
        journal.set_meta(fingerprint="0" * 64)
        (run / "retry.csv").write_text("stale", encoding="utf-8")
        assert write_retry(journal, run, opened) is None and not (run / "retry.csv").exists()
        journal.set_meta(fingerprint=same)
        assert write_retry(journal, run, opened) == run / "retry.csv"
        assert (run / "retry.csv").read_bytes().decode("utf-8-sig") == HEADER + LOOP_ROWS[1]
    finally:
        journal.close()


# Cells as they come from input files and from Graph: formula starts, quotes, the separator
# that the chunked check joins cells with, line breaks, empties (issue 16: the writers work a
# chunk at a time, and must write exactly what writing cell by cell wrote).
RISKY_CELLS = st.text(alphabet=st.sampled_from("'=+-@\t\r\n\x1fab ,;\""), max_size=5) | st.text(max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(RISKY_CELLS, min_size=3, max_size=3), max_size=300))
@example([["'=x", "b", "c"]])  # the one cell to change starts with a quote
@example([["''+1", "=b", "c"]])  # a formula start in a column left alone
@example([["a", "b", "c"]] * 200 + [["a", "b", "\r"]] + [["a", "b", "c"]] * 20)  # in the second block only
def test_neutralising_a_chunk_is_neutralising_each_of_its_cells(rows: list[list[str]]) -> None:
    text = (0, 2)
    expected = [[neutralise(cell) if i in text else cell for i, cell in enumerate(row)] for row in rows]
    assert neutralise_rows([list(row) for row in rows], text) == expected


@settings(max_examples=500, deadline=None)
@given(RISKY_CELLS | st.text(alphabet=st.sampled_from("'=+-@\t\r\u00e9\u2028x"), max_size=4))
@example("'" * 3)  # only quotes: nothing to neutralise
@example("''-1")
def test_neutralising_in_sqlite_is_neutralising(value: str) -> None:
    import sqlite3

    db = sqlite3.connect(":memory:")
    assert db.execute(f"SELECT {neutralised_in_sql('?1')}", (value,)).fetchone()[0] == neutralise(value)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(RISKY_CELLS, RISKY_CELLS, RISKY_CELLS, st.sampled_from(list(Status)),
                          st.sampled_from([None, 201, 404]), st.sampled_from(["", "Request_BadRequest", "=X"])),
                min_size=1, max_size=300))
def test_results_and_plan_csv_hold_what_writing_cell_by_cell_held(
        tmp_path_factory: pytest.TempPathFactory,
        cells: list[tuple[str, str, str, Status, int | None, str]]) -> None:
    run_dir = tmp_path_factory.mktemp("run")
    run_dir.chmod(0o700)
    dialect = OutputDialect(";", 2)
    outcomes = [Outcome(n, key, status, object_id, http, code, message, n % 3)
                for n, (key, object_id, message, status, http, code) in enumerate(cells, start=1)]
    journal = Journal(run_dir)
    try:
        journal.mark_done(outcomes)
        write_results(journal, run_dir, dialect)
    finally:
        journal.close()
    expected = [list(RESULT_COLUMNS)] + [
        [str(o.row), neutralise(o.key), o.status.value, o.object_id, "" if o.http_status is None else str(o.http_status),
         o.error_code, neutralise(o.error_message), str(o.attempts), str(o.row + 2)] for o in outcomes]
    assert excel_records((run_dir / "results.csv").read_bytes(), ";") == expected

    lines = [PlanLine(n, key, "update", object_id, message, key, message,
                      (Change("blockSignIn", "No", message), Change("city", object_id, "'x")) if n % 2 else ())
             for n, (key, object_id, message, _status, _http, _code) in enumerate(cells, start=1)]
    plan = PlanFile(run_dir, dialect, labels={"blockSignIn": "=Block sign in"})
    plan.append(lines)
    plan.close()

    def changes(line: PlanLine) -> str:
        return "; ".join(f"{'=Block sign in' if c.column == 'blockSignIn' else c.column}: {c.before} \u2192 {c.after}"
                         for c in line.changes)

    expected = [list(PlanFile.COLUMNS)] + [
        [str(line.row)] + [neutralise(v) for v in (line.key, line.action, line.object_id, line.display_name,
                                                   line.sign_in_name, line.reason, changes(line))]
        + [str(line.row + 2)] for line in lines]
    assert excel_records((run_dir / "plan.csv").read_bytes(), ";") == expected


def test_a_dry_run_counts_its_plan_by_action_and_cause_as_reading_every_message_did(tmp_path: Path) -> None:
    messages = ["dry run: would create (no customer has this sign-in name)", "dry run: would create",
                "dry run: would fail (exists: sign-in name a is taken by 1; use --on-existing skip or update)",
                "dry run: would fail (exists, twice)", "dry run: would fail", "dry run: would fail (invalid: x; y)",
                "dry run: would failing (x)", "dry run: would bogus (x)", "dry run: wouldn't", "Dry run: would create",
                "dry run: would skip (already deleted)", "dry run: would update (2 properties differ: a, b)",
                "dry run: would fail (no customer with this key)", "dry run: would fail (Exists: x)", ""]
    statuses = [Status.SKIPPED, Status.SKIPPED, Status.FAILED, Status.SKIPPED]  # 4 and 15: every pair
    outcomes = [Outcome(n, f"k{n}", statuses[n % 4], error_message=messages[n % len(messages)])
                for n in range(1, 200)]
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    journal = Journal(run_dir)
    try:
        journal.mark_done(outcomes)
        actions: dict[str, int] = {}
        causes: dict[str, int] = {}
        for outcome in journal.outcomes():  # what the summary did before it let SQLite count
            found = planned(outcome.error_message) if outcome.status is Status.SKIPPED else None
            if found is not None:
                actions[found[0]] = actions.get(found[0], 0) + 1
                if found[0] == "fail":
                    causes[found[1]] = causes.get(found[1], 0) + 1
        counted, failures = _plan_counts(journal)
    finally:
        journal.close()
    assert counted == {a: actions[a] for a in ACTIONS if a in actions}
    assert list(counted) == [a for a in ACTIONS if a in counted]
    assert failures == dict(sorted(causes.items(), key=lambda item: (-item[1], item[0])))
    assert set(counted) == {"create", "fail", "skip", "update"} and len(failures) == 5
