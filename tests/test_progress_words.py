"""Issue 12, findings 4 and 9, the words: the progress bar's paced rate, ETA and what holds
the run; the closing line about throttling; the confirmation of a mass password reset
against a tenant (not an emulator on this machine), naming it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from batch.cli import main
from batch.cli.progress import RecentRate, eta_seconds, hold_words, status_text
from batch.cli.run_command import confirmed, held_back
from batch.config import Target
from batch.errors import ConfigError
from batch.graph import Hold


def test_the_closing_line_says_how_long_the_run_was_held_of_its_length() -> None:
    """Finding 9: "held back by throttling for 12.3 s of the run's 34 s"."""
    assert held_back(3, 12.3, 34.0) == ("throttled 3 times (429); sending was held back for 12.3 s of the run's "
                                        "34.0 s (Retry-After and pacing)")
    assert held_back(0, 0.2, 34.0) == ""  # a run that was barely held says nothing
    assert held_back(1, 0.0, 2.0) == "throttled 1 time (429)"
    # Pacing is not throttling: a short local run paced all along said "held back by throttling
    # for 1.7 s of the run's 1.7 s" (the week's trial); only a long, mostly paced run says so.
    assert held_back(0, 1.7, 1.7) == ""
    assert held_back(0, 30.0, 40.0) == "paced under Graph's quotas: sending waited 30.0 s of the run's 40.0 s"


def _args(command: str, **extra: Any) -> argparse.Namespace:
    values = {"command": command, "file": Path("resets.csv"), "dry_run": False, "yes": False, "profile": None}
    values.update(extra)
    return argparse.Namespace(**values)


def test_a_mass_password_reset_against_a_tenant_asks_naming_the_tenant(monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Know the target: above 100 rows, reset-password asks on a terminal against a tenant (as
    delete does everywhere), naming the tenant; --yes, a dry run and the local emulator do not."""
    tenant = Target(kind="tenant", graph_url="https://graph.microsoft.com/v1.0", tenant_id="1234-tenant",
                    client_id="5678-app")
    local = Target(kind="local", graph_url="http://emulator.local/v1.0")
    loopback = Target(kind="url", graph_url="http://127.0.0.1:8765/v1.0", tenant_id="1234-tenant")
    with pytest.raises(ConfigError, match="150 passwords to reset in tenant 1234-tenant .*pass --yes"):
        confirmed(_args("reset-password"), 150, tenant)  # not a terminal
    assert confirmed(_args("reset-password"), 100, tenant)
    assert confirmed(_args("reset-password", yes=True), 150, tenant)
    assert confirmed(_args("reset-password", dry_run=True), 150, tenant)
    assert confirmed(_args("reset-password"), 150, local)
    # A served emulator stands for a tenant (the week's trial: a profile on `entra-batch emulator`
    # reset 194 passwords without asking).
    with pytest.raises(ConfigError, match="150 passwords to reset in the emulator at http://127.0.0.1:8765/v1.0"):
        confirmed(_args("reset-password"), 150, loopback)
    answers = iter(["no", "yes"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda *question: next(answers))
    assert not confirmed(_args("reset-password"), 150, tenant)
    asked = capsys.readouterr()
    assert "Reset the passwords of 150 customers listed in resets.csv in tenant 1234-tenant" in asked.err
    assert asked.out == ""  # stdout stays the summary's (--json)
    assert confirmed(_args("delete", file=Path("leavers.csv")), 150, tenant)
    assert "Delete 150 customers listed in leavers.csv in tenant 1234-tenant" in capsys.readouterr().err


def test_the_end_of_input_or_ctrl_c_at_the_question_says_no(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # Ctrl-D at the question was an internal error (EOFError) that left a run folder to resume;
    # Ctrl-C waited for Enter (the event loop's handler only cancels, and the loop waited for
    # the answer). While the question is asked, Ctrl-C interrupts it, and it means no.
    import os
    import signal

    local = Target(kind="local", graph_url="http://emulator.local/v1.0")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)

    def end_of_input(*question: str) -> str:
        raise EOFError

    def ctrl_c(*question: str) -> str:
        os.kill(os.getpid(), signal.SIGINT)  # raised here only if the question installed Python's handler
        return "yes"

    runs_handler: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: runs_handler.append(number))
    try:
        for answer in (end_of_input, ctrl_c):
            monkeypatch.setattr("builtins.input", answer)
            assert not confirmed(_args("delete", file=Path("leavers.csv")), 150, local)
            assert "Delete 150 customers listed in leavers.csv" in capsys.readouterr().err
        assert runs_handler == []
        os.kill(os.getpid(), signal.SIGINT)  # the run's own handler is back
        assert runs_handler == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_resume_asks_a_run_stopped_at_its_question_again(home: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys

    source = tmp_path / "many.csv"
    subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "sample_data" / "generate.py"),
                    "120", "--bad", "0", "--out", str(source)], check=True)
    assert main(["create", str(source), "--quiet", "--out-dir", str(tmp_path / "made")]) == 0
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)

    def killed(*question: str) -> str:
        raise SystemExit(137)  # the process dies at the question (its terminal closed)

    monkeypatch.setattr("builtins.input", killed)
    with pytest.raises(SystemExit):
        main(["delete", str(source), "--quiet", "--out-dir", str(tmp_path / "gone")])
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    capsys.readouterr()
    assert main(["resume", str(tmp_path / "gone"), "--quiet"]) == 2  # not on a terminal: --yes, as delete needs
    assert "holds 120 rows to delete; pass --yes to confirm" in capsys.readouterr().err
    assert main(["resume", str(tmp_path / "gone"), "--quiet", "--yes", "--json"]) == 0
    assert '"deleted": 120' in capsys.readouterr().out


