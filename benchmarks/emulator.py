"""How fast the emulator serves, over a real loopback socket.

Starts `entra-batch emulator` (throttling off, no latency) as a separate process, then
measures, each over several rounds (medians quoted):
  - the HTTP ceiling: `GET /` (no auth, no database), the most a request can reach here;
  - `POST /users` creates of customers with an email identity, N in flight at once;
  - `GET /users?$top=999&$select=...` pages, followed by @odata.nextLink, one at a time.
Prints requests/s and the ratio to the ceiling measured in the same run.

    python benchmarks/emulator.py [--creates 2000] [--users 30000] [--concurrency 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batch.emulator import Store  # noqa: E402
from batch.emulator.directory import Directory  # noqa: E402


def start_server(db: Path, home: Path, settings: Sequence[str] = ("--no-throttle",)
                 ) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`entra-batch emulator` on a free port with `settings`; its `export` lines as a dict."""
    env = dict(os.environ, ENTRA_BATCH_HOME=str(home))
    proc = subprocess.Popen(
        [sys.executable, "-m", "batch", "emulator", "--port", "0", "--db", str(db), *settings],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT,
    )
    values: dict[str, str] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while "ENTRA_BATCH_TARGET" not in values and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("export "):
            name, _, value = line[7:].strip().partition("=")
            values[name] = value.strip("'")
    return proc, values


def seed_users(db: Path, count: int) -> None:
    store = Store(db)
    tenant = store.tenants()[0]
    directory = Directory(store, time.time)
    for i in range(count):
        directory.create(tenant, customer(tenant.default_domain, f"seed{i}"))
    store.close()


def customer(domain: str, name: str) -> dict:
    return {
        "displayName": f"Customer {name}",
        "identities": [{"signInType": "emailAddress", "issuer": domain, "issuerAssignedId": f"{name}@example.com"}],
        "passwordProfile": {"password": "Aa1!" + uuid.uuid4().hex[:12], "forceChangePasswordNextSignIn": False},
        "passwordPolicies": "DisablePasswordExpiration",
    }


async def token(client: httpx.AsyncClient, env: dict[str, str]) -> str:
    r = await client.post(f"{env['AZURE_AUTHORITY_HOST']}/{env['AZURE_TENANT_ID']}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": env["AZURE_CLIENT_ID"],
        "client_secret": env["AZURE_CLIENT_SECRET"], "scope": "https://graph.microsoft.com/.default"})
    r.raise_for_status()
    return r.json()["access_token"]


async def ceiling(client: httpx.AsyncClient, origin: str, n: int, concurrency: int) -> float:
    async def worker(count: int) -> None:
        for _ in range(count):
            (await client.get(origin + "/")).raise_for_status()
    start = time.perf_counter()
    await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    return (n // concurrency * concurrency) / (time.perf_counter() - start)


async def creates(client: httpx.AsyncClient, graph: str, headers: dict[str, str], n: int, concurrency: int,
                  round_no: int) -> float:
    async def worker(w: int) -> None:
        for i in range(n // concurrency):
            r = await client.post(graph + "/users", headers=headers,
                                  json=customer("contoso.onmicrosoft.com", f"r{round_no}w{w}n{i}"))
            if r.status_code != 201:
                raise RuntimeError(f"create failed: {r.status_code} {r.text[:200]}")
    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return (n // concurrency * concurrency) / (time.perf_counter() - start)


async def pages(client: httpx.AsyncClient, graph: str, headers: dict[str, str]) -> tuple[float, int]:
    url: str | None = graph + "/users?$top=999&$select=id,displayName,userPrincipalName,identities,accountEnabled,createdDateTime"
    count = n_pages = 0
    start = time.perf_counter()
    while url:
        r = await client.get(url, headers=headers)
        r.raise_for_status()
        body = r.json()
        count += len(body["value"])
        n_pages += 1
        url = body.get("@odata.nextLink")
    return n_pages / (time.perf_counter() - start), count


async def measure(env: dict[str, str], args: argparse.Namespace) -> None:
    origin, graph = env["AZURE_AUTHORITY_HOST"], env["ENTRA_BATCH_TARGET"]
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        headers = {"Authorization": f"Bearer {await token(client, env)}"}
        ceil, post, page, users = [], [], [], 0
        for r in range(args.rounds):
            ceil.append(await ceiling(client, origin, args.creates, args.concurrency))
            post.append(await creates(client, graph, headers, args.creates, args.concurrency, r))
            rate, users = await pages(client, graph, headers)
            page.append(rate)
    c, p, g = statistics.median(ceil), statistics.median(post), statistics.median(page)
    print(f"machine: {os.cpu_count()} cores; rounds: {args.rounds}; concurrency: {args.concurrency}")
    print(f"HTTP ceiling  GET /                    {c:8.0f} req/s  (median)")
    print(f"POST /users   customer create          {p:8.0f} req/s  = {p / c:.2f} x ceiling")
    print(f"GET /users    $top=999 pages           {g:8.1f} pages/s = {g * 999:8.0f} users/s over {users} users"
          f" ({g / c:.3f} x ceiling in requests)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--users", type=int, default=30000, help="users seeded before measuring pages")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        t0 = time.perf_counter()
        seed_users(db, args.users)
        print(f"seeded {args.users} users in {time.perf_counter() - t0:.1f} s")
        proc, env = start_server(db, Path(tmp))
        try:
            asyncio.run(measure(env, args))
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
