"""`run_doctor(target)`: sign in as a run would, make every read at once, and turn the
answers into the checklist. The whole is bounded by `budget_seconds` (the issue asks for an
answer in under 10 s even against a slow Graph): whatever has not answered by then is a
failed check saying so, not a wait."""

from __future__ import annotations

import asyncio
import time

import httpx

from batch.auth import token_grants
from batch.config import Target
from batch.doctor import extensions, service, tenant
from batch.doctor.identity import identity_check, permission_checks
from batch.doctor.reads import read_dependent, read_tenant
from batch.doctor.report import ACCESS, SECTIONS, Check, DoctorReport, fail
from batch.errors import AuthError
from batch.graph import Observer
from batch.run.connection import Connection, open_connection

BUDGET_SECONDS = 8.0


async def run_doctor(target: Target, *, transport: httpx.AsyncBaseTransport | None = None,
                     budget_seconds: float = BUDGET_SECONDS, observer: Observer | None = None) -> DoctorReport:
    """Every check of `target`. A refused sign-in is one failed check (the rest cannot be
    asked); a configuration that names no tenant raises `ConfigError` as a run's would."""
    started = time.monotonic()
    checks: list[Check] = []
    try:
        async with asyncio.timeout(budget_seconds):
            async with open_connection(target, transport=transport, pacing=False, observer=observer) as connection:
                await examine(connection, checks)
    except TimeoutError:
        checks.append(fail("service", "answers", f"Graph did not answer every read within {budget_seconds:.0f} s "
                                                 "(the checks above are those that were answered)",
                           "try again; if it persists, check the network path to Graph and its status page "
                           "(run with -v to see each request)", stops=ACCESS))
    except AuthError as refused:
        checks.append(fail("identity", "sign-in", str(refused), "fix the credentials named above, then run "
                                                                "`entra-batch doctor` again", stops=ACCESS))
    ordered = sorted(checks, key=lambda c: SECTIONS.index(c.section))  # stable: each section keeps its order
    return DoctorReport(target.label, tuple(ordered), time.monotonic() - started)


async def examine(connection: Connection, checks: list[Check]) -> None:
    """Every check of an open connection, appended to `checks` as it is made (so that what
    was found before a time-out is kept)."""
    target = connection.target
    grants = token_grants(await connection.providers[0].token())
    checks.append(identity_check(grants, target.client_id, target.auth))
    client = connection.client
    reads, timer = await read_tenant(client)
    found, domain = tenant.tenant_checks(reads.organization, reads.domains, configured_domain=target.domain,
                                         tenant_id=target.tenant_id or grants.tenant_id)
    checks += found
    app_check, app = extensions.find_extensions_app(reads.applications, target.extensions_app_id)
    await read_dependent(timer, reads, domain=domain, extensions_app=app.object_id if app else None)
    checks += await permission_checks(connection, domain)
    checks.append(app_check)
    attributes = extensions.attributes_of(reads.extension_properties)
    checks.append(extensions.attributes_check(reads.extension_properties, attributes))
    checks += extensions.migration_checks(reads.listeners, attributes)
    checks.append(service.clock_check(reads.clock_offset, local=target.kind == "local"))
    checks.append(service.throttle_check(reads.all(), client.stats.throttled))
    checks.append(service.latency_check(reads))
    checks.append(service.deleted_filter_check(reads.deleted_by_identity))
    checks.append(service.count_check(reads.count))
