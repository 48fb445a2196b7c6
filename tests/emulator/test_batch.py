"""JSON batching, POST /$batch (GRAPH.md §8, §14)."""

from __future__ import annotations

from typing import Any

import pytest
from emulator.helpers import (
    conflict,
    customer,
    error_of,
    graph_error,
    not_found,
    unique_email,
)

from batch.emulator import EmulatorSettings, Quota, Quotas

JSON = {"Content-Type": "application/json"}


def create_item(request_id: str, body: dict[str, Any] | None = None, url: str = "/users", **extra: Any) -> dict[str, Any]:
    return {"id": request_id, "method": "POST", "url": url, "headers": JSON,
            "body": body if body is not None else customer(unique_email()), **extra}


def by_id(response) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in response.json()["responses"]}


async def test_twenty_creates(graph):
    response = await graph.post("/v1.0/$batch", json={"requests": [create_item(str(i)) for i in range(20)]})
    assert response.status_code == 200
    responses = response.json()["responses"]
    assert sorted(int(r["id"]) for r in responses) == list(range(20))
    for r in responses:
        assert r["status"] == 201
        assert r["body"]["userPrincipalName"].endswith("@contoso.onmicrosoft.com")
        assert r["headers"]["x-ms-resource-unit"] == "1"
        assert r["headers"]["Location"] == (f"http://emulator/v2/{graph.tenant.id}/directoryObjects/{r['body']['id']}"
                                            "/Microsoft.DirectoryServices.User")
    listed = await graph.get("/v1.0/users", params={"$select": "id"})
    assert len(listed.json()["value"]) == 20


async def test_twenty_one_refused(graph):
    response = await graph.post("/v1.0/$batch", json={"requests": [create_item(str(i)) for i in range(21)]})
    assert response.status_code == 400
    assert error_of(response) == graph_error("BadRequest", "Number of requests inside batch exceed the limit")
    assert (await graph.get("/v1.0/users")).json()["value"] == []


@pytest.mark.parametrize("ids", [["1", "1"], ["a", "A"]])
async def test_duplicate_ids_refused(graph, ids):
    response = await graph.post("/v1.0/$batch", json={"requests": [create_item(i) for i in ids]})
    assert response.status_code == 400
    assert error_of(response) == graph_error("BadRequest", f"Batch request contains duplicate request id '{ids[1]}'.")
    assert (await graph.get("/v1.0/users")).json()["value"] == []


