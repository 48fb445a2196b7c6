"""What emulator tests share besides fixtures: `Graph` (one emulator instance with an httpx
client and helpers that fetch tokens from the emulator's own token endpoint, so every test
goes through the same front door a real client uses), the fake clock, customer bodies, and
Graph's error bodies to compare responses with. Tests import it as `emulator.helpers`; the
fixtures that build these live in `conftest.py` beside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import httpx

from batch.emulator import App, EmulatorSettings, Store, Tenant, create_app
from batch.emulator.app import EmulatorApp
from batch.emulator.inprocess import EmulatorTransport

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
BASE_URL = "http://emulator"
START = 1_780_000_000.0  # 2026-05-28T20:26:40Z
PASSWORD = "Xy12345678!"
DOMAIN = "contoso.onmicrosoft.com"

DEFAULT_KEYS = {"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
                "preferredLanguage", "surname", "userPrincipalName", "id"}


class FakeClock:
    """A clock for the emulator: time stands still until a test calls `advance`."""

    def __init__(self, start: float = START) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def customer(email: str | None = None, *, user_name: str | None = None, display_name: str = "Test User",
             password: str = PASSWORD, issuer: str = DOMAIN, **extra: Any) -> dict[str, Any]:
    """The External ID customer body of GRAPH.md §1.3 (email and/or userName identity)."""
    identities = []
    if email is not None:
        identities.append({"signInType": "emailAddress", "issuer": issuer, "issuerAssignedId": email})
    if user_name is not None:
        identities.append({"signInType": "userName", "issuer": issuer, "issuerAssignedId": user_name})
    body: dict[str, Any] = {
        "displayName": display_name,
        "identities": identities,
        "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": False},
        "passwordPolicies": "DisablePasswordExpiration",
    }
    if email is not None:
        body["mail"] = email
    body.update(extra)
    return body


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}@example.com"


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The error object without `innerError` (whose ids and date change every time)."""
    error = response.json()["error"]
    return {k: v for k, v in error.items() if k != "innerError"}


def graph_error(code: str, message: str, details: list[dict[str, str]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        out["details"] = details
    return out


def conflict(prop: str) -> dict[str, Any]:
    return graph_error("Request_BadRequest", f"Another object with the same value for property {prop} already exists.",
                       [{"target": prop, "code": "ObjectConflict"}])


def invalid(prop: str) -> dict[str, Any]:
    return graph_error("Request_BadRequest", f"Invalid value specified for property '{prop}' of resource 'User'.",
                       [{"target": prop, "code": "InvalidValue"}])


def not_found(key: str) -> dict[str, Any]:
    return graph_error("Request_ResourceNotFound",
                       f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.")


def advanced_required(operator: str) -> dict[str, Any]:
    return graph_error(
        "Request_UnsupportedQuery",
        f"Operator '{operator}' is not supported because the required parameters might be missing. "
        "Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
        "Refer to https://aka.ms/graph-aad-query-advanced for more information",
    )


async def fetch_token(client: httpx.AsyncClient, app: App, tenant: str | None = None) -> str:
    """A client-credentials token from the emulator's own endpoint, `POST /{tenant}/oauth2/v2.0/token`."""
    data = {"grant_type": "client_credentials", "client_id": app.client_id, "scope": GRAPH_SCOPE}
    if app.secret is not None:
        data["client_secret"] = app.secret
    response = await client.post(f"/{tenant or app.tenant_id}/oauth2/v2.0/token", data=data)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


FORBIDDEN = graph_error("Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


class Graph:
    """One emulator instance and an httpx client on it."""

    def __init__(self, store: Store, app: EmulatorApp, client: httpx.AsyncClient, clock: FakeClock) -> None:
        self.store = store
        self.app = app
        self.client = client
        self.clock = clock
        self.tenant: Tenant = store.tenants()[0]
        self.default_app: App = store.default_app()
        self.responses: list[httpx.Response] = []  # every response this client received
        self._tokens: dict[str, tuple[str, float]] = {}

    # ---- tenants, apps, tokens -------------------------------------------------------------

    def add_tenant(self, domain: str, **kwargs: Any) -> Tenant:
        return self.store.add_tenant(domain, **kwargs)

    def add_app(self, roles: Iterable[str], tenant: Tenant | None = None, **kwargs: Any) -> App:
        return self.store.add_app((tenant or self.tenant).id, tuple(roles), **kwargs)

    async def token_response(self, app: App | None = None, *, tenant: str | None = None,
                             **form: Any) -> httpx.Response:
        app = app or self.default_app
        data = {"grant_type": "client_credentials", "client_id": app.client_id, "scope": GRAPH_SCOPE}
        if app.secret is not None:
            data["client_secret"] = app.secret
        data.update(form)
        data = {k: v for k, v in data.items() if v is not None}
        return await self.client.post(f"/{tenant or app.tenant_id}/oauth2/v2.0/token", data=data)

    async def token(self, app: App | None = None) -> str:
        """A token from the emulator's token endpoint, reused until (fake) expiry."""
        app = app or self.default_app
        cached = self._tokens.get(app.client_id)
        if cached and cached[1] - 60 > self.clock():
            return cached[0]
        response = await self.token_response(app)
        assert response.status_code == 200, response.text
        body = response.json()
        self._tokens[app.client_id] = (body["access_token"], self.clock() + body["expires_in"])
        return body["access_token"]

    async def auth(self, app: App | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(app)}"}

    # ---- Graph calls -----------------------------------------------------------------------

    async def request(self, method: str, url: str, *, app: App | None = None,
                      headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        merged = {**(await self.auth(app)), **(headers or {})}
        return await self.client.request(method, url, headers=merged, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def create(self, body: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """POST /users and insist on 201."""
        response = await self.post("/v1.0/users", json=body if body is not None else customer(unique_email()), **kwargs)
        assert response.status_code == 201, response.text
        return response.json()

    async def create_many(self, n: int, prefix: str = "user") -> list[dict[str, Any]]:
        return [await self.create(customer(unique_email(prefix), display_name=f"{prefix} {i:03d}")) for i in range(n)]

    async def all_pages(self, url: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            response = await self.get(next_url, **kwargs)
            assert response.status_code == 200, response.text
            items += response.json()["value"]
            next_url = response.json().get("@odata.nextLink")
        return items


def build_graph(store: Store, settings: EmulatorSettings, clock: FakeClock) -> Graph:
    app = create_app(store, settings, clock=clock)
    graph_ref: list[Graph] = []

    async def record(response: httpx.Response) -> None:
        await response.aread()
        graph_ref[0].responses.append(response)

    client = httpx.AsyncClient(transport=EmulatorTransport(app), base_url=BASE_URL,
                               event_hooks={"response": [record]})
    graph = Graph(store, app, client, clock)
    graph_ref.append(graph)
    return graph
