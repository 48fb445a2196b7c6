"""Issue 12, findings 2, 4 and 9, through the command line: `--verbose` (stderr and run.log,
no secret in either), `--json`, the tenant named before the first write (and in
summary.json), and the throttle wait as wall-clock time. The words (progress bar, closing line,
confirmation) are tested in test_progress_words.py."""

from __future__ import annotations

import base64
import contextlib
import importlib
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from secret_scan import scan_for_secrets

from batch.cli import main
from batch.cli.targets import Reach
from batch.config import Target
from batch.graph import ClientStats
from batch.run.journal import Journal
from batch.run.pipeline import Progress
from batch.run.request import RunRequest
from batch.run.summary import summarise

ORIGIN = "http://127.0.0.1:9"
SECRET = "client-Secret~0f-the.app"
OWN_PASSWORD = "Own-Passw0rd!xyz"


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


TOKEN = _jwt({"roles": ["User.ReadWrite.All", "Organization.Read.All"], "tid": "t1", "appid": "app-1",
              "app_displayname": "Onboarding tool", "nonce": "a-unique-token-value"})


class Tenant:
    """A token endpoint and a Graph that create every customer, the first $batch of the run
    answered 429 with a Retry-After (and the organization named Fabrikam)."""

    def __init__(self) -> None:
        self.passwords: set[str] = set()
        self.secrets: set[str] = set()
        self.batches = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        text = request.content.decode("utf-8")
        if request.url.path.endswith("/oauth2/v2.0/token"):
            self.secrets.update(parse_qs(text).get("client_secret", []))
            return httpx.Response(200, json={"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})
        if request.url.path.endswith("/organization"):
            return httpx.Response(200, json={"value": [{"id": "t1", "displayName": "Fabrikam Customers",
                                                        "verifiedDomains": [{"name": "fabrikam.onmicrosoft.com",
                                                                             "isDefault": True}]}]})
        if request.method == "GET":
            return httpx.Response(200, json={"value": []})
        self.batches += 1
        body = json.loads(text)
        for inner in body["requests"]:
            profile = (inner.get("body") or {}).get("passwordProfile") or {}
            if profile.get("password"):
                self.passwords.add(profile["password"])
        if self.batches == 1:
            return httpx.Response(429, json={"error": {"code": "TooManyRequests", "message": "slow down"}},
                                  headers={"Retry-After": "0.2", "request-id": "rid-throttled"})
        return httpx.Response(200, json={"responses": [
            {"id": inner["id"], "status": 201, "headers": {"request-id": f"inner-{inner['id']}"},
             "body": {"id": f"obj-{inner['id']}"}} for inner in body["requests"]]},
            headers={"request-id": f"rid-{self.batches}"})


@pytest.fixture
def tenant_env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tenant]:
    for name, value in {"AZURE_TENANT_ID": "t1", "AZURE_CLIENT_ID": "app-1", "AZURE_CLIENT_SECRET": SECRET,
                        "AZURE_AUTHORITY_HOST": ORIGIN}.items():
        monkeypatch.setenv(name, value)
    graph = Tenant()

    @contextlib.contextmanager
    def mocked(target: Target, **_: Any) -> Iterator[Reach]:
        yield Reach(target, httpx.MockTransport(graph))

    monkeypatch.setattr(importlib.import_module("batch.cli.run_command"), "reach", mocked)
    yield graph


def customers_file(tmp_path: Path) -> Path:
    source = tmp_path / "in.csv"
    source.write_text("signInType,signInName,displayName,password\r\nemail,ann@example.com,Ann,\r\n"
                      f"email,bob@example.com,Bob,{OWN_PASSWORD}\r\nemail,cid@example.com,Cid,\r\n", encoding="utf-8")
    return source


def test_verbose_logs_each_request_to_stderr_and_run_log_and_no_secret(
        tenant_env: Tenant, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 2: `--verbose` shows every request (token, /organization, $batch, its items),
    a 429 with its Retry-After, on stderr and in run.log (0600); the client secret, the
    token and the passwords are in neither."""
    run = tmp_path / "run"
    status = main(["create", str(customers_file(tmp_path)), "--out-dir", str(run), "--quiet", "--verbose",
                   "--target", f"{ORIGIN}/v1.0"])
    out = capsys.readouterr()
    assert status == 0, out.err
    assert tenant_env.secrets == {SECRET} and OWN_PASSWORD in tenant_env.passwords
    log = (run / "run.log").read_text(encoding="utf-8")
    assert stat.S_IMODE((run / "run.log").stat().st_mode) == 0o600
    for text in (out.err, log):
        assert "token for app app-1 -> obtained" in text
        assert "GET /organization?$select=id,displayName,verifiedDomains -> 200" in text
        assert "POST /$batch (3 requests) -> 429" in text and "request-id rid-throttled" in text
        assert "retry-after 0.2" in text
        assert "POST /$batch (3 requests) -> 200" in text
        assert "  item 2: POST /users -> 201, request-id inner-2" in text
    assert scan_for_secrets(run, passwords=tenant_env.passwords, client_secrets=[SECRET], tokens=[TOKEN],
                            texts={"stdout": out.out, "stderr": out.err, "run.log": log}) == []


def test_the_tenant_is_named_before_the_first_write_and_in_summary_json(
        tenant_env: Tenant, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 4: one line names tenant (display name, default domain, id), app (name, client
    id), verb and row count, after the checks and before the first write."""
    run = tmp_path / "run"
    assert main(["create", str(customers_file(tmp_path)), "--out-dir", str(run), "--quiet", "--verbose",
                 "--target", f"{ORIGIN}/v1.0"]) == 0
    err = capsys.readouterr().err.splitlines()
    named = ("entra-batch: create 3 rows in Fabrikam Customers (fabrikam.onmicrosoft.com, tenant t1) "
             "as app Onboarding tool (client id app-1)")
    assert named in err
    first_write = next(i for i, line in enumerate(err) if "POST /$batch" in line)
    assert err.index(named) < first_write
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["tenant"] == {"id": "t1", "display_name": "Fabrikam Customers",
                                 "default_domain": "fabrikam.onmicrosoft.com", "app_name": "Onboarding tool",
                                 "client_id": "app-1", "local": False}


def test_the_local_emulator_is_named_in_summary_json(home: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The built-in emulator is announced on stderr when it opens (as before); its tenant is
    in summary.json like any other."""
    run = tmp_path / "run"
    assert main(["create", str(customers_file(tmp_path)), "--out-dir", str(run), "--quiet"]) == 0
    assert " rows in " not in capsys.readouterr().err
    tenant = json.loads((run / "summary.json").read_text(encoding="utf-8"))["tenant"]
    assert tenant["display_name"] == "Contoso customers" and tenant["local"] is True
    assert tenant["default_domain"] == "contoso.onmicrosoft.com" and tenant["app_name"] == "entra-batch"


def test_json_prints_the_summary_as_one_document_and_nothing_else(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json: summary.json's content (run_dir included) is all of stdout; exit codes unchanged."""
    source = customers_file(tmp_path)
    run = tmp_path / "run"
    assert main(["create", str(source), "--out-dir", str(run), "--quiet", "--json"]) == 0
    out = capsys.readouterr()
    document = json.loads(out.out)
    assert document == json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert document["run_dir"] == str(run) and document["counts"]["created"] == 3
    assert "results:" not in out.out and "run folder" in out.err
    assert main(["create", str(source), "--out-dir", str(tmp_path / "again"), "--quiet", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["counts"]["failed"] == 3

    assert main(["export", "--out-dir", str(tmp_path / "export"), "--quiet", "--json"]) == 0
    out = capsys.readouterr()
    exported = json.loads(out.out)
    assert exported["verb"] == "export" and exported["customers"] == 3 and exported["run_dir"] == str(tmp_path / "export")
    assert main(["export", "--out", "-", "--quiet", "--json"]) == 2
    assert "--json and --out -" in capsys.readouterr().err


def test_the_throttle_wait_in_summary_json_is_the_wall_clock_hold(tmp_path: Path) -> None:
    """Finding 9: "waited 119.7 s" for a 34 s run was the workers' waits added up; the
    summary reports the wall-clock time sending was held, worded against the run's length."""
    run = tmp_path / "run"
    run.mkdir()
    journal = Journal(run)
    try:
        stats = ClientStats(throttled=3, retry_wait=100.0, pacing_wait=19.7, held_wait=12.3)
        summary = summarise(RunRequest(verb="create", input="in.csv"), Target(kind="local", graph_url="x"), journal,
                            run, stats, Progress(), 1000.0, 1034.0, False, ())
    finally:
        journal.close()
    assert summary.throttle_wait_seconds == 12.3


