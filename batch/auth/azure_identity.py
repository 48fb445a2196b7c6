"""Sign-in methods that azure-identity implements and we only wrap: the Azure CLI
(`AzureCliCredential`: the token of `az login`, delegated) and managed identity
(`ManagedIdentityCredential`: App Service / Functions / Container Apps through
IDENTITY_ENDPOINT and IDENTITY_HEADER, an Azure VM through the instance metadata service;
a user-assigned identity by its client id). azure-identity reads the AZURE_* and IDENTITY_*
variables itself, runs `az`, and knows each hosting environment's endpoint; the wrapper is
`RefreshingProvider` (the token kept and refreshed 5 minutes before expiry, `get_token_info`
run in a thread) and the translation of azure-identity's errors into one `AuthError` line
naming the method, the setting and the remedy, with secrets scrubbed.

A refusal is final at once: azure-identity raises `CredentialUnavailableError` (no `az`, not
logged in, no managed identity here) or `ClientAuthenticationError` (refused), and only a
connection failure or a 5xx is retried, up to the token deadline."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from batch.auth.errors import scrub
from batch.auth.permissions import token_claims
from batch.auth.providers import GRAPH_SCOPE, TOKEN_RETRY, Fetched, RefreshingProvider, connect_failure, tls_failure
from batch.config import ENVIRONMENT, Sources
from batch.errors import AuthError
from batch.graph.retry import RetryPolicy

AZ_TIMEOUT_SECONDS = 30
"""How long `az account get-access-token` may take (azure-identity's default is 10 s; a cold
az on a slow machine takes a few)."""


class AzureIdentityProvider(RefreshingProvider):
    """A token from an azure-identity credential, refreshed before it expires."""

    def __init__(self, method: str, credential: Callable[[], Any], *, tenant_id: str | None = None,
                 client_id: str | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, retry: RetryPolicy = TOKEN_RETRY,
                 scope: str = GRAPH_SCOPE, sources: Sources = ENVIRONMENT, secrets: tuple[str | None, ...] = ()) -> None:
        super().__init__(clock=clock, sleep=sleep, retry=retry, secret=None, sources=sources)
        self.method = method
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.scope = scope
        self._make = credential
        self._credential: Any = None
        self._hide = secrets

    def _get(self) -> Any:
        if self._credential is None:
            self._credential = self._make()
        return self._credential.get_token_info(self.scope)

    async def _fetch(self) -> Fetched:
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
        from azure.identity import CredentialUnavailableError

        try:
            info = await asyncio.to_thread(self._get)
        except CredentialUnavailableError as exc:
            raise self._failed(str(exc), unavailable=True) from None
        except ClientAuthenticationError as exc:
            raise self._failed(str(exc.message or exc), unavailable=False) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            failure = tls_failure(exc)
            if failure is not None:
                raise self._untrusted(failure) from None
            if self.method == "managed-identity" and isinstance(exc, ServiceRequestError):
                # The request could not be sent at all (azure-core keeps no cause chain to read): the
                # identity endpoint is not there, which no wait mends; azure-identity has retried already.
                raise AuthError(_unreachable_identity(str(exc.message or exc), self._sources),
                                error="managed_identity") from None
            return Fetched(transient=f"connection error: {type(exc).__name__}", unreachable=connect_failure(exc))
        now = time.time()
        refresh_on = getattr(info, "refresh_on", None)
        self._check_tenant(info.token)
        return Fetched(token=info.token, expires_in=max(0.0, float(info.expires_on) - now),
                       refresh_in=None if refresh_on is None else max(0.0, float(refresh_on) - now))

    def _check_tenant(self, token: str) -> None:
        """The Azure CLI can be signed in to another tenant than the run's: refused, naming both."""
        if self.method != "azure-cli" or not self.tenant_id or not _is_guid(self.tenant_id):
            return
        tid = str(token_claims(token).get("tid") or "")
        if tid and tid.lower() != self.tenant_id.lower():
            raise AuthError(f"{self._sources.method('azure-cli')}: az gave a token for tenant {tid}, not {self.tenant_id} "
                            f"({self._sources.tenant_id}). Run `az login --tenant {self.tenant_id} "
                            "--allow-no-subscriptions`, or correct the tenant.", error="wrong_tenant")

    def _failed(self, text: str, *, unavailable: bool) -> AuthError:
        reason = scrub(" ".join(text.split()), *self._hide)
        if len(reason) > 400:
            reason = reason[:400] + "…"
        if self.method == "azure-cli":
            return AuthError(_azure_cli_message(reason, self.tenant_id or "TENANT", self._sources),
                             error="azure_cli")
        return AuthError(_managed_identity_message(reason, self.client_id, unavailable, self._sources),
                         error="managed_identity")

    def _tenant(self) -> str:
        return self.tenant_id or ""

    def _client_id(self) -> str:
        return self.client_id or ""

    async def aclose(self) -> None:
        closer = getattr(self._credential, "close", None)
        if closer is not None:
            await asyncio.to_thread(closer)


def _azure_cli_message(reason: str, tenant: str, sources: Sources) -> str:
    login = f"az login --tenant {tenant} --allow-no-subscriptions"
    how = sources.method("azure-cli")
    if "not found on path" in reason.lower() or "failed to execute" in reason.lower():
        return (f"{how}: the Azure CLI (az) is not on PATH. Install it (https://aka.ms/installazurecli) "
                f"and run `{login}`, or sign in another way (--auth device-code).")
    if "az login" in reason.lower() and "AADSTS" not in reason:
        return (f"{how}: the Azure CLI is not signed in for tenant {tenant} ({sources.tenant_id}): run "
                f"`{login}` (an External ID tenant has no Azure subscription, hence --allow-no-subscriptions).")
    if "failed to invoke" in reason.lower():
        return (f"{how}: the Azure CLI did not answer within {AZ_TIMEOUT_SECONDS} s "
                f"(az account get-access-token). Check that `az account get-access-token --tenant {tenant}` works.")
    return (f"{how}: the Azure CLI could not give a token for tenant {tenant} ({reason}). Run `{login}` "
            "again (the sign-in may have expired or been revoked).")


