"""The official Microsoft Graph SDK for Python (msgraph-sdk, kiota, msgraph-core), unpatched,
against the emulator served over TLS on a loopback socket, with tokens from msal: create a
customer, page, filter by identity, delete, list deleted items, restore, $batch, and the
SDK's retry handler meeting the emulator's throttle (GRAPH.md §8, §13, §14)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import msal
import pytest
from emulator.server_process import GRAPH_SCOPE, Emulator, running_emulator
from kiota_abstractions.api_error import APIError
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.object_identity import ObjectIdentity
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.user import User
from msgraph.generated.models.user_collection_response import UserCollectionResponse
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import options as sdk_middleware_options
from msgraph_core import GraphClientFactory, PageIterator
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem

pytestmark = pytest.mark.network

ISSUER = "contoso.onmicrosoft.com"  # the emulator's seeded tenant domain
PASSWORD = "Xq7!vR2#pL9$wK4m"


# ---- plumbing: msal tokens → kiota auth provider → GraphServiceClient ---------------------

class MsalTokenProvider(AccessTokenProvider):
    """Client-credentials tokens from msal for Graph calls to the emulator's host only."""

    def __init__(self, app: msal.ConfidentialClientApplication, host: str) -> None:
        self.app = app
        self.validator = AllowedHostsValidator([host])

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict[str, Any] | None = None) -> str:
        if not self.validator.is_url_host_valid(uri) or not uri.lower().startswith("https://"):
            return ""
        result = await asyncio.to_thread(self.app.acquire_token_for_client, scopes=[GRAPH_SCOPE])
        if "access_token" not in result:
            raise RuntimeError(f"msal could not get a token: {result}")
        return result["access_token"]

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self.validator


