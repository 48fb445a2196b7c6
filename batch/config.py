"""Where entra-batch keeps its files. The environment is read here and nowhere else."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def home_dir() -> Path:
    """`ENTRA_BATCH_HOME`, or the platform's per-user data directory."""
    configured = os.environ.get("ENTRA_BATCH_HOME")
    return Path(configured).expanduser() if configured else Path(platformdirs.user_data_dir("entra-batch"))


def emulator_db_path() -> Path:
    return home_dir() / "emulator.db"


def emulator_tls_dir() -> Path:
    return home_dir() / "emulator-tls"
