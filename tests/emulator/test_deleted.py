"""DELETE, deleted items, restore, permanent delete and the 30-day purge (GRAPH.md §6)."""

from __future__ import annotations

import pytest
from emulator.helpers import (
    DEFAULT_KEYS,
    DOMAIN,
    conflict,
    customer,
    error_of,
    graph_error,
    not_found,
    unique_email,
)

DELETED_LIST = "/v1.0/directory/deletedItems/microsoft.graph.user"
DAY = 86400


async def soft_delete(graph, user_id: str) -> None:
    response = await graph.delete(f"/v1.0/users/{user_id}")
    assert response.status_code == 204
    assert response.content == b""


async def test_delete_moves_user_to_deleted_items(graph):
    user = await graph.create(customer("del@example.com", display_name="Del"))
    await soft_delete(graph, user["id"])
    assert error_of(await graph.get(f"/v1.0/users/{user['id']}")) == not_found(user["id"])
    again = await graph.delete(f"/v1.0/users/{user['id']}")
    assert again.status_code == 404
    listed = await graph.get(DELETED_LIST)
    assert listed.status_code == 200
    body = listed.json()
    assert body["@odata.context"] == "http://emulator/v1.0/$metadata#directory/deletedItems/microsoft.graph.user"
    assert len(body["value"]) == 1
    item = body["value"][0]
    assert item["id"] == user["id"]
    assert item["displayName"] == "Del"
    assert item["deletedDateTime"] == "2026-05-28T20:26:40Z"
    live = await graph.get("/v1.0/users")
    assert live.json()["value"] == []


async def test_delete_by_upn(graph):
    user = await graph.create(customer(unique_email(), userPrincipalName=f"gone@{DOMAIN}"))
    assert (await graph.delete(f"/v1.0/users/gone%40{DOMAIN}")).status_code == 204
    assert (await graph.get(f"/v1.0/directory/deletedItems/{user['id']}")).status_code == 200


async def test_deleted_items_are_paged(graph):
    users = await graph.create_many(7)
    for user in users:
        await soft_delete(graph, user["id"])
    first = await graph.get(DELETED_LIST, params={"$top": "3", "$select": "id,displayName"})
    assert len(first.json()["value"]) == 3
    assert first.json()["@odata.nextLink"].startswith(f"http://emulator{DELETED_LIST}?")
    items = await graph.all_pages(f"{DELETED_LIST}?$top=3&$select=id")
    assert sorted(u["id"] for u in items) == sorted(u["id"] for u in users)
    assert all(set(u) == {"id"} for u in items)


async def test_deleted_items_filter_and_count(graph):
    a = await graph.create(customer(unique_email(), display_name="Alpha"))
    b = await graph.create(customer(unique_email(), display_name="Beta"))
    for user in (a, b):
        await soft_delete(graph, user["id"])
    response = await graph.get(DELETED_LIST, params={"$filter": "startswith(displayName,'Be')"})
    assert [u["id"] for u in response.json()["value"]] == [b["id"]]
    counted = await graph.get(DELETED_LIST, params={"$count": "true"}, headers={"ConsistencyLevel": "eventual"})
    assert counted.json()["@odata.count"] == 2


async def test_get_deleted_item(graph):
    user = await graph.create()
    await soft_delete(graph, user["id"])
    response = await graph.get(f"/v1.0/directory/deletedItems/{user['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.type"] == "#microsoft.graph.user"
    assert body["@odata.context"] == "http://emulator/v1.0/$metadata#directoryObjects/$entity"
    assert body["id"] == user["id"]
    assert body["deletedDateTime"] == "2026-05-28T20:26:40Z"


async def test_get_deleted_item_of_live_user_is_404(graph):
    user = await graph.create()
    response = await graph.get(f"/v1.0/directory/deletedItems/{user['id']}")
    assert response.status_code == 404
    assert error_of(response) == not_found(user["id"])


async def test_deleted_items_without_cast_segment(graph):
    response = await graph.get("/v1.0/directory/deletedItems")
    assert response.status_code == 400
    # microsoft-graph-docs#10080: the type cast is required; without it Graph refuses the query.
    assert error_of(response) == graph_error(
        "Request_UnsupportedQuery", "Searches against this resource are not supported. Only specific instances "
                                    "can be queried.")


async def test_restore(graph):
    user = await graph.create(customer("back@example.com", display_name="Back"))
    await soft_delete(graph, user["id"])
    response = await graph.post(f"/v1.0/directory/deletedItems/{user['id']}/restore")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.type"] == "#microsoft.graph.user"
    assert body["@odata.context"] == "http://emulator/v1.0/$metadata#directoryObjects/$entity"
    assert set(body) - {"@odata.type", "@odata.context"} == DEFAULT_KEYS
    assert body["id"] == user["id"] and body["userPrincipalName"] == user["userPrincipalName"]
    assert body["mail"] == "back@example.com"
    assert (await graph.get(f"/v1.0/users/{user['id']}")).status_code == 200
    assert (await graph.get(DELETED_LIST)).json()["value"] == []
    # The identity is live again.
    assert error_of(await graph.post("/v1.0/users", json=customer("back@example.com", mail=None))) == conflict("identities")


async def test_restore_frees_and_retakes_identity(graph):
    """A deleted user's sign-in name can be reused; restoring the old user then conflicts."""
    old = await graph.create(customer("taken@example.com", mail=None))
    await soft_delete(graph, old["id"])
    await graph.create(customer("TAKEN@example.com", mail=None))
    response = await graph.post(f"/v1.0/directory/deletedItems/{old['id']}/restore")
    assert response.status_code == 400
    assert error_of(response) == conflict("identities")
    assert (await graph.get(f"/v1.0/directory/deletedItems/{old['id']}")).status_code == 200


