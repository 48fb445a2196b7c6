"""POST/GET/PATCH /users against GRAPH.md §1, §2, §3.2, §5: what is created, what is
refused (with Graph's exact code, message and details) and what a read returns."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from emulator.helpers import (
    DEFAULT_KEYS,
    DOMAIN,
    FORBIDDEN,
    PASSWORD,
    conflict,
    customer,
    error_of,
    graph_error,
    invalid,
    not_found,
    unique_email,
)

from batch import rules
from batch.emulator.settings import EmulatorSettings

WEAK = graph_error("Request_BadRequest",
                   "The specified password does not comply with password complexity requirements. "
                   "Please provide a different password.",
                   [{"target": "passwordProfile", "code": "InvalidValue"}])
REQUIRED_DISPLAY_NAME = graph_error("Request_BadRequest",
                                    "A value is required for property 'displayName' of resource 'User'.",
                                    [{"target": "displayName", "code": "InvalidValue"}])


# ---- creating ---------------------------------------------------------------------------------

async def test_create_customer_with_email_identity(graph):
    email = unique_email("ada")
    response = await graph.post("/v1.0/users", json=customer(email, display_name="Ada Lovelace"))
    assert response.status_code == 201
    body = response.json()
    assert body["@odata.context"] == "http://emulator/v1.0/$metadata#users/$entity"
    # External ID example 3 (GRAPH.md §1.3): the default property set only.
    assert set(body) - {"@odata.context"} == DEFAULT_KEYS
    user_id = body["id"]
    assert body["userPrincipalName"] == f"{user_id}@{DOMAIN}"
    assert body["mail"] == email
    assert body["displayName"] == "Ada Lovelace"
    assert body["businessPhones"] == []
    for prop in ("givenName", "jobTitle", "mobilePhone", "officeLocation", "preferredLanguage", "surname"):
        assert body[prop] is None
    # microsoft-graph-docs#7589: Graph's Location names the directory's v2 address of the object.
    assert response.headers["location"] == (f"http://emulator/v2/{graph.tenant.id}/directoryObjects/{user_id}"
                                            "/Microsoft.DirectoryServices.User")
    assert response.headers["content-type"] == ("application/json;odata.metadata=minimal;odata.streaming=true;"
                                                "IEEE754Compatible=false;charset=utf-8")
    assert response.headers["odata-version"] == "4.0"
    assert PASSWORD not in response.text and "passwordProfile" not in response.text


async def test_created_customer_properties(graph):
    email = unique_email()
    created = await graph.create(customer(email))
    response = await graph.get(f"/v1.0/users/{created['id']}",
                               params={"$select": "id,accountEnabled,identities,creationType,userType,"
                                                  "passwordPolicies,proxyAddresses,passwordProfile,createdDateTime"})
    assert response.status_code == 200
    user = response.json()
    assert user["accountEnabled"] is True
    assert user["userType"] == "Member"
    assert user["creationType"] == "LocalAccount"
    assert user["passwordPolicies"] == "DisablePasswordExpiration"
    assert user["proxyAddresses"] == [f"SMTP:{email}"]
    assert user["passwordProfile"] is None
    assert user["createdDateTime"] == "2026-05-28T20:26:40Z"
    assert user["identities"] == [
        {"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": email},
        {"signInType": "userPrincipalName", "issuer": DOMAIN, "issuerAssignedId": f"{created['id']}@{DOMAIN}"},
    ]


async def test_create_with_user_name_identity(graph):
    created = await graph.create(customer(user_name="johnsmith"))
    assert created["mail"] is None
    response = await graph.get(f"/v1.0/users/{created['id']}", params={"$select": "identities"})
    assert response.json()["identities"][0] == {"signInType": "userName", "issuer": DOMAIN, "issuerAssignedId": "johnsmith"}


async def test_no_password_in_any_response(graph):
    secret = "Zq9!unique-Secret-77"
    body = customer(unique_email(), password=secret)
    created = await graph.create(body)
    user_id = created["id"]
    await graph.get(f"/v1.0/users/{user_id}", params={"$select": "id,passwordProfile,identities,passwordPolicies"})
    await graph.get("/v1.0/users", params={"$select": "id,passwordProfile"})
    await graph.get("/v1.0/users/delta", params={"$select": "id,passwordProfile"})
    await graph.patch(f"/v1.0/users/{user_id}", json={"passwordProfile": {"password": secret + "x"}})
    await graph.post("/v1.0/users", json=body)  # the conflict's error body
    await graph.delete(f"/v1.0/users/{user_id}")
    await graph.get("/v1.0/directory/deletedItems/microsoft.graph.user", params={"$select": "id,passwordProfile"})
    await graph.get(f"/v1.0/directory/deletedItems/{user_id}")
    await graph.post(f"/v1.0/directory/deletedItems/{user_id}/restore")
    await graph.post("/v1.0/$batch", json={"requests": [
        {"id": "1", "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"},
         "body": customer(unique_email(), password=secret)},
        {"id": "2", "method": "GET", "url": f"/users/{user_id}?$select=passwordProfile"}]})
    assert len(graph.responses) >= 10
    for response in graph.responses:
        assert secret not in response.text
    stored = graph.store.user(graph.tenant.id, user_id)
    assert secret not in str(stored.data)



async def test_the_store_keeps_no_trace_of_passwords_by_default(graph):
    user_id = (await graph.create(customer(unique_email(), password="Zq9!first-Secret-77")))["id"]
    assert graph.store.password_is(user_id, "Zq9!first-Secret-77") is None
    assert graph.store._all("SELECT * FROM password_digests") == []


async def test_the_store_can_tell_a_customers_current_password_and_keeps_only_a_digest(make_graph):
    """What the soak checks passwords.csv against (--keep-password-digests): the password a
    customer has now."""
    graph = make_graph(EmulatorSettings(keep_password_digests=True))
    first, second = "Zq9!first-Secret-77", "Zq9!second-Secret-88"
    user_id = (await graph.create(customer(unique_email(), password=first)))["id"]
    assert graph.store.password_is(user_id, first) is True
    assert graph.store.password_is(user_id, second) is False
    assert (await graph.patch(f"/v1.0/users/{user_id}", json={"passwordProfile": {
        "password": second, "forceChangePasswordNextSignIn": True}})).status_code == 204
    assert graph.store.password_is(user_id, second) is True
    assert graph.store.password_is(user_id, first) is False
    # A flag alone changes nothing, the password included (microsoft-graph-docs#4267).
    await graph.patch(f"/v1.0/users/{user_id}", json={"passwordProfile": {"forceChangePasswordNextSignIn": False}})
    assert graph.store.password_is(user_id, second) is True
    assert graph.store.password_is("00000000-0000-0000-0000-000000000000", second) is None
    rows = graph.store._all("SELECT digest FROM password_digests")
    assert rows and all(second not in r["digest"] and first not in r["digest"] for r in rows)

async def test_duplicate_identity_case_insensitive(graph):
    await graph.create(customer("Grace@Example.com"))
    response = await graph.post("/v1.0/users", json=customer("grace@EXAMPLE.com", mail=None))
    assert response.status_code == 400
    assert error_of(response) == conflict("identities")


async def test_duplicate_user_name_identity(graph):
    await graph.create(customer(user_name="Jsmith"))
    response = await graph.post("/v1.0/users", json=customer(user_name="JSMITH"))
    assert response.status_code == 400
    assert error_of(response) == conflict("identities")


async def test_duplicate_upn(graph):
    upn = f"alice@{DOMAIN}"
    await graph.create(customer(unique_email(), userPrincipalName=upn))
    response = await graph.post("/v1.0/users", json=customer(unique_email(), userPrincipalName=upn.upper()))
    assert response.status_code == 400
    assert error_of(response) == conflict("userPrincipalName")


async def test_duplicate_upn_workforce_style(graph):
    body = {"accountEnabled": True, "displayName": "Bob", "mailNickname": "bob", "userPrincipalName": f"bob@{DOMAIN}",
            "passwordProfile": {"password": PASSWORD, "forceChangePasswordNextSignIn": True}}
    first = await graph.post("/v1.0/users", json=body)
    assert first.status_code == 201
    assert first.json()["userPrincipalName"] == f"bob@{DOMAIN}"
    second = await graph.post("/v1.0/users", json=body)
    assert second.status_code == 400
    assert error_of(second) == conflict("userPrincipalName")


async def test_mail_conflicts_with_proxy_address(graph):
    await graph.create(customer("shared@example.com"))
    body = customer(user_name="other", mail="SHARED@example.com")
    response = await graph.post("/v1.0/users", json=body)
    assert response.status_code == 400
    assert error_of(response) == conflict("proxyAddresses")


@pytest.mark.parametrize("password", ["password", "short1A", "alllowercase1", "ALLUPPER!!!!", "Ünïcødé1!x", "", "a" * 257])
async def test_weak_password(graph, password):
    response = await graph.post("/v1.0/users", json=customer(unique_email(), password=password))
    assert response.status_code == 400
    assert error_of(response) == WEAK


@pytest.mark.parametrize("password", ["Xy12345678!", "abcdefG1", "abc DEF 123", "ABCdef!@#", "x" * 200 + "Y1"])
async def test_strong_passwords_accepted(graph, password):
    response = await graph.post("/v1.0/users", json=customer(unique_email(), password=password))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("policies", ["DisablePasswordExpiration, DisableStrongPassword",
                                      "DisableStrongPassword,DisablePasswordExpiration"])
async def test_disable_strong_password_accepts_weak(graph, policies):
    response = await graph.post("/v1.0/users", json=customer(unique_email(), password="abc", passwordPolicies=policies))
    assert response.status_code == 201, response.text


async def test_local_account_needs_password_expiration_disabled(graph):
    body = customer(unique_email())
    del body["passwordPolicies"]
    response = await graph.post("/v1.0/users", json=body)
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "Request_BadRequest",
        "Local account identities need password expiration disabled: set passwordPolicies to 'DisablePasswordExpiration'.",
        [{"target": "passwordPolicies", "code": "InvalidValue"}])


async def test_wrong_issuer(graph):
    response = await graph.post("/v1.0/users", json=customer(unique_email(), issuer="fabrikam.onmicrosoft.com"))
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "Request_BadRequest", "Issuer should match tenants domainName for non federated identity.",
        [{"target": "identities", "code": "InvalidValue"}])


async def test_federated_identity_keeps_foreign_issuer(graph):
    body = {"displayName": "Fed", "identities": [
        {"signInType": "federated", "issuer": "facebook.com", "issuerAssignedId": "5eecb0cd"}]}
    created = await graph.create(body)
    assert created["userPrincipalName"] == f"{created['id']}@{DOMAIN}"


@pytest.mark.parametrize("body_change", [{"displayName": None}, {"displayName": ""}])
async def test_display_name_required(graph, body_change):
    body = customer(unique_email())
    if body_change["displayName"] is None:
        del body["displayName"]
    else:
        body.update(body_change)
    response = await graph.post("/v1.0/users", json=body)
    assert response.status_code == 400
    if "displayName" in body:
        assert error_of(response) == invalid("displayName")
    else:
        assert error_of(response) == REQUIRED_DISPLAY_NAME


LENGTH_CASES = [(prop, limit) for prop, limit in rules.PROPERTY_MAX_LENGTHS.items()
                if prop not in ("mail", "userPrincipalName", "preferredLanguage")]


@pytest.mark.parametrize("prop,limit", LENGTH_CASES)
async def test_property_max_length(graph, prop, limit):
    accepted = await graph.post("/v1.0/users", json=customer(unique_email(), **{prop: "a" * limit}))
    assert accepted.status_code == 201, (prop, accepted.text)
    refused = await graph.post("/v1.0/users", json=customer(unique_email(), **{prop: "a" * (limit + 1)}))
    assert refused.status_code == 400
    assert error_of(refused) == invalid(prop)


async def test_given_name_64_and_65(graph):
    assert (await graph.post("/v1.0/users", json=customer(unique_email(), givenName="g" * 64))).status_code == 201
    response = await graph.post("/v1.0/users", json=customer(unique_email(), givenName="g" * 65))
    assert error_of(response) == graph_error("Request_BadRequest",
                                             "Invalid value specified for property 'givenName' of resource 'User'.",
                                             [{"target": "givenName", "code": "InvalidValue"}])


@pytest.mark.parametrize("value,stored", [("US", "US"), ("gb", "GB"), (" jp ", "JP")])
async def test_usage_location_accepted(graph, value, stored):
    created = await graph.create(customer(unique_email(), usageLocation=value))
    response = await graph.get(f"/v1.0/users/{created['id']}", params={"$select": "usageLocation"})
    assert response.json()["usageLocation"] == stored


@pytest.mark.parametrize("value", ["XX", "USA", "U", "", "UK"])
async def test_bad_usage_location(graph, value):
    response = await graph.post("/v1.0/users", json=customer(unique_email(), usageLocation=value))
    assert response.status_code == 400
    assert error_of(response) == invalid("usageLocation")


@pytest.mark.parametrize("prop,value", [("createdDateTime", "2020-01-01T00:00:00Z"), ("proxyAddresses", ["SMTP:a@b.com"])])
async def test_read_only_properties(graph, prop, value):
    response = await graph.post("/v1.0/users", json=customer(unique_email(), **{prop: value}))
    assert response.status_code == 400
    assert error_of(response) == graph_error("Request_BadRequest", f"Property '{prop}' is read-only and cannot be set.",
                                             [{"target": prop, "code": "InvalidValue"}])


async def test_creation_type_on_create_is_graphs_invalid_value(graph):
    """msgraph-sdk-javascript#1523: the answer Graph gave, details with a message included."""
    response = await graph.post("/v1.0/users", json=customer(unique_email(), creationType="LocalAccount"))
    assert response.status_code == 400
    message = "Invalid value specified for property 'creationType' of resource 'User'."
    assert error_of(response) == graph_error("Request_BadRequest", message,
                                             [{"code": "InvalidValue", "message": message, "target": "creationType"}])


