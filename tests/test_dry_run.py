"""Dry runs that read the directory (issue 12, finding 1 and the dry-run wording of finding 9):
every verb's `--dry-run` looks its rows up as the real run would, sends no write, needs only
the read permission, and writes plan.csv (one line per valid row: action, customer found,
reason, changes in the row's own columns); results.csv keeps its contract (`skipped`, with
what would happen) and the summary speaks in the future tense."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

import batch
from batch.cli import main
from batch.emulator import EmulatorApp, Store
from batch.emulator.inprocess import EmulatorTransport
from batch.outcome import Status
from batch.run.lifecycle import start_run
from batch.run.request import RunRequest
from batch.run.summary import RunSummary

DOMAIN_FREE = "signInName,displayName\r\n"


@dataclass
class Emulator:
    store: Store
    transport: EmulatorTransport
    target: batch.Target
    reader: batch.Target  # an app that may only read users (and the organization, for its domain)


class ReadOnly(httpx.AsyncBaseTransport):
    """The emulator's transport, failing the test on any write: a POST, PATCH or DELETE, also
    inside a $batch (the token request is the one POST allowed)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.reads = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/oauth2/v2.0/token"):
            return await self.inner.handle_async_request(request)
        if path.endswith("/$batch"):
            await request.aread()
            methods = [inner["method"] for inner in json.loads(request.content)["requests"]]
            assert set(methods) == {"GET"}, f"a dry run sent {methods} in a $batch"
            self.reads += len(methods)
        else:
            assert request.method == "GET", f"a dry run sent {request.method} {path}"
            self.reads += 1
        return await self.inner.handle_async_request(request)


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    monkeypatch.setenv("ENTRA_BATCH_REPLICATION_WAITS", "0.01,0.02")
    store = Store(tmp_path / "emulator.db")
    app = store.default_app()
    tenant = store.tenant(app.tenant_id)
    assert tenant is not None
    reader = store.add_app(tenant.id, ["User.Read.All", "Organization.Read.All"], display_name="reader")
    target = batch.Target("url", "http://emulator.local/v1.0", tenant_id=tenant.id, client_id=app.client_id,
                          client_secret=app.secret, authority_host="http://emulator.local",
                          domain=tenant.default_domain)
    yield Emulator(store, EmulatorTransport(EmulatorApp(store)), target,
                   replace(target, client_id=reader.client_id, client_secret=reader.secret))
    store.close()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


async def run(emulator: Emulator, verb: str, source: Path, out: Path, *, dry_run: bool = True,
              **options: object) -> RunSummary:
    """A run of `verb`; a dry run goes as the read-only app, through a transport that fails on writes."""
    request = RunRequest(verb=verb, input=str(source), out_dir=str(out), dry_run=dry_run, **options)  # type: ignore[arg-type]
    if not dry_run:
        return await start_run(request, emulator.target, transport=emulator.transport)
    guard = ReadOnly(emulator.transport)
    summary = await start_run(request, emulator.reader, transport=guard)
    assert guard.reads > 0, "a dry run reads the directory"
    return summary


async def seed(emulator: Emulator, tmp_path: Path, names: list[str], name: str = "seed") -> dict[str, str]:
    """Customers `names` (sign-in names), created for real: name → object id."""
    source = write(tmp_path / f"{name}.csv", DOMAIN_FREE + "".join(f"{n},{n.split('@')[0].title()}\r\n" for n in names))
    summary = await run(emulator, "create", source, tmp_path / name, dry_run=False)
    assert summary.counts["created"] == len(names)
    return {r["key"]: r["object_id"] for r in rows(tmp_path / name / "results.csv")}


def plan_of(run_dir: Path, *, invalid: bool = False) -> list[dict[str, str]]:
    """plan.csv's lines (those of rows that validation refused only when `invalid`)."""
    path = run_dir / "plan.csv"
    assert path.read_bytes().decode("utf-8-sig").startswith(
        "row,key,action,object_id,display_name,sign_in_name,reason,changes,line\r\n")
    return [line for line in rows(path) if invalid or not line["reason"].startswith("invalid: ")]


# ---- finding 1: create --dry-run passed 200 rows; the real run then failed all 200 ----------------------

