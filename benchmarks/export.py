"""Export speed and memory: sequential paging against UPN partitions, on one directory.

    python benchmarks/export.py                      # 1,000,000 customers, 300 ms per page
    python benchmarks/export.py --customers 100000 --latency-ms 300 --rounds 3

Seeds a directory of N customers (once; reused from --db when it already holds them), serves
it with `entra-batch emulator` (a separate process, Graph's default quotas, every request
taking --latency-ms), then runs `entra-batch export` as a separate process, sequentially and
partitioned, and prints customers/s, the client's peak RSS and the CPU time of the client and of
the emulator per 1,000 customers for each, and their ratio. Both files are checked: every
seeded customer once, the same set in both. As a reference measured in the same run, a bare
listing (httpx following @odata.nextLink with the export's $select, parsing each page and
nothing else, in this process) shows what one listing can reach on this machine with this
emulator: sequential export is read against it as well as against page size / latency.

The customers are written straight into the emulator's store, as its directory would write
them (a million `POST /users` would take the benchmark an hour, and creating is measured by
benchmarks/create.py).

Measured (2 cores, nothing else running but my pacing traces; commit 396287b; `--customers
1000000 --rounds 3 --db /tmp/exb/dir.db`), medians of 3:

    sequential :  2,866 customers/s, peak RSS  77.0 MB, CPU per 1,000 customers: client 0.025 s, emulator 0.028 s
    partitioned: 18,527 customers/s, peak RSS 122.2 MB, CPU per 1,000 customers: client 0.024 s, emulator 0.050 s
    partitioned / sequential: 6.5x (rounds: 6.5x, 6.5x, 6.6x)
    sequential: 0.86 of page size / latency (3,330/s), 0.97 of a bare listing (2,950/s, 0.89)

The bare listing stays under page size / latency because the emulator spends 21-34 ms of CPU
on each page of 1,000 on top of its 300 ms; the partitioned export is bound by the two cores
the client and the emulator share (0.074 CPU-seconds per 1,000 customers together: ~27,000/s
at best here). Under load (three other benchmarks on the same cores, an earlier session)
partitioned read 3.5x sequential.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batch.emulator import Store  # noqa: E402
from batch.emulator.store import IdentityRow  # noqa: E402
from batch.export.fields import COUNTED_COLUMNS, choose_columns  # noqa: E402
from benchmarks.emulator import start_server, token  # noqa: E402

LOCATIONS = ["US", "FR", "DE", "GB", "JP", "BR", "IN", "NL", "ES", "IT", "CA", "AU"]


def seed(db: Path, count: int, *, seed_value: int = 7) -> None:
    """N customers in the store: 90 % email and 10 % user-name sign-in, 5 % blocked, created
    over the last two years, spread over a dozen usage locations."""
    store = Store(db)
    try:
        tenant = store.tenants()[0]
        have = store.live_user_count(tenant.id)
        if have == count:
            print(f"directory: {db} already holds {count:,} customers", flush=True)
            return
        if have:
            raise SystemExit(f"{db} holds {have:,} customers, not {count:,}; choose another --db")
        rng = random.Random(seed_value)
        start = datetime.now(UTC) - timedelta(days=730)
        began = time.monotonic()
        chunk = 20_000
        for base in range(0, count, chunk):
            with store.transaction() as connection:
                for i in range(base, min(count, base + chunk)):
                    user_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                    created = (start + timedelta(seconds=i * 730 * 86400 // count)).strftime("%Y-%m-%dT%H:%M:%SZ")
                    upn = f"{user_id}@{tenant.default_domain}"
                    user_name = i % 10 == 0
                    sign_in = f"user{i}" if user_name else f"customer{i}@example.com"
                    doc = {
                        "id": user_id, "displayName": f"Customer {i}", "givenName": "Customer", "surname": str(i),
                        "userPrincipalName": upn, "accountEnabled": i % 20 != 0, "mailNickname": user_id[:8],
                        "userType": "Member", "businessPhones": [], "usageLocation": rng.choice(LOCATIONS),
                        "mail": None if user_name else sign_in, "createdDateTime": created,
                        "creationType": "LocalAccount", "passwordPolicies": "DisablePasswordExpiration",
                        "identities": [
                            {"signInType": "userName" if user_name else "emailAddress", "issuer": tenant.default_domain,
                             "issuerAssignedId": sign_in},
                            {"signInType": "userPrincipalName", "issuer": tenant.default_domain, "issuerAssignedId": upn},
                        ],
                    }
                    store.write_user(connection, tenant.id, doc, [IdentityRow(
                        "userName" if user_name else "emailAddress", tenant.default_domain, sign_in)])
            done = min(count, base + chunk)
            print(f"\rseeding: {done:,}/{count:,} ({done / (time.monotonic() - began):,.0f}/s)", end="", flush=True)
        print(flush=True)
    finally:
        store.close()


def serve(db: Path, home: Path, latency_ms: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The emulator with Graph's default quotas, every request taking about `latency_ms`."""
    proc, values = start_server(db, home, ["--latency-ms", str(latency_ms), "--latency-sigma", "0.1", "--seed", "1"])
    if "ENTRA_BATCH_TARGET" not in values:
        proc.kill()
        raise SystemExit("the emulator did not start")
    return proc, values