@pytest.mark.parametrize("prop,value,ok", [
    ("ageGroup", "Adult", True), ("ageGroup", "minor", True), ("ageGroup", "teen", False),
    ("consentProvidedForMinor", "Granted", True), ("consentProvidedForMinor", "maybe", False),
    ("userType", "Guest", True), ("userType", "guest", False),
])
async def test_enumerated_properties(graph, prop, value, ok):
    """user.md: ageGroup null/Minor/NotAdult/Adult, consentProvidedForMinor null/Granted/Denied/NotRequired."""
    response = await graph.post("/v1.0/users", json=customer(unique_email(), **{prop: value}))
    if ok:
        assert response.status_code == 201
        assert (await selected(graph, response.json()["id"], prop))[prop] == value
    else:
        assert response.status_code == 400
        assert error_of(response) == invalid(prop)


async def test_read_only_properties_of_graphs_schema(graph, ada):
    """Properties user.md marks read-only are known (selectable) and refused on write."""
    user = await selected(graph, ada["id"], "onPremisesSyncEnabled,assignedLicenses,refreshTokensValidFromDateTime")
    assert user["onPremisesSyncEnabled"] is None and user["assignedLicenses"] == []
    response = await graph.patch(f"/v1.0/users/{ada['id']}", json={"onPremisesSyncEnabled": True})
    assert response.status_code == 400
    assert error_of(response)["message"] == "Property 'onPremisesSyncEnabled' is read-only and cannot be set."