async def test_create_dry_run_finds_the_rows_that_already_exist(emulator: Emulator, tmp_path: Path) -> None:
    ids = await seed(emulator, tmp_path, [f"old{i}@example.com" for i in range(3)])
    upn = f"legacy@{emulator.target.domain}"
    await seed_upn(emulator, tmp_path, upn)
    source = write(tmp_path / "week.csv", "signInName,userPrincipalName,displayName\r\n"
                   + "".join(f"old{i}@example.com,,Old {i}\r\n" for i in range(3))
                   + "new1@example.com,,New 1\r\nnew2@example.com,,New 2\r\n"
                   + f",{upn},Legacy\r\n,,Nameless\r\n")
    summary = await run(emulator, "create", source, tmp_path / "dry")
    plan = plan_of(tmp_path / "dry")
    assert [(p["row"], p["action"]) for p in plan] == [("1", "fail"), ("2", "fail"), ("3", "fail"), ("4", "create"),
                                                       ("5", "create"), ("6", "fail")]
    first = plan[0]
    assert (first["object_id"], first["display_name"], first["sign_in_name"]) == (ids["old0@example.com"], "Old0",
                                                                                  "old0@example.com")
    assert first["reason"].startswith(f"exists: sign-in name old0@example.com is taken by {ids['old0@example.com']}")
    assert plan[5]["reason"].startswith(f"exists: UPN {upn} is taken by")
    assert plan[3]["reason"] == "no customer has this sign-in name" and plan[3]["object_id"] == ""
    # Every row has its line, the invalid one too (the week's trial: 185 lines for 200 rows),
    # with the line Excel shows.
    everything = plan_of(tmp_path / "dry", invalid=True)
    assert [(p["row"], p["line"]) for p in everything] == [(str(n), str(n + 1)) for n in range(1, 8)]
    assert (everything[6]["action"], everything[6]["reason"]) == (
        "fail", "invalid: signInName (or userPrincipalName) is required")
    results = rows(tmp_path / "dry" / "results.csv")
    assert [r["status"] for r in results] == ["skipped"] * 6 + ["invalid"]  # the contract: valid rows skipped
    assert results[0]["error_message"].startswith("dry run: would fail (exists: sign-in name old0@example.com")
    assert results[3]["error_message"] == "dry run: would create (no customer has this sign-in name)"
    assert dict(summary.plan) == {"create": 2, "fail": 4} and dict(summary.plan_failures) == {"exists": 4}
    assert summary.exit_code == batch.ExitCode.ROWS_FAILED  # rows would fail
    saved = json.loads((tmp_path / "dry" / "summary.json").read_text())
    assert saved["plan"] == {"create": 2, "fail": 4} and saved["plan_failures"] == {"exists": 4}
    assert emulator.store.count_users(emulator.store.tenants()[0].id, "live") == 4  # nothing was created
    assert not (tmp_path / "dry" / "passwords.csv").exists()
    # The real run does what the plan said, row by row.
    real = await run(emulator, "create", source, tmp_path / "real", dry_run=False)
    assert [r["status"] for r in rows(tmp_path / "real" / "results.csv")] == [
        "failed", "failed", "failed", "created", "created", "failed", "invalid"]
    assert real.counts["created"] == 2


async def seed_upn(emulator: Emulator, tmp_path: Path, upn: str) -> None:
    source = write(tmp_path / "upn.csv", f"userPrincipalName,displayName\r\n{upn},Legacy\r\n")
    assert (await run(emulator, "create", source, tmp_path / "upn", dry_run=False)).counts["created"] == 1


@pytest.mark.parametrize("policy, action, exit_code", [("skip", "skip", 0), ("update", "update", 0)])
async def test_create_dry_run_applies_on_existing(emulator: Emulator, tmp_path: Path, policy: str, action: str,
                                                  exit_code: int) -> None:
    ids = await seed(emulator, tmp_path, ["ann@example.com"])
    source = write(tmp_path / "again.csv", "signInName,displayName,blockSignIn\r\nann@example.com,Ann B.,Yes\r\n"
                                           "cat@example.com,Cat,\r\n")
    summary = await run(emulator, "create", source, tmp_path / "dry", on_existing=policy)
    plan = plan_of(tmp_path / "dry")
    assert [(p["action"], p["object_id"]) for p in plan] == [(action, ids["ann@example.com"]), ("create", "")]
    assert f"--on-existing {policy}" in plan[0]["reason"]
    if policy == "update":
        assert plan[0]["changes"] == "blockSignIn: No \u2192 Yes; displayName: 'Ann' \u2192 'Ann B.'"
    else:
        assert plan[0]["changes"] == ""
    assert summary.exit_code == exit_code


