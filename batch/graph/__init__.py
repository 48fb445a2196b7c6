"""The client side of Microsoft Graph: `GraphClient` (requests, $batch, paging), the pacer
that keeps a run below Graph's throttling limits, and the retry policy.
See each module's docstring; `batch.auth` provides the tokens."""

from batch.graph.client import ClientStats, GraphCall, GraphClient, GraphResult
from batch.graph.pacing import (
    AppPool,
    Pacer,
    PacingSettings,
    PoolMember,
    Quota,
    TenantBudget,
    request_cost,
)
from batch.graph.retry import RETRYABLE_STATUS, RetryPolicy, parse_retry_after

__all__ = [
    "AppPool", "ClientStats", "GraphCall", "GraphClient", "GraphResult", "Pacer", "PacingSettings", "PoolMember",
    "Quota", "RETRYABLE_STATUS", "RetryPolicy", "TenantBudget", "parse_retry_after", "request_cost",
]