async def test_id_on_create_is_ignored(graph):
    """azure-ad-b2c/user-migration#25: Graph drops an `id` sent on create and assigns its own."""
    sent = "00000000-0000-0000-0000-000000000001"
    response = await graph.post("/v1.0/users", json=customer(unique_email(), id=sent))
    assert response.status_code == 201
    assert response.json()["id"] != sent
    assert (await graph.get(f"/v1.0/users/{sent}")).status_code == 404


async def test_identities_as_an_object_does_not_match_schema(graph):
    """msgraph-sdk-php#708: the OData reader's code `BadRequest`, not the directory's."""
    body = customer(unique_email())
    body["identities"] = body["identities"][0]
    response = await graph.post("/v1.0/users", json=body)
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "BadRequest", "Property identities in payload has a value that does not match schema.")


async def test_unknown_property(graph):
    response = await graph.post("/v1.0/users", json=customer(unique_email(), favouriteColour="blue"))
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "Request_BadRequest", "Property 'favouriteColour' does not exist as a declared property or extension property.")


async def test_odata_type_in_body_is_accepted(graph):
    created = await graph.create(customer(unique_email(), **{"@odata.type": "#microsoft.graph.user"}))
    assert created["id"]


async def test_extension_attribute_of_the_tenant_extensions_app(graph):
    name = graph.store.add_extension_property(graph.tenant.id, "loyaltyNumber")  # declared before it is written
    created = await graph.create(customer(unique_email(), **{name: "LN-42"}))
    assert name not in created  # not in the default set
    response = await graph.get(f"/v1.0/users/{created['id']}", params={"$select": f"id,{name}"})
    assert response.json()[name] == "LN-42"
    # null removes it (GRAPH.md §5)
    assert (await graph.patch(f"/v1.0/users/{created['id']}", json={name: None})).status_code == 204
    response = await graph.get(f"/v1.0/users/{created['id']}", params={"$select": f"id,{name}"})
    assert name not in response.json()


