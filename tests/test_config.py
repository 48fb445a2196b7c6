"""Which tenant a run talks to, from flags, the environment and profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.config import GRAPH_URL, resolve_target
from batch.errors import ConfigError

CREDS = {"AZURE_TENANT_ID": "t-id", "AZURE_CLIENT_ID": "c-id", "AZURE_CLIENT_SECRET": "s3cr3t-value"}


def test_no_tenant_configured_means_the_local_emulator(tmp_path: Path) -> None:
    target = resolve_target(None, None, env={"ENTRA_BATCH_HOME": str(tmp_path)})
    assert target.kind == "local" and target.label == "local"


def test_the_emulator_export_lines_select_it() -> None:
    env = dict(CREDS, ENTRA_BATCH_TARGET="http://127.0.0.1:8765/v1.0", AZURE_AUTHORITY_HOST="http://127.0.0.1:8765",
               ENTRA_BATCH_DOMAIN="contoso.onmicrosoft.com")
    target = resolve_target(None, None, env=env)
    assert (target.kind, target.graph_url, target.authority_host, target.domain) == \
        ("url", "http://127.0.0.1:8765/v1.0", "http://127.0.0.1:8765", "contoso.onmicrosoft.com")
    assert "s3cr3t-value" not in repr(target)


def test_a_tenant_from_the_azure_variables() -> None:
    target = resolve_target(None, None, env=CREDS)
    assert target.kind == "tenant" and target.graph_url == GRAPH_URL
    assert target.authority_host == "https://login.microsoftonline.com"


def test_flags_win_over_the_environment() -> None:
    target = resolve_target("local", None, domain="fabrikam.onmicrosoft.com", env=CREDS)
    assert target.kind == "local" and target.domain == "fabrikam.onmicrosoft.com"


def test_missing_credentials_say_what_to_set() -> None:
    with pytest.raises(ConfigError, match="AZURE_CLIENT_SECRET"):
        resolve_target("http://127.0.0.1:1/v1.0", None, env={"AZURE_TENANT_ID": "t"})


def test_a_target_must_be_local_or_a_url() -> None:
    with pytest.raises(ConfigError, match="'local' or a Graph URL"):
        resolve_target("graph.microsoft.com", None, env=CREDS)


def test_profiles(tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text(
        '[prod]\ntenant_id = "p-tenant"\nclient_id = "p-client"\nclient_secret_env = "PROD_SECRET"\n'
        'domain = "contoso.onmicrosoft.com"\n\n[lab]\ntarget = "local"\n', encoding="utf-8")
    env = {"ENTRA_BATCH_HOME": str(tmp_path), "PROD_SECRET": "from-env"}
    prod = resolve_target(None, "prod", env=env)
    assert (prod.kind, prod.tenant_id, prod.client_secret, prod.domain) == ("tenant", "p-tenant", "from-env",
                                                                            "contoso.onmicrosoft.com")
    assert resolve_target(None, "lab", env=env).kind == "local"
    with pytest.raises(ConfigError, match=r"no profile \[dev\].*profiles: lab, prod"):
        resolve_target(None, "dev", env=env)
    with pytest.raises(ConfigError, match=r"\$PROD_SECRET, which is not set"):
        resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(tmp_path)})


def test_no_profiles_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no profiles file"):
        resolve_target(None, "prod", env={"ENTRA_BATCH_HOME": str(tmp_path)})


@pytest.mark.parametrize("value", ["soon", "", "1,,2", "-1", "601", "nan", "inf", ",".join(["1"] * 11)])
def test_replication_waits_are_1_to_10_numbers_of_seconds(value: str) -> None:
    from batch.config import replication_waits

    env = {"ENTRA_BATCH_REPLICATION_WAITS": value}
    if not value:
        assert replication_waits(env) is None
        return
    with pytest.raises(ConfigError, match="ENTRA_BATCH_REPLICATION_WAITS must be 1 to 10"):
        replication_waits(env)


def test_replication_waits_as_given() -> None:
    from batch.config import replication_waits

    assert replication_waits({"ENTRA_BATCH_REPLICATION_WAITS": " 0.5, 1,2 "}) == (0.5, 1.0, 2.0)
    assert replication_waits({}) is None
