"""The emulator at scale, in process: whether a create costs the same in a directory of N
customers as in an empty one, and what a lookup costs at N.

A directory of N customers (email identity, mail) is written straight into the store, then
N more are created through the emulator's HTTP layer in process (`POST /$batch` of 20
creates, as `entra-batch create` sends them; throttling off), one batch at a time. Printed:
the cost per created row in the first and the last tenth of the creates and their ratio
(flat = near 1), then the median time of a lookup by object id, by UPN, by sign-in name
(`identities/any`) and by mail (`$filter=mail eq`) with 2N customers in the directory.
Each figure is the median of --repeat runs, each on a fresh directory.

    python benchmarks/emulator_scale.py [--rows 100000] [--creates N] [--lookups 200] [--repeat 3]
    python benchmarks/emulator_scale.py --quick          # 10,000 rows

--creates measures fewer creates than --rows (a sample for a slow version of the emulator).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batch.emulator import EmulatorSettings, Quotas, Store, create_app  # noqa: E402
from batch.emulator.inprocess import EmulatorTransport  # noqa: E402
from batch.emulator.records import IdentityRow  # noqa: E402

BASE = "http://emulator.local"
PASSWORD = "Xy12345678!"
BATCH = 20


def seed(store: Store, rows: int) -> list[dict[str, Any]]:
    """`rows` customers written in one transaction, as a create would leave them."""
    tenant = store.tenants()[0]
    domain = tenant.default_domain
    made = []
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with store.transaction() as db:
        for i in range(rows):
            user_id = str(uuid.uuid4())
            email = f"seed.{i}.{user_id[:8]}@example.com"
            upn = f"{user_id}@{domain}"
            doc = {"id": user_id, "displayName": f"Seed {i}", "mail": email, "userPrincipalName": upn,
                   "accountEnabled": True, "mailNickname": user_id.replace("-", "")[:32], "userType": "Member",
                   "businessPhones": [], "createdDateTime": stamp, "creationType": "LocalAccount",
                   "passwordPolicies": "DisablePasswordExpiration", "proxyAddresses": [f"SMTP:{email}"],
                   "identities": [{"signInType": "emailAddress", "issuer": domain, "issuerAssignedId": email},
                                  {"signInType": "userPrincipalName", "issuer": domain, "issuerAssignedId": upn}]}
            store.write_user(db, tenant.id, doc, [IdentityRow("emailAddress", domain, email)])
            made.append(doc)
    return made


def create_body(n: int, domain: str) -> dict[str, Any]:
    email = f"new.{n}.{uuid.uuid4().hex[:8]}@example.com"
    return {"displayName": f"New {n}", "mail": email,
            "identities": [{"signInType": "emailAddress", "issuer": domain, "issuerAssignedId": email}],
            "passwordProfile": {"password": PASSWORD, "forceChangePasswordNextSignIn": False},
            "passwordPolicies": "DisablePasswordExpiration"}


async def token(client: httpx.AsyncClient, store: Store) -> dict[str, str]:
    app = store.default_app()
    response = await client.post(f"/{app.tenant_id}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": app.client_id, "client_secret": app.secret or "",
        "scope": "https://graph.microsoft.com/.default"})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def create_all(client: httpx.AsyncClient, auth: dict[str, str], count: int, domain: str) -> list[float]:
    """Create `count` customers by batches of 20; the seconds per row of each tenth."""
    tenths: list[float] = []
    bounds = [round(count * k / 10) for k in range(11)]
    started, done = time.perf_counter(), 0
    for tenth in range(10):
        while done < bounds[tenth + 1]:
            size = min(BATCH, bounds[tenth + 1] - done)
            requests = [{"id": str(k), "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"},
                         "body": create_body(done + k, domain)} for k in range(size)]
            response = await client.post("/v1.0/$batch", json={"requests": requests}, headers=auth)
            answers = response.json()["responses"]
            assert all(a["status"] == 201 for a in answers), json.dumps(answers)[:500]
            done += size
        now = time.perf_counter()
        tenths.append((now - started) / max(1, bounds[tenth + 1] - bounds[tenth]))
        started = now
    return tenths


async def lookups(client: httpx.AsyncClient, auth: dict[str, str], users: list[dict[str, Any]], domain: str
                  ) -> dict[str, float]:
    """The median milliseconds of one lookup of each kind."""
    def by_filter(text: str) -> str:
        return "/v1.0/users?$filter=" + quote(text, safe="")

    kinds = {
        "object id": lambda u: f"/v1.0/users/{u['id']}",
        "UPN": lambda u: f"/v1.0/users/{quote(u['userPrincipalName'], safe='@')}",
        "sign-in name": lambda u: by_filter(f"identities/any(c:c/issuerAssignedId eq '{u['mail']}'"
                                            f" and c/issuer eq '{domain}')"),
        "mail": lambda u: by_filter(f"mail eq '{u['mail']}'"),
    }
    out = {}
    for name, url in kinds.items():
        times = []
        for user in users:
            started = time.perf_counter()
            response = await client.get(url(user), headers=auth)
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            if "$filter" in url(user):
                assert len(response.json()["value"]) == 1
        out[name] = statistics.median(times) * 1000
    return out


async def one_run(rows: int, creates: int, lookup_count: int, folder: Path) -> tuple[list[float], dict[str, float], float]:
    store = Store(folder / "emulator.db")
    seeding = time.perf_counter()
    users = seed(store, rows)
    seeded = time.perf_counter() - seeding
    domain = store.tenants()[0].default_domain
    app = create_app(store, EmulatorSettings(quotas=Quotas(enabled=False)))
    async with httpx.AsyncClient(transport=EmulatorTransport(app), base_url=BASE, timeout=None) as client:
        auth = await token(client, store)
        tenths = await create_all(client, auth, creates, domain)
        sample = random.Random(7).sample(users, min(lookup_count, len(users)))
        looked = await lookups(client, auth, sample, domain)
    store.close()
    return tenths, looked, seeded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="customers in the directory, and to create")
    parser.add_argument("--creates", type=int, help="how many to create (default: --rows)")
    parser.add_argument("--lookups", type=int, default=200, help="lookups of each kind")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10,000 rows")
    args = parser.parse_args()
    rows = 10_000 if args.quick else args.rows
    creates = args.creates or rows
    print(f"emulator at scale, in process: a directory of {rows:,} customers, {creates:,} creates by $batch of "
          f"{BATCH}, {args.lookups} lookups of each kind; medians of {args.repeat} runs; code: {ROOT}")
    firsts, lasts, ratios, seeds, looked_runs = [], [], [], [], []
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory() as name:
            tenths, looked, seeded = asyncio.run(one_run(rows, creates, args.lookups, Path(name)))
        firsts.append(tenths[0] * 1000)
        lasts.append(tenths[-1] * 1000)
        ratios.append(tenths[-1] / tenths[0])
        seeds.append(seeded)
        looked_runs.append(looked)
        print(f"  run {run + 1}: create {tenths[0] * 1000:.3f} ms/row in the first tenth, {tenths[-1] * 1000:.3f} in "
              f"the last (x{tenths[-1] / tenths[0]:.2f}); lookups " +
              ", ".join(f"{k} {v:.3f} ms" for k, v in looked.items()) + f"; seeded in {seeded:.1f} s", flush=True)
    median = statistics.median
    print(f"create: first tenth {median(firsts):.3f} ms/row, last tenth {median(lasts):.3f} ms/row, "
          f"ratio {median(ratios):.2f} (flat = 1)")
    for kind in looked_runs[0]:
        print(f"lookup by {kind:12s} at {rows + creates:,} customers: {median(r[kind] for r in looked_runs):8.3f} ms")


if __name__ == "__main__":
    main()