async def test_extension_attribute_of_another_app(graph):
    name = "extension_0123456789abcdef0123456789abcdef_loyaltyNumber"
    response = await graph.post("/v1.0/users", json=customer(unique_email(), **{name: "LN-42"}))
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "Request_BadRequest", f"Property '{name}' does not exist as a declared property or extension property.")


async def test_extension_value_too_long(graph):
    name = graph.store.add_extension_property(graph.tenant.id, "note")
    response = await graph.post("/v1.0/users", json=customer(unique_email(), **{name: "n" * 257}))
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "Request_BadRequest", f"Invalid value specified for property '{name}' of resource 'User'.",
        [{"target": name, "code": "InvalidValue"}])


@pytest.mark.parametrize("identity,prop", [
    ({"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": "not-an-email"}, "identities"),
    ({"signInType": "userName", "issuer": DOMAIN, "issuerAssignedId": "-starts-with-dash"}, "identities"),
    ({"signInType": "userName", "issuer": DOMAIN, "issuerAssignedId": "has space"}, "identities"),
    ({"signInType": "userName", "issuer": DOMAIN, "issuerAssignedId": "newline\n"}, "identities"),
    ({"signInType": "userName", "issuer": DOMAIN, "issuerAssignedId": "u" * 65}, "identities"),
    ({"signInType": "emailAddress", "issuer": DOMAIN}, "identities"),
])
async def test_invalid_identities(graph, identity, prop):
    body = customer(unique_email())
    body["identities"] = [identity]
    body.pop("mail")
    response = await graph.post("/v1.0/users", json=body)
    assert response.status_code == 400
    assert error_of(response) == invalid(prop)


