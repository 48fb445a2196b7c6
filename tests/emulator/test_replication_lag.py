"""Replication lag (GRAPH.md §15.3, batch/emulator/replication.py): a write is committed at
once, and reads see it only `uniform(0, lag)` later. Until then they see the user as it was;
writes that name a user find it through the same view; uniqueness is the true state's.

The fake clock stands still between steps, so "inside the window" is the moment of the write
and "after it" is the clock moved past the lag.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator.helpers import GRAPH_SCOPE, conflict, customer, error_of, not_found, unique_email
from emulator.server_process import running_emulator

from batch.cli import main
from batch.cli.targets import LAG_VARIABLE, local_emulator_settings, reach
from batch.config import Target
from batch.emulator import EmulatorSettings, Faults
from batch.emulator.replication import Visibility
from batch.errors import ConfigError

LAG_MS = 2000.0
PAST_LAG = LAG_MS / 1000 + 0.001
EVENTUAL = {"ConsistencyLevel": "eventual"}
DELETED = "/v1.0/directory/deletedItems"


@pytest.fixture
def lagging(make_graph):
    return make_graph(EmulatorSettings(replication_lag_ms=LAG_MS, seed=11))


def by_email(email: str) -> dict[str, str]:
    """The resume lookup entra-batch sends: identities/any on the email identity."""
    return {"$filter": f"identities/any(c:c/issuerAssignedId eq '{email}' and c/issuer eq 'contoso.onmicrosoft.com')"}


async def ids_listed(graph, url: str, **params: str) -> set[str]:
    response = await graph.get(url, params=params)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["value"]}


async def count(graph, **params: str) -> int:
    response = await graph.get("/v1.0/users/$count", params=params, headers=EVENTUAL)
    assert response.status_code == 200, response.text
    return int(response.text)


async def status(graph, method: str, url: str, **kwargs: Any) -> int:
    return (await graph.request(method, url, **kwargs)).status_code


async def settled(graph, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A user created and visible."""
    user = await graph.create(body)
    graph.clock.advance(PAST_LAG)
    return user


# ---- reads of a just-created user -------------------------------------------------------------

async def test_a_created_user_is_absent_from_every_read_until_visible(lagging):
    email = unique_email()
    user = await lagging.create(customer(email))
    uid, upn = user["id"], user["userPrincipalName"]

    get = await lagging.get(f"/v1.0/users/{uid}")
    assert get.status_code == 404 and error_of(get) == not_found(uid)
    assert await status(lagging, "GET", f"/v1.0/users/{upn}") == 404
    assert await ids_listed(lagging, "/v1.0/users") == set()
    assert await ids_listed(lagging, "/v1.0/users", **by_email(email)) == set()
    assert await ids_listed(lagging, "/v1.0/users", **{"$filter": f"userPrincipalName eq '{upn}'"}) == set()
    assert await count(lagging) == 0
    assert (await lagging.get("/v1.0/users/delta")).json()["value"] == []

    lagging.clock.advance(PAST_LAG)
    assert await status(lagging, "GET", f"/v1.0/users/{uid}") == 200
    assert await status(lagging, "GET", f"/v1.0/users/{upn}") == 200
    assert await ids_listed(lagging, "/v1.0/users") == {uid}
    assert await ids_listed(lagging, "/v1.0/users", **by_email(email)) == {uid}
    assert await ids_listed(lagging, "/v1.0/users", **{"$filter": f"userPrincipalName eq '{upn}'"}) == {uid}
    assert await count(lagging) == 1
    assert [u["id"] for u in (await lagging.get("/v1.0/users/delta")).json()["value"]] == [uid]


async def test_a_user_shows_at_a_moment_drawn_within_the_lag(lagging):
    """Visible no later than the lag, and not all at once: the delays are drawn."""
    users = [await lagging.create() for _ in range(8)]
    seen_at: dict[str, float] = {}
    for step in range(1, 22):
        lagging.clock.advance(0.1)
        for uid in await ids_listed(lagging, "/v1.0/users"):
            seen_at.setdefault(uid, step * 0.1)
    assert set(seen_at) == {u["id"] for u in users}
    assert max(seen_at.values()) <= LAG_MS / 1000 + 0.1
    assert len(set(seen_at.values())) > 1