def _unreachable_identity(reason: str, sources: Sources) -> str:
    """The managed identity endpoint could not be reached (refused, no such host)."""
    reason = " ".join(reason.split())[:300]
    return (f"{sources.method('managed-identity')}: the managed identity endpoint could not be reached ({reason}). "
            "Check IDENTITY_ENDPOINT (App Service, Functions, Container Apps) or MSI_ENDPOINT; on an Azure VM "
            "the instance metadata service at 169.254.169.254 must be reachable. Off Azure there is no managed "
            "identity: sign in another way (--auth secret, certificate, workload-identity).")


# azure-identity's text when the identity endpoint answered with an error:
# "... Token request error: (invalid_scope) 403, The X-IDENTITY-HEADER header does not match ...".
_ENDPOINT_ANSWER = re.compile(r"Token request error: \((?P<error>[^)]*)\) (?P<status>\d{3}),? ?(?P<detail>.*)", re.S)


def _managed_identity_message(reason: str, client_id: str | None, unavailable: bool,
                              sources: Sources = ENVIRONMENT) -> str:
    """What a managed identity's failure means. The identity endpoint's own answer decides when
    there is one: 401/403 is the secret header refused (App Service and Container Apps check
    X-IDENTITY-HEADER against IDENTITY_HEADER: learn.microsoft.com/azure/app-service/
    overview-managed-identity, "REST endpoint reference"); 400 with a client id is an id that
    names no identity assigned to this resource; only no answer at all is "no managed identity here"."""
    how = sources.method("managed-identity")
    which = f"the user-assigned identity {client_id} ({sources.client_id})" if client_id else \
        f"the system-assigned identity ({sources.client_id} names a user-assigned one)"
    answer = _ENDPOINT_ANSWER.search(reason)
    if answer is not None:
        status, detail = answer.group("status"), answer.group("detail").strip().rstrip(".")
        if status in ("401", "403"):
            return (f"{how}: the identity endpoint (IDENTITY_ENDPOINT) refused the IDENTITY_HEADER sent with the "
                    f"request ({status}: {detail}). IDENTITY_HEADER must be the value the platform set for this "
                    "process (App Service, Functions and Container Apps set IDENTITY_ENDPOINT and IDENTITY_HEADER "
                    "together, and rotate them): do not set or copy it by hand.")
        if client_id and status == "400":
            return (f"{how}: the identity endpoint answered, but {sources.client_id} ({client_id}) names no managed "
                    f"identity assigned to this resource ({status}: {detail}). Unset {sources.client_id} to use the "
                    "system-assigned identity, or set it to the client id of a user-assigned identity assigned here "
                    "(an app registration's client id is not a managed identity).")
        return (f"{how}: the identity endpoint refused {which} ({status}: {detail}). Check that the identity is "
                "assigned to this resource.")
    if unavailable and ("no response" in reason.lower() or "not found in environment" in reason.lower()
                        or "unavailable" in reason.lower()):
        return (f"{how}: no managed identity answered here ({reason}). Run on an Azure VM, App "
                "Service, Functions or Container App with a managed identity turned on (IDENTITY_ENDPOINT and "
                "IDENTITY_HEADER are set there), or sign in another way (--auth workload-identity, certificate).")
    return (f"{how}: the managed identity endpoint refused {which} ({reason}). Check that the "
            "identity is assigned to this resource, and that it holds the Microsoft Graph application permissions "
            "(granted to its service principal).")


def _is_guid(text: str) -> bool:
    return [len(p) for p in text.split("-")] == [8, 4, 4, 4, 12]


def _quiet() -> None:
    """azure-identity logs each failure as a warning ("AzureCliCredential.get_token_info failed:
    ..."), which Python's last-resort handler prints on stderr: a second, unasked line beside
    our own (only batch/cli prints). Every failure reaches the user as our `AuthError`."""
    logging.getLogger("azure.identity").setLevel(logging.CRITICAL)


def azure_cli_credential(tenant_id: str | None) -> Callable[[], Any]:
    def make() -> Any:
        _quiet()
        from azure.identity import AzureCliCredential

        return AzureCliCredential(tenant_id=tenant_id or "", process_timeout=AZ_TIMEOUT_SECONDS)
    return make


def managed_identity_credential(client_id: str | None, verify: bool | str) -> Callable[[], Any]:
    """azure-identity's `ManagedIdentityCredential`; `verify` is the CA file an https
    IDENTITY_ENDPOINT is checked against (the emulator's --tls; App Service's own endpoint is
    plain http on loopback). Its own retries are bounded to a few (a refusal is not retried)."""
    def make() -> Any:
        _quiet()
        from azure.identity import ManagedIdentityCredential

        kwargs: dict[str, Any] = {"retry_total": 2, "retry_backoff_factor": 0.5,
                                  "connection_timeout": 5, "read_timeout": 15}
        if verify is not True:
            kwargs["connection_verify"] = verify
        return ManagedIdentityCredential(client_id=client_id or None, **kwargs)
    return make


__all__ = ["AZ_TIMEOUT_SECONDS", "AzureIdentityProvider", "azure_cli_credential", "managed_identity_credential"]
