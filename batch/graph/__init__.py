"""The client side of Microsoft Graph. The rest of entra-batch imports its names from here.

- `client.py`: `GraphClient` (one request, and the entry points for $batch and listings);
  `session.py` the plumbing every request shares; `answers.py` what an answer means;
  `batching.py` the `$batch` machine; `paging.py` listings; `model.py` the values
  (`GraphCall`, `GraphResult`, `ClientStats`).
- `pacing.py`: the `Pacer` that keeps a run below Graph's throttling limits; `bucket.py` its
  adaptive token bucket; `quotas.py` the documented quotas and what a request costs;
  `pool.py` several app registrations as one `AppPool`.
- `retry.py`: what is retried, `Retry-After`, the deadline-bounded policy.
- `observe.py`: what `--verbose` shows, one `Exchange` per request, handed to an observer.
- `transport.py`: TLS settings and the `TokenProvider` protocol, which `batch.auth` implements.
"""

from batch.graph.client import GraphClient
from batch.graph.model import ClientStats, GraphCall, GraphResult, Hold
from batch.graph.observe import Exchange, ObservedTokenProvider, Observer
from batch.graph.pacing import Pacer, TenantBudget
from batch.graph.pool import AppPool, PoolMember
from batch.graph.quotas import PacingSettings, Quota, request_cost
from batch.graph.retry import RETRYABLE_STATUS, RetryPolicy, parse_retry_after

__all__ = [
    "RETRYABLE_STATUS",
    "AppPool",
    "ClientStats",
    "Exchange",
    "GraphCall",
    "GraphClient",
    "GraphResult",
    "Hold",
    "ObservedTokenProvider",
    "Observer",
    "Pacer",
    "PacingSettings",
    "PoolMember",
    "Quota",
    "RetryPolicy",
    "TenantBudget",
    "parse_retry_after",
    "request_cost",
]
