"""Facts about creating, reading and updating users (GRAPH.md §1, §2, §4, §5, §15.1).

Sources are files of microsoftgraph/microsoft-graph-docs-contrib ("docs:" below) or issue
threads; `{ada}`, `{ada_upn}`, `{grace}` and `{domain}` come from world.py.
"""

from __future__ import annotations

from typing import Any

from emulator.helpers import DEFAULT_KEYS, PASSWORD, customer
from fact import ABSENT, Fact, WorldCheck, differs_from, keys_are, length, matches

POST_USERS = "docs:api-reference/v1.0/api/user-post-users.md"
USER_GET = "docs:api-reference/v1.0/api/user-get.md"
USER_UPDATE = "docs:api-reference/v1.0/api/user-update.md"
USER_RES = "docs:api-reference/v1.0/resources/user.md"
OBJECT_IDENTITY = "docs:api-reference/v1.0/resources/objectidentity.md"
PASSWORD_PROFILE = "docs:api-reference/v1.0/resources/passwordprofile.md"
SSPR = "MicrosoftDocs/entra-docs:docs/identity/authentication/concept-sspr-policy.md"
WEAK = ("The specified password does not comply with password complexity requirements. "
        "Please provide a different password.")
NOT_FOUND = "Resource '{x}' does not exist or one of its queried reference-property objects are not present."
GUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


UPN_IDENTITY = WorldCheck("holds the userPrincipalName identity", lambda identities, world: {
    "signInType": "userPrincipalName", "issuer": world["domain"], "issuerAssignedId": world["ada_upn"]} in identities)


def new_customer(email: str = "new@example.com", **extra: Any) -> dict[str, Any]:
    return customer(email, display_name="New Customer", **extra)


def with_password(password: str, policies: str = "DisablePasswordExpiration") -> dict[str, Any]:
    body = new_customer()
    body["passwordProfile"]["password"] = password
    body["passwordPolicies"] = policies
    return body


def workforce(upn: str, **extra: Any) -> dict[str, Any]:
    """The workforce body of user-post-users.md Example 1, with `upn`."""
    return {"accountEnabled": True, "displayName": "Work Account", "mailNickname": "work",
            "userPrincipalName": upn, "passwordProfile": {"password": PASSWORD, "forceChangePasswordNextSignIn": False},
            **extra}


def user_name_identity(name: str) -> dict[str, Any]:
    return customer(None, user_name=name, display_name="Name Only")


def create(name: str, source: str, body: Any, status: int, **expect: Any) -> Fact:
    return Fact(name, source, "POST", "/v1.0/users", status, json=body, **expect)


def refused(name: str, source: str, body: Any, **expect: Any) -> Fact:
    return create(name, source, body, 400, **expect)


