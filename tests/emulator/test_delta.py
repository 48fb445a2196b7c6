"""users/delta (GRAPH.md §7.4, §6): the initial round, then rounds of changes with
`@removed` reasons, and empty rounds that hand out a new deltaLink."""

from __future__ import annotations

from typing import Any

import pytest
from emulator.helpers import customer, error_of, graph_error, unique_email

from batch.emulator import EmulatorSettings


async def round_trip(graph, url: str, **kwargs: Any) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the deltaLink: (items, deltaLink, pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        response = await graph.get(url, **kwargs)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        items += body["value"]
        if "@odata.nextLink" in body:
            assert "@odata.deltaLink" not in body
            url = body["@odata.nextLink"]
            assert url.startswith("http://emulator/v1.0/users/delta?$skiptoken=")
            continue
        assert body["@odata.deltaLink"].startswith("http://emulator/v1.0/users/delta?$deltatoken=")
        return items, body["@odata.deltaLink"], pages


async def test_initial_round_pages_then_delta_link(graph):
    users = await graph.create_many(7)
    items, link, pages = await round_trip(graph, "/v1.0/users/delta?$select=displayName,mail",
                                          headers={"Prefer": "odata.maxpagesize=3"})
    assert pages == 3
    assert [u["id"] for u in items] == [u["id"] for u in users]
    assert all(set(u) == {"id", "displayName", "mail"} for u in items)
    assert all("@removed" not in u for u in items)


async def test_default_page_is_100(graph):
    await graph.create_many(101)
    first = (await graph.get("/v1.0/users/delta", params={"$select": "id"})).json()
    assert len(first["value"]) == 100 and "@odata.nextLink" in first


@pytest.mark.parametrize("path", ["/v1.0/users/delta", "/v1.0/users/delta()", "/v1.0/users/microsoft.graph.delta()"])
async def test_delta_path_forms(graph, path):
    await graph.create()
    response = await graph.get(path)
    assert response.status_code == 200
    assert len(response.json()["value"]) == 1
    assert "@odata.deltaLink" in response.json()


async def test_changes_rounds(graph):
    keep, change, remove, purge = await graph.create_many(4)
    _, link, _ = await round_trip(graph, "/v1.0/users/delta?$select=displayName,accountEnabled")

    # an empty round returns no items and a new deltaLink
    items, link2, _ = await round_trip(graph, link)
    assert items == []
    assert link2.startswith("http://emulator/v1.0/users/delta?$deltatoken=")

    added = await graph.create(customer(unique_email(), display_name="Newcomer"))
    assert (await graph.patch(f"/v1.0/users/{change['id']}", json={"displayName": "Changed"})).status_code == 204
    assert (await graph.delete(f"/v1.0/users/{remove['id']}")).status_code == 204
    assert (await graph.delete(f"/v1.0/users/{purge['id']}")).status_code == 204
    items, link3, _ = await round_trip(graph, link2)
    by_id = {u["id"]: u for u in items}
    assert set(by_id) == {added["id"], change["id"], remove["id"], purge["id"]}
    assert by_id[added["id"]] == {"id": added["id"], "displayName": "Newcomer", "accountEnabled": True}
    assert by_id[change["id"]] == {"id": change["id"], "displayName": "Changed", "accountEnabled": True}
    assert by_id[remove["id"]] == {"id": remove["id"], "@removed": {"reason": "changed"}}
    assert by_id[purge["id"]] == {"id": purge["id"], "@removed": {"reason": "changed"}}

    # permanent deletion → reason "deleted"; restore → a plain item again
    assert (await graph.delete(f"/v1.0/directory/deletedItems/{purge['id']}")).status_code == 204
    assert (await graph.post(f"/v1.0/directory/deletedItems/{remove['id']}/restore")).status_code == 200
    items, link4, _ = await round_trip(graph, link3)
    by_id = {u["id"]: u for u in items}
    assert by_id == {
        purge["id"]: {"id": purge["id"], "@removed": {"reason": "deleted"}},
        remove["id"]: {"id": remove["id"], "displayName": remove["displayName"], "accountEnabled": True},
    }
    assert keep["id"] not in by_id

    items, _, _ = await round_trip(graph, link4)
    assert items == []


async def test_old_delta_link_replays_from_its_point(graph):
    await graph.create_many(2)
    _, link, _ = await round_trip(graph, "/v1.0/users/delta")
    added = await graph.create()
    first, _, _ = await round_trip(graph, link)
    again, _, _ = await round_trip(graph, link)
    assert [u["id"] for u in first] == [u["id"] for u in again] == [added["id"]]


async def test_changes_are_paged(graph):
    _, link, _ = await round_trip(graph, "/v1.0/users/delta")
    created = await graph.create_many(5)
    items, _, pages = await round_trip(graph, link, headers={"Prefer": "odata.maxpagesize=2"})
    assert pages == 3
    assert [u["id"] for u in items] == [u["id"] for u in created]


async def test_select_is_kept_in_the_tokens(graph):
    user = await graph.create()
    _, link, _ = await round_trip(graph, "/v1.0/users/delta?$select=givenName")
    await graph.patch(f"/v1.0/users/{user['id']}", json={"givenName": "Given"})
    items, _, _ = await round_trip(graph, link)
    assert items == [{"id": user["id"], "givenName": "Given"}]


async def test_delta_id_filter(graph):
    a, b, c = await graph.create_many(3)
    items, link, _ = await round_trip(graph, f"/v1.0/users/delta?$filter=id eq '{a['id']}' or id eq '{c['id']}'&$select=id")
    assert [u["id"] for u in items] == [a["id"], c["id"]]
    await graph.patch(f"/v1.0/users/{b['id']}", json={"surname": "B"})
    await graph.patch(f"/v1.0/users/{c['id']}", json={"surname": "C"})
    items, _, _ = await round_trip(graph, link)
    assert [u["id"] for u in items] == [c["id"]]


async def test_delta_refuses_other_filters(graph):
    response = await graph.get("/v1.0/users/delta", params={"$filter": "startswith(displayName,'a')"})
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "Request_UnsupportedQuery", "Unsupported query: users/delta supports only $filter=id eq '…' clauses joined by 'or'.")


