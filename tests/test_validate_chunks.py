"""Validation a chunk at a time (issue 16, "Validation at 200k rows/s"): `create` screens each
column over a chunk (batch/verbs/screen.py), builds the plans of the clean rows itself and
reads only the flagged rows one by one. Its results must be exactly those of the per-row
path (`CreateVerb.validate`), row by row: status, key, problems text, and the plan's body.

Both paths are run on the test corpus (fixtures, sample_data, the CSV files other tests
write), on generated files (sample_data/generate.py, with bad rows), and on cells drawn
from the property tests' strategies (tests/test_rules.py) mixed with near-misses of every
column's rule, in chunks of random sizes.
"""

from __future__ import annotations

import csv
import gc
import importlib.util
import io
import random
import string
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_rules import password_text, upn_text

from batch import rules
from batch.cli import COLLECT_EVERY, main
from batch.io.columns import CREATE_COLUMNS
from batch.io.csvio import Row, open_csv
from batch.run.pipeline import chunks
from batch.verbs.base import Rejected
from batch.verbs.create import CreateOptions, CreatePlan, CreateVerb
from batch.verbs.create_rows import CreateRows

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "contoso.onmicrosoft.com"
EXT_APP = "5b2e9a7c-1f3d-4c8e-9a6b-2d4f8e1c3a5b"
EXT_LONG = "extension_" + EXT_APP.replace("-", "") + "_tier"
SETTINGS = [
    {"domain": DOMAIN, "extensions_app_id": EXT_APP},
    {"domain": "", "extensions_app_id": None},
    {"domain": DOMAIN, "extensions_app_id": None, "force_change_generated": False},
]


def both_paths(rows: Sequence[Row], sizes: Iterator[int] | None = None,
               **options: Any) -> tuple[list[Any], list[Any]]:
    """The per-row results and the chunked results of the same rows, each on a fresh verb."""
    per_row = CreateVerb(CreateOptions(**options))
    chunked = CreateVerb(CreateOptions(**options))
    old = [per_row.validate(row) for row in rows]
    new: list[Any] = []
    at = 0
    while at < len(rows):
        size = next(sizes) if sizes is not None else 2000
        new += chunked.validate_chunk(rows[at:at + size])
        at += size
    return old, new


def assert_same(old: list[Any], new: list[Any]) -> None:
    assert len(old) == len(new)
    for before, after in zip(old, new):
        assert type(before) is type(after), (before, after)
        assert before == after, (before, after)
        if isinstance(before, CreatePlan):  # the order of the body is the order of the request
            assert list(before.body) == list(after.body), (before.body, after.body)


def corpus() -> list[Path]:
    found = [*sorted((ROOT / "tests" / "fixtures").glob("*create*.csv")), ROOT / "sample_data" / "customers.csv"]
    return [path for path in found if path.exists()]


def read_rows(path: Path) -> list[Row]:
    return list(open_csv(path, CREATE_COLUMNS).rows())


@pytest.mark.parametrize("options", SETTINGS)
@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.name)
def test_the_corpus_validates_the_same_a_chunk_at_a_time(path: Path, options: dict[str, Any]) -> None:
    rows = read_rows(path)
    assert rows
    for sizes in (None, iter(lambda: 1, 0), iter(lambda: 7, 0)):
        assert_same(*both_paths(rows, sizes, **options))


def generated(tmp_path: Path, count: int, bad: float, seed: int) -> Path:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "sample_data" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path / f"generated-{seed}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(module.HEADER)
        writer.writerows(module.rows(count, seed, bad, "c"))
    return path


@pytest.mark.parametrize("seed", [1, 2])
def test_generated_files_with_bad_rows_validate_the_same(tmp_path: Path, seed: int) -> None:
    rows = read_rows(generated(tmp_path, 20_000, 0.05, seed))
    # The same file twice over: every key of the second half is a duplicate of the first's.
    doubled = rows + [Row(row.number + len(rows), row.cells, row.problem, row.example, row.blank) for row in rows]
    rng = random.Random(seed)
    old, new = both_paths(doubled, iter(lambda: rng.choice((1, 2, 50, 333, 2000)), 0), domain=DOMAIN)
    assert_same(old, new)
    assert sum(isinstance(r, Rejected) for r in old[len(rows):]) == len(rows)


