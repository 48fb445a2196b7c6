"""The service and large-run sections: the clock offset to Graph (its `Date` header), the
throttle headers seen on doctor's reads (GRAPH.md §9.3), the latency of a read, and the two
reads a large run depends on that differ between tenants: an identity filter on deleted
items (the lookups of delete, restore and purge by sign-in name, and of resume) and `$count`
with `ConsistencyLevel: eventual` (export's total; aad-advanced-queries.md, absent in B2C).
"""

from __future__ import annotations

from batch.doctor.reads import Reads
from batch.doctor.report import Check, ok, warn
from batch.graph import GraphResult

SERVICE, LARGE = "service", "large runs"
CLOCK_WARN_SECONDS = 60.0  # Retry-After dates, token lifetimes and client assertions (nbf/exp) go wrong beyond this
SLOW_READ_MS = 2000.0
THROTTLE_HEADERS = ("x-ms-throttle-limit-percentage", "x-ms-throttle-scope", "x-ms-throttle-information",
                    "retry-after", "x-ms-resource-unit")


def clock_check(offset: float | None, *, local: bool = False) -> Check:
    if offset is None and local:
        return ok(SERVICE, "clock", "not measured: the built-in emulator runs in this process, on this machine's clock")
    if offset is None:
        return warn(SERVICE, "clock", "Graph's answers carried no Date header: the clock offset is unknown")
    direction = "ahead of" if offset >= 0 else "behind"
    said = f"Graph's clock is about {abs(offset):.1f} s {direction} this machine's"
    if abs(offset) > CLOCK_WARN_SECONDS:
        return warn(SERVICE, "clock", said, "set this machine's clock right (NTP): waits that Graph gives as dates, "
                                            "and certificate sign-ins, depend on it", offset_seconds=round(offset, 1))
    return ok(SERVICE, "clock", said + " (Graph's Date header has whole seconds)", offset_seconds=round(offset, 1))


def throttle_check(results: list[GraphResult], throttled: int) -> Check:
    seen: dict[str, list[str]] = {}
    for result in results:
        for name in THROTTLE_HEADERS:
            if name in result.headers:
                seen.setdefault(name, []).append(result.headers[name])
    percentages = [float(v) for v in seen.get("x-ms-throttle-limit-percentage", []) if _number(v)]
    units = sum(int(v) for v in seen.get("x-ms-resource-unit", []) if v.isdigit())
    data = {"headers": {k: sorted(set(v)) for k, v in seen.items()}, "throttled": throttled,
            "resource_units": units}
    if throttled or percentages:
        most = f"; x-ms-throttle-limit-percentage up to {max(percentages):.2f}" if percentages else ""
        return warn(SERVICE, "throttling", f"{throttled} of doctor's reads were throttled (429){most}: something else "
                                           "is using this app's or tenant's quota now",
                    "a run paces itself below the limits; run it when the other load is gone, or with "
                    "--priority low so that interactive work goes first", **data)
    names = ", ".join(sorted(seen)) or "none"
    return ok(SERVICE, "throttling", f"no throttling; headers seen: {names} ({units} resource units for "
                                     f"{len(results)} reads)", **data)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def latency_check(reads: Reads) -> Check:
    median = reads.latency_ms
    if median is None:
        return warn(SERVICE, "latency", "no read was answered")
    said = f"median {median:.0f} ms over {len(reads.latencies_ms)} reads"
    if median > SLOW_READ_MS:
        return warn(SERVICE, "latency", said + ": slow", "a run keeps more batches in flight to make up for it "
                                                         "(--concurrency); check the network path to Graph",
                    median_ms=round(median, 1))
    return ok(SERVICE, "latency", said, median_ms=round(median, 1), samples_ms=[round(x, 1) for x in reads.latencies_ms])


def deleted_filter_check(result: GraphResult | None) -> Check:
    name = "identity filter on deleted items"
    if result is None:
        return warn(LARGE, name, "not tried: the tenant's domain is unknown")
    if result.ok:
        return ok(LARGE, name, "works (GET /directory/deletedItems/microsoft.graph.user?$filter=identities/any(…))")
    if result.status in (401, 403):
        return warn(LARGE, name, "not tried: the token cannot list deleted users (see restore and purge above)")
    return warn(LARGE, name, f"refused by this tenant (HTTP {result.status} {result.error_code or ''}: "
                             f"{result.error_message or ''})".replace(" : )", ")"),
                "delete, restore and purge cannot find a deleted customer by sign-in name here: give their "
                "files an objectId column (export --deleted writes one)", status=result.status)


def count_check(result: GraphResult) -> Check:
    name = "$count with ConsistencyLevel: eventual"
    if result.ok:
        total = str(result.body).strip() if isinstance(result.body, (str, int)) else "?"
        return ok(LARGE, name, f"works ({total} users)", users=int(total) if total.isdigit() else None)
    if result.status in (401, 403):
        return warn(LARGE, name, "not tried: the token cannot read users (see export above)")
    return warn(LARGE, name, f"refused by this tenant (HTTP {result.status} {result.error_code or ''})",
                "export shows no total and no ETA, and refuses filters that need advanced queries "
                "(Azure AD B2C has none)", status=result.status)


__all__ = ["clock_check", "count_check", "deleted_filter_check", "latency_check", "throttle_check"]
