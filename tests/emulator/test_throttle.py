"""Throttling as Graph's identity service does it (GRAPH.md §3.3, §9.2, §9.3)."""

from __future__ import annotations

import re

import pytest
from emulator.helpers import customer, error_of, graph_error, unique_email

from batch.emulator import EmulatorSettings, Quota, Quotas
from batch.emulator.throttle import Cost, request_cost

TOO_MANY = graph_error("TooManyRequests", "Please retry again later.")


def tight(**quotas) -> EmulatorSettings:
    return EmulatorSettings(quotas=Quotas(**quotas))


async def create(g, app=None, **headers):
    return await g.post("/v1.0/users", app=app, json=customer(unique_email()), headers=headers or None)


def assert_throttled(response, scope: str, information: str = "WriteLimitExceeded", *, over_limit: bool = True) -> int:
    assert response.status_code == 429
    assert error_of(response) == TOO_MANY
    inner = response.json()["error"]["innerError"]
    assert {k: inner[k] for k in ("code", "message", "status")} == {"code": "429", "message": "Please retry after",
                                                                     "status": "429"}
    assert set(inner) == {"code", "message", "status", "date", "request-id", "client-request-id"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", inner["date"])
    retry_after = response.headers["Retry-After"]
    assert re.fullmatch(r"[1-9]\d*", retry_after), retry_after  # integer seconds
    assert response.headers["x-ms-throttle-scope"] == scope
    assert response.headers["x-ms-throttle-information"] == information
    if over_limit:
        assert float(response.headers["x-ms-throttle-limit-percentage"]) > 0.8
    assert response.headers["content-type"].startswith("application/json")
    return int(retry_after)


async def test_sixth_write_is_throttled_then_succeeds_after_retry_after(make_graph):
    g = make_graph(tight(app_tenant_writes=Quota(5, 10)))
    statuses = [(await create(g)).status_code for _ in range(5)]
    assert statuses == [201] * 5
    sixth = await create(g)
    retry_after = assert_throttled(sixth, f"Tenant_Application/Write/{g.default_app.client_id}/{g.tenant.id}")
    assert retry_after == 2  # one write at 0.5/s
    assert sixth.headers["x-ms-resource-unit"] == "1"
    g.clock.advance(retry_after - 1)
    assert (await create(g)).status_code == 429  # still too early
    g.clock.advance(1)
    assert (await create(g)).status_code == 201


async def test_reads_are_not_write_limited(make_graph):
    g = make_graph(tight(app_tenant_writes=Quota(2, 10)))
    for _ in range(2):
        assert (await create(g)).status_code == 201
    assert (await create(g)).status_code == 429
    assert (await g.get("/v1.0/users")).status_code == 200


async def test_limit_percentage_header(make_graph):
    g = make_graph(tight(app_tenant_writes=Quota(10, 100)))
    percentages = []
    for _ in range(10):
        response = await create(g)
        assert response.status_code == 201
        percentages.append(response.headers.get("x-ms-throttle-limit-percentage"))
    # appears only once more than 0.8 of the limit is used (GRAPH.md §9.3)
    assert percentages == [None] * 8 + ["0.90", "1.00"]


async def test_resource_unit_header_on_every_response(graph):
    created = await graph.create()
    responses = [
        await graph.get("/v1.0/users"),
        await graph.get(f"/v1.0/users/{created['id']}"),
        await graph.get("/v1.0/users/7c9e6679-7425-40de-944b-e07fc1f90ae7"),
        await graph.patch(f"/v1.0/users/{created['id']}", json={"jobTitle": "x"}),
        await graph.post("/v1.0/users", json=customer("weak@example.com", password="weak")),
        await graph.get("/v1.0/users", params={"$top": "0"}),
        await graph.delete(f"/v1.0/users/{created['id']}"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 404, 204, 400, 400, 204]
    for r in responses:
        assert int(r.headers["x-ms-resource-unit"]) >= 1


async def test_resource_unit_limit(make_graph):
    g = make_graph(EmulatorSettings(quotas=Quotas().with_resource_units(Quota(10, 10))))
    statuses = [(await g.get("/v1.0/users")).status_code for _ in range(6)]  # 2 RU each
    assert statuses == [200] * 5 + [429]
    throttled = await g.get("/v1.0/users")
    assert_throttled(throttled, f"Tenant_Application/ReadWrite/{g.default_app.client_id}/{g.tenant.id}",
                     "ResourceUnitLimitExceeded")


async def test_tenant_write_quota_across_two_apps(make_graph):
    g = make_graph(tight(tenant_writes=Quota(5, 10)))
    second = g.add_app(["User.ReadWrite.All"])
    assert [(await create(g)).status_code for _ in range(3)] == [201] * 3
    assert [(await create(g, app=second)).status_code for _ in range(2)] == [201] * 2
    throttled = await create(g, app=second)
    assert_throttled(throttled, f"Tenant/Write/{second.client_id}/{g.tenant.id}")
    assert (await create(g)).status_code == 429
    # another tenant is not affected
    other = g.add_tenant("fabrikam.onmicrosoft.com")
    other_app = g.add_app(["User.ReadWrite.All"], other)
    response = await g.post("/v1.0/users", app=other_app, json=customer(unique_email(), issuer="fabrikam.onmicrosoft.com"))
    assert response.status_code == 201


async def test_app_tenant_quota_is_per_app(make_graph):
    g = make_graph(tight(app_tenant_writes=Quota(2, 10)))
    second = g.add_app(["User.ReadWrite.All"])
    assert [(await create(g)).status_code for _ in range(3)] == [201, 201, 429]
    assert [(await create(g, app=second)).status_code for _ in range(3)] == [201, 201, 429]


async def test_application_write_quota_across_tenants(make_graph):
    g = make_graph(tight(app_writes=Quota(3, 30)))
    assert [(await create(g)).status_code for _ in range(3)] == [201] * 3
    throttled = await create(g)
    assert_throttled(throttled, f"Application/Write/{g.default_app.client_id}/{g.default_app.client_id}")
    assert throttled.headers["Retry-After"] == "10"


async def test_low_priority_is_refused_earlier(make_graph):
    g = make_graph(tight(app_tenant_writes=Quota(5, 10)))
    assert [(await create(g)).status_code for _ in range(3)] == [201] * 3
    assert (await create(g, **{"x-ms-throttle-priority": "Low"})).status_code == 201  # leaves 1 = the 20% reserve
    low = await create(g, **{"x-ms-throttle-priority": "Low"})
    # refused at exactly 80% used, so no x-ms-throttle-limit-percentage (it starts above 0.8)
    assert_throttled(low, f"Tenant_Application/Write/{g.default_app.client_id}/{g.tenant.id}", over_limit=False)
    assert "x-ms-throttle-limit-percentage" not in low.headers
    assert low.headers["Retry-After"] == "2"
    assert (await create(g, **{"x-ms-throttle-priority": "Normal"})).status_code == 201
    assert (await create(g)).status_code == 429


async def test_throttling_can_be_disabled(make_graph):
    g = make_graph(EmulatorSettings(quotas=Quotas(enabled=False, app_tenant_writes=Quota(1, 100))))
    assert [(await create(g)).status_code for _ in range(3)] == [201] * 3


@pytest.mark.parametrize("method,path,query,kind,cost", [
    ("GET", "users", {}, "external", Cost(2, 0)),
    ("GET", "users", {"$select": "id"}, "external", Cost(1, 0)),
    ("GET", "users", {"$top": "10"}, "external", Cost(1, 0)),
    ("GET", "users", {"$top": "20"}, "external", Cost(2, 0)),
    ("GET", "users", {"$top": "999", "$select": "id"}, "external", Cost(1, 0)),
    ("GET", "users", {"$top": "5", "$select": "id"}, "external", Cost(1, 0)),
    ("GET", "users", {"$expand": "manager"}, "external", Cost(3, 0)),
    ("GET", "users/abc", {}, "external", Cost(1, 0)),
    ("GET", "users/abc", {"$select": "id"}, "external", Cost(1, 0)),
    ("GET", "users/delta", {}, "external", Cost(1, 0)),
    ("POST", "users", {}, "external", Cost(1, 1)),
    ("POST", "users", {}, "b2c", Cost(5, 1)),
    ("PATCH", "users/abc", {}, "b2c", Cost(1, 1)),
    ("DELETE", "users/abc", {}, "external", Cost(1, 1)),
    ("POST", "directory/deletedItems/abc/restore", {}, "external", Cost(1, 1)),
])
def test_request_cost_table(method, path, query, kind, cost):
    assert request_cost(method, path.split("/"), query, kind) == cost


@pytest.mark.parametrize("params,units", [({}, "2"), ({"$select": "id"}, "1"), ({"$top": "5"}, "1"), ({"$top": "50"}, "2")])
async def test_resource_unit_header_values(graph, params, units):
    response = await graph.get("/v1.0/users", params=params)
    assert response.headers["x-ms-resource-unit"] == units


async def test_b2c_create_costs_five(make_graph):
    g = make_graph()
    tenant = g.add_tenant("fabrikamb2c.onmicrosoft.com", kind="b2c")
    app = g.add_app(["User.ReadWrite.All"], tenant)
    response = await g.post("/v1.0/users", app=app, json=customer(unique_email(), issuer="fabrikamb2c.onmicrosoft.com"))
    assert response.status_code == 201
    assert response.headers["x-ms-resource-unit"] == "5"
    external = await create(g)
    assert external.headers["x-ms-resource-unit"] == "1"
