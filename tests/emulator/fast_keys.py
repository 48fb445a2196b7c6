"""A pytest plugin for the whole suite (declared in the root `conftest.py`): every `Store`
made in the test process signs its tokens with one of a few pre-made RSA keys instead of a
new one, the bulk of a test's setup time. Emulators started as subprocesses are untouched.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import batch.emulator.store as store_module


class _KeyPool:
    """Stands in for `cryptography...rsa` inside `batch.emulator.store` only: hands out a few
    pre-made 2048-bit keys in turn instead of generating one per Store (the bulk of a
    test's setup time). Consecutive stores still get different keys, so a token from one
    emulator is still a forgery to the next."""

    def __init__(self, size: int = 3) -> None:
        self._keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(size)]
        self._next = 0

    def generate_private_key(self, public_exponent: int, key_size: int) -> rsa.RSAPrivateKey:
        key = self._keys[self._next % len(self._keys)]
        self._next += 1
        return key


@pytest.fixture(scope="session", autouse=True)
def _fast_signing_keys() -> Iterable[None]:
    original = store_module.rsa
    store_module.rsa = _KeyPool()  # type: ignore[assignment]
    yield
    store_module.rsa = original