async def test_paging_and_ordering_see_only_visible_users(lagging):
    old = [await lagging.create(customer(unique_email(), display_name=f"old {i}")) for i in range(3)]
    lagging.clock.advance(PAST_LAG)
    await lagging.create(customer(unique_email(), display_name="new 0"))
    pages = await lagging.all_pages("/v1.0/users?$top=2")
    assert [u["id"] for u in pages] == [u["id"] for u in old]
    ordered = await lagging.get("/v1.0/users", params={"$orderby": "displayName desc", "$count": "true"},
                                headers=EVENTUAL)
    assert [u["displayName"] for u in ordered.json()["value"]] == ["old 2", "old 1", "old 0"]
    assert ordered.json()["@odata.count"] == 3
    searched = await lagging.get("/v1.0/users", params={"$search": '"displayName:new"', "$count": "true"},
                                 headers=EVENTUAL)
    assert searched.json()["value"] == [] and searched.json()["@odata.count"] == 0


# ---- reads of a just-updated user -------------------------------------------------------------

async def test_an_updated_user_shows_its_old_values_until_visible(lagging):
    email = unique_email()
    user = await settled(lagging, customer(email, display_name="Before"))
    uid = user["id"]
    assert await status(lagging, "PATCH", f"/v1.0/users/{uid}", json={"displayName": "After"}) == 204

    assert (await lagging.get(f"/v1.0/users/{uid}")).json()["displayName"] == "Before"
    assert await ids_listed(lagging, "/v1.0/users", **{"$filter": "displayName eq 'Before'"}) == {uid}
    assert await ids_listed(lagging, "/v1.0/users", **{"$filter": "displayName eq 'After'"}) == set()
    assert await count(lagging, **{"$filter": "displayName eq 'After'"}) == 0
    assert await count(lagging, **{"$filter": "displayName eq 'Before'"}) == 1

    lagging.clock.advance(PAST_LAG)
    assert (await lagging.get(f"/v1.0/users/{uid}")).json()["displayName"] == "After"
    assert await ids_listed(lagging, "/v1.0/users", **{"$filter": "displayName eq 'After'"}) == {uid}
    assert await count(lagging, **{"$filter": "displayName eq 'Before'"}) == 0


async def test_a_password_change_shows_late_too(lagging):
    user = await settled(lagging)
    url = f"/v1.0/users/{user['id']}?$select=lastPasswordChangeDateTime"
    before = (await lagging.get(url)).json()["lastPasswordChangeDateTime"]
    lagging.clock.advance(60)
    profile = {"password": "Zz98765432!", "forceChangePasswordNextSignIn": False}
    assert await status(lagging, "PATCH", f"/v1.0/users/{user['id']}", json={"passwordProfile": profile}) == 204
    assert (await lagging.get(url)).json()["lastPasswordChangeDateTime"] == before
    lagging.clock.advance(PAST_LAG)
    assert (await lagging.get(url)).json()["lastPasswordChangeDateTime"] != before


async def test_a_renamed_user_is_found_by_its_old_name_until_visible(lagging):
    user = await settled(lagging)
    old_upn, new_upn = user["userPrincipalName"], f"renamed.{user['id'][:8]}@contoso.onmicrosoft.com"
    assert await status(lagging, "PATCH", f"/v1.0/users/{user['id']}", json={"userPrincipalName": new_upn}) == 204
    assert await status(lagging, "GET", f"/v1.0/users/{old_upn}") == 200
    assert await status(lagging, "GET", f"/v1.0/users/{new_upn}") == 404
    lagging.clock.advance(PAST_LAG)
    assert await status(lagging, "GET", f"/v1.0/users/{old_upn}") == 404
    assert await status(lagging, "GET", f"/v1.0/users/{new_upn}") == 200