# ---- finding 1: delete --dry-run called an unknown key "valid, not sent" and named nobody -----------------

async def test_delete_dry_run_names_the_customer_found_and_fails_an_unknown_key(emulator: Emulator,
                                                                                tmp_path: Path) -> None:
    ids = await seed(emulator, tmp_path, ["ann@example.com", "bob@example.com"])
    await run(emulator, "delete", write(tmp_path / "bob.csv", "signInName\r\nbob@example.com\r\n"), tmp_path / "gone",
              dry_run=False)
    source = write(tmp_path / "leavers.csv", "signInName\r\nann@example.com\r\nbob@example.com\r\nghost@example.com\r\n")
    summary = await run(emulator, "delete", source, tmp_path / "dry")
    plan = plan_of(tmp_path / "dry")
    assert [(p["action"], p["object_id"], p["display_name"], p["sign_in_name"]) for p in plan] == [
        ("delete", ids["ann@example.com"], "Ann", "ann@example.com"),
        ("skip", ids["bob@example.com"], "Bob", "bob@example.com"),
        ("fail", "", "", "")]
    assert plan[1]["reason"].startswith("already deleted on ")
    assert plan[2]["reason"].startswith("no customer with this key")
    assert [r["error_message"].split(" (")[0] for r in rows(tmp_path / "dry" / "results.csv")] == [
        "dry run: would delete", "dry run: would skip", "dry run: would fail"]
    assert dict(summary.plan) == {"delete": 1, "skip": 1, "fail": 1}
    assert dict(summary.plan_failures) == {"no customer with this key": 1}
    assert emulator.store.count_users(emulator.store.tenants()[0].id, "live") == 1


async def test_restore_purge_and_reset_say_what_they_would_do(emulator: Emulator, tmp_path: Path) -> None:
    ids = await seed(emulator, tmp_path, ["ann@example.com", "bob@example.com"])
    await run(emulator, "delete", write(tmp_path / "bob.csv", "signInName\r\nbob@example.com\r\n"), tmp_path / "gone",
              dry_run=False)
    source = write(tmp_path / "keys.csv", "signInName\r\nann@example.com\r\nbob@example.com\r\nghost@example.com\r\n")
    expected = {
        "restore": [("skip", ids["ann@example.com"]), ("restore", ids["bob@example.com"]), ("fail", "")],
        "purge": [("fail", ids["ann@example.com"]), ("purge", ids["bob@example.com"]), ("skip", "")],
        "reset-password": [("reset", ids["ann@example.com"]), ("fail", ""), ("fail", "")],
    }
    for verb, wanted in expected.items():
        await run(emulator, verb, source, tmp_path / verb)
        plan = plan_of(tmp_path / verb)
        assert [(p["action"], p["object_id"]) for p in plan] == wanted, verb
        assert all(p["reason"] for p in plan)
    assert plan_of(tmp_path / "purge")[0]["reason"] == "the customer is live: delete it before purging it"
    assert not (tmp_path / "reset-password" / "passwords.csv").exists()
    tenant = emulator.store.tenants()[0].id
    assert (emulator.store.count_users(tenant, "live"), emulator.store.count_users(tenant, "deleted")) == (1, 1)


# ---- finding 9: a blockSignIn Yes row appeared in plan.csv as accountEnabled true→false ------------------

