"""The small directory every conformance case runs in, the steps a case may ask for first,
and sending a case's request to the in-process emulator.

The world: Ada (live, emailAddress and userName identities, one otherMails address, password
not to be changed), Grace (live, must change her password at next sign-in) and Bob (soft
deleted). Its keys fill the `{placeholders}` of the facts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from emulator.helpers import DOMAIN, Graph, customer
from fact import NO_BODY, Check, Fact, WorldCheck

World = dict[str, str]
EIGHT_DAYS = 8 * 86400  # longer than any page-token lifetime and than delta's 7 days (delta-query-overview.md)


async def build_world(graph: Graph) -> World:
    ada = await graph.create(customer("ada@example.com", user_name="adal", display_name="Ada Lovelace",
                                      otherMails=["ada.other@example.com"]))
    grace_body = customer("grace@example.com", display_name="Grace Hopper")
    grace_body["passwordProfile"]["forceChangePasswordNextSignIn"] = True
    # Grace also signs in with Google (user-post-users.md Example 2 mixes local and federated).
    grace_body["identities"].append({"signInType": "federated", "issuer": "google.com",
                                     "issuerAssignedId": "108000000000000000001"})
    grace = await graph.create(grace_body)
    bob = await graph.create(customer("bob@example.com", display_name="Bob Gone"))
    deleted = await graph.delete(f"/v1.0/users/{bob['id']}")
    assert deleted.status_code == 204, deleted.text
    app = graph.default_app
    return {"ada": ada["id"], "ada_upn": ada["userPrincipalName"], "grace": grace["id"], "bob": bob["id"],
            "sent_id": "00000000-0000-4000-8000-000000000001", "domain": DOMAIN, "tenant_id": graph.tenant.id, "client_id": app.client_id, "secret": app.secret or "",
            "extensions_app": graph.tenant.extensions_app_id, "extensions_hex": graph.tenant.extensions_app_hex}


async def _next_link(graph: Graph, world: World) -> None:
    response = await graph.get("/v1.0/users", params={"$top": "1"})
    world["next"] = response.json()["@odata.nextLink"]


async def _delta_link(graph: Graph, world: World) -> None:
    url = "/v1.0/users/delta"
    while True:
        body = (await graph.get(url)).json()
        if "@odata.deltaLink" in body:
            world["delta"] = body["@odata.deltaLink"]
            return
        url = body["@odata.nextLink"]


async def _delete_ada(graph: Graph, world: World) -> None:
    assert (await graph.delete(f"/v1.0/users/{world['ada']}")).status_code == 204


async def _purge_bob(graph: Graph, world: World) -> None:
    assert (await graph.delete(f"/v1.0/directory/deletedItems/{world['bob']}")).status_code == 204


async def _advance_eight_days(graph: Graph, world: World) -> None:
    graph.clock.advance(EIGHT_DAYS)


async def _no_extensions_app(graph: Graph, world: World) -> None:
    graph.store.remove_extensions_app(graph.tenant.id)


async def _jit_listener(graph: Graph, world: World) -> None:
    name = graph.store.add_extension_property(graph.tenant.id, "requiresMigration", "Boolean")
    world["listener"] = graph.store.add_password_submit_listener(graph.tenant.id, name, app_ids=(world["client_id"],))


STEPS: dict[str, Callable[[Graph, World], Awaitable[None]]] = {
    "no_extensions_app": _no_extensions_app,
    "jit_listener": _jit_listener,
    "next_link": _next_link,
    "delta_link": _delta_link,
    "delete_ada": _delete_ada,
    "purge_bob": _purge_bob,
    "eight_days_pass": _advance_eight_days,
}


def fill(value: Any, world: World) -> Any:
    """`value` with its `{placeholders}` replaced, through dicts and lists."""
    if isinstance(value, WorldCheck):
        return value.bind(world)
    if isinstance(value, Check):
        return value
    if isinstance(value, str):
        for key, replacement in world.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, dict):
        return {fill(k, world): fill(v, world) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(fill(item, world) for item in value)
    return value


async def _authorization(graph: Graph, auth: str) -> dict[str, str]:
    if auth == "app":
        return await graph.auth()
    if auth == "none":
        return {}
    if auth.startswith("raw:"):
        return {"Authorization": auth[4:]}
    if auth == "readonly":
        return await graph.auth(graph.add_app(["User.Read.All"]))
    if auth == "expired":
        headers = await graph.auth(graph.add_app(["User.Read.All"]))
        graph.clock.advance(2 * 3600)  # past the 3599 s lifetime (v2-oauth2-client-creds-grant-flow.md)
        return headers
    raise ValueError(auth)


async def send(graph: Graph, fact: Fact, world: World) -> tuple[httpx.Response, httpx.Response | None]:
    """The case's answer, and the answer to its `then` GET when it has one."""
    for step in fact.given:
        await STEPS[step](graph, world)
    headers = {**(await _authorization(graph, fact.auth)), **fill(dict(fact.headers), world)}
    kwargs: dict[str, Any] = {}
    if fact.json is not NO_BODY:
        kwargs["json"] = fill(fact.json, world)
    if fact.content is not None:
        kwargs["content"] = fact.content.encode()
    if fact.form is not None:
        kwargs["data"] = fill(dict(fact.form), world)
    response = await graph.client.request(fact.method, fill(fact.url, world), headers=headers, **kwargs)
    followed = await graph.get(fill(fact.then, world)) if fact.then else None
    return response, followed