async def test_in_lists_on_upn_and_mail_see_the_version_readers_see(lagging):
    """`in` on userPrincipalName and mail is a rowid list from the index (odata.py): the
    pending version is searched under its own values, not the directory's newer ones."""
    old_mail, new_mail = unique_email("old"), unique_email("new")
    user = await settled(lagging, customer(old_mail))
    uid, old_upn = user["id"], user["userPrincipalName"]
    new_upn = f"renamed.{uid[:8]}@contoso.onmicrosoft.com"
    other = await settled(lagging)
    body = {"userPrincipalName": new_upn, "mail": new_mail}
    assert await status(lagging, "PATCH", f"/v1.0/users/{uid}", json=body) == 204

    def either(prop: str, value: str) -> dict[str, str]:
        return {"$filter": f"{prop} in ('{value}', '{other[prop]}')", "$count": "true"}

    listed = {other["id"], uid}
    assert await ids_listed(lagging, "/v1.0/users", **either("userPrincipalName", old_upn)) == listed
    assert await ids_listed(lagging, "/v1.0/users", **either("userPrincipalName", new_upn)) == {other["id"]}
    assert await ids_listed(lagging, "/v1.0/users", **either("mail", old_mail.upper())) == listed
    assert await ids_listed(lagging, "/v1.0/users", **either("mail", new_mail)) == {other["id"]}
    assert await count(lagging, **either("mail", old_mail)) == 2
    assert await count(lagging, **either("mail", new_mail)) == 1
    lagging.clock.advance(PAST_LAG)
    assert await ids_listed(lagging, "/v1.0/users", **either("userPrincipalName", new_upn)) == listed
    assert await ids_listed(lagging, "/v1.0/users", **either("mail", old_mail)) == {other["id"]}
    assert await count(lagging, **either("mail", new_mail)) == 2


async def test_changed_identities_are_filtered_as_readers_see_them(lagging):
    old_email, new_email = unique_email("old"), unique_email("new")
    user = await settled(lagging, customer(old_email))
    upn_identity = [i for i in user.get("identities") or [] if i["signInType"] == "userPrincipalName"] or [
        {"signInType": "userPrincipalName", "issuer": "contoso.onmicrosoft.com",
         "issuerAssignedId": user["userPrincipalName"]}]
    identities = [{"signInType": "emailAddress", "issuer": "contoso.onmicrosoft.com", "issuerAssignedId": new_email},
                  *upn_identity]
    assert await status(lagging, "PATCH", f"/v1.0/users/{user['id']}", json={"identities": identities}) == 204
    assert await ids_listed(lagging, "/v1.0/users", **by_email(old_email)) == {user["id"]}
    assert await ids_listed(lagging, "/v1.0/users", **by_email(new_email)) == set()
    lagging.clock.advance(PAST_LAG)
    assert await ids_listed(lagging, "/v1.0/users", **by_email(old_email)) == set()
    assert await ids_listed(lagging, "/v1.0/users", **by_email(new_email)) == {user["id"]}


async def test_successive_writes_keep_the_oldest_version_until_the_last_shows(lagging):
    """Readers go from the first version straight to the last: never an intermediate one,
    never a step back."""
    user = await settled(lagging, customer(unique_email(), display_name="v0"))
    url = f"/v1.0/users/{user['id']}"
    for version in ("v1", "v2", "v3"):
        assert await status(lagging, "PATCH", url, json={"displayName": version}) == 204
        assert (await lagging.get(url)).json()["displayName"] == "v0"
        lagging.clock.advance(0.3)
    seen = []
    for _ in range(12):
        seen.append((await lagging.get(url)).json()["displayName"])
        lagging.clock.advance(0.2)
    assert seen[-1] == "v3" and set(seen) <= {"v0", "v3"}
    assert seen == sorted(seen)  # v0 … v0, v3 … v3


