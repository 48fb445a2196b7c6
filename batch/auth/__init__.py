"""Access tokens for Graph (client credentials, GRAPH.md §10 and §14), and the permission
preflight. Callers import these names from `batch.auth`.

- `providers.py`: `RefreshingProvider` (cache, refresh 5 minutes before expiry, retries of
  the token endpoint up to a deadline), `ClientCredentialsProvider` (plain httpx: the
  in-process emulator and http loopback targets) and `StaticTokenProvider` (a fixed token);
- `msal_provider.py`: `MsalTokenProvider`, a real tenant through msal (secret or certificate),
  over a requests session of ours that trusts the target's CA file on every request;
- `certificate.py`: `load_certificate`, a PEM file → msal's credential;
- `errors.py`: what the identity platform's refusals (and an unverified TLS certificate) mean,
  as `AuthError`s naming the setting used (`batch.config.Sources`) and the remedy;
- `permissions.py`: `token_grants` (an app's roles, or a person's scopes and directory roles)
  and `missing_for` for the preflight (`token_roles`, `missing_permissions`: the app-only forms).

The `TokenProvider` protocol lives in `batch.graph.transport`, so that the Graph client never
imports this package.
"""

from batch.auth.certificate import load_certificate
from batch.auth.msal_provider import PUBLIC_AUTHORITY_HOST, MsalTokenProvider
from batch.auth.permissions import Grants, Missing, missing_for, missing_permissions, token_grants, token_roles
from batch.auth.providers import (
    GRAPH_SCOPE,
    REFRESH_MARGIN_SECONDS,
    TOKEN_RETRY,
    ClientCredentialsProvider,
    StaticTokenProvider,
)
from batch.graph.transport import TokenProvider

__all__ = [
    "GRAPH_SCOPE",
    "PUBLIC_AUTHORITY_HOST",
    "REFRESH_MARGIN_SECONDS",
    "TOKEN_RETRY",
    "ClientCredentialsProvider",
    "Grants",
    "Missing",
    "MsalTokenProvider",
    "StaticTokenProvider",
    "TokenProvider",
    "load_certificate",
    "missing_for",
    "missing_permissions",
    "token_grants",
    "token_roles",
]