CREATE = [
    create("customer with an emailAddress identity", POST_USERS + " Example 3", new_customer(), 201,
           fields={"id": matches(GUID), "userPrincipalName": matches(r"^[0-9a-f-]{36}@contoso\.onmicrosoft\.com$"),
                   "mail": "new@example.com", "displayName": "New Customer", "businessPhones": [], "surname": None,
                   "@odata.context": matches(r"/v1\.0/\$metadata#users/\$entity$")}),
    create("201 body is the default property set, never the password", POST_USERS + " Example 3", new_customer(), 201,
           fields={"": keys_are(DEFAULT_KEYS | {"@odata.context"}), "passwordProfile": ABSENT}),
    create("customer with a userName identity", OBJECT_IDENTITY + " (signInType userName)",
           user_name_identity("jsmith"), 201),
    create("userName with - and _ after a letter", OBJECT_IDENTITY, user_name_identity("j-smith_2"), 201),
    refused("emailAddress identity that is not an address", OBJECT_IDENTITY + " (must be a valid email)",
            customer("not-an-address", display_name="X")),
    refused("issuerAssignedId of 65 characters", OBJECT_IDENTITY + " (userName: 64 character limit)",
            user_name_identity("a" * 65)),
    create("issuerAssignedId of 64 characters", OBJECT_IDENTITY + " (userName: 64 character limit)",
           user_name_identity("a" * 64), 201),
    refused("emailAddress issuerAssignedId of 65 characters", OBJECT_IDENTITY + " (the 64 character limit sits in "
            "the userName bullet; whether it holds for emailAddress is UNSURE: kept strict, as the client is)",
            customer("a" * 53 + "@example.com", display_name="X")),
    refused("local identity with a foreign issuer",
            "Azure-Samples/ms-identity-dotnetcore-b2c-account-management#10",
            customer("x@example.com", issuer="fabrikam.onmicrosoft.com"), code="Request_BadRequest",
            message="Issuer should match tenants domainName for non federated identity."),
    refused("identity already used by another user", OBJECT_IDENTITY + " (issuer + issuerAssignedId unique)",
            customer("ada@example.com", display_name="Ada Again")),
    refused("userName identity already used (case differs)", OBJECT_IDENTITY + " (issuer + issuerAssignedId unique)",
            user_name_identity("ADAL")),
    refused("duplicate userPrincipalName", "microsoftgraph/microsoft-graph-docs#1508 (Microsoft staff reply)",
            workforce("{ada_upn}"), code="Request_BadRequest",
            message="Another object with the same value for property userPrincipalName already exists.",
            detail=("userPrincipalName", "ObjectConflict")),
    create("workforce user with a UPN in the tenant's domain", POST_USERS + " Example 1",
           workforce("work@{domain}"), 201, fields={"userPrincipalName": "work@{domain}"}),
    refused("UPN in a domain the tenant does not own", POST_USERS + " (UPN domain must be a verified domain)",
            workforce("work@fabrikam.com")),
    refused("UPN with an accent", POST_USERS + " + GRAPH.md §3.2 (3rd-party Q&A 2018)",
            workforce("jöhn@{domain}"), code="Request_BadRequest", message="Property userPrincipalName is invalid.",
            detail=("userPrincipalName", "InvalidValue")),
    refused("UPN with '.' just before the @", SSPR + " (UPN rules)", workforce("john.@{domain}")),
    refused("UPN with 65 characters before the @", SSPR + " (64 before the @)", workforce("a" * 65 + "@{domain}")),
    create("UPN with 64 characters before the @", SSPR + " (64 before the @)", workforce("a" * 64 + "@{domain}"), 201),
    refused("weak password", "microsoftgraph/msgraph-sdk-java-auth#36 (GRAPH.md §2.3)", with_password("password"),
            code="Request_BadRequest", message=WEAK),
    refused("password of 7 characters", SSPR + " (8 to 256 characters)", with_password("Ab1!xyz"), message=WEAK),
    refused("password of two character classes", SSPR + " (3 of 4 classes)", with_password("abcdefgh1234"),
            message=WEAK),
    refused("password with a non-ASCII letter", SSPR + " (Unicode characters not allowed)",
            with_password("Pässword123!")),
    create("password of three classes and 8 characters", SSPR, with_password("abcDEF12"), 201),
    create("weak password with DisableStrongPassword", USER_RES + " (passwordPolicies)",
           with_password("abcdefgh", "DisablePasswordExpiration, DisableStrongPassword"), 201),
    refused("displayName missing", POST_USERS + " (displayName required)",
            {k: v for k, v in new_customer().items() if k != "displayName"}),
    refused("displayName of 257 characters", USER_RES + " (displayName at most 256)",
            new_customer(displayName="x" * 257)),
    create("displayName of 256 characters", USER_RES + " (displayName at most 256)",
           new_customer(displayName="x" * 256), 201),
    refused("givenName of 65 characters", USER_RES + " (givenName at most 64)", new_customer(givenName="x" * 65)),
    create("usageLocation US", USER_RES + " (two-letter ISO 3166 code)", new_customer(usageLocation="US"), 201),
    refused("usageLocation of three letters", USER_RES + " (two-letter ISO 3166 code)",
            new_customer(usageLocation="USA")),
    refused("mail with an accent", USER_RES + " (mail: no accents)", new_customer(mail="zoë@example.com")),
    refused("otherMails with an accent", USER_UPDATE + " (otherMails: no accents)",
            new_customer(otherMails=["zoë@example.com"])),
    refused("creationType sent", "microsoftgraph/msgraph-sdk-javascript#1523",
            new_customer(creationType="LocalAccount"), code="Request_BadRequest",
            message="Invalid value specified for property 'creationType' of resource 'User'."),
    create("id sent is ignored and a new id assigned", "azure-ad-b2c/user-migration#25",
           new_customer(id="00000000-0000-4000-8000-000000000001"), 201,
           fields={"id": differs_from("sent_id")}),
    refused("identities sent as an object", "microsoftgraph/msgraph-sdk-php#708",
            new_customer(identities={"signInType": "emailAddress", "issuer": "contoso.onmicrosoft.com",
                                     "issuerAssignedId": "new@example.com"}),
            code="BadRequest", message="Property identities in payload has a value that does not match schema."),
    create("Location of a 201 names the directory object",
           "microsoftgraph/microsoft-graph-docs#7589 (Graph Explorer response headers)", new_customer(), 201,
           response_headers={"location": matches(
               r"/v2/[0-9a-f-]{36}/directoryObjects/[0-9a-f-]{36}/Microsoft\.DirectoryServices\.User$")}),
]