# ---- reads of a just-deleted, just-restored, just-purged user ----------------------------------

async def test_a_deleted_user_stays_live_and_out_of_deleted_items_until_visible(lagging):
    email = unique_email()
    user = await settled(lagging, customer(email))
    uid = user["id"]
    assert await status(lagging, "DELETE", f"/v1.0/users/{uid}") == 204

    assert await status(lagging, "GET", f"/v1.0/users/{uid}") == 200
    assert await ids_listed(lagging, "/v1.0/users") == {uid}
    assert await ids_listed(lagging, "/v1.0/users", **by_email(email)) == {uid}
    assert await count(lagging) == 1
    assert await ids_listed(lagging, f"{DELETED}/microsoft.graph.user") == set()
    assert await ids_listed(lagging, f"{DELETED}/microsoft.graph.user", **by_email(email)) == set()
    assert await status(lagging, "GET", f"{DELETED}/{uid}") == 404

    lagging.clock.advance(PAST_LAG)
    assert await status(lagging, "GET", f"/v1.0/users/{uid}") == 404
    assert await ids_listed(lagging, "/v1.0/users") == set()
    assert await ids_listed(lagging, f"{DELETED}/microsoft.graph.user", **by_email(email)) == {uid}
    assert await status(lagging, "GET", f"{DELETED}/{uid}") == 200


async def test_a_restored_user_stays_deleted_until_visible(lagging):
    user = await settled(lagging)
    uid = user["id"]
    await lagging.delete(f"/v1.0/users/{uid}")
    lagging.clock.advance(PAST_LAG)
    assert await status(lagging, "POST", f"{DELETED}/{uid}/restore") == 200

    assert await status(lagging, "GET", f"/v1.0/users/{uid}") == 404
    assert await ids_listed(lagging, f"{DELETED}/microsoft.graph.user") == {uid}
    assert await status(lagging, "GET", f"{DELETED}/{uid}") == 200

    lagging.clock.advance(PAST_LAG)
    assert await status(lagging, "GET", f"/v1.0/users/{uid}") == 200
    assert await ids_listed(lagging, f"{DELETED}/microsoft.graph.user") == set()


async def test_a_purged_user_stays_in_deleted_items_until_visible(lagging):
    email = unique_email()
    user = await settled(lagging, customer(email))
    uid = user["id"]
    await lagging.delete(f"/v1.0/users/{uid}")
    lagging.clock.advance(PAST_LAG)
    assert await status(lagging, "DELETE", f"{DELETED}/{uid}") == 204

    assert await status(lagging, "GET", f"{DELETED}/{uid}") == 200
    assert await ids_listed(lagging, f"{DELETED}/microsoft.graph.user", **by_email(email)) == {uid}

    lagging.clock.advance(PAST_LAG)
    assert await status(lagging, "GET", f"{DELETED}/{uid}") == 404
    assert await ids_listed(lagging, f"{DELETED}/microsoft.graph.user", **by_email(email)) == set()


# ---- writes that name a user find it through the lagging view ----------------------------------

async def test_writes_to_a_user_not_yet_visible_are_graphs_404(lagging):
    """B2C: POST then an immediate PATCH → 404 Request_ResourceNotFound (msgraph-sdk-java-core#353)."""
    user = await lagging.create()
    uid = user["id"]
    patch = await lagging.patch(f"/v1.0/users/{uid}", json={"displayName": "x"})
    assert patch.status_code == 404 and error_of(patch) == not_found(uid)
    delete = await lagging.delete(f"/v1.0/users/{uid}")
    assert delete.status_code == 404 and error_of(delete) == not_found(uid)

    lagging.clock.advance(PAST_LAG)
    assert await status(lagging, "DELETE", f"/v1.0/users/{uid}") == 204
    restore = await lagging.post(f"{DELETED}/{uid}/restore")
    assert restore.status_code == 404 and error_of(restore) == not_found(uid)
    purge = await lagging.delete(f"{DELETED}/{uid}")
    assert purge.status_code == 404 and error_of(purge) == not_found(uid)

    lagging.clock.advance(PAST_LAG)
    assert await status(lagging, "POST", f"{DELETED}/{uid}/restore") == 200


