"""The CI-sized soak (issues 6 and 11): the emulator as a separate server with seeded faults
(429 storms, 500, 502 HTML pages, 503/504 with Retry-After in every form or none,
connections reset mid-answer or dropped before and after the write commits, slow answers,
token endpoint failures, tokens that expire every few seconds), shuffled $batch answers and
a replication lag of up to 1.5 s; create,
update, reset-password, delete and restore on a generated file, each `kill -9`ed at random
moments and resumed until done; the invariants checked against the emulator's own directory. The long soak is
`python benchmarks/soak.py --cycles 200`; both use tests/soak/harness.py.

Also the bad days that need real processes: Ctrl-C (SIGINT) mid-run, and the Graph server
killed and started again mid-run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import (
    REPO_ROOT,
    EmulatorServer,
    RunHistory,
    check_create,
    check_secrets,
    client_env,
    generate,
    journal_counts,
    read_csv,
    read_directory,
    run_with_kills,
    soak_cycle,
)

pytestmark = pytest.mark.network


def test_ci_soak_kill_9_and_resume_under_faults_keeps_every_invariant(tmp_path: Path) -> None:
    # Graph as it really is (issue 11): every fault kind, shuffled $batch answers, and a
    # replication lag of up to 1.5 s on every write.
    server = EmulatorServer(tmp_path / "emu" / "emulator.db", fault_rate=0.05, seed=6, token_fault_rate=0.05,
                            token_lifetime=6, extra=["--no-throttle", "--replication-lag-ms", "1500"])
    lines: list[str] = []
    with server:
        # Waits scaled to the lag (3.75 s in all, 2.5 times the lag; the product's are 15.5 s).
        report = soak_cycle(tmp_path / "work", server, rows=150, seed=6, kills=2, log=lines.append,
                            replication_waits="0.25,0.5,1,2")
    print("\n".join(lines))
    assert report.violations == [], "\n".join(report.violations + lines)
    assert report.kills >= 4, "the soak must really kill the client"
    assert [h.verb for h in report.histories] == ["create", "update", "reset-password", "delete", "restore"]


def _wait_for_done(run_dir: Path, rows: int, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if journal_counts(run_dir).get("done", 0) >= rows:
            return
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before the bad moment; make it longer"


def _cli_with_sigint(handler: str) -> list[str]:
    """`python -m batch` with SIGINT set first to `handler` (a name in `signal`), whatever this
    process passes on: `default_int_handler` is what Python installs when started from an
    interactive shell (Ctrl-C raises KeyboardInterrupt), `SIG_IGN` what a background job of a
    script (`… &`) inherits. Set in the child itself rather than by `preexec_fn`, which is
    unsafe in a process with threads (the emulator's output pumps)."""
    code = (f"import runpy, signal; signal.signal(signal.SIGINT, signal.{handler}); "
            "runpy.run_module('batch', run_name='__main__', alter_sys=True)")
    return [sys.executable, "-c", code]


@pytest.mark.parametrize("sent, ignore_sigint", [(signal.SIGINT, False), (signal.SIGTERM, False),
                                                 (signal.SIGTERM, True)],
                         ids=["sigint", "sigterm", "sigterm-to-a-background-job"])
def test_a_signal_stops_gracefully_exit_130_and_resume_finishes(tmp_path: Path, sent: signal.Signals,
                                                                ignore_sigint: bool) -> None:
    """Ctrl-C and SIGTERM stop a run at an await (exit 130, resumable), also a background job
    of a script (`entra-batch create … &`), which starts with SIGINT ignored.

    The child's SIGINT is set explicitly either way: it would otherwise inherit pytest's, and
    pytest started as a background job (`pytest … &` in a script) has SIGINT ignored, which
    Python keeps ignored in the child, so the Ctrl-C case would test nothing but fail."""
    with EmulatorServer(tmp_path / "emu" / "emulator.db", latency_ms=30) as server:
        env = client_env(server, tmp_path / "home", replication_waits="0.01,0.02")  # no lag here
        source = generate(tmp_path / "in.csv", 300, "int")
        run_dir = tmp_path / "run"
        cli = _cli_with_sigint("SIG_IGN" if ignore_sigint else "default_int_handler")
        process = subprocess.Popen([*cli, "create", str(source), "--out-dir", str(run_dir), "--quiet",
                                    "--batch-size", "5"], cwd=REPO_ROOT, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_done(run_dir, 40, process)
        process.send_signal(sent)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        assert f"entra-batch resume {run_dir}" in err and "Traceback" not in err
        history = run_with_kills("create", source, run_dir, env, 300, __import__("random").Random(1), kills=0)
        assert history.cycles[0].command == "resume" and history.final_status == 0, history.stderr_tail
        assert check_create(run_dir, source, read_directory(server.db)) == []
        history.printed += [out, err]
        assert check_secrets(history, [], server.exports["AZURE_CLIENT_SECRET"]) == []


def test_the_graph_server_killed_and_restarted_mid_run(tmp_path: Path) -> None:
    server = EmulatorServer(tmp_path / "emu" / "emulator.db", latency_ms=20, token_lifetime=4)
    with server:
        env = client_env(server, tmp_path / "home", replication_waits="0.01,0.02")  # no lag here
        source = generate(tmp_path / "in.csv", 300, "srv")
        run_dir = tmp_path / "run"
        process = subprocess.Popen([sys.executable, "-m", "batch", "create", str(source), "--out-dir", str(run_dir),
                                    "--quiet", "--batch-size", "5"], cwd=REPO_ROOT, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_done(run_dir, 60, process)
        server.kill()  # kill -9: answers cut off mid-flight, connections refused for a while
        time.sleep(1.5)
        server.start()  # the same port and directory
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, out + err
        assert check_create(run_dir, source, read_directory(server.db)) == []
        history = RunHistory("create", run_dir, printed=[out, err])
        assert check_secrets(history, [], server.exports["AZURE_CLIENT_SECRET"]) == []
        assert {r["status"] for r in read_csv(run_dir / "results.csv")} == {"created"}