async def test_invalid_upn(graph):
    response = await graph.post("/v1.0/users", json=customer(unique_email(), userPrincipalName=f"bad name@{DOMAIN}"))
    assert response.status_code == 400
    assert error_of(response) == graph_error("Request_BadRequest", "Property userPrincipalName is invalid.",
                                             [{"target": "userPrincipalName", "code": "InvalidValue"}])


async def test_upn_on_unverified_domain(graph):
    response = await graph.post("/v1.0/users", json=customer(unique_email(), userPrincipalName="ann@fabrikam.com"))
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "Request_BadRequest",
        "The domain portion of the userPrincipalName property is invalid. "
        "You must use one of the verified domain names in your organization.",
        [{"target": "userPrincipalName", "code": "InvalidValue"}])


async def test_invalid_json_body(graph):
    response = await graph.post("/v1.0/users", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    # Real answers pasted in microsoftgraph/nodejs-connect-rest-sample#53 and php-connect-rest-sample#29.
    assert error_of(response) == graph_error(
        "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set "
                      "and payload is of valid JSON format.")
    assert response.headers["content-type"] == "application/json"


async def test_error_headers_without_a_client_request_id(graph):
    """GRAPH.md §15.6: errors are plain application/json with OData-Version 4.0, and without a
    client-request-id from the client one value serves the header and innerError."""
    response = await graph.get("/v1.0/users/7c9e6679-7425-40de-944b-e07fc1f90ae7")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.headers["odata-version"] == "4.0"
    inner = response.json()["error"]["innerError"]
    assert response.headers["client-request-id"] == inner["client-request-id"] == inner["request-id"]
    assert response.headers["request-id"] == inner["request-id"]


async def test_a_sent_client_request_id_is_echoed(graph):
    sent = "11111111-2222-3333-4444-555555555555"
    response = await graph.get("/v1.0/users/7c9e6679-7425-40de-944b-e07fc1f90ae7", headers={"client-request-id": sent})
    assert response.headers["client-request-id"] == response.json()["error"]["innerError"]["client-request-id"] == sent


# ---- reading ----------------------------------------------------------------------------------

@pytest.fixture
async def ada(graph) -> dict[str, Any]:
    return await graph.create(customer("ada@example.com", display_name="Ada", userPrincipalName=f"ada#1@{DOMAIN}"))


async def test_get_by_id_default_properties(graph, ada):
    response = await graph.get(f"/v1.0/users/{ada['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body.pop("@odata.context") == "http://emulator/v1.0/$metadata#users/$entity"
    assert set(body) == DEFAULT_KEYS
    assert body == {k: ada[k] for k in DEFAULT_KEYS}


@pytest.mark.parametrize("how", ["id-upper", "upn", "upn-encoded", "double-slash"])
async def test_get_by_key(graph, ada, how):
    upn = ada["userPrincipalName"]
    url = {
        "id-upper": f"/v1.0/users/{ada['id'].upper()}",
        "upn": f"/v1.0/users/{quote(upn, safe='@')}",  # '#' must be encoded to stay in the path
        "upn-encoded": f"/v1.0/users/{quote(upn, safe='')}",
        "double-slash": f"http://emulator//v1.0//users//{ada['id']}",
    }[how]
    response = await graph.get(url)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == ada["id"]
    assert response.json()["userPrincipalName"] == f"ada#1@{DOMAIN}"


async def test_list_with_double_slash(graph, ada):
    response = await graph.get("http://emulator//v1.0//users")
    assert response.status_code == 200
    assert [u["id"] for u in response.json()["value"]] == [ada["id"]]


async def test_select_versus_default(graph, ada):
    response = await graph.get(f"/v1.0/users/{ada['id']}", params={"$select": "displayName,accountEnabled"})
    assert response.json() == {
        "@odata.context": "http://emulator/v1.0/$metadata#users(displayName,accountEnabled)/$entity",
        "displayName": "Ada", "accountEnabled": True}
    listed = await graph.get("/v1.0/users", params={"$select": "id,creationType"})
    assert listed.json()["value"] == [{"id": ada["id"], "creationType": "LocalAccount"}]


async def test_select_unknown_property(graph, ada):
    response = await graph.get(f"/v1.0/users/{ada['id']}", params={"$select": "id,shoeSize"})
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "BadRequest",
        "Parsing OData Select and Expand failed: Could not find a property named 'shoeSize' on type 'microsoft.graph.user'.")


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize("key", ["7c9e6679-7425-40de-944b-e07fc1f90ae7", f"nobody@{DOMAIN}"])
async def test_unknown_user_404(graph, method, key):
    kwargs = {"json": {"displayName": "x"}} if method == "PATCH" else {}
    response = await graph.request(method, f"/v1.0/users/{key}", **kwargs)
    assert response.status_code == 404
    assert error_of(response) == not_found(key)


async def test_error_envelope_inner_error(graph):
    response = await graph.get("/v1.0/users/7c9e6679-7425-40de-944b-e07fc1f90ae7",
                               headers={"client-request-id": "11111111-2222-3333-4444-555555555555"})
    inner = response.json()["error"]["innerError"]
    assert set(inner) == {"date", "request-id", "client-request-id"}
    assert inner["date"] == "2026-05-28T20:26:40"  # no 'Z' (GRAPH.md §3.1)
    assert inner["client-request-id"] == "11111111-2222-3333-4444-555555555555"
    assert inner["request-id"] == response.headers["request-id"]
    assert response.headers["content-type"].startswith("application/json")


async def test_unknown_segment(graph):
    response = await graph.get("/v1.0/groups")
    assert response.status_code == 400
    assert error_of(response) == graph_error("BadRequest", "Resource not found for the segment 'groups'.")


async def test_method_not_allowed(graph):
    response = await graph.request("PUT", "/v1.0/users", json={})
    assert response.status_code == 405
    assert error_of(response) == graph_error("Request_BadRequest",
                                             "Specified HTTP method is not allowed for the request target.")


# ---- updating ---------------------------------------------------------------------------------

async def test_patch_returns_204_and_changes(graph, ada):
    response = await graph.patch(f"/v1.0/users/{ada['id']}",
                                 json={"givenName": "Augusta", "accountEnabled": False, "otherMails": ["a@b.com"]})
    assert response.status_code == 204
    assert response.content == b""
    user = (await graph.get(f"/v1.0/users/{ada['id']}", params={"$select": "givenName,accountEnabled,otherMails,displayName"})).json()
    assert (user["givenName"], user["accountEnabled"], user["otherMails"], user["displayName"]) == ("Augusta", False, ["a@b.com"], "Ada")


async def test_patch_by_upn(graph, ada):
    response = await graph.patch(f"/v1.0/users/{quote(ada['userPrincipalName'], safe='')}", json={"surname": "King"})
    assert response.status_code == 204
    assert (await graph.get(f"/v1.0/users/{ada['id']}")).json()["surname"] == "King"


async def test_patch_password_profile(graph, ada):
    ok = await graph.patch(f"/v1.0/users/{ada['id']}",
                           json={"passwordProfile": {"password": "xWwvJ]6NMw+bWH-d", "forceChangePasswordNextSignIn": False}})
    assert ok.status_code == 204
    weak = await graph.patch(f"/v1.0/users/{ada['id']}", json={"passwordProfile": {"password": "weak"}})
    assert weak.status_code == 400
    assert error_of(weak) == WEAK


async def selected(graph, user_id: str, names: str) -> dict[str, Any]:
    return (await graph.get(f"/v1.0/users/{user_id}", params={"$select": names})).json()


async def test_patch_force_change_without_password_is_204_and_changes_nothing(graph, ada):
    """microsoft-graph-docs#4267: "trying to force a password change without supplying a new
    password results in a 204 as if it has been successful, but nothing happens"."""
    before = await selected(graph, ada["id"], "passwordProfile,lastPasswordChangeDateTime")
    graph.clock.advance(60)
    response = await graph.patch(f"/v1.0/users/{ada['id']}",
                                 json={"passwordProfile": {"forceChangePasswordNextSignIn": True}})
    assert response.status_code == 204
    assert await selected(graph, ada["id"], "passwordProfile,lastPasswordChangeDateTime") == before


async def test_select_password_profile_shows_the_flags_only_while_a_change_is_forced(graph, ada):
    """microsoft-graph-docs#13208: null by default and after a reset without "require change";
    the flags (never the password) after a reset with it."""
    assert (await selected(graph, ada["id"], "passwordProfile"))["passwordProfile"] is None
    forced = {"password": "xWwvJ]6NMw+bWH-d", "forceChangePasswordNextSignIn": True}
    assert (await graph.patch(f"/v1.0/users/{ada['id']}", json={"passwordProfile": forced})).status_code == 204
    user = await selected(graph, ada["id"], "passwordProfile")
    assert user["passwordProfile"] == {"password": None, "forceChangePasswordNextSignIn": True,
                                       "forceChangePasswordNextSignInWithMfa": False}
    free = {"password": "yWwvJ]6NMw+bWH-e", "forceChangePasswordNextSignIn": False}
    assert (await graph.patch(f"/v1.0/users/{ada['id']}", json={"passwordProfile": free})).status_code == 204
    assert (await selected(graph, ada["id"], "passwordProfile"))["passwordProfile"] is None


@pytest.mark.parametrize("needs_role", [False, True])
async def test_password_reset_and_the_user_administrator_role(make_graph, needs_role):
    """user-update.md: app-only, a passwordProfile change needs a permission "and at least the
    User Administrator Microsoft Entra role" (GRAPH.md §4.1). An emulator setting, off by default."""
    g = make_graph(EmulatorSettings(password_reset_needs_role=needs_role))
    user = await g.create(customer(unique_email()))
    reset = {"passwordProfile": {"password": "xWwvJ]6NMw+bWH-d", "forceChangePasswordNextSignIn": False}}
    without_role = g.add_app(["User-PasswordProfile.ReadWrite.All"])
    with_role = g.add_app(["User-PasswordProfile.ReadWrite.All"], directory_roles=["User Administrator"])
    refused = await g.request("PATCH", f"/v1.0/users/{user['id']}", app=without_role, json=reset)
    assert refused.status_code == (403 if needs_role else 204)
    if needs_role:
        assert error_of(refused) == FORBIDDEN
    for app in (with_role, g.default_app):  # the default app holds the role
        assert (await g.request("PATCH", f"/v1.0/users/{user['id']}", app=app, json=reset)).status_code == 204
    # Only the password needs the role.
    assert (await g.request("PATCH", f"/v1.0/users/{user['id']}", app=g.add_app(["User.ReadWrite.All"]),
                            json={"jobTitle": "Boss"})).status_code == 204


async def test_patch_clear_display_name_refused(graph, ada):
    response = await graph.patch(f"/v1.0/users/{ada['id']}", json={"displayName": None})
    assert response.status_code == 400
    assert error_of(response) == invalid("displayName")


async def test_patch_identities_replaces_collection(graph, ada):
    upn_identity = {"signInType": "userPrincipalName", "issuer": DOMAIN, "issuerAssignedId": ada["userPrincipalName"]}
    new = {"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": "ada.new@example.com"}
    response = await graph.patch(f"/v1.0/users/{ada['id']}", json={"identities": [new, upn_identity]})
    assert response.status_code == 204
    user = (await graph.get(f"/v1.0/users/{ada['id']}", params={"$select": "identities"})).json()
    assert user["identities"] == [new, upn_identity]
    # the old sign-in name is free again, the new one is taken
    assert (await graph.post("/v1.0/users", json=customer("ada@example.com", mail=None))).status_code == 201
    taken = await graph.post("/v1.0/users", json=customer("ADA.NEW@example.com", mail=None))
    assert error_of(taken) == conflict("identities")
    found = await graph.get("/v1.0/users", params={
        "$filter": f"identities/any(c:c/issuerAssignedId eq 'ada.new@example.com' and c/issuer eq '{DOMAIN}')"})
    assert [u["id"] for u in found.json()["value"]] == [ada["id"]]


async def test_patch_identities_must_keep_upn_identity(graph, ada):
    new = {"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": "ada.new@example.com"}
    response = await graph.patch(f"/v1.0/users/{ada['id']}", json={"identities": [new]})
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "Request_BadRequest",
        "The identities collection must include the userPrincipalName identity: identities are replaced as a whole.",
        [{"target": "identities", "code": "InvalidValue"}])
    user = (await graph.get(f"/v1.0/users/{ada['id']}", params={"$select": "identities"})).json()
    assert user["identities"][0]["issuerAssignedId"] == "ada@example.com"