def test_reset_password_takes_yes(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "reset.csv"
    source.write_text("signInName\r\nnobody@example.com\r\n", encoding="utf-8")
    assert main(["reset-password", str(source), "--yes", "--dry-run", "--quiet", "--out-dir",
                 str(tmp_path / "r")]) in (0, 1)


def test_the_eta_comes_from_the_paced_rate_not_the_run_average() -> None:
    """Finding 9: 10 rows/s for 20 s, then the write quota holds the run to 2 rows/s: at 74 %
    of 270 rows the time left is the paced one (~35 s), not the average's (~10 s)."""
    recent = RecentRate(window=10.0)
    for second in range(21):
        recent.add(float(second), 10 * second)
    for second in range(21, 31):
        recent.add(float(second), 200 + 2 * (second - 20))
    rate = recent.rate(30.0)
    assert rate == pytest.approx(2.0)
    assert eta_seconds(rate, 220, 270) == pytest.approx(25.0)
    assert 220 / 30 * 1 > 7  # tqdm's long-run average would say ~7 rows/s: under 7 s left
    assert eta_seconds(None, 1, 10) is None and eta_seconds(2.0, 1, None) is None
    recent.add(40.0, 220)  # a stall: nothing finished for 10 s
    assert recent.rate(40.0) == pytest.approx(0.0)
    assert eta_seconds(recent.rate(40.0), 220, 270) is None


def test_the_bar_says_when_it_paces_at_the_write_quota_or_waits_for_graph() -> None:
    now = 100.0
    assert hold_words(Hold("write quota", now + 0.05), now) == "pacing at the write quota"
    assert hold_words(Hold("429 Retry-After", now + 11.2), now) == "waiting 12 s (429 Retry-After)"
    assert hold_words(Hold("retry", now + 3.0), now) == "waiting 3 s to retry"
    assert hold_words(None, now) is None
    text = status_text(rate=2.04, eta=47.0, hold="pacing at the write quota", failed=2, throttled=5)
    assert text == "2.0 rows/s, ETA 00:47, pacing at the write quota, invalid or failed 2, throttled 5"