class WireLog(httpx.AsyncBaseTransport):
    """The transport under the SDK's middleware: sees every attempt, retries included."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[tuple[httpx.Request, int]] = []
        self.retry_attempts: list[str | None] = []  # the Retry-Attempt header of each attempt as sent

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = request.headers.get("Retry-Attempt")  # the SDK re-sends the same (mutated) request object
        response = await self.inner.handle_async_request(request)
        self.exchanges.append((request, response.status_code))
        self.retry_attempts.append(attempt)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class Sdk:
    def __init__(self, emulator: Emulator, app: msal.ConfidentialClientApplication) -> None:
        self.wire = WireLog(httpx.AsyncHTTPTransport(verify=emulator.ssl_context()))
        http = httpx.AsyncClient(transport=self.wire, base_url=emulator.graph_url, timeout=30)
        # The SDK's own middleware pipeline (retry, redirect, url replace, telemetry, ...).
        self.http = GraphClientFactory.create_with_default_middleware(client=http, options=sdk_middleware_options)
        auth = BaseBearerTokenAuthenticationProvider(MsalTokenProvider(app, "127.0.0.1"))
        self.adapter = GraphRequestAdapter(auth, client=self.http)
        self.adapter.base_url = emulator.graph_url
        self.client = GraphServiceClient(request_adapter=self.adapter)

    async def aclose(self) -> None:
        await self.http.aclose()
        # msgraph-core's AsyncGraphTransport does not close the transport it wraps.
        await self.wire.aclose()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sdk-home")  # one local CA for the module's servers


@pytest.fixture(scope="module")
def emulator(home: Path) -> Iterator[Emulator]:
    with running_emulator(home, home / "main.db") as served:
        yield served


def _msal_app(emulator: Emulator) -> msal.ConfidentialClientApplication:
    import requests

    session = requests.Session()
    session.trust_env = False  # an inherited REQUESTS_CA_BUNDLE would override `verify`
    session.verify = emulator.ca_path
    return msal.ConfidentialClientApplication(
        emulator.client_id, client_credential=emulator.client_secret, authority=emulator.authority,
        instance_discovery=False, http_client=session)


@pytest.fixture(scope="module")
def msal_app(emulator: Emulator) -> Iterator[msal.ConfidentialClientApplication]:
    app = _msal_app(emulator)
    yield app
    app.http_client.close()


@pytest.fixture
async def sdk(emulator: Emulator, msal_app: msal.ConfidentialClientApplication) -> AsyncIterator[Sdk]:
    built = Sdk(emulator, msal_app)
    try:
        yield built
    finally:
        await built.aclose()


def customer(email: str, name: str | None = None) -> User:
    return User(
        account_enabled=True,
        display_name=name or email.split("@")[0],
        identities=[ObjectIdentity(sign_in_type="emailAddress", issuer=ISSUER, issuer_assigned_id=email)],
        password_profile=PasswordProfile(password=PASSWORD, force_change_password_next_sign_in=False),
        password_policies="DisablePasswordExpiration",
    )


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def users_config(**query: Any) -> RequestConfiguration:  # type: ignore[type-arg]
    return RequestConfiguration(query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(**query))


# ---- tests ------------------------------------------------------------------------------

async def test_adapter_points_at_the_emulator(sdk: Sdk, emulator: Emulator) -> None:
    assert sdk.adapter.base_url == emulator.graph_url
    assert emulator.graph_url.startswith("https://127.0.0.1:") and emulator.graph_url.endswith("/v1.0")


async def test_create_customer_with_email_identity(sdk: Sdk) -> None:
    email = unique_email("ada")
    created = await sdk.client.users.post(customer(email, "Ada Lovelace"))
    assert isinstance(created, User)
    assert created.id and uuid.UUID(created.id)
    assert created.display_name == "Ada Lovelace"
    assert created.user_principal_name and created.user_principal_name.endswith("@" + ISSUER)
    assert created.password_profile is None  # never echoed
    fetched = await sdk.client.users.by_user_id(created.id).get()
    assert fetched is not None and fetched.id == created.id
    # The request on the wire really was a Graph create with the SDK's @odata.type.
    request, status = next((r, s) for r, s in sdk.wire.exchanges if r.method == "POST")
    assert status == 201 and json.loads(request.content)["@odata.type"] == "#microsoft.graph.user"


async def test_page_through_users_with_page_iterator(sdk: Sdk) -> None:
    prefix = f"page{uuid.uuid4().hex[:6]}"
    made = await asyncio.gather(*(sdk.client.users.post(customer(unique_email(prefix), f"{prefix} {i}"))
                                  for i in range(30)))
    made_ids = {u.id for u in made if u is not None}
    assert len(made_ids) == 30

    first = await sdk.client.users.get(request_configuration=users_config(top=10, select=["id", "displayName"]))
    assert isinstance(first, UserCollectionResponse)
    assert len(first.value or []) == 10 and first.odata_next_link
    assert first.odata_next_link.startswith(sdk.adapter.base_url + "/users?")  # absolute nextLink
    seen: list[str] = []

    def collect(user: User) -> bool:
        assert isinstance(user, User)
        seen.append(user.id or "")
        return True

    await PageIterator(first, sdk.adapter).iterate(collect)
    assert len(seen) == len(set(seen)), "a user came back on two pages"
    assert made_ids <= set(seen)
    pages = [r for r, s in sdk.wire.exchanges if r.method == "GET" and "skiptoken" in str(r.url).lower()]
    assert len(pages) >= 3 and all(s == 200 for r, s in sdk.wire.exchanges if r.method == "GET")


async def test_filter_by_identity(sdk: Sdk) -> None:
    email = unique_email("grace")
    created = await sdk.client.users.post(customer(email, "Grace Hopper"))
    await sdk.client.users.post(customer(unique_email("other"), "Someone Else"))
    query = (f"identities/any(c:c/issuerAssignedId eq '{email}' and c/issuer eq '{ISSUER}')")
    found = await sdk.client.users.get(request_configuration=users_config(
        filter=query, select=["id", "displayName", "identities"]))
    assert found is not None and [u.id for u in found.value or []] == [created.id]
    identities = found.value[0].identities or []
    assert any(i.issuer_assigned_id == email and i.sign_in_type == "emailAddress" for i in identities)


async def test_delete_list_deleted_and_restore(sdk: Sdk) -> None:
    created = await sdk.client.users.post(customer(unique_email("linus"), "Linus"))
    assert created is not None and created.id
    await sdk.client.users.by_user_id(created.id).delete()

    with pytest.raises(APIError) as gone:
        await sdk.client.users.by_user_id(created.id).get()
    assert gone.value.response_status_code == 404

    deleted = await sdk.client.directory.deleted_items.graph_user.get()
    assert deleted is not None
    match = [u for u in deleted.value or [] if u.id == created.id]
    assert len(match) == 1 and isinstance(match[0], User) and match[0].deleted_date_time is not None

    restored = await sdk.client.directory.deleted_items.by_directory_object_id(created.id).restore.post()
    assert isinstance(restored, User)  # resolved from @odata.type
    assert restored.id == created.id and restored.display_name == "Linus"
    again = await sdk.client.users.by_user_id(created.id).get()
    assert again is not None and again.id == created.id


async def test_batch_of_twenty_creates(sdk: Sdk) -> None:
    content = BatchRequestContent()
    emails = {}
    for i in range(20):
        email = unique_email(f"batch{i}")
        info = sdk.client.users.to_post_request_information(customer(email))
        item = BatchRequestItem(request_information=info, id=str(i + 1))
        content.add_request(item.id, item)
        emails[item.id] = email
    response = await sdk.client.batch.post(content)
    statuses = response.get_response_status_codes()
    assert statuses == {str(i): 201 for i in range(1, 21)}
    for request_id, email in emails.items():
        item = response.get_response_by_id(request_id)
        assert item is not None and "json" in (item.content_type or "")
        # The SDK does not hand JSON-object bodies back (GRAPH.md §14): check the directory instead.
        found = await sdk.client.users.get(request_configuration=users_config(
            filter=f"identities/any(c:c/issuerAssignedId eq '{email}' and c/issuer eq '{ISSUER}')"))
        assert found is not None and len(found.value or []) == 1
    batch_request = next(r for r, _ in sdk.wire.exchanges if r.url.path.endswith("/$batch"))
    sent = json.loads(batch_request.content)
    assert len(sent["requests"]) == 20 and sent["requests"][0]["method"] == "POST"


async def test_batch_depends_on_is_ignored_by_graph(sdk: Sdk) -> None:
    """msgraph-core serializes `depends_on`, a key Graph does not know (msgraph-sdk-python-core
    PR #996): the dependant runs anyway, in no promised order, and never gets 424."""
    missing = str(uuid.uuid4())
    first = BatchRequestItem(request_information=sdk.client.users.by_user_id(missing).to_get_request_information(),
                             id="lookup")
    second = BatchRequestItem(request_information=sdk.client.users.to_post_request_information(
        customer(unique_email("dependent"))), id="create", depends_on=["lookup"])
    content = BatchRequestContent()
    content.add_request(first.id, first)
    content.add_request(second.id, second)
    response = await sdk.client.batch.post(content)
    assert response.get_response_status_codes() == {"lookup": 404, "create": 201}
    batch_request = next(r for r, _ in reversed(sdk.wire.exchanges) if r.url.path.endswith("/$batch"))
    sent = json.loads(batch_request.content)["requests"]
    assert sent[1]["depends_on"] == ["lookup"] and "dependsOn" not in sent[1]
    assert not sent[0]["url"].lower().startswith(("http", "/v1.0"))  # the SDK sends relative URLs


# ---- throttling: the SDK's RetryHandler against a tight write quota -----------------------

@pytest.fixture(scope="module")
def throttled(home: Path) -> Iterator[Emulator]:
    with running_emulator(home, home / "throttled.db", ["--write-quota", "3/2"]) as served:
        yield served


@pytest.fixture
async def throttled_sdk(throttled: Emulator) -> AsyncIterator[Sdk]:
    app = _msal_app(throttled)
    built = Sdk(throttled, app)
    try:
        yield built
    finally:
        await built.aclose()
        app.http_client.close()


async def test_retry_handler_rides_out_429(throttled_sdk: Sdk) -> None:
    sdk = throttled_sdk
    created = []
    for i in range(6):
        user = await sdk.client.users.post(customer(unique_email(f"quota{i}")))
        assert user is not None and user.id
        created.append(user.id)
    assert len(set(created)) == 6
    posts = [(s, attempt) for (r, s), attempt in zip(sdk.wire.exchanges, sdk.wire.retry_attempts) if r.method == "POST"]
    throttled_posts = [s for s, _ in posts if s == 429]
    assert throttled_posts, "a 3-per-2-s write quota should have throttled some of 6 quick creates"
    assert sum(1 for s, _ in posts if s == 201) == 6
    # Every re-send after a 429 carries the SDK's Retry-Attempt header; first attempts do not.
    assert sum(1 for _, attempt in posts if attempt is not None) == len(throttled_posts)


async def test_429_reaches_the_caller_without_retries(throttled_sdk: Sdk) -> None:
    sdk = throttled_sdk
    no_retry = RequestConfiguration(options=[RetryHandlerOption(max_retries=0)])
    with pytest.raises(APIError) as refused:
        for i in range(10):
            await sdk.client.users.post(customer(unique_email(f"burst{i}")), request_configuration=no_retry)
    error = refused.value
    assert error.response_status_code == 429
    headers = {k.lower(): v for k, v in (error.response_headers or {}).items()}
    assert int(headers["retry-after"]) >= 1
    assert getattr(getattr(error, "error", None), "code", None) == "TooManyRequests"