async def test_delta_in_b2c_tenant(make_graph):
    g = make_graph()
    tenant = g.add_tenant("fabrikamb2c.onmicrosoft.com", kind="b2c")
    app = g.add_app(["User.Read.All"], tenant)
    response = await g.get("/v1.0/users/delta", app=app)
    assert response.status_code == 400
    assert error_of(response) == graph_error("Request_UnsupportedQuery",
                                             "Change enumeration is not supported for requested tenant.")


async def test_delta_is_get_only(graph):
    response = await graph.post("/v1.0/users/delta", json={})
    assert response.status_code == 405


async def test_purge_after_retention_shows_as_deleted(make_graph):
    # Graph's delta links last 7 days, less than the 30-day retention: told to keep them longer,
    # the emulator shows a purge as `reason: deleted`.
    graph = make_graph(EmulatorSettings(delta_token_ttl_seconds=60 * 86400))
    user = await graph.create()
    assert (await graph.delete(f"/v1.0/users/{user['id']}")).status_code == 204
    _, link, _ = await round_trip(graph, "/v1.0/users/delta")
    graph.clock.advance(31 * 86400)
    items, _, _ = await round_trip(graph, link)
    assert items == [{"id": user["id"], "@removed": {"reason": "deleted"}}]


# ---- token lifetimes (delta-query-overview: "Token duration", "Synchronization reset") --------

EXPIRED_PAGE = graph_error(
    "Directory_ExpiredPageToken", "The specified page token value has expired and can no longer be included in your request.")
SYNC_STATE_NOT_FOUND = graph_error(
    "syncStateNotFound", "The sync state generation is not found. The delta token is expired and data must be "
    "synchronized again.")


async def test_delta_next_link_expires_like_any_page_token(make_graph):
    graph = make_graph(EmulatorSettings(page_token_ttl_seconds=30))
    await graph.create_many(3)
    first = (await graph.get("/v1.0/users/delta", headers={"Prefer": "odata.maxpagesize=1"})).json()
    graph.clock.advance(30)
    assert error_of(await graph.get(first["@odata.nextLink"])) == EXPIRED_PAGE


async def test_delta_link_lives_seven_days_by_default(graph):
    await graph.create()
    _, link, _ = await round_trip(graph, "/v1.0/users/delta")
    graph.clock.advance(7 * 86400 - 1)
    assert (await graph.get(link)).status_code == 200
    graph.clock.advance(1)
    assert (await graph.get(link)).status_code in (400, 410)


async def test_expired_delta_link_sync_state_not_found(make_graph):
    graph = make_graph(EmulatorSettings(delta_token_ttl_seconds=100, delta_expiry="syncStateNotFound"))
    await graph.create()
    _, link, _ = await round_trip(graph, "/v1.0/users/delta")
    graph.clock.advance(100)
    response = await graph.get(link)
    assert response.status_code == 400
    assert error_of(response) == SYNC_STATE_NOT_FOUND


async def test_expired_delta_link_410_points_at_a_full_round(make_graph):
    graph = make_graph(EmulatorSettings(delta_token_ttl_seconds=100, delta_expiry="410"))
    users = await graph.create_many(2)
    _, link, _ = await round_trip(graph, "/v1.0/users/delta?$select=displayName")
    graph.clock.advance(100)
    response = await graph.get(link)
    assert response.status_code == 410
    assert error_of(response)["code"] == "resyncRequired"
    location = response.headers["Location"]
    assert location == "http://emulator/v1.0/users/delta?$select=displayName&$deltatoken="
    items, fresh, _ = await round_trip(graph, location)
    assert [u["id"] for u in items] == [u["id"] for u in users]  # the full state again
    assert all(set(u) == {"id", "displayName"} for u in items)
    assert (await graph.get(fresh)).status_code == 200


async def test_mixed_expiry_is_both_and_stable_per_token(make_graph):
    graph = make_graph(EmulatorSettings(delta_token_ttl_seconds=10, seed=7))
    await graph.create()
    statuses = set()
    for _ in range(12):
        _, link, _ = await round_trip(graph, "/v1.0/users/delta")
        graph.clock.advance(10)
        first, again = await graph.get(link), await graph.get(link)
        assert first.status_code == again.status_code
        statuses.add(first.status_code)
    assert statuses == {400, 410}


def test_lifetimes_are_checked():
    with pytest.raises(ValueError, match="page_token_ttl_seconds"):
        EmulatorSettings(page_token_ttl_seconds=0)
    with pytest.raises(ValueError, match="delta_expiry"):
        EmulatorSettings(delta_expiry="sometimes")
