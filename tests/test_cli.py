"""The command line: help for the administrator, and refusals that say what to do."""

from __future__ import annotations

import socket

import pytest

from batch.cli import build_parser, main


def test_no_verb_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "emulator" in capsys.readouterr().err


def test_every_verb_has_help_text_and_an_example() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subparsers.choices.items():  # type: ignore[attr-defined]
        text = sub.format_help()
        assert sub.description, name
        assert "example" in text, f"{name} --help shows no example"


def test_emulator_help_names_its_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["emulator", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--tls", "--write-quota", "--fault-rate", "--seed", "--latency-ms", "--db"):
        assert flag in out


def test_emulator_refuses_a_non_loopback_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--memory", "--host", "0.0.0.0"]) == 2
    assert "not a loopback address" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, expected", [
    ("--write-quota", "3000", "expected a quota as N/SECONDS"),
    ("--fault-rate", "1.5", "a probability between 0 and 1"),
])
def test_emulator_rejects_bad_settings(flag: str, value: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["emulator", "--memory", flag, value])
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err


def test_emulator_rejects_unknown_fault_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--memory", "--faults", "429,meteor"]) == 2
    assert "unknown fault kind(s) ['meteor']" in capsys.readouterr().err


def test_emulator_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["emulator", "--memory", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
