"""A create dry run that reads the directory's keys ahead (issue 16, batch/run/directory_keys.py):
once the listing is complete, a key no customer holds is "no customer" without a lookup. The
plan must be the one the lookups give, whatever the spelling of the keys."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import batch
from batch.emulator import EmulatorApp, Store
from batch.emulator.inprocess import EmulatorTransport
from batch.run.connection import open_connection
from batch.run.directory_keys import page_keys, read_directory_keys
from batch.run.lifecycle import start_run
from batch.run.request import RunRequest
from batch.run.summary import RunSummary
from batch.verbs.absence import DirectoryKeys, key_digests, normalised
from batch.verbs.create import CreateVerb

LISTING = "$select=id,userPrincipalName,identities"


@dataclass
class Emulator:
    store: Store
    transport: EmulatorTransport
    target: batch.Target
    reader: batch.Target


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


@pytest.fixture
def index_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every group of a dry run is planned once the directory's listing is over (ready or
    abandoned), as in a long file: a small one would otherwise be planned before it."""
    original = CreateVerb.plan

    async def plan(self: CreateVerb, plans: list[Any], session: Any) -> Any:
        keys = session.directory_keys
        while keys is not None and not keys.ready and not keys.unused:
            await asyncio.sleep(0.002)
        return await original(self, plans, session)

    monkeypatch.setattr(CreateVerb, "plan", plan)


class Recording(httpx.AsyncBaseTransport):
    """The emulator's transport, counting the key lookups (inside a $batch too) and the
    listing's pages; `refuse_listing` answers the listing with that status instead."""

    def __init__(self, inner: httpx.AsyncBaseTransport, refuse_listing: int | None = None,
                 hold_listing: bool = False) -> None:
        self.inner = inner
        self.lookups: list[str] = []
        self.listing = 0
        self.refuse_listing = refuse_listing
        self.hold_listing = hold_listing

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/$batch"):
            await request.aread()
            self.lookups += [inner["url"] for inner in json.loads(request.content)["requests"]]
        elif request.method == "GET" and path.endswith("/users") and LISTING in str(request.url):
            self.listing += 1
            if self.hold_listing:
                await asyncio.Event().wait()  # until the run cancels it
            if self.refuse_listing is not None:
                return httpx.Response(self.refuse_listing, json={"error": {
                    "code": "Authorization_RequestDenied", "message": "Insufficient privileges."}})
        elif request.method == "GET" and "/users" in path:
            self.lookups.append(str(request.url))
        return await self.inner.handle_async_request(request)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


async def create(emulator: Emulator, source: Path, out: Path, *, dry_run: bool = True,
                 transport: httpx.AsyncBaseTransport | None = None, **options: Any) -> RunSummary:
    request = RunRequest(verb="create", input=str(source), out_dir=str(out), dry_run=dry_run,
                         **{k: v for k, v in options.items() if k != "directory_index"})
    return await start_run(request, emulator.reader if dry_run else emulator.target,
                           transport=transport or emulator.transport,
                           directory_index=options.get("directory_index", True))


async def directory(emulator: Emulator, tmp_path: Path) -> str:
    """Customers of every kind a create dry run meets; returns the tenant's domain."""
    domain = emulator.target.domain
    assert domain is not None
    seeds = write(tmp_path / "seed.csv", "signInName,displayName,userPrincipalName,federatedIssuer,federatedId\r\n"
                                         "Ann@Example.com,Ann,,,\r\n"
                                         "bob_t,Bob,,,\r\n"
                                         ",Gina,,google.com,3003\r\n"
                                         f",Legacy,legacy@{domain},,\r\n"
                                         "gone@example.com,Gone,,,\r\n")
    assert (await create(emulator, seeds, tmp_path / "seeded", dry_run=False)).counts["created"] == 5
    gone = write(tmp_path / "gone.csv", "signInName\r\ngone@example.com\r\n")
    request = RunRequest(verb="delete", input=str(gone), out_dir=str(tmp_path / "deleted"))
    assert (await start_run(request, emulator.target, transport=emulator.transport)).counts["deleted"] == 1
    return domain