def test_duplicates_found_in_the_compact_arrays_are_the_same(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Past FLUSH_EVERY keys, earlier keys sit in numpy arrays that a chunk looks up at once."""
    from batch.verbs.seen import SeenKeys
    monkeypatch.setattr(SeenKeys, "FLUSH_EVERY", 700)
    rows = read_rows(generated(tmp_path, 3_000, 0.05, 7))
    doubled = rows + [Row(row.number + len(rows), row.cells, row.problem, row.example, row.blank) for row in rows]
    rng = random.Random(7)
    old, new = both_paths(doubled, iter(lambda: rng.choice((1, 3, 500, 2000)), 0), domain=DOMAIN)
    assert_same(old, new)
    assert sum(isinstance(r, Rejected) for r in new[len(rows):]) == len(rows)


# --- cells from the strategies of the property tests, and near-misses of each rule -------

def near(valid: Sequence[str]) -> st.SearchStrategy[str]:
    """A column's good values, and what spreadsheets make of them: spaces around, other
    case, a character more, a tab or line break, an accent, a blank."""
    def mangle(value: str, how: int, extra: str) -> str:
        return [value, f" {value}", f"{value} ", value.lower(), value.upper(), value + extra, extra + value,
                value[:-1], f"{value}\t", f"{value}\n", value.replace("a", "á"), ""][how]
    return st.builds(mangle, st.sampled_from(valid), st.integers(0, 11),
                     st.sampled_from(["x", "-", "@", ".", "<", " ", "'", "--", "é", "\r", "1", "_"]))


NAMES = ["ada@example.com", "ada.lovelace@mail.example.net", "ada", "ada_l-2", "a.b@c.test", "ab--c@xn--d.com",
         "x@example.local", "o'brien@example.org", "Ada@Example.COM", "ada@example.co", "9ada@example.com"]
CELLS: dict[str, st.SearchStrategy[str]] = {
    "signInType": near(["emailAddress", "userName", "email", "username", "EmailAddress", "user name", ""]),
    "signInName": near(NAMES) | st.text(max_size=70) | st.sampled_from(["a" * 64, "a" * 65, "b" * 60 + "@x.co"]),
    "displayName": near(["Ada Lovelace", "Chloé Dupont", "A", "x" * 256]) | st.text(max_size=260),
    "givenName": near(["Ada", "x" * 64]) | st.text(max_size=70),
    "surname": near(["Lovelace", "O'Brien"]),
    "blockSignIn": near(["Yes", "No", "yes", "no", "TRUE", "false", "1", "0", "y", "N", "maybe"]),
    "accountEnabled": near(["true", "false", "Yes", "No", ""]),
    "usageLocation": near(["US", "FR", "NA", "XX", "us", "ıt"]),
    "mail": near(["ada@example.com", "x@y.test", "bad@", "ada@exámple.com"]) | st.text(max_size=30),
    "password": password_text | near(["Legacy-123456!x", "short", "Aa1!Aa1!"]),
    "forceChangePasswordNextSignIn": near(["Yes", "No", "true", ""]),
    "userPrincipalName": upn_text | near(["ada@" + DOMAIN, "ada.@" + DOMAIN, "ada@fabrikam.com"]),
    "streetAddress": near(["1 Main St\nFlat 2", "x" * 1024]) | st.text(max_size=30),
    "postalCode": near(["75001", "x" * 40]),
    "employeeId": near(["E12345", "x" * 16]),
    "businessPhone": near(["+1 555 0100", "'+1 555"]),
    "preferredLanguage": near(["en-US", "fr", "english", "en-"]),
    EXT_LONG: near(["gold", "true", "False", "x" * 256]),
    "ext.loyalty": near(["silver", "TRUE", ""]),
}


@st.composite
def files(draw: st.DrawFn) -> tuple[list[Row], list[int]]:
    names = draw(st.lists(st.sampled_from(sorted(CELLS)), min_size=1, max_size=8, unique=True))
    if not {"signInName", "userPrincipalName"} & set(names):
        names.append(draw(st.sampled_from(["signInName", "userPrincipalName"])))
    count = draw(st.integers(1, 40))
    repeat = draw(st.sampled_from(NAMES))  # a key many rows may share
    rows = []
    for number in range(1, count + 1):
        cells = {name: draw(CELLS[name]) for name in names}
        if "signInName" in cells and draw(st.integers(0, 4)) == 0:
            cells["signInName"] = repeat
        flags = draw(st.sampled_from([{}, {}, {}, {"blank": True}, {"example": True}, {"problem": "row has 3 fields"}]))
        rows.append(Row(number, cells, **flags))
    sizes = draw(st.lists(st.integers(1, 12), min_size=1, max_size=5))
    return rows, sizes


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(files(), st.sampled_from(SETTINGS))
def test_generated_cells_validate_the_same(drawn: tuple[list[Row], list[int]], options: dict[str, Any]) -> None:
    rows, sizes = drawn
    old, new = both_paths(rows, iter(sizes * 100), **options)
    assert_same(old, new)


# --- the chunked path is the one taken ----------------------------------------------------

def test_clean_rows_are_not_read_one_by_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the rows a screen flags go through the per-row rules; the old path read them all."""
    read: list[int] = []
    original = CreateRows.read

    def counting(self: CreateRows, row: Row) -> CreatePlan | Rejected:
        read.append(row.number)
        return original(self, row)

    monkeypatch.setattr(CreateRows, "read", counting)
    rows = read_rows(generated(tmp_path, 2_000, 0.05, 3))
    results = CreateVerb(CreateOptions(domain=DOMAIN)).validate_chunk(rows)
    rejected = {r.row for r in results if isinstance(r, Rejected)}
    assert rejected and rejected <= set(read)
    assert len(read) < len(rows) / 5


def test_the_validate_command_checks_by_chunks(monkeypatch: pytest.MonkeyPatch, home: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    sizes: list[int] = []
    original = CreateVerb.rejections

    def counting(self: CreateVerb, rows: Sequence[Row]) -> list[Rejected]:
        sizes.append(len(rows))
        return original(self, rows)

    monkeypatch.setattr(CreateVerb, "rejections", counting)
    source = generated(tmp_path, 2_500, 0.05, 4)
    assert main(["validate", str(source), "--verb", "create", "--domain", DOMAIN]) == 1
    said = capsys.readouterr().out.splitlines()
    assert sizes == [2000, 500]
    expected = [r for r in both_paths(read_rows(source), domain=DOMAIN)[0] if isinstance(r, Rejected)]
    assert said[:-1] == [f"row {r.row}: {'; '.join(r.problems)}" for r in expected]
    assert said[-1].startswith(f"{source}: 2500 rows, {len(expected)} invalid, {2500 - len(expected)} valid")


def test_rejections_are_those_of_the_per_row_path(tmp_path: Path) -> None:
    rows = read_rows(generated(tmp_path, 5_000, 0.05, 5))
    rows += rows[:100]  # duplicates
    old = [r for r in both_paths(rows, domain=DOMAIN)[0] if isinstance(r, Rejected)]
    verb = CreateVerb(CreateOptions(domain=DOMAIN))
    assert [r for chunk in chunks(iter(rows), 777) for r in verb.rejections(chunk)] == old


async def test_the_engine_validates_by_chunks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from batch.run.files import PasswordsFile, PlanFile
    from batch.run.journal import Journal
    from batch.run.pipeline import Engine, EngineOptions
    from batch.verbs.base import Executed, PlanLine, Session

    class Planned(CreateVerb):
        async def plan(self, plans: list[CreatePlan], session: Session) -> Executed:
            done = Executed()
            for plan in plans:
                done.would(PlanLine(plan.row, plan.key, "create", reason="no customer has this sign-in name"))
            return done

    sizes: list[int] = []
    original = CreateVerb.validate_chunk

    def counting(self: CreateVerb, rows: Sequence[Row]) -> list[CreatePlan | Rejected]:
        sizes.append(len(rows))
        return original(self, rows)

    monkeypatch.setattr(CreateVerb, "validate_chunk", counting)
    rows = read_rows(generated(tmp_path, 2_500, 0.05, 6))
    journal, plan_file = Journal(tmp_path), PlanFile(tmp_path)
    client = SimpleNamespace(stats=SimpleNamespace(throttled=0), server_clock_offset=None)
    engine = Engine(Planned(CreateOptions(domain=DOMAIN)), iter(rows), journal, PasswordsFile(tmp_path),
                    Session(client=client),  # type: ignore[arg-type]
                    EngineOptions(batch_size=20, concurrency=2, dry_run=True), plan_file=plan_file)
    await engine.run()
    plan_file.close()
    assert sizes == [2000, 500]
    old = both_paths(rows, domain=DOMAIN)[0]
    verdicts = {o.row: o.status.value for o in journal.outcomes()}
    journal.close()
    assert verdicts == {r.row: "invalid" if isinstance(r, Rejected) else "skipped" for r in old}


def test_chunks_cut_a_stream_in_order() -> None:
    rows = [Row(n, {}) for n in range(1, 6)]
    assert [[r.number for r in c] for c in chunks(iter(rows), 2)] == [[1, 2], [3, 4], [5]]


# --- the rules the fast path leans on ----------------------------------------------------

def old_password_problem(password: str) -> str | None:
    """rules.password_problem as it was before the chunked path: the reference."""
    if not password:
        return "the password is empty"
    if len(password) > rules.PASSWORD_MAX_LENGTH:
        return f"the password is longer than {rules.PASSWORD_MAX_LENGTH} characters"
    if len(password) < rules.PASSWORD_MIN_LENGTH:
        return f"the password is shorter than {rules.PASSWORD_MIN_LENGTH} characters"
    if any(c not in rules.PASSWORD_ALLOWED for c in password):
        return "the password contains a character Entra does not allow (only ASCII letters, digits, symbols and space)"
    classes = sum((any(c.islower() for c in password), any(c.isupper() for c in password),
                   any(c.isdigit() for c in password), any(c in rules.PASSWORD_SYMBOLS for c in password)))
    return "the password needs 3 of: lowercase, uppercase, digits, symbols" if classes < 3 else None


@settings(max_examples=500, deadline=None, database=None)
@given(password_text | st.text(alphabet=string.ascii_letters + string.digits + rules.PASSWORD_SYMBOLS, max_size=20))
def test_password_problem_says_what_it_said(password: str) -> None:
    assert rules.password_problem(password) == old_password_problem(password)


def test_a_chunk_of_another_verb_is_validated_row_by_row() -> None:
    from batch.verbs.registry import VerbSettings, build_verb
    verb = build_verb("delete", VerbSettings(domain=DOMAIN))
    rows = [Row(1, {"signInName": "ada@example.com"}), Row(2, {"signInName": ""}), Row(3, {}, blank=True)]
    assert verb.validate_chunk(rows) == [build_verb("delete", VerbSettings(domain=DOMAIN)).validate(r) for r in rows]


def test_written_files_read_back_the_same(tmp_path: Path) -> None:
    """A file with every column, quoted cells, ext columns and a portal template's shape."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["signInName", "displayName", "businessPhone", "streetAddress", "ext.loyalty", EXT_LONG])
    writer.writerow(["ada@example.com", "Ada", "'+1 555", "1 Main St\nFlat 2", "TRUE", "gold"])
    writer.writerow(["bob", "Bob", "", " 2 Side St", "", "x" * 257])
    writer.writerow(["ada@example.com", "Ada again", "", "", "", ""])
    path = tmp_path / "all.csv"
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    for options in SETTINGS:
        assert_same(*both_paths(read_rows(path), iter(lambda: 2, 0), **options))


# --- each screen's edges, one at a time ---------------------------------------------------

BASE_HEADER = ["signInType", "signInName", "displayName", "givenName", "surname", "jobTitle", "streetAddress",
               "postalCode", "employeeId", "businessPhone", "blockSignIn", "accountEnabled", "usageLocation", "mail",
               "password", "forceChangePasswordNextSignIn", "preferredLanguage", "userPrincipalName", "ext.loyalty",
               EXT_LONG]


def base_cells(number: int) -> dict[str, str]:
    """A row that every screen passes (checked by the test below)."""
    by_email = number % 3 != 0
    name = f"ada.{number}@example.com" if by_email else f"ada_{number}"
    return dict(zip(BASE_HEADER, [
        "emailAddress" if by_email else "userName", name, f"Ada Lovelace {number}", "Ada", "Lovelace", "Analyst",
        "1 Main St\nFlat 2", "75001", f"E{number}", "+1 555 0100", "No" if number % 2 else "", "Yes" if number % 2
        else "", "FR", "" if by_email else f"ada{number}@example.org", "Legacy-123456!x" if number % 4 == 0 else "",
        "Yes" if number % 5 == 0 else "", "en-US", f"ada{number}@{DOMAIN}", "silver", "gold"]))


# Cells at the edge of each screen: on either side of a limit, a forbidden character, other
# spellings, white space around, a non-ASCII letter, a line break inside.
EDGES: dict[str, list[str]] = {
    "signInType": ["email", "EMAIL", "user name", " emailAddress", "emailAddress ", "userName", "Username", "mail"],
    "signInName": ["ada\nbob", "ada\n", "ada.x@example.com\nbob", "a" * 64, "a" * 65, "b" * 56 + "@x.co",
                   "b" * 65 + "@example.com", "ada--b", "ab@xn--d.com", "a@bc--d.com", "x@example.local",
                   "x@example.LOCALHOST", "x@example.test", "x@test.example", "x@local.example", "Ada@Example.COM",
                   "ada@exámple.com", "o'brien@example.org", "-ada", "ada_", "ada.b", " ada", "ada ", "ada@example.c",
                   "ada@@example.com", "ada.1@example.com", "ADA.1@EXAMPLE.COM", "ada_3", "", "ada@example.com.",
                   "\u00a0ada", "ada\u2028"],
    "displayName": ["x" * 256, "x" * 257, " Ada", "Ada ", "Ada\tL", "Ada\nL", "Ada\rL", "A<b", "A>b", "", " ",
                    "\u00a0Ada", "Chloé"],
    "givenName": ["x" * 64, "x" * 65, " Ada", "Ada\n", "A\tb", "é"],
    "jobTitle": ["x" * 128, "x" * 129, "A\rb"],
    "streetAddress": ["x" * 1024, "x" * 1025, "1 Main\n", "\n1 Main", "1 Main\r\nFlat\t2"],
    "postalCode": ["x" * 40, "x" * 41],
    "employeeId": ["x" * 16, "x" * 17, "E1 ", "E\t1"],
    "businessPhone": ["+1 555", " +1 555", "+1\t555", "+1 555\n", "'+1 555"],
    "blockSignIn": ["maybe", "yes", "YES", "Yes", "yES", " Yes", "tRUE", "2", "Y", "n", "0", "1", "True", ""],
    "accountEnabled": ["No", "no", "false", "Yes", "", " yes", "nope"],
    "usageLocation": ["us", "XX", " US", "US ", "ıt", "IT", "", "U", "USA", "NA"],
    "mail": ["ada@example.com", "bad@", "ada@exámple.com", " ada@example.com", "x@y.local", "a" * 250 + "@x.com",
             "ab@xn--d.com", "ada@example.com\n"],
    "password": ["Aa1!Aa1!", "Aa1!Aa1", "Aa1!" * 64, "Aa1!" * 64 + "x", "legacy-123456!x", "legacy123456",
                 "LEGACY-123456", "Légacy-123!x", "Legacy 12345", "Legacy\t123!x", " Legacy-123!x", "Legacy-123!x ",
                 "aaaaaaaaaaaaA1", "!!!!!!!!aA", "12345678!a", "12345678!A", "abcdefgh", "ABCDEFGH1"],
    "forceChangePasswordNextSignIn": ["Yes", "no", "FALSE", "yes ", "si"],
    "preferredLanguage": ["en", "en-US", "en-", "en-U", "en-12", "english", " en", "EN-us", "en-US\n", "e", "eng-12345678",
                          "eng-123456789", "fr_FR"],
    "userPrincipalName": [f"ada@{DOMAIN}", f"ada.@{DOMAIN}", "ada@fabrikam.com", f" ada@{DOMAIN}", f"a@b@{DOMAIN}",
                          f"ADA@{DOMAIN.upper()}", f"ada3@{DOMAIN}", "", f"{'a' * 65}@{DOMAIN}", f"ad a@{DOMAIN}"],
    "ext.loyalty": ["x" * 256, "x" * 257, "true", " TRUE", "False", ""],
    EXT_LONG: ["x" * 256, "x" * 257, "TRUE ", ""],
}


def test_the_base_rows_pass_every_screen() -> None:
    from batch.verbs.screen import flagged
    rows = [base_cells(number) for number in range(1, 41)]
    assert flagged({name: [cells[name] for cells in rows] for name in BASE_HEADER}) == set()
    results = CreateVerb(CreateOptions(domain=DOMAIN, extensions_app_id=EXT_APP)).validate_chunk(
        [Row(number, cells) for number, cells in enumerate(rows, 1)])
    assert all(isinstance(result, CreatePlan) for result in results)


@pytest.mark.parametrize(("column", "value"), [(c, v) for c, values in EDGES.items() for v in values],
                         ids=lambda x: repr(x)[:24])
def test_each_edge_alone_validates_the_same(column: str, value: str) -> None:
    """One cell at a screen's edge in an otherwise clean chunk: the same results both ways
    (in a chunk, and in a chunk of one where the whole-column test is the cell's)."""
    for at in (0, 2, 7):  # rows 1 and 8 sign in by email, row 3 by user name
        rows = [Row(number, base_cells(number)) for number in range(1, 41)]
        rows[at].cells[column] = value
        for options in SETTINGS[:2]:
            assert_same(*both_paths(rows, **options))
            assert_same(*both_paths(rows, iter(lambda: 1, 0), **options))


@settings(max_examples=1000, deadline=None, database=None)
@given(st.lists(password_text | near(["Legacy-123456!x", "Aa1!Aa1!", "abcdefgh1", "ABCD efgh", "Aa1!" * 64])
                | st.text(max_size=20) | st.sampled_from(EDGES["password"]), max_size=12))
def test_the_password_screen_is_the_rule(passwords: list[str]) -> None:
    """The password screen flags exactly the filled cells that rules.password_problem refuses."""
    from batch.verbs.screen import SCREENS
    assert rules.PASSWORD_ALLOWED == frozenset(map(chr, range(0x20, 0x7F)))  # what the screen assumes
    assert SCREENS["password"](passwords) == [
        at for at, password in enumerate(passwords) if password and rules.password_problem(password) is not None]


@settings(max_examples=500, deadline=None, database=None)
@given(st.lists(CELLS["signInName"] | st.sampled_from(EDGES["signInName"]), max_size=30))
def test_the_sign_in_name_screen_is_its_rule(names: list[str]) -> None:
    """The joined column's one match (with its restarts after a bad name) flags exactly the
    names that are not blank, or a plain address or user name of at most 64 characters
    without '--'."""
    from batch.verbs.fields import plainly_valid_email
    from batch.verbs.screen import SCREENS

    def plain(name: str) -> bool:
        return name == "" or (len(name) <= rules.ISSUER_ASSIGNED_ID_MAX_LENGTH and "--" not in name and (
            plainly_valid_email(name) if "@" in name else rules.is_user_name(name)))

    assert SCREENS["signInName"](names) == [at for at, name in enumerate(names) if not plain(name)]


def test_only_validate_and_a_create_dry_run_collect_garbage_less_often(home: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # validate, and a create dry run planning from its directory index, are bound by this
    # process's CPU: fewer collections; any other command keeps CPython's thresholds (an export
    # of a million customers with them raised peaked at 254 MB instead of 79: the cycles HTTP
    # and asyncio leave piled up).
    before = gc.get_threshold()
    source = generated(tmp_path, 50, 0.0, 6)
    try:
        gc.set_threshold(700, 10, 10)
        main(["create", str(source), "--domain", DOMAIN, "--out-dir", str(tmp_path / "run")])
        main(["update", str(source), "--dry-run", "--out-dir", str(tmp_path / "update")])
        assert gc.get_threshold() == (700, 10, 10)
        main(["create", str(source), "--domain", DOMAIN, "--dry-run", "--out-dir", str(tmp_path / "dry")])
        assert gc.get_threshold() == COLLECT_EVERY
        gc.set_threshold(700, 10, 10)
        assert main(["validate", str(source), "--verb", "create", "--domain", DOMAIN]) == 0
        assert gc.get_threshold() == COLLECT_EVERY
    finally:
        gc.set_threshold(*before)
        capsys.readouterr()
