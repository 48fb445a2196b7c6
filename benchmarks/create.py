"""Throughput of `create`.

Part 1, the tool's own speed: N rows created on the in-process emulator with throttling off,
no latency and the client's pacer off, at --batch-size 20 and 1 (what the engine, client,
journal and emulator cost on this machine).

Part 2, the throttling ceiling: the emulator served on loopback with a write quota and a
latency the tool is not told. Prints, side by side in one run, the tool's rows/s, a naive
sequential loop's rows/s (one POST after another, sleeping Retry-After on 429), the ceiling
the quota allows over the same time, the ratios, and the share of 429 answers. The naive loop
always runs past the quota's burst, so that it meets the throttling it is compared under.

    python benchmarks/create.py [--rows 10000] [--ceiling-rows 2000] [--write-quota 200/5] [--latency-ms 150]
    python benchmarks/create.py --skip-part1 --ceiling-rows 200 --write-quota 60/4 --latency-ms 0
                                 (a small quota, reached in seconds: how close the pacer gets to it)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "emulator"))

from benchmarks.verbs import run  # noqa: E402  (one verb run in process, as benchmarks/verbs.py does it)


def generate(path: Path, n: int, prefix: str) -> Path:
    subprocess.run([sys.executable, str(ROOT / "sample_data" / "generate.py"), str(n), "--out", str(path),
                    "--prefix", prefix], check=True)
    return path


def part1(rows: int, tmp: Path) -> None:
    source = generate(tmp / "p1.csv", rows, "p")
    for batch_size in (20, 1):
        os.environ["ENTRA_BATCH_HOME"] = str(tmp / f"home-{batch_size}")
        elapsed, summary = run("create", source, tmp / f"run-{batch_size}", batch_size)
        created = summary["counts"]["created"]
        print(f"in process, no throttling, --batch-size {batch_size:2d}: {created} created in {elapsed:6.1f} s"
              f" = {created / elapsed:7.1f} rows/s ({summary['requests']} HTTP requests)")


async def naive_loop(emulator, source: Path, limit: int) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """What a PowerShell-style loop does: one create after another, Retry-After honoured."""
    import csv

    async with httpx.AsyncClient(verify=emulator.ssl_context(), timeout=60) as client:
        token = (await client.post(f"{emulator.authority}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": emulator.client_id,
            "client_secret": emulator.client_secret, "scope": "https://graph.microsoft.com/.default"})).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        created = 0
        started = time.perf_counter()
        with source.open(newline="", encoding="utf-8") as handle:
            for n, row in enumerate(csv.DictReader(handle)):
                if n >= limit:
                    break
                body = {"displayName": row["displayName"] or "x",
                        "identities": [{"signInType": row["signInType"], "issuer": "contoso.onmicrosoft.com",
                                        "issuerAssignedId": row["signInName"]}],
                        "passwordProfile": {"password": "Naive-Loop-1234!", "forceChangePasswordNextSignIn": True},
                        "passwordPolicies": "DisablePasswordExpiration"}
                while True:
                    response = await client.post(f"{emulator.graph_url}/users", json=body, headers=headers)
                    if response.status_code == 429:
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                        continue
                    created += response.status_code == 201
                    break
        return created, time.perf_counter() - started


def part2(rows: int, quota: str, latency: float, tmp: Path) -> None:
    from server_process import running_emulator

    amount, seconds = (float(x) for x in quota.split("/"))
    source = generate(tmp / "p2.csv", rows, "q")
    args = ["--write-quota", quota, "--latency-ms", str(latency)]
    with running_emulator(tmp / "emu-tool", extra_args=args) as emulator:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ENTRA_BATCH_"))}
        env.update(emulator.exports)
        env["ENTRA_BATCH_HOME"] = str(tmp / "client")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "batch", "create", str(source), "--out-dir", str(tmp / "run2"),
                               "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if done.returncode not in (0, 1):
            raise SystemExit(done.stderr)
        summary = json.loads((tmp / "run2" / "summary.json").read_text())
    created = summary["counts"]["created"]
    ceiling = (amount + amount / seconds * elapsed) / elapsed
    tool = created / elapsed
    naive_rows = max(50, min(rows // 10, 300), int(amount) + 50)  # past the burst, into the throttling
    with running_emulator(tmp / "emu-naive", extra_args=args) as emulator:
        naive_created, naive_elapsed = asyncio.run(naive_loop(emulator, source, naive_rows))
    naive = naive_created / naive_elapsed
    # Its own ceiling: over a shorter time the burst weighs more.
    naive_ceiling = (amount + amount / seconds * naive_elapsed) / naive_elapsed
    print(f"served on loopback, write quota {quota} s, latency {latency:g} ms (not told to the tool):")
    print(f"  ceiling over {elapsed:.1f} s (burst {amount:g} + {amount / seconds:g}/s): {ceiling:7.1f} rows/s")
    print(f"  entra-batch create   {created:5d} rows in {elapsed:6.1f} s = {tool:7.1f} rows/s"
          f" = {tool / ceiling:5.1%} of the ceiling; 429s: {summary['throttled_429']} of {summary['graph_calls']}"
          f" calls ({summary['throttled_429'] / max(1, summary['graph_calls']):.1%})")
    print(f"  naive sequential     {naive_created:5d} rows in {naive_elapsed:6.1f} s = {naive:7.1f} rows/s"
          f" = {naive / naive_ceiling:5.1%} of the ceiling over its {naive_elapsed:.1f} s ({naive_ceiling:.1f} rows/s);"
          f" entra-batch is {tool / naive:.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--ceiling-rows", type=int, default=2000)
    parser.add_argument("--write-quota", default="200/5")
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--skip-part1", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_part1:
            part1(args.rows, Path(tmp))
        part2(args.ceiling_rows, args.write_quota, args.latency_ms, Path(tmp))


if __name__ == "__main__":
    main()