def rows_file(tmp_path: Path, domain: str) -> Path:
    return write(tmp_path / "rows.csv",
                 "signInName,displayName,userPrincipalName,federatedIssuer,federatedId,blockSignIn\r\n"
                 "ANN@EXAMPLE.COM,Ann B.,,,,Yes\r\n"        # exists, in another case
                 "new1@example.com,New,,,,\r\n"              # nobody
                 ",Gina G.,,GOOGLE.COM,3003,\r\n"            # a federated identity, issuer in another case
                 f",Legacy L.,LEGACY@{domain.upper()},,,\r\n"  # UPN only, in another case
                 "gone@example.com,Gone,,,,\r\n"             # soft-deleted: a live lookup does not find it
                 ",Fresh,,google.com,9999,\r\n"              # a federated identity nobody has
                 f",Upn New,upn.new@{domain},,,\r\n"         # a UPN nobody has
                 "BoB_T,Bob B.,,,,\r\n"                      # a user name, in another case
                 "bad-row,,,,,\r\n")                         # invalid: no display name


@pytest.mark.parametrize("policy", ["fail", "skip", "update"])
async def test_the_index_gives_the_plan_the_lookups_give(emulator: Emulator, tmp_path: Path, index_first: None,
                                                         policy: str) -> None:
    domain = await directory(emulator, tmp_path)
    source = rows_file(tmp_path, domain)
    old = Recording(emulator.transport)
    await create(emulator, source, tmp_path / "old", on_existing=policy, directory_index=False, transport=old)
    new = Recording(emulator.transport)
    summary = await create(emulator, source, tmp_path / "new", on_existing=policy, transport=new)
    for name in ("plan.csv", "results.csv"):
        assert (tmp_path / "new" / name).read_bytes() == (tmp_path / "old" / name).read_bytes(), name
    actions = [line.split(",")[2] for line in (tmp_path / "new" / "plan.csv").read_text().splitlines()[1:]]
    existing = {"fail": "fail", "skip": "skip", "update": "update"}[policy]
    assert actions == [existing, "create", existing, existing, "create", "create", "create", existing, "fail"]
    # The four rows whose customers exist were looked up; the other four were not.
    assert old.listing == 0 and len(old.lookups) == 8
    assert new.listing == 1 and len(new.lookups) == 4
    assert "read the directory's 4 customers in " in " ".join(summary.notes)
    assert any(note.endswith("; 4 of 8 rows needed no lookup") for note in summary.notes)


async def test_absent_keys_send_no_lookup_once_the_index_is_ready(emulator: Emulator, tmp_path: Path,
                                                                  index_first: None) -> None:
    domain = await directory(emulator, tmp_path)
    names = [f"new{i}@example.com" for i in range(60)]
    source = write(tmp_path / "new.csv", "signInName,displayName\r\n" + "".join(f"{n},N\r\n" for n in names)
                   + "ann@example.com,Ann\r\n")
    recording = Recording(emulator.transport)
    summary = await create(emulator, source, tmp_path / "dry", transport=recording)
    assert recording.listing == 1
    assert len(recording.lookups) == 1 and "ann%40example.com" in recording.lookups[0].lower()
    assert summary.counts["skipped"] == 61
    assert domain


async def test_a_listing_that_fails_leaves_the_lookups_and_says_so_once(emulator: Emulator, tmp_path: Path,
                                                                        index_first: None) -> None:
    domain = await directory(emulator, tmp_path)
    source = rows_file(tmp_path, domain)
    await create(emulator, source, tmp_path / "old", directory_index=False)
    refused = Recording(emulator.transport, refuse_listing=403)
    summary = await create(emulator, source, tmp_path / "new", transport=refused)
    assert refused.listing == 1 and len(refused.lookups) == 8
    for name in ("plan.csv", "results.csv"):
        assert (tmp_path / "new" / name).read_bytes() == (tmp_path / "old" / name).read_bytes(), name
    said = [note for note in summary.notes if "directory" in note]
    assert len(said) == 1 and said[0].startswith("the directory could not be read ahead (HTTP 403")
    assert said[0].endswith("every row was looked up one by one")