def cpu_seconds(pid: int) -> float:
    """A running process's CPU time so far (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def export(out: Path, env: dict[str, str], *extra: str) -> tuple[float, float, float, dict]:
    """Run `entra-batch export`; returns (seconds, peak RSS in MB, CPU seconds, summary.json)."""
    run_dir = out.with_suffix(".run")
    args = [sys.executable, "-m", "batch", "export", "--out", str(out), "--out-dir", str(run_dir), "--quiet", *extra]
    began = time.monotonic()
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - began
    cpu = usage.ru_utime + usage.ru_stime
    stderr = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"export failed ({status}): {stderr}")
    summary = json.loads((run_dir / "summary.json").read_text())
    return seconds, usage.ru_maxrss / 1024, cpu, summary


async def bare_listing(env: dict[str, str]) -> tuple[float, int]:
    """One listing with nothing done with its pages: (seconds, customers)."""
    import httpx

    select = choose_columns(None, extension_names=[], extensions_app_hex=None).including(COUNTED_COLUMNS).select
    async with httpx.AsyncClient(timeout=120) as client:
        headers = {"Authorization": f"Bearer {await token(client, env)}"}
        url: str | None = f"{env['ENTRA_BATCH_TARGET']}/users?$top=999&$select={','.join(select)}"
        count = 0
        began = time.monotonic()
        while url:
            answer = await client.get(url, headers=headers)
            answer.raise_for_status()
            body = answer.json()
            count += len(body["value"])
            url = body.get("@odata.nextLink")
        return time.monotonic() - began, count


def ids_of(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return [row["id"] for row in csv.DictReader(handle)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--latency-ms", type=float, default=300.0, help="service time of every request (default 300)")
    parser.add_argument("--rounds", type=int, default=1, help="exports of each kind (medians are printed)")
    parser.add_argument("--concurrency", type=int, default=16, help="partitions fetched at once (default 16)")
    parser.add_argument("--db", type=Path, help="directory to seed or reuse (default: a file under /tmp by size)")
    args = parser.parse_args()

    db = args.db or Path(tempfile.gettempdir()) / f"entra-batch-export-bench-{args.customers}.db"
    seed(db, args.customers)
    work = Path(tempfile.mkdtemp(prefix="export-bench-"))
    server, exports = serve(db, work / "server-home", args.latency_ms)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ENTRA_BATCH_"))}
    env.update(exports)
    env["ENTRA_BATCH_HOME"] = str(work / "client-home")
    try:
        results: dict[str, list[tuple[float, float, float, float]]] = {"sequential": [], "partitioned": []}
        files: dict[str, Path] = {}
        bare: list[float] = []
        for round_ in range(args.rounds):
            seconds, listed = asyncio.run(bare_listing(env))
            if listed != args.customers:
                raise SystemExit(f"the bare listing listed {listed:,} customers, not {args.customers:,}")
            bare.append(seconds)
            print(f"round {round_ + 1} bare listing: {args.customers / seconds:>9,.0f} customers/s ({seconds:6.1f} s)",
                  flush=True)
            for mode, extra in (("sequential", ["--sequential"]),
                                ("partitioned", ["--concurrency", str(args.concurrency)])):
                out = work / f"{mode}-{round_}.csv"
                server_before = cpu_seconds(server.pid)
                seconds, rss, cpu, summary = export(out, env, *extra)
                server_cpu = cpu_seconds(server.pid) - server_before
                if summary["customers"] != args.customers:
                    raise SystemExit(f"{mode}: exported {summary['customers']:,} customers, not {args.customers:,}")
                results[mode].append((seconds, rss, cpu, server_cpu))
                print(f"round {round_ + 1} {mode:>11}: {args.customers / seconds:>9,.0f} customers/s "
                      f"({seconds:6.1f} s, {summary['pages']:,} pages, {summary['requests']:,} requests, "
                      f"{summary['throttled_429']} throttled), peak RSS {rss:6.1f} MB, CPU per 1,000 customers: "
                      f"client {1000 * cpu / args.customers:.3f} s, emulator {1000 * server_cpu / args.customers:.3f} s",
                      flush=True)
                if mode in files:
                    out.unlink()
                else:
                    files[mode] = out
        sequential, partitioned = ids_of(files["sequential"]), ids_of(files["partitioned"])
        complete = len(set(sequential)) == len(sequential) == len(partitioned) and set(sequential) == set(partitioned)
    finally:
        server.terminate()
        server.wait(timeout=30)

    def median(mode: str, index: int) -> float:
        return statistics.median(r[index] for r in results[mode])

    seq_rate = args.customers / median("sequential", 0)
    part_rate = args.customers / median("partitioned", 0)
    print()
    print(f"export of {args.customers:,} customers, {args.latency_ms:.0f} ms per page, medians of {args.rounds} round(s)")
    per_k = 1000 / args.customers
    for mode, rate, more in (("sequential", seq_rate, ""), ("partitioned", part_rate, f" ({args.concurrency} at a time)")):
        print(f"  {mode:<11}: {rate:>9,.0f} customers/s, peak RSS {median(mode, 1):6.1f} MB, CPU per 1,000 "
              f"customers: client {per_k * median(mode, 2):.3f} s, emulator {per_k * median(mode, 3):.3f} s{more}")
    print(f"  partitioned / sequential: {part_rate / seq_rate:.1f}x")
    print(f"  both files list every customer once, the same set: {'yes' if complete else 'NO'}")
    ceiling = 999 / (args.latency_ms / 1000)
    bare_rate = args.customers / statistics.median(bare)
    print(f"  ceiling of one sequential listing at this latency: {ceiling:,.0f} customers/s "
          f"(sequential reaches {seq_rate / ceiling:.2f} of it)")
    print(f"  a bare listing in the same run (pages parsed, nothing else): {bare_rate:,.0f} customers/s = "
          f"{bare_rate / ceiling:.2f} of that ceiling (sequential reaches {seq_rate / bare_rate:.2f} of it)")
    if not complete:
        sys.exit(1)


if __name__ == "__main__":
    main()
