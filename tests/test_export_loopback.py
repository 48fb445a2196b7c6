"""`entra-batch export` against the emulator served on a real loopback socket (TLS, msal)
as a separate process: a partitioned export under injected faults lists every customer
once, and an app without User.Read.All is stopped before anything is listed."""

from __future__ import annotations

import csv
import time
import uuid
from pathlib import Path

import pytest
from emulator.server_process import running_emulator
from test_create_loopback import client_env, run_cli

from batch.emulator import Store
from batch.emulator.directory import Directory

pytestmark = pytest.mark.network


def seed(db: Path, count: int) -> set[str]:
    store = Store(db)
    try:
        tenant = store.tenants()[0]
        users = Directory(store, time.time)
        ids = set()
        for i in range(count):
            doc = users.create(tenant, {
                "displayName": f"Customer {i}",
                "identities": [{"signInType": "emailAddress", "issuer": tenant.default_domain,
                                "issuerAssignedId": f"c{i}@example.com"}],
                "passwordProfile": {"password": "Aa1!" + uuid.uuid4().hex[:12], "forceChangePasswordNextSignIn": False},
                "passwordPolicies": "DisablePasswordExpiration",
            })
            ids.add(doc["id"])
        return ids
    finally:
        store.close()


def test_a_partitioned_export_under_faults_lists_everyone_once(tmp_path: Path) -> None:
    db = tmp_path / "emu" / "emulator.db"
    db.parent.mkdir(parents=True)
    ids = seed(db, 700)
    extra = ["--fault-rate", "0.1", "--faults", "503,504,drop-before,drop-after,slow", "--slow-ms", "300",
             "--seed", "11", "--latency-ms", "5"]
    with running_emulator(tmp_path / "emu", db=db, extra_args=extra) as emulator:
        env = client_env(emulator, tmp_path)
        out = tmp_path / "all.csv"
        done = run_cli(["export", "--out", str(out), "--out-dir", str(tmp_path / "run"), "--quiet",
                        "--concurrency", "8"], env, timeout=300)
        assert done.returncode == 0, done.stderr
    with out.open(newline="", encoding="utf-8-sig") as handle:
        listed = [row["id"] for row in csv.DictReader(handle)]
    assert len(listed) == len(set(listed)) == 700
    assert set(listed) == ids
    assert "partitioned" in done.stdout


def test_export_without_user_read_all_stops_with_exit_3(tmp_path: Path) -> None:
    db = tmp_path / "emu" / "emulator.db"
    db.parent.mkdir(parents=True)
    store = Store(db)
    creator = store.add_app(store.tenants()[0].id, ["User.Create", "Organization.Read.All"], display_name="creator")
    store.close()
    with running_emulator(tmp_path / "emu", db=db) as emulator:
        env = client_env(emulator, tmp_path)
        env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"] = creator.client_id, creator.secret or ""
        done = run_cli(["export", "--out", str(tmp_path / "x.csv"), "--out-dir", str(tmp_path / "run"), "--quiet"], env)
    assert done.returncode == 3, done.stderr
    assert "User.Read.All" in done.stderr
    assert not (tmp_path / "x.csv").exists()


def test_sigterm_stops_an_export_and_leaves_only_the_partial_file(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from emulator.server_process import REPO_ROOT

    db = tmp_path / "emu" / "emulator.db"
    db.parent.mkdir(parents=True)
    seed(db, 300)
    with running_emulator(tmp_path / "emu", db=db, extra_args=["--latency-ms", "400"]) as emulator:
        env = client_env(emulator, tmp_path)
        out = tmp_path / "out" / "all.csv"
        process = subprocess.Popen([sys.executable, "-m", "batch", "export", "--out", str(out), "--out-dir",
                                    str(tmp_path / "run"), "--quiet", "--concurrency", "2", "--select",
                                    "id,displayName"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        deadline = time.monotonic() + 30
        while not (out.parent / "all.csv.partial").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "the export is incomplete" in err
    assert not out.exists() and (out.parent / "all.csv.partial").exists()
    assert [p.name for p in out.parent.iterdir()] == ["all.csv.partial"]  # no spool left behind