@pytest.mark.parametrize("header, value, said", [
    ("blockSignIn", "Yes", "blockSignIn: No \u2192 Yes"),
    ("Block sign in (Yes/No) [accountEnabled] Required", "Yes", "Block sign in: No \u2192 Yes"),
    ("accountEnabled", "false", "accountEnabled: true \u2192 false"),
])
async def test_update_plan_speaks_in_the_rows_own_columns(emulator: Emulator, tmp_path: Path, header: str,
                                                          value: str, said: str) -> None:
    ids = await seed(emulator, tmp_path, ["ann@example.com"])
    source = write(tmp_path / "up.csv", f"signInName,Display Name,{header},city\r\nann@example.com,Ann B.,{value},\r\n"
                                        "ghost@example.com,X,,\r\n")
    await run(emulator, "update", source, tmp_path / "dry")
    plan = plan_of(tmp_path / "dry")
    assert plan[0]["action"] == "update" and plan[0]["object_id"] == ids["ann@example.com"]
    assert plan[0]["changes"] == f"{said}; Display Name: 'Ann' \u2192 'Ann B.'" or \
        plan[0]["changes"] == f"Display Name: 'Ann' \u2192 'Ann B.'; {said}"
    assert "accountEnabled" not in plan[0]["changes"] or header == "accountEnabled"
    assert plan[0]["reason"].startswith("2 properties differ: ")
    assert (plan[1]["action"], plan[1]["reason"]) == ("fail", "no customer with this key")
    user = emulator.store.user(emulator.store.tenants()[0].id, ids["ann@example.com"])
    assert user is not None and (user.data["displayName"], user.data["accountEnabled"]) == ("Ann", True)


# ---- finding 9: a dry run said "skipped N" instead of what would happen ----------------------------------

