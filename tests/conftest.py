"""Fixtures for the whole suite: `home` (a clean ENTRA_BATCH_HOME and working folder), and the
emulator's fast signing keys (a plugin, since every test that makes a store in process gains
from it). The emulator's own fixtures are in `tests/emulator/conftest.py`.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest_plugins = ["emulator.fast_keys"]


# What tests without replication lag give the verbs to wait for it (ENTRA_BATCH_REPLICATION_WAITS).
SHORT_REPLICATION_WAITS = "0.01,0.02"


@pytest.fixture(autouse=True)
def _a_home_of_its_own(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets an ENTRA_BATCH_HOME of its own (the run index, batch/run/index.py, lives
    there), so that no test reads or writes the user's real one; `home` replaces it."""
    monkeypatch.setenv("ENTRA_BATCH_HOME", str(tmp_path_factory.mktemp("entra-batch-home")))


@pytest.fixture
def home(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A clean ENTRA_BATCH_HOME (so the local target's emulator directory is new), no tenant in
    the environment, and the working folder in tmp_path (where `runs/` goes)."""
    # The built-in emulator has no replication lag unless a test gives it one, so the verbs'
    # waits for it (batch/verbs/lag.py, 15.5 s in all) are cut short: a file with an unknown
    # key would otherwise cost each test a real 15.5 s second look. Tests of lag set their own.
    monkeypatch.setenv("ENTRA_BATCH_REPLICATION_WAITS", SHORT_REPLICATION_WAITS)
    for name in ("ENTRA_BATCH_TARGET", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
                 "ENTRA_BATCH_DOMAIN", "ENTRA_BATCH_EXTENSIONS_APP_ID", "AZURE_AUTHORITY_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENTRA_BATCH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"
