"""`validate` and `create` agree (issue 12, finding 7): validate uses the default domain and
extensions app id that create would use when they can be known offline, and says so when the
domain cannot be."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from batch.cli import main

FILE = ("displayName,userPrincipalName,ext.loyalty\r\n"
        "A,a@fabrikam.com,gold\r\n"
        "B,b@contoso.onmicrosoft.com,silver\r\n")


def verdicts(run_dir: Path) -> dict[int, str]:
    with (run_dir / "results.csv").open(newline="", encoding="utf-8-sig") as handle:
        return {int(r["row"]): r["status"] for r in csv.DictReader(handle)}


@pytest.mark.parametrize("emulator_made_first", [False, True])
def test_finding_7_validate_gives_the_verdicts_create_gives_on_the_local_target(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], emulator_made_first: bool) -> None:
    source = tmp_path / "in.csv"
    source.write_text(FILE, encoding="utf-8", newline="")
    if emulator_made_first:  # the directory exists (its own extensions app id), or not yet
        assert main(["emulator", "reset", "--yes"]) == 0
        assert main(["export", "--quiet", "--out", str(tmp_path / "none.csv")]) == 0
        # The emulator's tenant declares the attribute (Graph writes only declared ones).
        assert main(["emulator", "add-attribute", "loyalty"]) == 0
    capsys.readouterr()
    assert main(["validate", str(source), "--verb", "create"]) == 1
    said = capsys.readouterr().out
    # The UPN in the wrong domain is refused, as create refuses it; ext.* is checked against the
    # emulator's declared attributes, as in create: a directory not made yet declares none.
    undeclared = "; column 'ext.loyalty': this tenant has no custom attribute 'loyalty'; its custom attributes are: none"
    upn = "row 1: userPrincipalName 'a@fabrikam.com' must end with @contoso.onmicrosoft.com"
    if emulator_made_first:
        assert said.splitlines() == [upn, f"{source}: 2 rows, 1 invalid, 1 valid (utf-8, delimiter ',')"]
    else:
        assert said.splitlines() == [upn + undeclared, "row 2: " + undeclared[2:],
                                     f"{source}: 2 rows, 2 invalid, 0 valid (utf-8, delimiter ',')"]
    assert main(["create", str(source), "--quiet", "--out-dir", str(tmp_path / "run")]) == 1
    assert verdicts(tmp_path / "run") == {1: "invalid", 2: "created" if emulator_made_first else "invalid"}


def test_finding_7_validate_says_when_it_cannot_check_upn_domains(home: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text("displayName,userPrincipalName\r\nA,a@fabrikam.com\r\n", encoding="utf-8", newline="")
    for name, value in (("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000001"), ("AZURE_CLIENT_ID", "app"),
                        ("AZURE_CLIENT_SECRET", "not-used-offline")):
        monkeypatch.setenv(name, value)
    assert main(["validate", str(source), "--verb", "create"]) == 0
    assert "userPrincipalName domains were not checked" in capsys.readouterr().err
    assert main(["validate", str(source), "--verb", "create", "--domain", "fabrikam.com"]) == 0
    assert "not checked" not in capsys.readouterr().err
    # Without the tenant's attributes (a run reads them, finding the extensions app by itself),
    # an ext.* column is checked by its form, and validate says what it left to the run.
    source.write_text("displayName,userPrincipalName,ext.loyalty\r\nA,a@fabrikam.com,gold\r\n", encoding="utf-8",
                      newline="")
    assert main(["validate", str(source), "--verb", "create", "--domain", "fabrikam.com"]) == 0
    assert "checked by their form only" in capsys.readouterr().err
    assert main(["validate", str(source), "--verb", "create", "--domain", "fabrikam.com",
                 "--extensions-app-id", "11111111-2222-3333-4444-555555555555"]) == 0


def test_finding_9_restore_help_says_what_yes_does(capsys: pytest.CaptureFixture[str]) -> None:
    """`restore --yes` did nothing and its help said "accepted; restore asks nothing": the help
    now says that restore never asks and why --yes is still accepted (scripts)."""
    with pytest.raises(SystemExit):
        main(["restore", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "changes nothing: restore never asks for confirmation" in text
    assert "--yes is accepted (and changes nothing) so that one script line can serve delete, purge and restore" in text