async def test_patch_upn_conflict(graph, ada):
    other = await graph.create()
    response = await graph.patch(f"/v1.0/users/{other['id']}", json={"userPrincipalName": ada["userPrincipalName"].upper()})
    assert response.status_code == 400
    assert error_of(response) == conflict("userPrincipalName")


async def test_patch_mail_conflict(graph, ada):
    other = await graph.create(customer(user_name="someone"))
    response = await graph.patch(f"/v1.0/users/{other['id']}", json={"mail": "ADA@example.com"})
    assert response.status_code == 400
    assert error_of(response) == conflict("proxyAddresses")


async def test_patch_read_only_refused(graph, ada):
    response = await graph.patch(f"/v1.0/users/{ada['id']}", json={"creationType": "Invitation"})
    assert response.status_code == 400
    assert error_of(response) == graph_error("Request_BadRequest", "Property 'creationType' is read-only and cannot be set.",
                                             [{"target": "creationType", "code": "InvalidValue"}])


async def test_patch_wrong_type(graph, ada):
    response = await graph.patch(f"/v1.0/users/{ada['id']}", json={"accountEnabled": "no"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "Request_BadRequest"
    assert error_of(response)["details"] == [{"target": "accountEnabled", "code": "InvalidValue"}]


async def test_b2c_create_echoes_identities(make_graph):
    """B2C example 2 (GRAPH.md §1.1) returns identities and passwordPolicies too."""
    g = make_graph()
    tenant = g.add_tenant("fabrikamb2c.onmicrosoft.com", kind="b2c")
    app = g.add_app(["User.ReadWrite.All"], tenant)
    response = await g.post("/v1.0/users", app=app,
                            json=customer("jsmith@yahoo.com", issuer="fabrikamb2c.onmicrosoft.com"))
    assert response.status_code == 201
    body = response.json()
    assert set(body) - {"@odata.context"} == DEFAULT_KEYS | {"identities", "passwordPolicies"}
    assert body["userPrincipalName"] == f"{body['id']}@fabrikamb2c.onmicrosoft.com"
    assert body["passwordPolicies"] == "DisablePasswordExpiration"


async def test_patch_cannot_add_local_identity_to_federated_user(graph):
    fed = await graph.create({"displayName": "Fed", "identities": [
        {"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "g-123"}]})
    identities = [
        {"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "g-123"},
        {"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": "fed@example.com"},
        {"signInType": "userPrincipalName", "issuer": DOMAIN, "issuerAssignedId": fed["userPrincipalName"]},
    ]
    response = await graph.patch(f"/v1.0/users/{fed['id']}", json={"identities": identities})
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "Request_BadRequest", "Adding a local account identity to a user that has none is not allowed.",
        [{"target": "identities", "code": "InvalidValue"}])


async def test_concurrent_identical_creates_make_one_user(graph):
    import asyncio

    await graph.token()
    body = customer("race@example.com")
    responses = await asyncio.gather(*(graph.post("/v1.0/users", json=body) for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [201] + [400] * 9
    assert all(error_of(r) == conflict("identities") for r in responses if r.status_code == 400)
    found = await graph.get("/v1.0/users", params={"$filter": "mail eq 'race@example.com'"})
    assert len(found.json()["value"]) == 1
