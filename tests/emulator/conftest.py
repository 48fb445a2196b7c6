"""The Graph emulator in process, driven by httpx over `EmulatorTransport`, with a fake clock
the tests move by hand.

`graph` is the usual entry point (a `Graph` from `emulator.helpers`); `make_graph(settings)`
builds another one with other settings (tight quotas, faults) on the same fake clock.
`store`, `app`, `client` and `token` are the parts, for tests that need one alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

import httpx
import pytest
from emulator.helpers import BASE_URL, FakeClock, Graph, build_graph, fetch_token

from batch.emulator import EmulatorSettings, Store, create_app
from batch.emulator.app import EmulatorApp
from batch.emulator.inprocess import EmulatorTransport


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> EmulatorSettings:
    return EmulatorSettings()


@pytest.fixture
def store() -> Iterable[Store]:
    s = Store(":memory:")
    yield s
    s.close()


@pytest.fixture
def app(store: Store, settings: EmulatorSettings, clock: FakeClock) -> EmulatorApp:
    return create_app(store, settings, clock=clock)


@pytest.fixture
async def client(app: EmulatorApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=EmulatorTransport(app), base_url=BASE_URL) as c:
        yield c


@pytest.fixture
async def token(client: httpx.AsyncClient, store: Store) -> str:
    """A token for the store's default app (every user permission)."""
    return await fetch_token(client, store.default_app())


@pytest.fixture
async def make_graph(clock: FakeClock) -> AsyncIterator[Callable[..., Graph]]:
    """`make_graph(settings=None, store=None)` → a `Graph` on the shared fake clock."""
    made: list[Graph] = []
    stores: list[Store] = []

    def make(settings: EmulatorSettings | None = None, store: Store | None = None) -> Graph:
        if store is None:
            store = Store(":memory:")
            stores.append(store)
        graph = build_graph(store, settings or EmulatorSettings(), clock)
        made.append(graph)
        return graph

    yield make
    for graph in made:
        await graph.client.aclose()
    for s in stores:
        s.close()


@pytest.fixture
async def graph(store: Store, settings: EmulatorSettings, clock: FakeClock) -> AsyncIterator[Graph]:
    g = build_graph(store, settings, clock)
    yield g
    await g.client.aclose()