async def test_a_file_done_before_the_listing_cancels_it_quietly(emulator: Emulator, tmp_path: Path,
                                                                  recwarn: pytest.WarningsRecorder,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    source = write(tmp_path / "one.csv", "signInName,displayName\r\nann@example.com,Ann\r\n")
    held = Recording(emulator.transport, hold_listing=True)  # a directory that takes forever to list
    summary = await create(emulator, source, tmp_path / "dry", transport=held)
    assert held.listing == 1 and len(held.lookups) == 1
    assert summary.counts["skipped"] == 1
    assert not [note for note in summary.notes if "directory" in note]
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "directory-keys"]
    await asyncio.sleep(0)
    assert not [str(w.message) for w in recwarn]
    assert not [r.getMessage() for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


async def test_a_directory_past_the_key_limit_is_not_kept(emulator: Emulator, tmp_path: Path) -> None:
    await directory(emulator, tmp_path)
    async with open_connection(emulator.reader, transport=emulator.transport) as connection:
        small = DirectoryKeys(max_keys=5)
        await read_directory_keys(connection.client, small)
        assert not small.ready and small.size == 0
        assert small.note().startswith("the directory could not be read ahead (the directory holds more than 5 ")
        big = DirectoryKeys(max_keys=100)
        await read_directory_keys(connection.client, big)
        assert big.ready and big.customers == 4 and big.note().startswith("read the directory's 4 customers")
        assert big.size == 7  # three UPNs with a sign-in name or federated id each, one UPN alone
        assert big.absent(["ann@example.COM", "3003", "nobody@example.com"]) == [False, False, True]


def test_keys_held_twice_are_kept_once() -> None:
    index = DirectoryKeys()
    index.add(2, ["a@x.example", "A@X.example", "b"])
    index.add(1, ["B", "c"])
    index.complete(0.0)
    assert index.size == 3 and index.absent(["a@X.EXAMPLE", "b", "C", "d"]) == [False, False, False, True]


async def test_an_empty_directory_is_said_to_be_empty(emulator: Emulator, tmp_path: Path, index_first: None) -> None:
    source = write(tmp_path / "new.csv", "signInName,displayName\r\nann@example.com,Ann\r\nbob@example.com,Bob\r\n")
    recording = Recording(emulator.transport)
    summary = await create(emulator, source, tmp_path / "dry", transport=recording)
    assert recording.listing == 1 and not recording.lookups
    assert "the directory holds no customer yet: 2 of 2 rows needed no lookup" in summary.notes


def test_page_keys_keep_upns_and_identities_but_not_the_upn_identity_again() -> None:
    users = [{"id": "1", "userPrincipalName": "1@t.example", "identities": [
        {"signInType": "emailAddress", "issuer": "t.example", "issuerAssignedId": "a@b.example"},
        {"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "77"},
        {"signInType": "userPrincipalName", "issuer": "t.example", "issuerAssignedId": "1@t.example"}]},
        {"id": "2", "userPrincipalName": "2@t.example", "identities": None}]
    assert page_keys(users) == ["1@t.example", "a@b.example", "77", "2@t.example"]


# ---- the normalisation never separates what the emulator's comparison (SQLite NOCASE) matches ----

_NOCASE = sqlite3.connect(":memory:")
_TRICKY = "aAzZiIkKsS\u00df\u017f\u0131\u0130\u212a\u03a3\u03c3\u03c2\u00e9\u00c9@._-'"


def _same_for_emulator(a: str, b: str) -> bool:
    return bool(_NOCASE.execute("SELECT ? = ? COLLATE NOCASE", (a, b)).fetchone()[0])


@given(st.text(max_size=30), st.data())
def test_normalisation_merges_every_spelling_the_emulator_matches(value: str, data: st.DataObject) -> None:
    flips = data.draw(st.lists(st.booleans(), min_size=len(value), max_size=len(value)))
    other = "".join(c.swapcase() if flip and c.isascii() else c for c, flip in zip(value, flips))
    assert _same_for_emulator(value, other)
    assert normalised(value) == normalised(other)
    assert key_digests([value]).tolist() == key_digests([other]).tolist()


@given(st.text(alphabet=_TRICKY, max_size=8), st.data())
def test_normalisation_never_separates_two_keys_the_emulator_finds_equal(a: str, data: st.DataObject) -> None:
    """`b` is `a` with each character kept, re-cased (Python's rules, wider than NOCASE) or
    replaced by another tricky one: pairs NOCASE matches, and pairs it does not."""
    b = "".join(data.draw(st.sampled_from([c, c.swapcase(), c.upper(), c.lower(), *_TRICKY])) for c in a)
    if _same_for_emulator(a, b):
        assert normalised(a) == normalised(b)
        assert key_digests([a]).tolist() == key_digests([b]).tolist()
    assert key_digests([a]).tolist() == [hash(normalised(a))]


# ---- a directory of more than one page is read in UPN partitions -----------------------------------------

def _seed_directly(emulator: Emulator, count: int) -> None:
    """`count` customers (customer<i>@example.com, one in ten user<i>) written into the store."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.export import seed
    seed(emulator.store.path, count)


async def test_a_large_directory_is_read_in_partitions(emulator: Emulator, tmp_path: Path) -> None:
    _seed_directly(emulator, 1500)
    recording = Recording(emulator.transport)
    async with open_connection(emulator.reader, transport=recording) as connection:
        index = DirectoryKeys()
        await read_directory_keys(connection.client, index)
    assert index.ready and index.customers == 1500, index.note()
    assert recording.listing > 1  # the first page, then the partitions
    assert index.absent(["CUSTOMER7@example.com", "user10", "customer1500@example.com", "user1501"]) == \
        [False, False, True, True]


async def test_partitions_that_miss_customers_are_not_trusted(emulator: Emulator, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _seed_directly(emulator, 1500)
    import batch.run.directory_keys as module
    monkeypatch.setattr(module, "PARTITION_PREFIXES", tuple(p for p in module.PARTITION_PREFIXES if p != "a"))
    async with open_connection(emulator.reader, transport=emulator.transport) as connection:
        index = DirectoryKeys()
        await read_directory_keys(connection.client, index)
    assert not index.ready
    assert "UPN partitions listed" in index.note() and "but Graph counts 1,500" in index.note()


async def test_once_the_index_is_ready_rows_are_planned_in_large_groups(emulator: Emulator, tmp_path: Path,
                                                                         index_first: None,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A group costs ~2 ms whatever its size: past the index, groups of 1,000 rows, whose
    present keys still go to Graph <= 20 at a time (no more lookups in flight than before)."""
    existing = [f"old{i}@example.com" for i in range(45)]
    seeds = write(tmp_path / "seed.csv", "signInName,displayName\r\n" + "".join(f"{n},Old\r\n" for n in existing))
    assert (await create(emulator, seeds, tmp_path / "seeded", dry_run=False)).counts["created"] == 45
    names = [f"new{i}@example.com" for i in range(2500)] + existing
    source = write(tmp_path / "many.csv", "signInName,displayName\r\n" + "".join(f"{n},N\r\n" for n in names))
    groups: list[int] = []
    planned = CreateVerb.plan

    async def counting(self: CreateVerb, plans: list[Any], session: Any) -> Any:
        groups.append(len(plans))
        return await planned(self, plans, session)

    monkeypatch.setattr(CreateVerb, "plan", counting)
    batches: list[int] = []
    flying = [0, 0]  # $batches in flight now, and at most

    class Sizes(Recording):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if not request.url.path.endswith("/$batch"):
                return await super().handle_async_request(request)
            await request.aread()
            batches.append(len(json.loads(request.content)["requests"]))
            flying[0] += 1
            flying[1] = max(flying)
            try:
                await asyncio.sleep(0.01)
                return await super().handle_async_request(request)
            finally:
                flying[0] -= 1

    recording = Sizes(emulator.transport)
    summary = await create(emulator, source, tmp_path / "dry", transport=recording)
    assert sum(groups) == 2545 and len(groups) < 25 and max(groups) == 1000
    # The 45 rows that exist are in the last group: their lookups go one $batch after another.
    assert len(recording.lookups) == 45 and batches == [20, 20, 5] and flying[1] == 1
    assert summary.plan["fail"] == 45 and summary.plan["create"] == 2500