async def test_a_user_visible_but_already_deleted_cannot_be_written(lagging):
    """The write applies to the true state: a user deleted a moment ago is still listed, but a
    PATCH or a second DELETE finds no live user there."""
    user = await settled(lagging)
    uid = user["id"]
    assert await status(lagging, "DELETE", f"/v1.0/users/{uid}") == 204
    assert await status(lagging, "GET", f"/v1.0/users/{uid}") == 200
    assert await status(lagging, "PATCH", f"/v1.0/users/{uid}", json={"displayName": "x"}) == 404
    assert await status(lagging, "DELETE", f"/v1.0/users/{uid}") == 404


async def test_a_patch_inside_the_window_of_an_earlier_patch_keeps_both(lagging):
    user = await settled(lagging, customer(unique_email(), display_name="v0"))
    url = f"/v1.0/users/{user['id']}"
    assert await status(lagging, "PATCH", url, json={"displayName": "v1"}) == 204
    assert await status(lagging, "PATCH", url, json={"jobTitle": "Engineer"}) == 204
    lagging.clock.advance(PAST_LAG)
    shown = (await lagging.get(url, params={"$select": "displayName,jobTitle"})).json()
    assert (shown["displayName"], shown["jobTitle"]) == ("v1", "Engineer")


# ---- uniqueness is the true state's ------------------------------------------------------------

async def test_a_second_create_inside_the_window_is_a_conflict(lagging):
    email = unique_email()
    first = await lagging.create(customer(email))
    again = await lagging.post("/v1.0/users", json=customer(email))
    assert again.status_code == 400 and error_of(again) == conflict("identities")
    same_upn = await lagging.post("/v1.0/users", json={
        "displayName": "x", "accountEnabled": True, "mailNickname": "x", "userPrincipalName": first["userPrincipalName"],
        "passwordProfile": {"password": "Xy12345678!", "forceChangePasswordNextSignIn": False}})
    assert same_upn.status_code == 400 and error_of(same_upn) == conflict("userPrincipalName")
    lagging.clock.advance(PAST_LAG)
    assert await ids_listed(lagging, "/v1.0/users") == {first["id"]}


async def test_a_deleted_users_identity_is_free_at_once(lagging):
    """Soft delete frees the identity in the true state, even while readers still see the
    user live: a new create of it succeeds (GRAPH.md §15.2)."""
    email = unique_email()
    user = await settled(lagging, customer(email))
    await lagging.delete(f"/v1.0/users/{user['id']}")
    await lagging.create(customer(email))


# ---- users/delta -------------------------------------------------------------------------------

async def delta_round(graph, url: str) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    while True:
        body = (await graph.get(url, headers={"Prefer": "odata.maxpagesize=3"})).json()
        items += body["value"]
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"]
        url = body["@odata.nextLink"]


async def test_a_delta_link_issued_before_a_change_reports_it_once_visible(lagging):
    await settled(lagging)
    _, link = await delta_round(lagging, "/v1.0/users/delta")
    user = await lagging.create()
    items, link = await delta_round(lagging, link)
    assert items == []
    lagging.clock.advance(PAST_LAG)
    items, link = await delta_round(lagging, link)
    assert [i["id"] for i in items] == [user["id"]]


