"""`run_doctor(target)`: sign in as a run would, then make every read at once, and turn the
answers into the checklist.

The sign-in comes first and is not part of the time budget: a device code waits for a
person to enter the code in a browser, for as long as the code lives (a sign-in that needs
no person still has `budget_seconds` of its own, so that nothing hangs). What the token alone
tells (who signed in, and each verb's permissions) is then known and always shown. Graph's
reads are bounded by `budget_seconds` (the issue asks for an answer in under 10 s even
against a slow Graph): a section whose reads have not answered by then says so, and the
whole is a failed check, not a wait."""

from __future__ import annotations

import asyncio
import time

import httpx

from batch.auth import Grants, token_grants
from batch.config import Target
from batch.doctor import extensions, service, tenant
from batch.doctor.identity import certificate_check, identity_check, permission_checks
from batch.doctor.reads import read_dependent, read_tenant
from batch.doctor.report import ACCESS, SECTIONS, Check, DoctorReport, fail, warn
from batch.errors import AuthError
from batch.graph import Observer
from batch.run.connection import Connection, open_connection

BUDGET_SECONDS = 8.0
MIN_READ_SECONDS = 2.0  # the reads get at least this, however long a (non-interactive) sign-in took
INTERACTIVE = ("device-code",)  # sign-in methods that may wait for a person: not bounded by the budget


async def run_doctor(target: Target, *, transport: httpx.AsyncBaseTransport | None = None,
                     budget_seconds: float = BUDGET_SECONDS, observer: Observer | None = None) -> DoctorReport:
    """Every check of `target`. A refused sign-in is one failed check (the rest cannot be
    asked); a configuration that names no tenant raises `ConfigError` as a run's would."""
    started = time.monotonic()
    checks: list[Check] = []
    try:
        async with open_connection(target, transport=transport, pacing=False, observer=observer) as connection:
            grants = await sign_in(connection, None if target.auth in INTERACTIVE else budget_seconds)
            if grants is None:
                checks.append(fail("identity", "sign-in", f"the identity platform did not answer within "
                                   f"{budget_seconds:g} s", "try again; if it persists, check the network path "
                                   f"to {target.authority_host} (run with -v to see each request)", stops=ACCESS))
            else:
                checks += await token_checks(connection, grants)
                # One budget for sign-in and reads together, except for a sign-in that waits for a person.
                left = budget_seconds if target.auth in INTERACTIVE else \
                    max(min(MIN_READ_SECONDS, budget_seconds), budget_seconds - (time.monotonic() - started))
                try:
                    async with asyncio.timeout(left):
                        await examine_tenant(connection, grants, checks)
                except TimeoutError:
                    checks += unanswered(checks, left)
    except AuthError as refused:
        checks.append(fail("identity", "sign-in", str(refused), refused_remedy(refused), stops=ACCESS))
    ordered = sorted(checks, key=lambda c: SECTIONS.index(c.section))  # stable: each section keeps its order
    return DoctorReport(target.label, tuple(ordered), time.monotonic() - started)


# A person declined the sign-in, or let the code expire (device code: RFC 8628 §3.5's
# authorization_declined and expired_token; AADSTS65004 declined consent, AADSTS70019 expired).
PERSON_REFUSED = frozenset({"authorization_declined", "expired_token", "65004", "70019"})


def refused_remedy(refused: AuthError) -> str:
    """What to do after a refused sign-in: a person who declined (or let the code expire) signs
    in again; otherwise the credentials the message names are at fault."""
    if {refused.error, refused.code} & PERSON_REFUSED:
        return "run `entra-batch doctor` again, then sign in and approve the request in the browser"
    return "fix the credentials named above, then run `entra-batch doctor` again"


async def sign_in(connection: Connection, bound: float | None) -> Grants | None:
    """Every token the connection will use, before any read (None: not within `bound`
    seconds); raises `AuthError` when one is refused."""
    try:
        async with asyncio.timeout(bound):
            for provider in connection.providers:
                await provider.token()
    except TimeoutError:
        return None
    return token_grants(await connection.providers[0].token())


async def token_checks(connection: Connection, grants: Grants) -> list[Check]:
    """What the token alone tells: who signed in, and each verb's permissions."""
    target = connection.target
    certificate = certificate_check(target)
    return [identity_check(grants, target.client_id, target.auth, target.sources.auth),
            *([certificate] if certificate else []), *await permission_checks(connection, target.domain)]


def unanswered(checks: list[Check], budget_seconds: float) -> list[Check]:
    """After the budget ran out: a line for each section that got no answer, and the failure."""
    seconds = f"{budget_seconds:g} s"
    lines = [warn(section, "not answered", f"Graph did not answer this section's reads within {seconds}")
             for section in SECTIONS if section not in ("identity", "service") and not any(
                 c.section == section for c in checks)]
    lines.append(fail("service", "answers", f"Graph did not answer every read within {seconds} (the sections "
                                            "marked 'not answered' were not checked)",
                      "try again; if it persists, check the network path to Graph and its status page "
                      "(run with -v to see each request)", stops=ACCESS))
    return lines


async def examine(connection: Connection, checks: list[Check]) -> None:
    """Every check of an open connection, appended to `checks` as it is made (so that what
    was found before a time-out is kept)."""
    grants = token_grants(await connection.providers[0].token())
    checks += await token_checks(connection, grants)
    await examine_tenant(connection, grants, checks)


async def examine_tenant(connection: Connection, grants: Grants, checks: list[Check]) -> None:
    """The checks that need Graph's answers, appended to `checks` as they are made."""
    target = connection.target
    client = connection.client
    reads, timer = await read_tenant(client)
    found, domain = tenant.tenant_checks(reads.organization, reads.domains, configured_domain=target.domain,
                                         tenant_id=target.tenant_id or grants.tenant_id)
    checks += found
    app_check, app = extensions.find_extensions_app(reads.applications, target.extensions_app_id)
    await read_dependent(timer, reads, domain=domain, extensions_app=app.object_id if app else None)
    checks.append(app_check)
    attributes = extensions.attributes_of(reads.extension_properties)
    checks.append(extensions.attributes_check(reads.extension_properties, attributes))
    checks += extensions.migration_checks(reads.listeners, attributes)
    checks.append(service.clock_check(reads.clock_offset, local=target.kind == "local"))
    checks.append(service.throttle_check(reads.all(), client.stats.throttled))
    checks.append(service.latency_check(reads))
    checks.append(service.deleted_filter_check(reads.deleted_by_identity))
    checks.append(service.count_check(reads.count))
