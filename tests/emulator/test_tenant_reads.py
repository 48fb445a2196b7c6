"""The tenant's own reads beyond the conformance table (conformance/facts_tenant.py): tenant
kinds, custom domains, the applications' filters and `$select`, typed custom attributes, and
what the store offers tests to set them up (emulator docs: "The tenant's own reads")."""

from __future__ import annotations

import pytest
from emulator.helpers import Graph

from batch.emulator import Store
from batch.emulator.applications import EXTENSIONS_APP_NAME


@pytest.mark.parametrize(("kind", "tenant_type"), [("external", "CIAM"), ("b2c", "AAD B2C"), ("workforce", "AAD")])
async def test_tenant_type_by_kind(graph: Graph, kind: str, tenant_type: str) -> None:
    tenant = graph.add_tenant(f"{kind}x.onmicrosoft.com", kind=kind)
    app = graph.add_app(["Organization.Read.All"], tenant=tenant)
    body = (await graph.get("/v1.0/organization", app=app)).json()
    assert body["value"][0]["tenantType"] == tenant_type  # resources/organization.md


async def test_custom_domains_are_verified_but_not_default(graph: Graph) -> None:
    graph.store.add_domain(graph.tenant.id, "Contoso.com")
    org = (await graph.get("/v1.0/organization")).json()["value"][0]
    assert [(d["name"], d["isDefault"]) for d in org["verifiedDomains"]] == \
        [(graph.tenant.default_domain, True), ("contoso.com", False)]
    domains = (await graph.get("/v1.0/domains")).json()["value"]
    assert [(d["id"], d["isDefault"], d["isVerified"]) for d in domains] == \
        [(graph.tenant.default_domain, True, True), ("contoso.com", False, True)]


async def test_applications_list_the_extensions_app_and_the_tenant_s_own_registrations(graph: Graph) -> None:
    names = [a["displayName"] for a in (await graph.get("/v1.0/applications")).json()["value"]]
    # Not Microsoft's public clients nor the managed identity: service principals only in a tenant.
    assert names == [EXTENSIONS_APP_NAME, "entra-batch"]
    by_app_id = (await graph.get(f"/v1.0/applications?$filter=appId eq '{graph.default_app.client_id}'")).json()
    assert [a["displayName"] for a in by_app_id["value"]] == ["entra-batch"]


async def test_applications_refuse_what_the_emulator_does_not_filter_or_select(graph: Graph) -> None:
    refused = await graph.get("/v1.0/applications?$filter=signInAudience eq 'AzureADMyOrg'")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    unknown = await graph.get("/v1.0/applications?$select=nonsense")
    assert unknown.status_code == 400 and "on type 'microsoft.graph.application'" in unknown.json()["error"]["message"]


async def test_extension_properties_by_object_id_with_their_declared_types(graph: Graph) -> None:
    full = graph.store.add_extension_property(graph.tenant.id, "requiresMigration", "Boolean")
    graph.store.add_extension_property(graph.tenant.id, "loyalty")  # no type given: a String
    assert full == f"extension_{graph.tenant.extensions_app_hex}_requiresMigration"
    body = {"accountEnabled": True, "displayName": "Ada", "identities": [
        {"signInType": "emailAddress", "issuer": graph.tenant.default_domain, "issuerAssignedId": "ada@example.com"}],
        "passwordProfile": {"password": "Xy12345678!", "forceChangePasswordNextSignIn": False},
        "passwordPolicies": "DisablePasswordExpiration",
        f"extension_{graph.tenant.extensions_app_hex}_loyalty": "gold"}
    assert (await graph.post("/v1.0/users", json=body)).status_code == 201
    app = (await graph.get("/v1.0/applications?$filter=startswith(displayName,'b2c-extensions-app')")).json()["value"][0]
    listed = (await graph.get(f"/v1.0/applications/{app['id']}/extensionProperties")).json()["value"]
    assert sorted((p["name"].rsplit("_", 1)[1], p["dataType"]) for p in listed) == \
        [("loyalty", "String"), ("requiresMigration", "Boolean")]


def test_store_refuses_an_unknown_attribute_type(store: Store) -> None:
    with pytest.raises(ValueError, match="data_type is one of"):
        store.add_extension_property(store.tenants()[0].id, "x", "Float")


async def test_an_app_with_fewer_permissions_is_refused_what_it_lost(graph: Graph) -> None:
    app = graph.add_app(["User.Read.All", "Application.Read.All"])
    assert (await graph.get("/v1.0/domains", app=app)).status_code == 403
    graph.store.set_app_roles(app.client_id, ["Domain.Read.All"])
    graph._tokens.clear()  # a new token carries the new permissions
    assert (await graph.get("/v1.0/domains", app=app)).status_code == 200
