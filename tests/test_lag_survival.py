"""The verbs against a Graph whose reads lag its writes (issue 11, "a tool that survives it").

Each scenario runs on a `World`: a Graph transport with replication lag, a real Graph client
on virtual time, and a verbs session whose replication waits sleep on the same fake clock,
so that seconds of lag cost the suite nothing. The Graph is tests/graph/lagging.py's double;
once the emulator has its own lag (`EmulatorSettings.replication_lag_ms`), each scenario runs
against it too (the ones that need the double's `write_lag` are skipped there). The outcomes
asserted hold whatever the lag drawn: a customer is created once, with the password that
passwords.csv would hold; a row is never reported gone while the directory only lags.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from graph.lagging import BASE, Answers, LaggingGraph, VirtualTime

from batch.auth import ClientCredentialsProvider
from batch.emulator import EmulatorSettings, Quotas, Store, create_app
from batch.emulator.inprocess import EmulatorTransport
from batch.graph import GraphCall, GraphClient
from batch.io.csvio import Row
from batch.outcome import SentRow, Status
from batch.verbs.base import Executed, Session
from batch.verbs.create import CreateOptions, CreatePlan, CreateVerb
from batch.verbs.delete import DeleteVerb
from batch.verbs.existing import KeyPlan
from batch.verbs.purge import PurgeVerb
from batch.verbs.reset_password import ResetPasswordVerb
from batch.verbs.restore import RestoreVerb
from batch.verbs.update import UpdatePlan, UpdateVerb

DOMAIN = "contoso.onmicrosoft.com"
LAG = 3.0  # seconds: longer than the first lookup takes, shorter than the verbs' waits (15.5 s)
GRAPHS = ["double"] + (["emulator"] if "replication_lag_ms" in EmulatorSettings.__dataclass_fields__ else [])


@dataclasses.dataclass
class World:
    store: Store  # the true directory
    answers: Answers
    client: GraphClient
    session: Session
    time: VirtualTime
    waited: list[float]  # the verbs' replication waits, in seconds

    def holders(self, name: str) -> list[str]:
        tenant = self.store.tenants()[0]
        holder = self.store.identity_holder(tenant.id, DOMAIN, name)
        return [holder] if holder else []

    def where(self, object_id: str) -> str:
        tenant = self.store.tenants()[0]
        user = self.store.user(tenant.id, object_id, ("live", "deleted"))
        return "gone" if user is None else ("live" if self.store.user(tenant.id, object_id) else "deleted")

    def settle(self) -> None:
        """Let every write so far replicate (time passes with nobody looking)."""
        self.time.fake.now += 10 * LAG + 60


def _graph(kind: str, folder: Path, vt: VirtualTime, write_lag: float) -> tuple[httpx.AsyncBaseTransport, Store]:
    if kind == "double":
        folder.mkdir()
        double = LaggingGraph(folder, vt.graph_clock, lag=LAG, write_lag=write_lag)
        return double, double.master
    if write_lag:
        pytest.skip("write_lag (reads and writes on different replicas) is the double's alone")
    store = Store(folder / "emulator.db")
    settings = EmulatorSettings(quotas=Quotas(enabled=False), seed=11, replication_lag_ms=LAG * 1000)  # type: ignore[call-arg]
    return EmulatorTransport(create_app(store, settings, clock=vt.graph_clock)), store


@pytest.fixture(params=GRAPHS)
async def make_world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[..., World]]:
    made: list[tuple[GraphClient, ClientCredentialsProvider, httpx.AsyncBaseTransport, Store]] = []

    def make(write_lag: float = 0.0, waits: tuple[float, ...] | None = None) -> World:
        vt = VirtualTime()
        graph, store = _graph(request.param, tmp_path / f"graph{len(made)}", vt, write_lag)
        answers = Answers(graph)
        app, tenant = store.default_app(), store.tenants()[0]
        assert app.secret is not None
        tokens = ClientCredentialsProvider(f"http://emulator/{tenant.id}/oauth2/v2.0/token", app.client_id,
                                           app.secret, transport=answers, clock=vt.clock, sleep=vt.sleep)
        client = GraphClient(BASE, tokens, transport=answers, clock=vt.clock, sleep=vt.sleep)
        waited: list[float] = []

        async def replication_sleep(seconds: float) -> None:
            waited.append(seconds)
            await vt.sleep(seconds)

        session = Session(client=client, sleep=replication_sleep)
        if waits is not None:
            session.replication_waits = waits
        made.append((client, tokens, graph, store))
        return World(store, answers, client, session, vt, waited)

    yield make
    for client, tokens, graph, store in made:
        await client.aclose()
        await tokens.aclose()
        if isinstance(graph, LaggingGraph):
            graph.close()
        else:
            store.close()


def create_plans(verb: CreateVerb, count: int, prefix: str = "c") -> list[CreatePlan]:
    plans = []
    for number in range(1, count + 1):
        plan = verb.validate(Row(number, {"signInName": f"{prefix}{number}@example.com", "displayName": f"C {number}"}))
        assert isinstance(plan, CreatePlan)
        plans.append(plan)
    return plans


def key_plans(verb: Any, names: list[str]) -> list[Any]:
    plans = [verb.validate(Row(i, {"signInName": name, **extra}))
             for i, (name, extra) in enumerate(((n, {}) for n in names), start=1)]
    assert all(isinstance(p, KeyPlan) for p in plans), plans
    return plans


async def customers(world: World, names: list[str], *, deleted: bool = False) -> dict[str, str]:
    """Customers made through Graph and left to replicate: sign-in name → object id."""
    verb = CreateVerb(CreateOptions(domain=DOMAIN))
    plans = [verb.validate(Row(i, {"signInName": n, "displayName": n})) for i, n in enumerate(names, start=1)]
    done = await verb.execute([p for p in plans if isinstance(p, CreatePlan)], world.session)
    ids = {o.key: o.object_id for o in done.outcomes if o.status is Status.CREATED}
    assert len(ids) == len(names)
    world.settle()
    if deleted:
        for object_id in ids.values():
            assert (await world.client.request(GraphCall("DELETE", f"/users/{object_id}"))).status == 204
        world.settle()
    return ids


def assert_passwords_true(world: World, done: Executed) -> None:
    """passwords.csv would hold only passwords that customers have, one per customer."""
    for _row, _name, object_id, password, *_whom in done.passwords:
        assert world.answers.passwords.get(object_id) == password
    assert len({line[2] for line in done.passwords}) == len(done.passwords)


# ---- create --------------------------------------------------------------------------------------------------------

async def test_create_whose_answers_are_lost_finds_its_customers_once_they_replicate(
        make_world: Callable[..., World]) -> None:
    world = make_world()
    verb = CreateVerb(CreateOptions(domain=DOMAIN))
    plans = create_plans(verb, 3)
    world.answers.lose_answers("POST")  # the $batch of three creates is applied, its answer lost
    done = await verb.execute(plans, world.session)
    assert [(o.status, o.error_code) for o in done.outcomes] == [(Status.CREATED, "")] * 3 and not done.unresolved
    for plan, outcome in zip(plans, sorted(done.outcomes, key=lambda o: o.row)):
        assert world.holders(plan.key) == [outcome.object_id]
    assert len(done.passwords) == 3
    assert_passwords_true(world, done)


async def test_a_resent_create_that_conflicts_with_its_own_lagging_customer_is_ours(
        make_world: Callable[..., World]) -> None:
    # The waits (2 s) end before the lag (3 s): the create is sent again and conflicts with
    # the customer the lost answer made; the holder is waited for and judged by its createdDateTime.
    world = make_world(waits=(2.0,))
    verb = CreateVerb(CreateOptions(domain=DOMAIN))
    plans = create_plans(verb, 2)
    world.answers.lose_answers("POST")
    done = await verb.execute(plans, world.session)
    assert sorted((o.row, o.status) for o in done.outcomes) == [(1, Status.CREATED), (2, Status.CREATED)]
    assert not done.unresolved
    assert all(len(world.holders(p.key)) == 1 for p in plans)
    assert_passwords_true(world, done)
    assert len(done.passwords) == 2


async def test_a_first_conflict_with_a_customer_not_yet_visible_names_it(make_world: Callable[..., World]) -> None:
    # Someone created c1 a moment ago; our file (skip existing) meets the conflict before any
    # replica shows the holder. Skipped with its object id, not failed.
    world = make_world()
    verb = CreateVerb(CreateOptions(domain=DOMAIN, on_existing="skip"))
    [theirs] = create_plans(verb, 1)
    assert (await world.client.request(verb.create_call(theirs))).status == 201
    [ours] = create_plans(verb, 1)
    done = await verb.execute([ours], world.session)
    [outcome] = done.outcomes
    assert (outcome.status, outcome.object_id) == (Status.SKIPPED, world.holders(ours.key)[0])
    assert done.passwords == []


async def test_resume_of_rows_a_crash_left_sent_waits_for_them_and_replaces_lost_passwords(
        make_world: Callable[..., World]) -> None:
    world = make_world()
    verb = CreateVerb(CreateOptions(domain=DOMAIN))
    crashed = create_plans(verb, 2)
    sent_at = time.time()
    for plan in crashed:  # the interrupted run's creates landed; its process died before any answer was kept
        assert (await world.client.request(verb.create_call(plan))).status == 201
    offset = world.client.server_clock_offset
    resumed = create_plans(CreateVerb(CreateOptions(domain=DOMAIN)), 2)
    done = await verb.reconcile([(p, SentRow(p.row, p.key, sent_at, True, 1, offset)) for p in resumed],
                                world.session)
    assert [o.status for o in done.outcomes] == [Status.CREATED] * 2 and not done.unresolved
    assert all("a new one was set" in o.error_message for o in done.outcomes)
    assert all(len(world.holders(p.key)) == 1 for p in resumed)
    assert len(done.passwords) == 2
    assert_passwords_true(world, done)


async def test_resume_replaces_a_lost_password_even_when_the_patch_meets_a_lagging_replica(
        make_world: Callable[..., World]) -> None:
    world = make_world(write_lag=2.0)
    verb = CreateVerb(CreateOptions(domain=DOMAIN))
    [crashed] = create_plans(verb, 1)
    sent_at = time.time()
    assert (await world.client.request(verb.create_call(crashed))).status == 201
    [resumed] = create_plans(CreateVerb(CreateOptions(domain=DOMAIN)), 1)
    done = await verb.reconcile([(resumed, SentRow(1, resumed.key, sent_at, True, 1,
                                                   world.client.server_clock_offset))], world.session)
    [outcome] = done.outcomes
    assert (outcome.status, outcome.error_code) == (Status.CREATED, "") and "a new one was set" in outcome.error_message
    assert_passwords_true(world, done)
    assert len(done.passwords) == 1


# ---- update, reset-password -----------------------------------------------------------------------------------------

async def test_update_retries_a_patch_that_a_lagging_replica_answers_404(make_world: Callable[..., World]) -> None:
    world = make_world(write_lag=2.0)
    ids = await customers(world, ["u1@example.com"])
    verb = UpdateVerb(DOMAIN)
    plan = verb.validate(Row(1, {"signInName": "u1@example.com", "jobTitle": "Pilot"}))
    assert isinstance(plan, UpdatePlan)
    # Someone changed the customer just now: the read replica shows it after the lag, the
    # replica that takes writes 2 s later still.
    await world.client.request(GraphCall("PATCH", f"/users/{ids['u1@example.com']}", body={"department": "Air"}))
    world.time.fake.now += LAG  # the read replica has it; the write path not yet
    done = await verb.execute([plan], world.session)
    [outcome] = done.outcomes
    assert (outcome.status, outcome.object_id) == (Status.UPDATED, ids["u1@example.com"])


async def test_a_key_never_found_costs_one_more_lookup_and_no_wait_in_the_verb(
        make_world: Callable[..., World]) -> None:
    """The first absence is handed back to the engine (Executed.later), which asks again once
    the replication window has passed; the second is believed."""
    world = make_world()
    verb = UpdateVerb(DOMAIN)
    plan = verb.validate(Row(1, {"signInName": "nobody@example.com", "jobTitle": "Pilot"}))
    assert isinstance(plan, UpdatePlan)
    before = world.client.stats.calls
    first = await verb.execute([plan], world.session)
    assert first.outcomes == [] and first.later == [plan] and plan.missed_at is not None
    second = await verb.execute([plan], world.session)
    [outcome] = second.outcomes
    assert (outcome.status, outcome.error_code) == (Status.FAILED, "Request_ResourceNotFound")
    assert second.later == [] and world.client.stats.calls - before == 2 and world.waited == []


async def _created_just_now(world: World, name: str) -> str:
    """A customer another run created a moment ago: in the directory, not yet on read replicas."""
    verb = CreateVerb(CreateOptions(domain=DOMAIN))
    plan = verb.validate(Row(1, {"signInName": name, "displayName": name}))
    assert isinstance(plan, CreatePlan)
    [outcome] = (await verb.execute([plan], world.session)).outcomes
    assert outcome.status is Status.CREATED
    return outcome.object_id


async def test_update_and_reset_right_after_another_run_created_the_customer(make_world: Callable[..., World]) -> None:
    world = make_world()
    object_id = await _created_just_now(world, "fresh@example.com")
    update, reset = UpdateVerb(DOMAIN), ResetPasswordVerb(DOMAIN)
    change = update.validate(Row(1, {"signInName": "fresh@example.com", "jobTitle": "Pilot"}))
    [again] = key_plans(reset, ["fresh@example.com"])
    assert isinstance(change, UpdatePlan)
    first = await update.execute([change], world.session)
    first.merge(await reset.execute([again], world.session))
    if first.later:  # the lag drawn hid the customer: the engine's second look, a window later
        assert first.outcomes == []
        world.time.fake.now += sum(world.session.replication_waits)
        first = await update.execute([change], world.session)
        first.merge(await reset.execute([again], world.session))
    assert [(o.status, o.object_id) for o in first.outcomes] == [(Status.UPDATED, object_id),
                                                                 (Status.PASSWORD_RESET, object_id)]
    assert_passwords_true(world, first)


async def test_delete_and_restore_right_after_the_customer_changed(make_world: Callable[..., World]) -> None:
    """Delete right after a create, restore right after that delete: neither reports the
    customer gone or "live, nothing to restore" because a replica lags."""
    world = make_world()
    object_id = await _created_just_now(world, "brief@example.com")
    delete, restore = DeleteVerb(DOMAIN), RestoreVerb(DOMAIN)
    for verb, status in ((delete, Status.DELETED), (restore, Status.RESTORED)):
        plans = key_plans(verb, ["brief@example.com"])
        done = await verb.execute(plans, world.session)
        if done.later:
            assert done.outcomes == []
            world.time.fake.now += sum(world.session.replication_waits)
            done = await verb.execute(done.later, world.session)
        [outcome] = done.outcomes
        assert (outcome.status, outcome.object_id) == (status, object_id), outcome
    assert world.where(object_id) == "live"


async def test_reset_password_retries_a_404_on_a_customer_it_just_found(make_world: Callable[..., World]) -> None:
    world = make_world(write_lag=2.0)
    ids = await customers(world, ["p1@example.com"])
    await world.client.request(GraphCall("PATCH", f"/users/{ids['p1@example.com']}", body={"department": "Air"}))
    world.time.fake.now += LAG
    verb = ResetPasswordVerb(DOMAIN)
    done = await verb.execute(key_plans(verb, ["p1@example.com"]), world.session)
    [outcome] = done.outcomes
    assert (outcome.status, outcome.object_id) == (Status.PASSWORD_RESET, ids["p1@example.com"])
    assert_passwords_true(world, done)
    assert len(done.passwords) == 1


# ---- delete, restore, purge -----------------------------------------------------------------------------------------

async def test_delete_whose_answer_is_lost_is_deleted_not_missing(make_world: Callable[..., World]) -> None:
    world = make_world()
    ids = await customers(world, ["d1@example.com", "d2@example.com"])
    verb = DeleteVerb(DOMAIN)
    world.answers.lose_answers("DELETE")  # applied; the client sends it again and meets a 404
    done = await verb.execute(key_plans(verb, ["d1@example.com", "d2@example.com"]), world.session)
    assert sorted((o.key, o.status) for o in done.outcomes) == [("d1@example.com", Status.DELETED),
                                                                 ("d2@example.com", Status.DELETED)]
    assert all(world.where(i) == "deleted" for i in ids.values())


async def test_resumed_delete_whose_customer_still_looks_live_is_deleted(make_world: Callable[..., World]) -> None:
    world = make_world()
    ids = await customers(world, ["e1@example.com"])
    sent_at = time.time() + (world.client.server_clock_offset or 0.0)
    assert (await world.client.request(GraphCall("DELETE", f"/users/{ids['e1@example.com']}"))).status == 204
    verb = DeleteVerb(DOMAIN)
    [plan] = key_plans(verb, ["e1@example.com"])
    done = await verb.reconcile([(plan, SentRow(1, plan.key, sent_at, False, 1, 0.0))], world.session)
    [outcome] = done.outcomes
    assert (outcome.status, outcome.object_id) == (Status.DELETED, ids["e1@example.com"])


async def test_restore_whose_answer_is_lost_is_restored_once_it_shows(make_world: Callable[..., World]) -> None:
    world = make_world()
    ids = await customers(world, ["r1@example.com", "r2@example.com"], deleted=True)
    verb = RestoreVerb(DOMAIN)
    world.answers.lose_answers("POST")
    done = await verb.execute(key_plans(verb, ["r1@example.com", "r2@example.com"]), world.session)
    assert sorted((o.key, o.status) for o in done.outcomes) == [("r1@example.com", Status.RESTORED),
                                                                 ("r2@example.com", Status.RESTORED)]
    assert not done.unresolved and all(world.where(i) == "live" for i in ids.values())


async def test_purge_does_not_call_a_customer_purged_on_a_lagging_404(make_world: Callable[..., World]) -> None:
    world = make_world(write_lag=2.0)
    ids = await customers(world, ["x1@example.com"], deleted=True)
    object_id = ids["x1@example.com"]
    # Restored and deleted again just now: deleted items show it, the write path not yet.
    assert (await world.client.request(GraphCall("POST", f"/directory/deletedItems/{object_id}/restore"))).status == 200
    world.time.fake.now += LAG + 2.1
    assert (await world.client.request(GraphCall("DELETE", f"/users/{object_id}"))).status == 204
    world.time.fake.now += LAG + 0.1
    verb = PurgeVerb(DOMAIN)
    done = await verb.execute(key_plans(verb, ["x1@example.com"]), world.session)
    [outcome] = done.outcomes
    assert (outcome.status, outcome.http_status) == (Status.PURGED, 204)
    assert world.where(object_id) == "gone"


# ---- what lag costs ---------------------------------------------------------------------------------------------------

async def test_measure_what_lag_costs_500_creates(make_world: Callable[..., World], request: pytest.FixtureRequest,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    figures = []
    for lag_on, lose_every in ((False, 0), (True, 0), (False, 10), (True, 10)):
        world = make_world()
        if not lag_on:
            graph = world.answers.inner
            if isinstance(graph, LaggingGraph):
                graph.lag = 0.0
            else:
                pytest.skip("lag off is the double's")
        verb = CreateVerb(CreateOptions(domain=DOMAIN))
        plans = create_plans(verb, 500, prefix=f"m{lag_on}{lose_every}.")
        done = Executed()
        for start in range(0, 500, 20):
            if lose_every and (start // 20) % lose_every == 0:
                world.answers.lose_answers("POST")
            done.merge(await verb.execute(plans[start:start + 20], world.session))
        assert [o.status for o in done.outcomes].count(Status.CREATED) == 500 and not done.unresolved
        assert_passwords_true(world, done)
        assert len(done.passwords) == 500
        stats = world.client.stats
        figures.append(f"lag {'3 s' if lag_on else 'off'}, {lose_every and 500 // 20 // lose_every + 1} lost $batch "
                       f"answers: {stats.calls} calls ({(stats.calls - 500) / 500:.3f} extra per row), "
                       f"{stats.requests} HTTP requests, {world.session.replication_retries} replication re-asks, "
                       f"{sum(world.waited):.1f} s waited for replication in {len(world.waited)} pauses")
    with capsys.disabled():
        print("\n" + "\n".join(figures))
