"""The command line: help for the administrator, and refusals that say what to do."""

from __future__ import annotations

import re
import shlex
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


def verbs_listed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The verbs `entra-batch --help` lists (indented four spaces under VERB)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    return re.findall(r"^ {4}([a-z][a-z-]*)", capsys.readouterr().out, re.MULTILINE)


def examples(help_text: str) -> list[str]:
    """The commands of the `examples:` section: lines `  entra-batch …`, without the comment
    after two spaces and without a shell redirection."""
    _, marker, rest = help_text.partition("\nexamples:\n")
    assert marker, "no examples: section"
    commands = []
    for line in rest.splitlines():
        if not line.strip():
            break
        if line.startswith("  entra-batch "):
            commands.append(re.split(r"\s{2,}|\s[>|]\s", line.strip())[0])
    return commands


def test_every_example_in_every_verbs_help_is_a_command_it_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    """sqlite-utils' lesson: help that checks itself. Every verb of `entra-batch --help` has
    `VERB --help` with an examples section, and each example there names that verb and parses
    with today's flags (an example left behind by a renamed flag fails here)."""
    verbs = verbs_listed(capsys)
    assert {"create", "update", "delete", "restore", "purge", "reset-password", "export", "resume",
            "template", "validate", "emulator"} <= set(verbs), verbs
    for verb in verbs:
        with pytest.raises(SystemExit) as exit_info:
            main([verb, "--help"])
        assert exit_info.value.code == 0, verb
        commands = examples(capsys.readouterr().out)
        assert commands, f"entra-batch {verb} --help shows no example"
        for command in commands:
            argv = shlex.split(command)[1:]
            assert argv[0] == verb, f"an example in {verb} --help runs another verb: {command}"
            try:
                build_parser().parse_args(argv)
            except SystemExit:
                pytest.fail(f"entra-batch {verb} --help shows an example the parser refuses: {command}\n"
                            f"{capsys.readouterr().err}")


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


def test_template_columns_explains_every_column_of_the_verb(capsys: pytest.CaptureFixture[str]) -> None:
    from batch.verbs.registry import VERBS

    for name, spec in VERBS.items():
        assert main(["template", name, "--columns"]) == 0
        text = capsys.readouterr().out
        described = [line.split(" (")[0] for line in text.splitlines() if line and not line.startswith((" ", "Columns"))]
        assert described[:len(spec.columns.columns)] == list(spec.columns.names), name
        for column in spec.columns.columns:
            assert column.help, f"{name}: {column.name} has no help text to show"
            assert column.help in text
    assert main(["template", "create", "--columns"]) == 0
    assert "displayName (required)" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["create", "x.csv"], ["delete", "x.csv"], ["export"]])
@pytest.mark.parametrize("value", ["0", "65", "1000000", "many"])
def test_concurrency_outside_1_to_64_is_a_usage_error(command: list[str], value: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main([*command, "--concurrency", value])
    assert refused.value.code == 2
    assert "--concurrency" in capsys.readouterr().err


def test_concurrency_of_64_is_accepted() -> None:
    assert build_parser().parse_args(["export", "--concurrency", "64"]).concurrency == 64
