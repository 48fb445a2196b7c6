"""Facts about the tenant's own reads, those `entra-batch doctor` makes: the organization's
tenantType, the domains, the applications (the extensions app found by its display name) and
their extension properties, and the authentication event listeners (a JIT password migration).
Sources: microsoftgraph/microsoft-graph-docs-contrib, api-reference/v1.0."""

from __future__ import annotations

from emulator.helpers import customer
from fact import ABSENT, Fact, keys_are, length, matches

ORGANIZATION = "docs:api-reference/v1.0/resources/organization.md (tenantType: AAD, AAD B2C, CIAM)"
DOMAINS = "docs:api-reference/v1.0/api/domain-list.md"
APPLICATIONS = "docs:api-reference/v1.0/api/application-list.md"
APPLICATION = "docs:api-reference/v1.0/api/application-get.md"
EXTENSION_PROPERTIES = "docs:api-reference/v1.0/api/application-list-extensionproperty.md"
LISTENERS = "docs:api-reference/v1.0/api/identitycontainer-list-authenticationeventlisteners.md"
MIGRATION = ("docs:api-reference/v1.0/resources/onpasswordsubmitlistener.md + "
             "onpasswordmigrationcustomextensionhandler.md")
EXTENSION_VALUES = "docs:api-reference/v1.0/resources/extensionproperty.md"
EXTENSIONS_APP = "b2c-extensions-app. Do not modify. Used by AADB2C for storing user data."
BY_NAME = "/v1.0/applications?$filter=startswith(displayName,'b2c-extensions-app')&$select=id,appId,displayName"
NOT_FOUND = "Request_ResourceNotFound"

FACTS = [
    Fact("organization of an external tenant", ORGANIZATION, "GET", "/v1.0/organization", 200,
         fields={"value.0.id": "{tenant_id}", "value.0.tenantType": "CIAM",
                 "value.0.verifiedDomains.0.name": "{domain}", "value.0.verifiedDomains.0.isDefault": True}),
    Fact("domains list the default domain", DOMAINS, "GET", "/v1.0/domains", 200,
         fields={"@odata.context": matches(r"/\$metadata#domains$"), "value": length(1), "value.0.id": "{domain}",
                 "value.0.isDefault": True, "value.0.isInitial": True, "value.0.isVerified": True,
                 "value.0.authenticationType": "Managed"}),
    Fact("domains need a domain or directory permission", DOMAINS + " (permissions: Domain.Read.All)", "GET",
         "/v1.0/domains", 403, auth="readonly", code="Authorization_RequestDenied"),
    Fact("the extensions app found by its display name", APPLICATIONS + " ($filter startsWith on displayName, "
         "$select)", "GET", BY_NAME, 200,
         fields={"value": length(1), "value.0.appId": "{extensions_app}", "value.0.displayName": EXTENSIONS_APP,
                 "value.0": keys_are({"id", "appId", "displayName"})}),
    Fact("the extensions app by its whole display name", APPLICATIONS + " ($filter eq on displayName)", "GET",
         f"/v1.0/applications?$filter=displayName eq '{EXTENSIONS_APP}'", 200,
         fields={"value": length(1), "value.0.appId": "{extensions_app}"}),
    Fact("no extensions app: an empty list", APPLICATIONS, "GET", BY_NAME, 200, given=("no_extensions_app",),
         fields={"value": length(0)}),
    Fact("applications need an application or directory permission", APPLICATIONS + " (Application.Read.All)",
         "GET", "/v1.0/applications", 403, auth="readonly", code="Authorization_RequestDenied"),
    Fact("one application by appId", APPLICATION + " (GET /applications(appId='{appId}'))", "GET",
         "/v1.0/applications(appId='{extensions_app}')", 200,
         fields={"appId": "{extensions_app}", "displayName": EXTENSIONS_APP, "@odata.context": matches("applications")}),
    Fact("an unknown application", APPLICATION, "GET", "/v1.0/applications/00000000-0000-4000-8000-00000000000a",
         404, code=NOT_FOUND),
    Fact("extension properties with their types", EXTENSION_PROPERTIES, "GET",
         "/v1.0/applications(appId='{extensions_app}')/extensionProperties", 200, given=("jit_listener",),
         fields={"value": length(1), "value.0.name": "extension_{extensions_hex}_requiresMigration",
                 "value.0.dataType": "Boolean", "value.0.targetObjects": ["User"], "value.0.isMultiValued": False}),
    Fact("a directory extension must be declared to be written", EXTENSION_VALUES + " (UNSURE: the wording is Graph's "
         "for an unknown property of a user)", "POST", "/v1.0/users", 400,
         json=customer("undeclared@example.com", **{"extension_{extensions_hex}_neverDeclared": "x"}),
         code="Request_BadRequest",
         message="Property 'extension_{extensions_hex}_neverDeclared' does not exist as a declared property or "
                 "extension property."),
    Fact("a directory extension's value must be of its declared type", EXTENSION_VALUES + " (dataType Boolean; UNSURE: "
         "the wording is Graph's for a bad value of a user's own property)", "POST", "/v1.0/users", 400,
         given=("jit_listener",),
         json=customer("typed@example.com", **{"extension_{extensions_hex}_requiresMigration": "true"}),
         code="Request_BadRequest",
         message="Invalid value specified for property 'extension_{extensions_hex}_requiresMigration' of resource "
                 "'User'."),
    Fact("extension properties of a deleted extensions app", EXTENSION_PROPERTIES, "GET",
         "/v1.0/applications(appId='{extensions_app}')/extensionProperties", 404, given=("no_extensions_app",),
         code=NOT_FOUND),
    Fact("no listeners: an empty collection", LISTENERS, "GET", "/v1.0/identity/authenticationEventListeners", 200,
         fields={"@odata.context": matches(r"/\$metadata#identity/authenticationEventListeners$"),
                 "value": length(0)}),
    Fact("an onPasswordSubmit listener with its migration handler", MIGRATION, "GET",
         "/v1.0/identity/authenticationEventListeners", 200, given=("jit_listener",),
         fields={"value.0.@odata.type": "#microsoft.graph.onPasswordSubmitListener", "value.0.id": "{listener}",
                 "value.0.conditions.applications.includeApplications.0.appId": "{client_id}",
                 "value.0.handler.@odata.type": "#microsoft.graph.onPasswordMigrationCustomExtensionHandler",
                 "value.0.handler.migrationPropertyId": "extension_{extensions_hex}_requiresMigration",
                 "value.0.roles": ABSENT}),
    Fact("listeners need EventListener.Read.All", LISTENERS + " (permissions)", "GET",
         "/v1.0/identity/authenticationEventListeners", 403, auth="readonly", code="Authorization_RequestDenied"),
]