READ = [
    Fact("get by id gives the default property set", USER_GET, "GET", "/v1.0/users/{ada}", 200,
         fields={"": keys_are(DEFAULT_KEYS | {"@odata.context"}), "id": "{ada}", "displayName": "Ada Lovelace"}),
    Fact("get by userPrincipalName", USER_GET, "GET", "/v1.0/users/{ada_upn}", 200, fields={"id": "{ada}"}),
    Fact("get an unknown id", USER_GET + " + GRAPH.md §3.2", "GET",
         "/v1.0/users/00000000-0000-4000-8000-000000000000", 404, code="Request_ResourceNotFound",
         message=NOT_FOUND.replace("{x}", "00000000-0000-4000-8000-000000000000")),
    Fact("created customer's defaults, by $select", USER_RES + " + " + OBJECT_IDENTITY, "GET",
         "/v1.0/users/{ada}?$select=id,accountEnabled,userType,identities,createdDateTime", 200,
         fields={"accountEnabled": True, "userType": "Member", "identities": length(3),
                 "createdDateTime": matches(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"), "mail": ABSENT}),
    Fact("the userPrincipalName identity is added", OBJECT_IDENTITY + " (signInType userPrincipalName)", "GET",
         "/v1.0/users/{ada}?$select=identities", 200, fields={"identities": UPN_IDENTITY}),
    Fact("$select=passwordProfile shows the flag when a change is due", "microsoftgraph/microsoft-graph-docs#13208",
         "GET", "/v1.0/users/{grace}?$select=passwordProfile", 200,
         fields={"passwordProfile.forceChangePasswordNextSignIn": True, "passwordProfile.password": None}),
]

UPDATE = [
    Fact("PATCH gives 204 and no body", USER_UPDATE, "PATCH", "/v1.0/users/{ada}", 204,
         json={"jobTitle": "Engineer"}, text="", then="/v1.0/users/{ada}", fields={"jobTitle": "Engineer"}),
    Fact("PATCH accountEnabled false blocks sign-in", USER_UPDATE + " (Example 1 shape)", "PATCH", "/v1.0/users/{ada}",
         204, json={"accountEnabled": False}, then="/v1.0/users/{ada}?$select=accountEnabled",
         fields={"accountEnabled": False}),
    Fact("PATCH replaces a collection whole", USER_UPDATE + " (collections are replaced)", "PATCH",
         "/v1.0/users/{ada}", 204, json={"otherMails": ["ada.new@example.com"]},
         then="/v1.0/users/{ada}?$select=otherMails", fields={"otherMails": ["ada.new@example.com"]}),
    Fact("PATCH displayName null refused", USER_RES + " (displayName can't be cleared)", "PATCH", "/v1.0/users/{ada}",
         400, json={"displayName": None}),
    Fact("PATCH passwordProfile with a password", USER_UPDATE + " Example 3", "PATCH", "/v1.0/users/{ada}", 204,
         json={"passwordProfile": {"forceChangePasswordNextSignIn": False, "password": "xWwvJ]6NMw+bWH-d"}}),
    Fact("PATCH passwordProfile with a weak password", "GRAPH.md §2.3 (msgraph-sdk-java-auth#36)", "PATCH",
         "/v1.0/users/{ada}", 400, json={"passwordProfile": {"password": "password"}}, code="Request_BadRequest",
         message=WEAK),
    Fact("PATCH passwordProfile with only the flag is accepted", "microsoftgraph/microsoft-graph-docs#4267", "PATCH",
         "/v1.0/users/{ada}", 204, json={"passwordProfile": {"forceChangePasswordNextSignIn": True}}),
    Fact("PATCH an unknown user", USER_UPDATE + " + GRAPH.md §3.2", "PATCH",
         "/v1.0/users/00000000-0000-4000-8000-000000000000", 404, json={"jobTitle": "x"},
         code="Request_ResourceNotFound"),
    Fact("passwordProfile is a documented complex type", PASSWORD_PROFILE, "PATCH", "/v1.0/users/{ada}", 204,
         json={"passwordProfile": {"password": "Another-Pass-123", "forceChangePasswordNextSignIn": True,
                                   "forceChangePasswordNextSignInWithMfa": False}}),
]

def federated(issuer: str, assigned_id: str) -> dict[str, str]:
    return {"signInType": "federated", "issuer": issuer, "issuerAssignedId": assigned_id}


def social_only(*identities: dict[str, str]) -> dict[str, Any]:
    """A customer who signs in only with social providers: no passwordProfile, no policies."""
    return {"displayName": "Social Only", "identities": list(identities)}


GRACE_GOOGLE = "identities/any(c:c/issuerAssignedId eq '108000000000000000001' and c/issuer eq '{issuer}')"
FEDERATED = [
    create("federated-only customer without passwordProfile", POST_USERS + " (for a social/federated-only identity "
           "none are required; GRAPH.md §1.2)", social_only(federated("google.com", "1234567890")), 201),
    create("B2C migration body: userName, emailAddress and facebook.com together", POST_USERS + " Example 2",
           customer("jsmith@yahoo.com", user_name="johnsmith", identities=[
               {"signInType": "userName", "issuer": "{domain}", "issuerAssignedId": "johnsmith"},
               {"signInType": "emailAddress", "issuer": "{domain}", "issuerAssignedId": "jsmith@yahoo.com"},
               federated("facebook.com", "5eecb0cd")]), 201),
    refused("federated identity another user holds", OBJECT_IDENTITY + " (issuer + issuerAssignedId unique)",
            social_only(federated("google.com", "108000000000000000001")), code="Request_BadRequest",
            message="Another object with the same value for property identities already exists.",
            detail=("identities", "ObjectConflict")),
    refused("federated identity another user holds, case differs", OBJECT_IDENTITY + " (unique; emulator: "
            "compared case-insensitively, UNSURE)", social_only(federated("Google.COM", "108000000000000000001"))),
    create("federated id that another issuer also assigned", OBJECT_IDENTITY + " (the pair is unique, not the id)",
           social_only(federated("facebook.com", "108000000000000000001")), 201),
    refused("federated issuer of 513 characters", OBJECT_IDENTITY + " (issuer: 512 character limit)",
            social_only(federated("i" * 513, "1"))),
    create("federated issuer of 512 characters", OBJECT_IDENTITY + " (issuer: 512 character limit)",
           social_only(federated("i" * 512, "1")), 201),
    # The "64 character limit" sits in objectidentity.md's userName bullet; a federated id "can be
    # in any format chosen by the issuer" and no limit is documented for it.
    create("federated issuerAssignedId of 65 characters", OBJECT_IDENTITY + " (the 64 character limit is "
           "userName's; federated: any format chosen by the issuer)", social_only(federated("google.com", "9" * 65)),
           201),
    create("federated issuerAssignedId of 2048 characters", OBJECT_IDENTITY + " (federated: any format chosen by "
           "the issuer)", social_only(federated("https://idp.example.com", "8" * 2048)), 201),
    refused("federated identity without an issuer", OBJECT_IDENTITY + " (federated needs a valid issuer)",
            social_only(federated("", "42"))),
    refused("eleven identities", "B2C user-profile-attributes.md (up to 10 identities, GRAPH.md §1.5)",
            social_only(*(federated(f"idp{n}.example.com", str(n)) for n in range(11)))),
    Fact("identities filter finds a federated identity by issuer and id", OBJECT_IDENTITY + " (Filtering)", "GET",
         "/v1.0/users?$filter=" + GRACE_GOOGLE.replace("{issuer}", "google.com"), 200,
         fields={"value": length(1), "value.0.id": "{grace}"}),
    Fact("identities filter compares a federated identity's issuer", OBJECT_IDENTITY + " (federated requires a "
         "valid issuer and issuerAssignedId)", "GET",
         "/v1.0/users?$filter=" + GRACE_GOOGLE.replace("{issuer}", "facebook.com"), 200, fields={"value": length(0)}),
    Fact("identities filter on the issuer google.com alone", OBJECT_IDENTITY + " (issuer alone: google.com, "
         "facebook.com, mail, phone)", "GET", "/v1.0/users?$filter=identities/any(c:c/issuer eq 'google.com')", 200,
         fields={"value": length(1), "value.0.id": "{grace}"}),
    Fact("identities filter on another issuer alone is refused", OBJECT_IDENTITY + " (issuer alone: only those four)",
         "GET", "/v1.0/users?$filter=identities/any(c:c/issuer eq 'github.com')", 400),
]

FACTS = CREATE + READ + UPDATE + FEDERATED
