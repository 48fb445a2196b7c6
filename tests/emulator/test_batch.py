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
     "Request id '1' depends on '9', which is not in the batch."),
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


@pytest.mark.parametrize("url", ["/users", "users", "/v1.0/users", "v1.0/users", "https://graph.microsoft.com/v1.0/users"])
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


@pytest.mark.parametrize("key", ["dependsOn", "depends_on"])
async def test_depends_on_orders_requests(graph, key):
    email = unique_email()
    requests = [
        {"id": "3", "method": "GET", "url": f"/users?$filter=mail eq '{email}'&$select=mail", key: ["2"]},
        {"id": "2", "method": "POST", "url": "/users", "headers": JSON, "body": customer(email), key: ["1"]},
        {"id": "1", "method": "GET", "url": f"/users?$filter=mail eq '{email}'"},
    ]
    response = await graph.post("/v1.0/$batch", json={"requests": requests})
    assert response.status_code == 200
    responses = by_id(response)
    assert responses["1"]["body"]["value"] == []
    assert responses["2"]["status"] == 201
    assert responses["3"]["body"]["value"] == [{"mail": email}]


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
    missing = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    requests = [
        create_item("create"),
        {"id": "get", "method": "GET", "url": f"/users/{user['id']}"},
        {"id": "missing", "method": "GET", "url": f"/users/{missing}"},
        {"id": "patch", "method": "PATCH", "url": f"/users/{user['id']}", "headers": JSON, "body": {"jobTitle": "Dev"}},
        {"id": "weak", "method": "POST", "url": "/users", "headers": JSON,
         "body": customer(unique_email(), password="weak")},
        {"id": "delete", "method": "DELETE", "url": f"/users/{user['id']}", "dependsOn": ["patch"]},
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
    assert [responses[str(i)]["status"] for i in range(8)] == [201] * 5 + [429] * 3
    for i in range(5, 8):
        inner = responses[str(i)]
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
    assert error_of(response) == graph_error("BadRequest", "Batch request dependencies form a cycle.")
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
