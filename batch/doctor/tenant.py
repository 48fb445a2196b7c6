"""The target section: which tenant the settings reach (display name, id, kind from the
organization's `tenantType`), its default and verified domains, and whether the domain that
sign-in names will be issued in is one of them."""

from __future__ import annotations

from typing import Any

from batch.doctor.report import Check, fail, ok, warn
from batch.graph import GraphResult

SECTION = "target"

# resources/organization.md (microsoft-graph-docs-contrib, v1.0): tenantType is "AAD" for a
# workforce tenant, "AAD B2C" for an Azure AD B2C tenant, "CIAM" for an external tenant.
KINDS = {"CIAM": "external tenant", "AAD B2C": "Azure AD B2C tenant", "AAD": "workforce tenant"}

B2C_NOTE = ("Azure AD B2C has no advanced queries ($count, $search, ne/not/endsWith filters): export counts no total "
            "and refuses those filters; local accounts work as in an external tenant")
WORKFORCE_REMEDY = ("entra-batch is made for an external (customer) tenant: customers created here become members of "
                    "your organisation's directory. Check that --target/--profile or AZURE_TENANT_ID name the external "
                    "tenant (the admin center shows it under 'External tenants')")


def _organization(result: GraphResult) -> dict[str, Any] | None:
    if result.status == 200 and isinstance(result.body, dict):
        for org in result.body.get("value") or []:
            if isinstance(org, dict):
                return org
    return None


def _denied(result: GraphResult, permission: str) -> str:
    if result.status in (401, 403):
        return f"the token lacks {permission} (HTTP {result.status} {result.error_code or ''})".replace(" )", ")")
    return f"HTTP {result.status or 'no answer'} {result.error_code or ''}: {result.error_message or ''}".strip(" :")


def domains_of(org: dict[str, Any] | None, domains: GraphResult) -> tuple[str | None, list[str]]:
    """The default domain and every verified domain, from `/domains` when it could be read,
    else from the organization's `verifiedDomains`."""
    items: list[tuple[str, bool]] = []
    if domains.status == 200 and isinstance(domains.body, dict):
        items = [(str(d.get("id")), bool(d.get("isDefault"))) for d in domains.body.get("value") or []
                 if isinstance(d, dict) and d.get("id") and d.get("isVerified", True)]
    elif org is not None:
        items = [(str(d.get("name")), bool(d.get("isDefault"))) for d in org.get("verifiedDomains") or []
                 if isinstance(d, dict) and d.get("name")]
    default = next((name for name, is_default in items if is_default), None)
    return default, [name for name, _ in items]


def tenant_checks(organization: GraphResult, domains: GraphResult, *, configured_domain: str | None,
                  tenant_id: str | None) -> tuple[list[Check], str | None]:
    """The target's checks, and the domain sign-in names will be issued in (the configured
    one, else the tenant's default)."""
    org = _organization(organization)
    checks: list[Check] = []
    if org is None:
        why = _denied(organization, "Organization.Read.All")
        checks.append(warn(SECTION, "tenant", f"tenant {tenant_id or '?'}: its name and kind cannot be read "
                                              f"(GET /organization: {why})",
                           "grant Organization.Read.All (application permission) to name the tenant and its kind",
                           id=tenant_id))
    else:
        checks.append(_kind_check(org))
    default, verified = domains_of(org, domains)
    domain = configured_domain or default
    checks.append(_domains_check(default, verified, configured_domain, readable=org is not None or domains.ok))
    return checks, domain


def _kind_check(org: dict[str, Any]) -> Check:
    tenant_type = str(org.get("tenantType") or "")
    kind = KINDS.get(tenant_type, f"tenantType {tenant_type or 'not given'}")
    name = f"{org.get('displayName') or '(no display name)'}, id {org.get('id')}, {kind}"
    data = {"id": org.get("id"), "display_name": org.get("displayName"), "tenant_type": tenant_type or None}
    if tenant_type == "CIAM":
        return ok(SECTION, "tenant", f"{name} (tenantType CIAM)", **data)
    if tenant_type == "AAD B2C":
        return ok(SECTION, "tenant", f"{name} (tenantType AAD B2C). Note: {B2C_NOTE}", **data)
    if tenant_type == "AAD":
        return warn(SECTION, "tenant", f"{name} (tenantType AAD), not an external tenant", WORKFORCE_REMEDY, **data)
    return warn(SECTION, "tenant", f"{name}: not known as an external or B2C tenant", WORKFORCE_REMEDY, **data)


def _domains_check(default: str | None, verified: list[str], configured: str | None, *, readable: bool) -> Check:
    data: dict[str, Any] = {"default": default, "verified": verified, "configured": configured}
    if not readable:
        if configured:
            return warn(SECTION, "domains", f"sign-in names will be issued in {configured} (configured); the tenant's "
                                            "domains cannot be read to confirm it",
                        "grant Organization.Read.All or Domain.Read.All to check it", **data)
        return fail(SECTION, "domains", "the tenant's default domain cannot be read, and none is configured: "
                                        "create needs it as the issuer of sign-in names",
                    "grant Organization.Read.All (application permission), or pass --domain "
                    "contoso.onmicrosoft.com (ENTRA_BATCH_DOMAIN, a profile's domain)", **data)
    listed = ", ".join(verified) or "none"
    if configured and configured.lower() not in (v.lower() for v in verified):
        return fail(SECTION, "domains", f"the configured domain {configured} is not a verified domain of this tenant "
                                        f"(verified: {listed}): Graph would refuse every sign-in name issued in it",
                    f"set --domain (ENTRA_BATCH_DOMAIN, a profile's domain) to {default or 'the default domain'}, or "
                    "check that the target is the right tenant", **data)
    return ok(SECTION, "domains", f"default {default or '(none marked default)'}; verified: {listed}", **data)


__all__ = ["KINDS", "domains_of", "tenant_checks"]