def test_the_summary_speaks_in_the_future_tense(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "first.csv", DOMAIN_FREE + "a@example.com,A\r\nb@example.com,B\r\n")
    assert main(["create", str(tmp_path / "first.csv"), "--out-dir", str(tmp_path / "first"), "--quiet"]) == 0
    write(tmp_path / "all.csv", DOMAIN_FREE + "a@example.com,A\r\nb@example.com,B\r\nc@example.com,C\r\n,\r\n"
                                              "d@example.com,\r\n")
    capsys.readouterr()
    assert main(["create", str(tmp_path / "all.csv"), "--dry-run", "--out-dir", str(tmp_path / "dry"), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "  would create 1, would fail 2 (exists: 2), skipped 1, invalid 1\n" in out, out
    assert "skipped 4" not in out


def test_a_clean_dry_run_exits_0(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "new.csv", DOMAIN_FREE + "a@example.com,A\r\n")
    assert main(["create", str(tmp_path / "new.csv"), "--dry-run", "--out-dir", str(tmp_path / "dry"), "--quiet"]) == 0
    assert "  would create 1\n" in capsys.readouterr().out


async def test_plan_csv_lists_the_rows_in_input_order(emulator: Emulator, tmp_path: Path) -> None:
    await seed(emulator, tmp_path, [f"c{i}@example.com" for i in range(0, 90, 3)])
    source = write(tmp_path / "many.csv", DOMAIN_FREE + "".join(f"c{i}@example.com,C {i}\r\n" for i in range(90)))
    summary = await run(emulator, "create", source, tmp_path / "dry", batch_size=2, concurrency=4)
    plan = plan_of(tmp_path / "dry")
    assert [int(p["row"]) for p in plan] == list(range(1, 91))
    assert [p["action"] for p in plan] == ["fail" if i % 3 == 0 else "create" for i in range(90)]
    assert summary.counts[Status.SKIPPED.value] == 90


async def test_a_dry_run_of_every_verb_sends_no_write_and_needs_only_read(emulator: Emulator, tmp_path: Path) -> None:
    await seed(emulator, tmp_path, ["ann@example.com"])
    keys = write(tmp_path / "keys.csv", "signInName\r\nann@example.com\r\nghost@example.com\r\n")
    files = {"create": write(tmp_path / "c.csv", DOMAIN_FREE + "ann@example.com,Ann\r\nnew@example.com,New\r\n"),
             "update": write(tmp_path / "u.csv", "signInName,displayName,blockSignIn\r\nann@example.com,Z,Yes\r\n"),
             "delete": keys, "reset-password": keys, "restore": keys, "purge": keys}
    for verb, source in files.items():
        summary = await run(emulator, verb, source, tmp_path / f"dry-{verb}")  # as the reader, writes refused
        assert sum(summary.plan.values()) == summary.counts["skipped"], verb
    # The same reader app cannot run for real: the permission check stops it first.
    with pytest.raises(batch.RunError) as refused:
        await start_run(RunRequest(verb="delete", input=str(keys), out_dir=str(tmp_path / "real")), emulator.reader,
                        transport=emulator.transport)
    assert refused.value.exit_code == batch.ExitCode.ABORTED


async def test_restore_dry_run_fails_a_customer_whose_sign_in_name_is_taken_again(emulator: Emulator,
                                                                                  tmp_path: Path) -> None:
    first = (await seed(emulator, tmp_path, ["ann@example.com"]))["ann@example.com"]
    await run(emulator, "delete", write(tmp_path / "ann.csv", "signInName\r\nann@example.com\r\n"), tmp_path / "gone",
              dry_run=False)
    second = (await seed(emulator, tmp_path, ["ann@example.com"], name="again"))["ann@example.com"]
    source = write(tmp_path / "back.csv", f"objectId\r\n{first}\r\n")
    await run(emulator, "restore", source, tmp_path / "dry")
    [line] = plan_of(tmp_path / "dry")
    assert (line["action"], line["object_id"]) == ("fail", first)
    assert line["reason"].startswith(f"exists: sign-in name ann@example.com is taken by the live customer {second}")
    await run(emulator, "restore", source, tmp_path / "real", dry_run=False)
    assert [r["status"] for r in rows(tmp_path / "real" / "results.csv")] == ["failed"]  # as the plan said


async def test_groups_planned_out_of_order_are_recorded_in_input_order(tmp_path: Path) -> None:
    """The engine writes plan.csv (and marks rows done) in input order even when the groups'
    lookups finish in another order: here each group answers later than the one after it."""
    import asyncio
    from types import SimpleNamespace

    from batch.io.columns import DELETE_COLUMNS
    from batch.io.csvio import Row
    from batch.run.files import PasswordsFile, PlanFile
    from batch.run.journal import Journal
    from batch.run.pipeline import Engine, EngineOptions
    from batch.verbs.base import Executed, PlanLine, Session
    from batch.verbs.delete import DeleteVerb
    from batch.verbs.existing import KeyPlan

    class SlowFirst(DeleteVerb):
        async def plan(self, plans: list[KeyPlan], session: Session) -> Executed:
            await asyncio.sleep(0.05 * (10 - plans[0].row) / 10)
            done = Executed()
            for plan in reversed(plans):
                done.would(PlanLine(plan.row, plan.key, "delete", reason="found"))
            return done

    verb = SlowFirst("contoso.onmicrosoft.com")
    assert verb.columns is DELETE_COLUMNS
    journal = Journal(tmp_path)
    plan_file = PlanFile(tmp_path)
    client = SimpleNamespace(stats=SimpleNamespace(throttled=0), server_clock_offset=None)
    engine = Engine(verb, iter([Row(n, {"signInName": f"c{n}@example.com"}) for n in range(1, 11)]), journal,
                    PasswordsFile(tmp_path), Session(client=client),  # type: ignore[arg-type]
                    EngineOptions(batch_size=2, concurrency=4, dry_run=True), plan_file=plan_file)
    await engine.run()
    plan_file.close()
    assert [int(p["row"]) for p in plan_of(tmp_path)] == list(range(1, 11))
    assert [o.error_message for o in journal.outcomes()] == ["dry run: would delete (found)"] * 10
    journal.close()


class Refusing(httpx.AsyncBaseTransport):
    """The emulator's token endpoint; every Graph request answered 403, as a tenant answers an
    app whose read permission was withdrawn after its token was issued."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/v2.0/token"):
            return await self.inner.handle_async_request(request)
        return httpx.Response(403, json={"error": {"code": "Authorization_RequestDenied",
                                                   "message": "Insufficient privileges to complete the operation."}})


@pytest.mark.parametrize("verb", ["create", "delete"])
async def test_a_dry_run_whose_reads_are_refused_stops_with_exit_3(emulator: Emulator, tmp_path: Path,
                                                                   verb: str) -> None:
    source = write(tmp_path / "in.csv", DOMAIN_FREE + "a@example.com,A\r\nb@example.com,B\r\n")
    with pytest.raises(batch.RunError) as refused:
        await start_run(RunRequest(verb=verb, input=str(source), out_dir=str(tmp_path / "dry"), dry_run=True),
                        emulator.reader, transport=Refusing(emulator.transport))
    assert refused.value.exit_code == batch.ExitCode.ABORTED
    assert "403" in str(refused.value) or "Authorization_RequestDenied" in str(refused.value)