@pytest.mark.parametrize("payload,message", [
    ({}, "Invalid batch payload format."),
    ({"requests": "x"}, "Invalid batch payload format."),
    ({"requests": []}, "Invalid batch payload format: the batch holds no requests."),
    ({"requests": [{"id": "1", "method": "GET"}]}, "Invalid batch payload format."),
    ({"requests": [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["9"]}]},
     "Invalid dependency for request Id : 1"),
    ({"requests": [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"}]},
     "Invalid batch payload format."),
    ({"requests": [{"id": "1", "method": "GET", "url": "http://emulator/users"}]}, "Invalid batch payload format."),
])
async def test_malformed_batches(graph, payload, message):
    response = await graph.post("/v1.0/$batch", json=payload)
    assert response.status_code == 400
    assert error_of(response) == graph_error("BadRequest", message)


async def test_body_without_content_type_refused(graph):
    item = create_item("1")
    del item["headers"]
    response = await graph.post("/v1.0/$batch", json={"requests": [item]})
    assert response.status_code == 400
    assert error_of(response) == graph_error("BadRequest", "Write request id : 1 does not contain Content-Type header or body.")


@pytest.mark.parametrize("url", ["/users", "users"])
async def test_relative_urls(graph, url):
    user = await graph.create()
    response = await graph.post("/v1.0/$batch", json={"requests": [
        {"id": "1", "method": "GET", "url": f"{url}?$select=id,displayName"},
        {"id": "2", "method": "GET", "url": url.replace("users", f"users/{user['id']}")},
    ]})
    assert response.status_code == 200
    responses = by_id(response)
    assert responses["1"]["status"] == 200
    assert responses["1"]["body"]["value"] == [{"id": user["id"], "displayName": user["displayName"]}]
    assert responses["2"]["status"] == 200
    assert responses["2"]["body"]["id"] == user["id"]


@pytest.mark.parametrize("url,segment", [("/v1.0/users", "v1.0"), ("v1.0/users", "v1.0"), ("/beta/users", "beta")])
async def test_versioned_url_is_an_inner_400(graph, url, segment):
    """msgraph-sdk-javascript#1178: Graph reads the version as a path segment it does not know."""
    response = await graph.post("/v1.0/$batch", json={"requests": [
        {"id": "1", "method": "GET", "url": url}, {"id": "2", "method": "GET", "url": "/users"}]})
    assert response.status_code == 200
    responses = by_id(response)
    assert responses["1"]["status"] == 400
    error = responses["1"]["body"]["error"]
    assert (error["code"], error["message"]) == ("BadRequest", f"Resource not found for the segment '{segment}'.")
    assert responses["2"]["status"] == 200


async def test_absolute_url_refuses_the_whole_batch(graph):
    """microsoft-graph-docs-contrib#8576: "Invalid batch payload format." for the whole batch."""
    response = await graph.post("/v1.0/$batch", json={"requests": [
        create_item("1"), {"id": "2", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"}]})
    assert response.status_code == 400
    assert error_of(response) == graph_error("BadRequest", "Invalid batch payload format.")
    assert (await graph.get("/v1.0/users")).json()["value"] == []  # item 1 did not run


async def test_depends_on_orders_requests(graph):
    email = unique_email()
    requests = [
        {"id": "1", "method": "GET", "url": f"/users?$filter=mail eq '{email}'"},
        {"id": "2", "method": "POST", "url": "/users", "headers": JSON, "body": customer(email), "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": f"/users?$filter=mail eq '{email}'&$select=mail", "dependsOn": ["2"]},
    ]
    response = await graph.post("/v1.0/$batch", json={"requests": requests})
    assert response.status_code == 200
    responses = by_id(response)
    assert responses["1"]["body"]["value"] == []
    assert responses["2"]["status"] == 201
    assert responses["3"]["body"]["value"] == [{"mail": email}]


async def test_the_sdks_depends_on_is_ignored(graph):
    """msgraph-sdk-python-core PR #996: Graph knows `dependsOn` only; `depends_on` neither
    orders nor fails the dependant (and does not make a batch "mixed")."""
    missing = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    response = await graph.post("/v1.0/$batch", json={"requests": [
        {"id": "lookup", "method": "GET", "url": f"/users/{missing}"},
        create_item("create", depends_on=["lookup"]),
        {"id": "other", "method": "GET", "url": "/users", "depends_on": ["later"]},
    ]})
    assert response.status_code == 200
    statuses = {k: v["status"] for k, v in by_id(response).items()}
    assert statuses == {"lookup": 404, "create": 201, "other": 200}


async def test_dependency_on_a_later_request_refused(graph):
    """msgraph-sdk-dotnet-core#891: "the API expects that the dependency appears earlier"."""
    requests = [
        {"id": "1", "method": "GET", "url": "/users"},
        {"id": "3", "method": "GET", "url": "/users", "dependsOn": ["2"]},
        {"id": "2", "method": "POST", "url": "/users", "headers": JSON, "body": customer(unique_email()),
         "dependsOn": ["1"]},
    ]
    response = await graph.post("/v1.0/$batch", json={"requests": requests})
    assert response.status_code == 400
    assert error_of(response) == graph_error("BadRequest", "Invalid dependency for request Id : 3")
    assert (await graph.get("/v1.0/users")).json()["value"] == []


async def test_mixed_sequential_and_parallel_refused(graph):
    """microsoft-graph-docs-contrib#2339: the doc's old example (1, 2→1, 3, 4→2) is refused."""
    requests = [
        create_item("1"),
        {"id": "2", "method": "GET", "url": "/users", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/users"},
        {"id": "4", "method": "GET", "url": "/users", "dependsOn": ["2"]},
    ]
    response = await graph.post("/v1.0/$batch", json={"requests": requests})
    assert response.status_code == 400
    assert error_of(response) == graph_error("BadRequest", "Batch should be either fully sequential or fully parallel.")
    assert (await graph.get("/v1.0/users")).json()["value"] == []


async def test_the_docs_fixed_chain_is_accepted(graph):
    """The fix of #2339: 1, 2→1, 4→2, 3→4 runs in that order."""
    email = unique_email()
    requests = [
        {"id": "1", "method": "GET", "url": f"/users?$filter=mail eq '{email}'&$select=mail"},
        create_item("2", customer(email), dependsOn=["1"]),
        {"id": "4", "method": "GET", "url": f"/users?$filter=mail eq '{email}'&$select=mail", "dependsOn": ["2"]},
        {"id": "3", "method": "PATCH", "url": "/users/7c9e6679-7425-40de-944b-e07fc1f90ae7", "headers": JSON,
         "body": {}, "dependsOn": ["4"]},
    ]
    response = await graph.post("/v1.0/$batch", json={"requests": requests})
    assert response.status_code == 200
    statuses = {k: v["status"] for k, v in by_id(response).items()}
    assert statuses == {"1": 200, "2": 201, "4": 200, "3": 404}
    assert by_id(response)["4"]["body"]["value"] == [{"mail": email}]


def order_of(response) -> list[str]:
    return [r["id"] for r in response.json()["responses"]]


async def test_answers_come_back_in_a_seeded_order(make_graph):
    """json-batching: answers "might appear in a different order than the requests"."""
    requests = [{"id": str(i), "method": "GET", "url": "/users"} for i in range(10)]
    orders = []
    for seed in (1, 1, 2):
        g = make_graph(EmulatorSettings(seed=seed))
        orders.append(order_of(await g.post("/v1.0/$batch", json={"requests": requests})))
    assert orders[0] == orders[1]  # a seed replays
    assert orders[0] != orders[2]
    assert all(sorted(o, key=int) == [str(i) for i in range(10)] for o in orders)
    assert any(o != [str(i) for i in range(10)] for o in orders)


async def test_parallel_items_run_in_a_seeded_order(make_graph):
    """Ten creates of one customer: whichever runs first gets 201, the others conflict, and
    which one that is depends on the seed, not on the position in the list."""
    winners = set()
    for seed in range(1, 9):
        g = make_graph(EmulatorSettings(seed=seed))
        email = unique_email()
        response = await g.post("/v1.0/$batch", json={"requests": [create_item(str(i), customer(email))
                                                                   for i in range(10)]})
        created = [k for k, v in by_id(response).items() if v["status"] == 201]
        assert len(created) == 1
        winners.add(created[0])
    assert len(winners) > 1


async def test_failed_dependency_is_424(graph):
    taken = await graph.create(customer("dup@example.com"))
    requests = [
        create_item("1", customer("dup@example.com")),
        {"id": "2", "method": "PATCH", "url": f"/users/{taken['id']}", "headers": JSON, "body": {"surname": "X"},
         "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": f"/users/{taken['id']}?$select=surname", "dependsOn": ["2"]},
    ]
    response = await graph.post("/v1.0/$batch", json={"requests": requests})
    assert response.status_code == 200
    responses = by_id(response)
    assert responses["1"]["status"] == 400
    assert {k: v for k, v in responses["1"]["body"]["error"].items() if k != "innerError"} == conflict("identities")
    assert responses["2"]["status"] == 424
    assert responses["2"]["body"]["error"]["code"] == "FailedDependency"
    assert responses["3"]["status"] == 424
    surname = (await graph.get(f"/v1.0/users/{taken['id']}", params={"$select": "surname"})).json()["surname"]
    assert surname is None  # the dependent PATCH never ran


async def test_mixed_inner_statuses_outer_200(graph):
    user = await graph.create()
    other = await graph.create()
    missing = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    requests = [
        create_item("create"),
        {"id": "get", "method": "GET", "url": f"/users/{user['id']}"},
        {"id": "missing", "method": "GET", "url": f"/users/{missing}"},
        {"id": "patch", "method": "PATCH", "url": f"/users/{user['id']}", "headers": JSON, "body": {"jobTitle": "Dev"}},
        {"id": "weak", "method": "POST", "url": "/users", "headers": JSON,
         "body": customer(unique_email(), password="weak")},
        {"id": "delete", "method": "DELETE", "url": f"/users/{other['id']}"},
        {"id": "wrong", "method": "PUT", "url": "/users", "headers": JSON, "body": {}},
        {"id": "nested", "method": "POST", "url": "/$batch", "headers": JSON, "body": {"requests": []}},
    ]
    response = await graph.post("/v1.0/$batch", json={"requests": requests})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    statuses = {k: v["status"] for k, v in by_id(response).items()}
    assert statuses == {"create": 201, "get": 200, "missing": 404, "patch": 204, "weak": 400, "delete": 204,
                        "wrong": 405, "nested": 400}
    responses = by_id(response)
    missing_error = responses["missing"]["body"]["error"]
    assert {k: v for k, v in missing_error.items() if k != "innerError"} == not_found(missing)
    assert set(missing_error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert "body" not in responses["patch"] and "body" not in responses["delete"]
    assert responses["weak"]["body"]["error"]["message"].startswith("The specified password does not comply")


async def test_inner_request_permissions(graph):
    reader = graph.add_app(["User.Read.All"])
    response = await graph.post("/v1.0/$batch", app=reader, json={"requests": [
        create_item("1"), {"id": "2", "method": "GET", "url": "/users"}]})
    assert response.status_code == 200
    responses = by_id(response)
    assert responses["1"]["status"] == 403
    assert responses["1"]["body"]["error"]["code"] == "Authorization_RequestDenied"
    assert responses["2"]["status"] == 200


async def test_batch_needs_a_token(graph):
    response = await graph.client.post("/v1.0/$batch", json={"requests": [create_item("1")]})
    assert response.status_code == 401


async def test_batch_is_post_only(graph):
    response = await graph.get("/v1.0/$batch")
    assert response.status_code == 405
    assert error_of(response) == graph_error("Request_BadRequest",
                                             "Specified HTTP method is not allowed for the request target.")


async def test_batch_body_not_json(graph):
    response = await graph.post("/v1.0/$batch", content=b"{", headers=JSON)
    assert response.status_code == 400
    assert error_of(response)["code"] == "BadRequest"


async def test_inner_429_with_retry_after(make_graph):
    g = make_graph(EmulatorSettings(quotas=Quotas(app_tenant_writes=Quota(5, 10))))
    response = await g.post("/v1.0/$batch", json={"requests": [create_item(str(i)) for i in range(8)]})
    assert response.status_code == 200
    responses = by_id(response)
    statuses = [responses[str(i)]["status"] for i in range(8)]
    assert sorted(statuses) == [201] * 5 + [429] * 3  # which ones: the seeded order of a parallel batch
    for inner in (r for r in responses.values() if r["status"] == 429):
        assert inner["headers"]["Retry-After"] == "2"
        assert inner["headers"]["x-ms-throttle-scope"] == f"Tenant_Application/Write/{g.default_app.client_id}/{g.tenant.id}"
        assert inner["headers"]["x-ms-throttle-information"] == "WriteLimitExceeded"
        error = inner["body"]["error"]
        assert (error["code"], error["message"]) == ("TooManyRequests", "Please retry again later.")
    g.clock.advance(6)  # three writes' worth of refill at 0.5/s
    retry = await g.post("/v1.0/$batch", json={"requests": [create_item(str(i)) for i in range(3)]})
    assert [r["status"] for r in retry.json()["responses"]] == [201, 201, 201]


async def test_dependency_cycle_refused_before_anything_runs(graph):
    requests = [
        create_item("1"),
        {"id": "2", "method": "GET", "url": "/users", "dependsOn": ["3"]},
        {"id": "3", "method": "GET", "url": "/users", "dependsOn": ["4"]},
        {"id": "4", "method": "GET", "url": "/users", "dependsOn": ["2"]},
    ]
    response = await graph.post("/v1.0/$batch", json={"requests": requests})
    assert response.status_code == 400
    # A cycle needs a dependency on a later request, which Graph refuses as such.
    assert error_of(response) == graph_error("BadRequest", "Invalid dependency for request Id : 2")
    assert (await graph.get("/v1.0/users")).json()["value"] == []  # request 1 did not run


async def test_diamond_dependencies_are_not_a_cycle(graph):
    requests = [
        {"id": "a", "method": "GET", "url": "/users"},
        {"id": "b", "method": "GET", "url": "/users", "dependsOn": ["a"]},
        {"id": "c", "method": "GET", "url": "/users", "dependsOn": ["a"]},
        {"id": "d", "method": "GET", "url": "/users", "dependsOn": ["b", "c"]},
    ]
    response = await graph.post("/v1.0/$batch", json={"requests": requests})
    assert [r["status"] for r in response.json()["responses"]] == [200] * 4