async def test_delta_reports_every_change_exactly_as_it_ends(make_graph):
    """Many writes with drawn delays, following delta links all along: replaying what delta
    reported gives the directory as it ends, whichever write showed first."""
    graph = make_graph(EmulatorSettings(replication_lag_ms=LAG_MS, seed=5))
    known: dict[str, dict[str, Any]] = {}
    _, link = await delta_round(graph, "/v1.0/users/delta?$select=displayName")
    users: list[str] = []
    for step in range(40):
        if step % 3 == 0 or not users:
            users.append((await graph.create(customer(unique_email(), display_name=f"c{step}")))["id"])
        else:
            await graph.patch(f"/v1.0/users/{users[step % len(users)]}", json={"displayName": f"p{step}"})
        if step % 7 == 6:
            await graph.delete(f"/v1.0/users/{users[(step * 5) % len(users)]}")
        graph.clock.advance(0.4)
        items, link = await delta_round(graph, link)
        for item in items:
            known[item["id"]] = item
    graph.clock.advance(PAST_LAG)
    items, link = await delta_round(graph, link)
    for item in items:
        known[item["id"]] = item
    live = {u["id"]: u["displayName"] for u in await graph.all_pages("/v1.0/users?$top=999")}
    reported_live = {uid: item["displayName"] for uid, item in known.items() if "@removed" not in item}
    assert reported_live == live
    assert {uid for uid, item in known.items() if "@removed" in item} == set(users) - set(live)


# ---- settings, seeds, and no lag ---------------------------------------------------------------

async def visible_moments(graph, n: int = 6) -> list[float]:
    """When each of `n` users created now first shows, in 50 ms steps."""
    users = [(await graph.create())["id"] for _ in range(n)]
    start, moments = graph.clock(), {}
    while len(moments) < n:
        graph.clock.advance(0.05)
        for uid in await ids_listed(graph, "/v1.0/users"):
            moments.setdefault(uid, round(graph.clock() - start, 2))
    return [moments[uid] for uid in users]


async def test_the_same_seed_draws_the_same_delays(make_graph):
    first = await visible_moments(make_graph(EmulatorSettings(replication_lag_ms=LAG_MS, seed=3)))
    again = await visible_moments(make_graph(EmulatorSettings(replication_lag_ms=LAG_MS, seed=3)))
    other = await visible_moments(make_graph(EmulatorSettings(replication_lag_ms=LAG_MS, seed=4)))
    assert first == again
    assert first != other


async def fault_statuses(graph, n: int = 30) -> list[int]:
    return [(await graph.post("/v1.0/users", json=customer(unique_email()))).status_code for _ in range(n)]


async def test_the_lag_draws_leave_the_fault_sequence_alone(make_graph):
    faults = Faults(rate=0.4, kinds=("503", "504"))
    plain = await fault_statuses(make_graph(EmulatorSettings(faults=faults, seed=9)))
    lagging = await fault_statuses(make_graph(EmulatorSettings(faults=faults, seed=9, replication_lag_ms=LAG_MS)))
    assert plain == lagging and set(plain) > {201}


async def test_without_lag_every_write_is_read_at_once_and_nothing_is_held(graph):
    user = await graph.create()
    assert await status(graph, "PATCH", f"/v1.0/users/{user['id']}", json={"displayName": "x"}) == 204
    assert (await graph.get(f"/v1.0/users/{user['id']}")).json()["displayName"] == "x"
    assert await status(graph, "DELETE", f"/v1.0/users/{user['id']}") == 204
    assert await status(graph, "GET", f"{DELETED}/{user['id']}") == 200
    assert graph.store._one("SELECT COUNT(*) AS n FROM pending_users")["n"] == 0


async def test_versions_that_have_shown_are_dropped_on_later_writes(lagging):
    for _ in range(5):
        await lagging.create()
    lagging.clock.advance(PAST_LAG)
    await lagging.create()
    assert lagging.store._one("SELECT COUNT(*) AS n FROM pending_users")["n"] == 1


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), 3_600_001.0])
def test_the_lag_is_a_usable_number_of_milliseconds(value):
    with pytest.raises(ValueError, match="replication lag"):
        EmulatorSettings(replication_lag_ms=value)


def test_an_old_directory_file_gains_the_pending_tables(tmp_path):
    path = tmp_path / "old.db"
    sqlite3.connect(path).execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)").connection.close()
    from batch.emulator import Store

    store = Store(path)
    try:
        assert store._one("SELECT COUNT(*) AS n FROM pending_users")["n"] == 0
    finally:
        store.close()


