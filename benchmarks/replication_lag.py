"""What replication lag costs the emulator, in process (no socket, throttling off).

For each lag (0 = off), on a fresh in-memory directory: N customer creates (8 in flight),
then N/4 lookups of a created customer by its email identity (entra-batch's resume lookup),
then every user listed in pages of 999. With a lag, the writes of the last `lag` ms are held
as pending versions and every read overlays them; with 60 s, every create of the run is.

    python benchmarks/replication_lag.py [--creates 2000] [--lags 0,2000,60000] [--rounds 3]

Prints the median of each figure over the rounds (the lags take turns within a round, so
that a busy moment of the machine does not fall on one lag only).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batch.emulator import EmulatorSettings, Quotas, Store, create_app  # noqa: E402
from batch.emulator.inprocess import EmulatorTransport  # noqa: E402

DOMAIN = "contoso.onmicrosoft.com"


def customer(email: str) -> dict[str, object]:
    return {"displayName": email, "mail": email,
            "identities": [{"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": email}],
            "passwordProfile": {"password": "Xy12345678!", "forceChangePasswordNextSignIn": False},
            "passwordPolicies": "DisablePasswordExpiration"}


async def measure(lag_ms: float, creates: int) -> dict[str, float]:
    store = Store(":memory:")
    app = create_app(store, EmulatorSettings(quotas=Quotas(enabled=False), replication_lag_ms=lag_ms, seed=1))
    default = store.default_app()
    async with httpx.AsyncClient(transport=EmulatorTransport(app), base_url="http://emulator") as client:
        token = (await client.post(f"/{default.tenant_id}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": default.client_id, "client_secret": default.secret,
            "scope": "https://graph.microsoft.com/.default"})).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        emails = [f"bench{i}@example.com" for i in range(creates)]

        async def create(chunk: list[str]) -> None:
            for email in chunk:
                response = await client.post("/v1.0/users", json=customer(email), headers=headers)
                assert response.status_code == 201, response.text

        start = time.perf_counter()
        await asyncio.gather(*(create(emails[w::8]) for w in range(8)))
        create_rate = creates / (time.perf_counter() - start)

        lookups = random.Random(2).sample(emails, creates // 4)
        start = time.perf_counter()
        for email in lookups:
            query = f"identities/any(c:c/issuerAssignedId eq '{email}' and c/issuer eq '{DOMAIN}')"
            response = await client.get("/v1.0/users", params={"$filter": query}, headers=headers)
            assert response.status_code == 200
        lookup_rate = len(lookups) / (time.perf_counter() - start)

        url: str | None = "/v1.0/users?$top=999"
        listed = pages = 0
        start = time.perf_counter()
        while url:
            body = (await client.get(url, headers=headers)).json()
            listed, pages, url = listed + len(body["value"]), pages + 1, body.get("@odata.nextLink")
        page_rate = pages / (time.perf_counter() - start)
        held = store._one("SELECT COUNT(*) AS n FROM pending_users WHERE visible_at > ?", (time.time(),))
    store.close()
    return {"creates/s": create_rate, "lookups/s": lookup_rate, "pages/s": page_rate, "listed": listed,
            "still pending": held["n"] if held else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--lags", default="0,2000,60000", help="lags in ms, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    lags = [float(x) for x in args.lags.split(",")]
    results: dict[float, list[dict[str, float]]] = {lag: [] for lag in lags}
    for _ in range(args.rounds):
        for lag in lags:
            results[lag].append(asyncio.run(measure(lag, args.creates)))
    for lag, rounds in results.items():
        medians = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
        print(f"lag {lag:7.0f} ms: " + ", ".join(f"{k} {v:.0f}" for k, v in medians.items()))


if __name__ == "__main__":
    main()