async def test_restore_upn_conflict_and_new_upn(graph):
    old = await graph.create(customer(unique_email(), userPrincipalName=f"carol@{DOMAIN}"))
    await soft_delete(graph, old["id"])
    await graph.create(customer(unique_email(), userPrincipalName=f"carol@{DOMAIN}"))
    refused = await graph.post(f"/v1.0/directory/deletedItems/{old['id']}/restore")
    assert refused.status_code == 400
    assert error_of(refused) == conflict("userPrincipalName")
    bad = await graph.post(f"/v1.0/directory/deletedItems/{old['id']}/restore",
                           json={"newUserPrincipalName": "no at sign"})
    assert error_of(bad) == graph_error("Request_BadRequest", "Property userPrincipalName is invalid.",
                                        [{"target": "userPrincipalName", "code": "InvalidValue"}])
    foreign = await graph.post(f"/v1.0/directory/deletedItems/{old['id']}/restore",
                               json={"newUserPrincipalName": "carol2@fabrikam.com"})
    assert error_of(foreign) == graph_error(
        "Request_BadRequest",
        "The domain portion of the userPrincipalName property is invalid. "
        "You must use one of the verified domain names in your organization.",
        [{"target": "userPrincipalName", "code": "InvalidValue"}])
    restored = await graph.post(f"/v1.0/directory/deletedItems/{old['id']}/restore",
                                json={"newUserPrincipalName": f"carol2@{DOMAIN}"})
    assert restored.status_code == 200, restored.text
    assert restored.json()["userPrincipalName"] == f"carol2@{DOMAIN}"
    identities = (await graph.get(f"/v1.0/users/{old['id']}", params={"$select": "identities"})).json()["identities"]
    assert {"signInType": "userPrincipalName", "issuer": DOMAIN, "issuerAssignedId": f"carol2@{DOMAIN}"} in identities


async def test_restore_mail_conflict_and_auto_reconcile(graph):
    old = await graph.create(customer("m@example.com"))
    await soft_delete(graph, old["id"])
    await graph.create(customer(user_name="newholder", mail="m@example.com"))
    refused = await graph.post(f"/v1.0/directory/deletedItems/{old['id']}/restore")
    assert error_of(refused) == conflict("proxyAddresses")
    ok = await graph.post(f"/v1.0/directory/deletedItems/{old['id']}/restore", json={"autoReconcileProxyConflict": True})
    assert ok.status_code == 200
    user = (await graph.get(f"/v1.0/users/{old['id']}", params={"$select": "proxyAddresses"})).json()
    assert user["proxyAddresses"] == []


async def test_permanent_delete(graph):
    user = await graph.create(customer("perm@example.com"))
    await soft_delete(graph, user["id"])
    response = await graph.delete(f"/v1.0/directory/deletedItems/{user['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert error_of(await graph.get(f"/v1.0/directory/deletedItems/{user['id']}")) == not_found(user["id"])
    assert error_of(await graph.post(f"/v1.0/directory/deletedItems/{user['id']}/restore")) == not_found(user["id"])
    assert error_of(await graph.delete(f"/v1.0/directory/deletedItems/{user['id']}")) == not_found(user["id"])
    assert (await graph.get(DELETED_LIST)).json()["value"] == []


async def test_permanent_delete_of_live_user_is_404(graph):
    user = await graph.create()
    response = await graph.delete(f"/v1.0/directory/deletedItems/{user['id']}")
    assert error_of(response) == not_found(user["id"])
    assert (await graph.get(f"/v1.0/users/{user['id']}")).status_code == 200


@pytest.mark.parametrize("days,kept", [(29, True), (30.5, False), (31, False)])
async def test_purge_after_retention(graph, days, kept):
    user = await graph.create()
    await soft_delete(graph, user["id"])
    graph.clock.advance(days * DAY)  # the token expires too; the helper fetches a fresh one
    listed = [u["id"] for u in (await graph.get(DELETED_LIST)).json()["value"]]
    restore = await graph.post(f"/v1.0/directory/deletedItems/{user['id']}/restore")
    if kept:
        assert listed == [user["id"]]
        assert restore.status_code == 200
    else:
        assert listed == []
        assert restore.status_code == 404
        assert error_of(restore) == not_found(user["id"])
        assert (await graph.get(f"/v1.0/directory/deletedItems/{user['id']}")).status_code == 404


async def test_deleted_items_methods(graph):
    response = await graph.post(DELETED_LIST, json={})
    assert response.status_code == 405
    user = await graph.create()
    await soft_delete(graph, user["id"])
    response = await graph.get(f"/v1.0/directory/deletedItems/{user['id']}/restore")
    assert response.status_code == 405


async def test_deleted_items_page_token_expires(make_graph):
    from batch.emulator import EmulatorSettings

    g = make_graph(EmulatorSettings(page_token_ttl_seconds=5))
    for user in await g.create_many(3):
        await soft_delete(g, user["id"])
    first = (await g.get(DELETED_LIST, params={"$top": "1"})).json()
    g.clock.advance(5)
    late = await g.get(first["@odata.nextLink"])
    assert late.status_code == 400
    assert error_of(late) == graph_error(
        "Directory_ExpiredPageToken", "The specified page token value has expired and can no longer be included in your request.")