def test_a_second_write_inside_the_window_keeps_the_later_moment(store):
    """The later `visible_at` wins even when the second write draws the shorter delay: its
    version holds the first write, which must not show before its own moment."""
    tenant_id = store.tenants()[0].id
    doc = {"id": "8d7c4c3e-8d7c-4c3e-8d7c-4c3e8d7c4c3e", "userPrincipalName": "a@contoso.onmicrosoft.com",
           "displayName": "v0"}
    with store.transaction() as db:
        store.write_user(db, tenant_id, doc, [])
    with store.transaction() as db:
        store.write_user(db, tenant_id, dict(doc, displayName="v1"), None, visible=Visibility(100.0, 110.0))
    with store.transaction() as db:
        store.write_user(db, tenant_id, dict(doc, displayName="v2"), None, visible=Visibility(101.0, 105.0))
    shown = {moment: store.user(tenant_id, doc["id"], as_of=moment).data["displayName"]  # type: ignore[union-attr]
             for moment in (104.0, 106.0, 109.9, 110.0)}
    assert shown == {104.0: "v0", 106.0: "v0", 109.9: "v0", 110.0: "v2"}
    assert store.user(tenant_id, doc["id"]).data["displayName"] == "v2"  # type: ignore[union-attr]


# ---- the command line ------------------------------------------------------------------------

def test_emulator_help_names_the_lag_flag_and_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["emulator", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--replication-lag-ms N" in out and LAG_VARIABLE in out


def test_the_emulator_command_passes_the_lag_on(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[EmulatorSettings] = []
    monkeypatch.setattr("batch.emulator.server.serve", lambda options, settings, out: served.append(settings))
    assert main(["emulator", "--memory", "--replication-lag-ms", "1500", "--seed", "3"]) == 0
    assert served[0].replication_lag_ms == 1500.0 and served[0].seed == 3


def test_the_emulator_command_refuses_a_negative_lag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["emulator", "--memory", "--replication-lag-ms", "-1"])
    assert exit_info.value.code == 2
    assert "a number of milliseconds between 0 and" in capsys.readouterr().err


def test_a_served_emulator_lags(tmp_path: Path) -> None:
    """Over a socket: with an hour of lag (seeded, so the draw is known not to be tiny), a user
    created a moment ago is 404 and unlisted."""
    args = ["--replication-lag-ms", "3600000", "--seed", "1"]
    with running_emulator(tmp_path / "emu", extra_args=args) as emulator, \
            httpx.Client(verify=emulator.ssl_context(), timeout=30) as client:
        token = client.post(f"{emulator.authority}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": emulator.client_id,
            "client_secret": emulator.client_secret, "scope": GRAPH_SCOPE}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        created = client.post(f"{emulator.graph_url}/users", json=customer(unique_email()), headers=headers)
        assert created.status_code == 201, created.text
        assert client.get(f"{emulator.graph_url}/users/{created.json()['id']}", headers=headers).status_code == 404
        assert client.get(f"{emulator.graph_url}/users", headers=headers).json()["value"] == []


def test_the_local_target_reads_its_lag_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTRA_BATCH_HOME", str(tmp_path))
    monkeypatch.setenv(LAG_VARIABLE, "1500")
    with reach(Target("local", "http://emulator.local/v1.0")) as where:
        assert where.transport.app.settings.replication_lag_ms == 1500.0  # type: ignore[union-attr]
    monkeypatch.delenv(LAG_VARIABLE)
    assert local_emulator_settings() is None


@pytest.mark.parametrize("value, expected", [("fast", "'fast', not a number of milliseconds"),
                                             ("-3", "between 0 and 3600000")])
def test_a_bad_lag_variable_is_a_usage_error(value: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LAG_VARIABLE, value)
    with pytest.raises(ConfigError, match=expected):
        local_emulator_settings()
