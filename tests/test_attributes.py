"""Custom attributes by name and type (issue 14 items 2 and 5): the catalog read from the
tenant (batch/run/attributes.py), columns resolved through it (batch/verbs/fields.py
Extensions), each value checked against its declared type (batch/verbs/attribute_values.py),
and whole runs against the emulator that remember the catalog for resume."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import batch
from batch.auth import StaticTokenProvider
from batch.emulator import EmulatorApp, Store
from batch.emulator.inprocess import EmulatorTransport
from batch.errors import ConfigError, PermissionMissing
from batch.graph import GraphClient
from batch.io.columns import CREATE_COLUMNS, match_headers
from batch.run.attributes import claim_attribute_columns, foreign_note, read_catalog
from batch.verbs.attribute_values import parse_datetime, typed_value
from batch.verbs.attributes import Attribute, AttributeCatalog
from batch.verbs.fields import Extensions

APP = "11111111-2222-3333-4444-555555555555"
HEX = APP.replace("-", "")
OTHER = "0123456789abcdef0123456789abcdef"
CATALOG = AttributeCatalog.of(APP, [(f"extension_{HEX}_loyaltyTier", "Integer"),
                                    (f"extension_{HEX}_requiresMigration", "Boolean"),
                                    (f"extension_{HEX}_joined", "DateTime"),
                                    (f"extension_{HEX}_legacyId", "String"),
                                    (f"extension_{HEX}_points", "LargeInteger"),
                                    (f"extension_{HEX}_avatar", "Binary")])


def _attribute(data_type: str) -> Attribute:
    return Attribute("a", f"extension_{HEX}_a", data_type)


# --- types ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("data_type", "cell", "sent"), [
    ("Boolean", "TRUE", True), ("Boolean", "no", False), ("Boolean", "1", True), ("Boolean", "False", False),
    ("Integer", "42", 42), ("Integer", "-2147483648", -(1 << 31)), ("Integer", " +7 ", 7),
    ("LargeInteger", "9223372036854775807", (1 << 63) - 1),
    ("DateTime", "2024-01-31", "2024-01-31T00:00:00Z"),
    ("DateTime", "2024-01-31T08:30:00+02:00", "2024-01-31T06:30:00Z"),
    ("DateTime", "2024-01-31T08:30:00.1234567Z", "2024-01-31T08:30:00.1234567Z"),
    ("String", "true", "true"), ("String", "x" * 256, "x" * 256),
])
def test_a_value_that_fits_its_type_is_sent_as_graph_stores_it(data_type, cell, sent):
    problems: list[str] = []
    assert typed_value("ext.a", cell, _attribute(data_type), problems) == sent
    assert problems == []


@pytest.mark.parametrize(("data_type", "cell"), [
    ("Boolean", "maybe"), ("Integer", "2147483648"), ("Integer", "1.0"), ("Integer", "1,000"), ("Integer", "1e3"),
    ("LargeInteger", "9223372036854775808"), ("DateTime", "31/01/2024"), ("DateTime", "2024-02-30"),
    ("DateTime", "2024-01-31T25:00"), ("String", "x" * 257), ("Binary", "AAEC"),
])
def test_a_value_that_does_not_fit_its_type_is_one_problem_naming_column_type_and_example(data_type, cell):
    problems: list[str] = []
    assert typed_value("ext.a", cell, _attribute(data_type), problems) is None
    assert len(problems) == 1 and "ext.a" in problems[0] and data_type in problems[0]


@given(st.integers())
def test_integer_takes_exactly_the_32_bit_range(number):
    problems: list[str] = []
    got = typed_value("ext.a", str(number), _attribute("Integer"), problems)
    assert (got == number) == (-(1 << 31) <= number < (1 << 31))
    assert bool(problems) != (got == number)


@given(st.datetimes(timezones=st.sampled_from([UTC, None])))
def test_datetime_round_trips_through_utc(moment: datetime):
    stamp = parse_datetime(moment.isoformat())
    assert stamp is not None and stamp.endswith("Z")
    back = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert back == (moment if moment.tzinfo else moment.replace(tzinfo=UTC))


@given(st.text(max_size=30))
def test_datetime_never_raises(text):
    parse_datetime(text)


# --- columns ---------------------------------------------------------------------------------------

def test_ext_columns_are_found_by_name_without_an_app_id_and_typed():
    extensions = Extensions(None, CATALOG)
    problems: list[str] = []
    assert extensions.check("ext.LoyaltyTier", "3", problems) == (f"extension_{HEX}_loyaltyTier", 3)
    assert extensions.check(f"extension_{HEX}_requiresMigration", "yes", problems) == \
        (f"extension_{HEX}_requiresMigration", True)
    assert problems == []


def test_a_column_of_another_tenants_app_is_mapped_by_name():
    problems: list[str] = []
    assert Extensions(None, CATALOG).check(f"extension_{OTHER}_loyaltyTier", "9", problems) == \
        (f"extension_{HEX}_loyaltyTier", 9)
    assert problems == []
    note = foreign_note([f"extension_{OTHER}_loyaltyTier", "displayName"], CATALOG)
    assert note == f"custom attributes of app {OTHER} mapped by name to this tenant's: loyaltyTier"


def test_an_unknown_attribute_lists_the_tenants():
    problems: list[str] = []
    assert Extensions(None, CATALOG).check("ext.colour", "", problems) is None
    assert problems == []  # a blank cell loses nothing
    assert Extensions(None, CATALOG).check("ext.colour", "red", problems) is None
    assert problems == ["column 'ext.colour': this tenant has no custom attribute 'colour'; its custom attributes "
                        "are: avatar (Binary), joined (DateTime), legacyId (String), loyaltyTier (Integer), "
                        "points (LargeInteger), requiresMigration (Boolean)"]


def test_without_a_catalog_today_s_behaviour_stays():
    problems: list[str] = []
    assert Extensions(APP).check("ext.anything", "true", problems) == (f"extension_{HEX}_anything", True)
    assert Extensions(APP).check("ext.anything", "12x", problems) == (f"extension_{HEX}_anything", "12x")
    assert problems == []


def _match(headers: list[str]):
    return match_headers(headers, CREATE_COLUMNS)


def test_a_bare_attribute_name_is_claimed_once_the_catalog_is_known():
    headers = ["signInName", "displayName", "LoyaltyTier", "favourite"]
    match = claim_attribute_columns(headers, _match(headers), CATALOG)
    assert match.by_index[2] == "ext.LoyaltyTier"
    assert match.unknown == ["favourite"]


def test_a_bare_name_is_left_alone_where_ambiguous():
    headers = ["signInName", "displayName", "loyaltyTier", "ext.loyaltyTier", "joined", "Joined"]
    match = claim_attribute_columns(headers, _match(headers), CATALOG)
    assert 2 not in match.by_index and 4 not in match.by_index and 5 not in match.by_index
    # a known column keeps its header even when an attribute shares its name
    city = AttributeCatalog.of(APP, [(f"extension_{HEX}_city", "String")])
    headers = ["signInName", "displayName", "city"]
    assert claim_attribute_columns(headers, _match(headers), city).by_index[2] == "city"


def test_legacy_id_claims_the_export_s_id_column():
    headers = ["id", "signInName", "displayName"]
    match = claim_attribute_columns(headers, _match(headers), CATALOG, legacy_id="legacyId")
    assert match.by_index[0] == "ext.legacyId" and match.unknown == []


# --- reading the catalog ---------------------------------------------------------------------------

APPS = {"value": [{"id": "obj-1", "appId": APP, "displayName": "b2c-extensions-app. Do not modify."}]}
PROPS = {"value": [{"name": f"extension_{HEX}_loyaltyTier", "dataType": "Integer", "targetObjects": ["User"]},
                   {"name": f"extension_{HEX}_groupOnly", "dataType": "String", "targetObjects": ["Group"]}]}


async def _read(apps: tuple[int, object], props: tuple[int, object] = (200, PROPS), configured: str | None = None):
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        status, body = apps if request.url.path.endswith("/applications") else props
        return httpx.Response(status, json=body)

    client = GraphClient("https://graph.test/v1.0", StaticTokenProvider("token"), transport=httpx.MockTransport(handler))
    try:
        return await read_catalog(client, configured), asked
    finally:
        await client.aclose()


async def test_the_extensions_app_is_found_by_itself_and_its_user_attributes_read():
    reading, asked = await _read((200, APPS))
    assert reading.catalog == AttributeCatalog(APP, (Attribute("loyaltyTier", f"extension_{HEX}_loyaltyTier",
                                                               "Integer"),))
    assert "startswith(displayName,'b2c-extensions-app')" in httpx.URL(asked[0]).params["$filter"]
    assert "/applications/obj-1/extensionProperties" in asked[1]


async def test_a_missing_permission_is_said_and_stops_a_run_that_needs_it_with_exit_3():
    reading, _ = await _read((403, {"error": {"code": "Authorization_RequestDenied", "message": "no"}}))
    assert reading.catalog is None and reading.permission
    with pytest.raises(PermissionMissing) as stopped:
        reading.required("client-1")
    assert stopped.value.missing == ["Application.Read.All"] and stopped.value.exit_code == 3


async def test_a_tenant_without_extensions_app_stops_a_run_that_needs_it_with_exit_2():
    reading, asked = await _read((200, {"value": []}))
    assert reading.catalog is None and len(asked) == 1
    with pytest.raises(ConfigError, match="no b2c-extensions-app"):
        reading.required()


async def test_a_configured_app_id_that_is_not_the_tenants_is_refused():
    reading, _ = await _read((200, APPS), configured="99999999-2222-3333-4444-555555555555")
    assert reading.catalog is None and reading.wrong_app
    with pytest.raises(ConfigError, match=f"is not this tenant's b2c-extensions-app \\(app id {APP}\\)"):
        reading.required()
    same, _ = await _read((200, APPS), configured=APP.upper())
    assert same.catalog is not None


# --- runs against the emulator -------------------------------------------------------------------------

@dataclasses.dataclass
class Emulator:
    store: Store
    transport: EmulatorTransport
    target: batch.Target
    tenant_id: str
    client_id: str


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    store = Store(tmp_path / "emulator.db")
    app = store.default_app()
    tenant = store.tenant(app.tenant_id)
    assert tenant is not None
    target = batch.Target("url", "http://emulator.local/v1.0", tenant_id=tenant.id, client_id=app.client_id,
                          client_secret=app.secret, authority_host="http://emulator.local",
                          domain=tenant.default_domain)
    yield Emulator(store, EmulatorTransport(EmulatorApp(store)), target, tenant.id, app.client_id)
    store.close()


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _results(run_dir: Path) -> dict[str, dict[str, str]]:
    with (run_dir / "results.csv").open(newline="", encoding="utf-8-sig") as handle:
        return {r["row"]: r for r in csv.DictReader(handle)}


async def test_a_create_run_writes_attributes_by_name_typed_and_refuses_bad_cells(emulator: Emulator, tmp_path: Path):
    tier = emulator.store.add_extension_property(emulator.tenant_id, "loyaltyTier", "Integer")
    flag = emulator.store.add_extension_property(emulator.tenant_id, "requiresMigration", "Boolean")
    legacy = emulator.store.add_extension_property(emulator.tenant_id, "legacyId", "String")
    source = _write(tmp_path / "in.csv", [
        ["id", "signInName", "displayName", "ext.loyaltyTier", "RequiresMigration", f"extension_{OTHER}_legacyId"],
        ["old-1", "ann@example.com", "Ann", "3", "Yes", "L-1"],
        ["old-2", "bob@example.com", "Bob", "three", "maybe", ""],
    ])
    request = batch.RunRequest(verb="create", input=str(source))  # the id is ignored; legacyId from the foreign column
    summary = await batch.start_run(request, emulator.target, runs_root=tmp_path / "runs",
                                    transport=emulator.transport)
    results = _results(summary.run_dir)
    assert results["1"]["status"] == "created"
    assert results["2"]["status"] == "invalid"
    assert "ext.loyaltyTier 'three' is not a valid Integer" in results["2"]["error_message"]
    assert "RequiresMigration 'maybe' is not a valid Boolean" in results["2"]["error_message"]
    user = emulator.store.user(emulator.tenant_id, results["1"]["object_id"], ("live",))
    assert user is not None
    assert (user.data[tier], user.data[flag], user.data[legacy]) == (3, True, "L-1")
    assert any(n.startswith(f"custom attributes of app {OTHER} mapped by name") for n in summary.notes)


async def test_a_file_naming_no_attribute_starts_without_reading_the_catalog(emulator: Emulator, tmp_path: Path):
    """Only known columns and no option naming an attribute: the extensions app and its
    attributes are not asked for (two round trips before the first row, 0.6 s at 300 ms)."""
    asked: list[str] = []

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            asked.append(request.url.path)
            return await emulator.transport.handle_async_request(request)

    source = _write(tmp_path / "in.csv", [["signInName", "displayName"], ["ann@example.com", "Ann"]])
    summary = await batch.start_run(batch.RunRequest(verb="create", input=str(source)), emulator.target,
                                    runs_root=tmp_path / "runs", transport=Recording())
    assert summary.counts["created"] == 1
    assert asked and not [path for path in asked if "/applications" in path]
    # A column that may be an attribute by its bare name still needs it.
    source = _write(tmp_path / "more.csv", [["signInName", "displayName", "loyaltyTier"], ["bo@example.com", "Bo", "3"]])
    await batch.start_run(batch.RunRequest(verb="create", input=str(source)), emulator.target,
                          runs_root=tmp_path / "runs", transport=Recording())
    assert [path for path in asked if path.endswith("/applications")]


async def test_legacy_id_wins_over_the_files_own_column_of_that_attribute(emulator: Emulator, tmp_path: Path):
    """An export of a tenant that has the same attribute carries its column (blank, or an older
    system's id): --legacy-id-attribute asks for the object id, so that column is left out, and
    listed with the ignored columns (trial: it silently won, and the object ids were lost)."""
    legacy = emulator.store.add_extension_property(emulator.tenant_id, "legacyId", "String")
    source = _write(tmp_path / "in.csv", [
        ["id", "signInName", "displayName", f"extension_{OTHER}_legacyId"],
        ["old-1", "ann@example.com", "Ann", "L-1"], ["old-2", "bob@example.com", "Bob", ""]])
    request = batch.RunRequest(verb="create", input=str(source), legacy_id_attribute="legacyId")
    summary = await batch.start_run(request, emulator.target, runs_root=tmp_path / "runs",
                                    transport=emulator.transport)
    results = _results(summary.run_dir)
    kept = [emulator.store.user(emulator.tenant_id, results[n]["object_id"], ("live",)) for n in ("1", "2")]
    assert [u.data[legacy] for u in kept if u is not None] == ["old-1", "old-2"]
    assert any(n.startswith("ignored columns: ") and f"extension_{OTHER}_legacyId" in n for n in summary.notes)


async def test_legacy_id_keeps_an_exports_object_id(emulator: Emulator, tmp_path: Path):
    legacy = emulator.store.add_extension_property(emulator.tenant_id, "legacyId", "String")
    source = _write(tmp_path / "in.csv", [["id", "signInName", "displayName"],
                                          ["0b6851cf-e539-4fb6-a7f1-e623c08ce287", "cy@example.com", "Cy"]])
    request = batch.RunRequest(verb="create", input=str(source), legacy_id_attribute="legacyId")
    summary = await batch.start_run(request, emulator.target, runs_root=tmp_path / "runs",
                                    transport=emulator.transport)
    row = _results(summary.run_dir)["1"]
    user = emulator.store.user(emulator.tenant_id, row["object_id"], ("live",))
    assert user is not None and user.data[legacy] == "0b6851cf-e539-4fb6-a7f1-e623c08ce287"
    assert not any(n.startswith("ignored columns") for n in summary.notes)


async def test_legacy_id_must_name_a_string_attribute(emulator: Emulator, tmp_path: Path):
    emulator.store.add_extension_property(emulator.tenant_id, "legacyId", "Integer")
    source = _write(tmp_path / "in.csv", [["id", "signInName", "displayName"], ["x", "di@example.com", "Di"]])
    request = batch.RunRequest(verb="create", input=str(source), legacy_id_attribute="legacyId",
                               out_dir=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match="--legacy-id-attribute legacyId is a Integer"):
        await batch.start_run(request, emulator.target, transport=emulator.transport)
    assert not (tmp_path / "run").exists()


async def test_an_unknown_attribute_makes_rows_invalid_listing_the_tenants(emulator: Emulator, tmp_path: Path):
    emulator.store.add_extension_property(emulator.tenant_id, "loyaltyTier", "Integer")
    source = _write(tmp_path / "in.csv", [["signInName", "displayName", "ext.colour"], ["ed@example.com", "Ed", "red"]])
    summary = await batch.start_run(batch.RunRequest(verb="create", input=str(source)), emulator.target,
                                    runs_root=tmp_path / "runs", transport=emulator.transport)
    message = _results(summary.run_dir)["1"]["error_message"]
    assert "no custom attribute 'colour'; its custom attributes are: loyaltyTier (Integer)" in message


async def test_an_attribute_the_tenant_lacks_holds_back_only_the_rows_that_give_it_a_value(emulator: Emulator,
                                                                                              tmp_path: Path):
    """An export of another tenant carries its attributes; one this tenant lacks, blank in most
    rows, must not make every row invalid: only a row that would lose a value is held back."""
    emulator.store.add_extension_property(emulator.tenant_id, "loyaltyTier", "Integer")
    source = _write(tmp_path / "in.csv", [["signInName", "displayName", "ext.colour", "ext.loyaltyTier"],
                                          ["ed@example.com", "Ed", "", "3"], ["fay@example.com", "Fay", "red", ""],
                                          ["gus@example.com", "Gus", " ", ""]])
    summary = await batch.start_run(batch.RunRequest(verb="create", input=str(source)), emulator.target,
                                    runs_root=tmp_path / "runs", transport=emulator.transport)
    lines = _results(summary.run_dir)
    assert [lines[n]["status"] for n in ("1", "2", "3")] == ["created", "invalid", "created"]
    assert "no custom attribute 'colour'" in lines["2"]["error_message"]


async def test_without_application_read_all_a_file_with_attributes_stops_before_sending(emulator: Emulator,
                                                                                        tmp_path: Path):
    from batch.emulator.store import ALL_USER_PERMISSIONS
    emulator.store.set_app_roles(emulator.client_id, [p for p in ALL_USER_PERMISSIONS if p != "Application.Read.All"])
    source = _write(tmp_path / "in.csv", [["signInName", "displayName", "ext.tier"], ["fi@example.com", "Fi", "1"]])
    with pytest.raises(PermissionMissing, match="Application.Read.All"):
        await batch.start_run(batch.RunRequest(verb="create", input=str(source)), emulator.target,
                              runs_root=tmp_path / "runs", transport=emulator.transport)
    # a file without custom attribute columns goes on as before, unless the run names an attribute itself
    plain = _write(tmp_path / "plain.csv", [["signInName", "displayName"], ["gi@example.com", "Gi"]])
    with pytest.raises(PermissionMissing, match="Application.Read.All"):
        await batch.start_run(batch.RunRequest(verb="create", input=str(plain), jit_migration="requiresMigration"),
                              emulator.target, runs_root=tmp_path / "runs", transport=emulator.transport)
    summary = await batch.start_run(batch.RunRequest(verb="create", input=str(plain)), emulator.target,
                                    runs_root=tmp_path / "runs", transport=emulator.transport)
    assert summary.counts["created"] == 1


async def test_resume_validates_with_the_catalog_the_run_started_with(emulator: Emulator, tmp_path: Path):
    from batch.run.journal import Journal
    from batch.run.lifecycle import _attributes

    emulator.store.add_extension_property(emulator.tenant_id, "tier", "Integer")
    source = _write(tmp_path / "in.csv", [["signInName", "displayName", "ext.tier"], ["ho@example.com", "Ho", "2"]])
    run_dir = tmp_path / "run"
    request = batch.RunRequest(verb="create", input=str(source), out_dir=str(run_dir), dry_run=True)
    await batch.start_run(request, emulator.target, transport=emulator.transport)
    journal = Journal(run_dir)
    try:
        saved = journal.meta()["attributes"]
        found = AttributeCatalog.from_meta(saved).find("tier")
        assert found is not None and found.data_type == "Integer"

        class NoGraph:  # a resumed run must not read the catalog again
            client_ids: list[str] = []

            @property
            def client(self) -> GraphClient:
                raise AssertionError("the catalog was read again")

        match = _match(["signInName", "displayName", "ext.tier"])
        again = await _attributes(request, emulator.target, journal, NoGraph(), match)  # type: ignore[arg-type]
        assert again == AttributeCatalog.from_meta(saved)
        journal.set_meta(attributes={"not": "a catalog"})  # edited or damaged: said, no traceback
        with pytest.raises(ConfigError, match="cannot be read"):
            await _attributes(request, emulator.target, journal, NoGraph(), match)  # type: ignore[arg-type]
    finally:
        journal.close()


async def test_export_finds_the_extensions_app_by_itself(emulator: Emulator, tmp_path: Path):
    assert emulator.target.extensions_app_id is None  # nothing configured
    tier = emulator.store.add_extension_property(emulator.tenant_id, "loyaltyTier", "Integer")
    source = _write(tmp_path / "in.csv", [["signInName", "displayName", "loyaltyTier"], ["jo@example.com", "Jo", "7"]])
    summary = await batch.start_run(batch.RunRequest(verb="create", input=str(source)), emulator.target,
                                    runs_root=tmp_path / "runs", transport=emulator.transport)
    assert summary.counts["created"] == 1 and tier
    out = tmp_path / "all.csv"
    await batch.run_export(batch.ExportRequest(out=str(out), sequential=True), emulator.target,
                           runs_root=tmp_path / "runs", transport=emulator.transport)
    with out.open(newline="", encoding="utf-8-sig") as handle:
        assert [r["ext.loyaltyTier"] for r in csv.DictReader(handle)] == ["7"]
    narrow = tmp_path / "narrow.csv"
    await batch.run_export(batch.ExportRequest(out=str(narrow), sequential=True, select="displayName,ext.LOYALTYTIER"),
                           emulator.target, runs_root=tmp_path / "runs", transport=emulator.transport)
    with narrow.open(newline="", encoding="utf-8-sig") as handle:
        assert list(csv.DictReader(handle)) == [{"id": summary_id(summary), "displayName": "Jo",
                                                 "ext.loyaltyTier": "7"}]


def summary_id(summary: batch.RunSummary) -> str:
    return _results(summary.run_dir)["1"]["object_id"]


def test_update_checks_attribute_types_through_the_catalog():
    from batch.io.csvio import Row
    from batch.verbs.base import Rejected
    from batch.verbs.update import UpdateVerb

    verb = UpdateVerb("contoso.onmicrosoft.com", None, CATALOG)
    key = "0b6851cf-e539-4fb6-a7f1-e623c08ce287"
    bad = verb.validate(Row(1, {"objectId": key, "ext.loyaltyTier": "gold", "joined": ""}))
    assert isinstance(bad, Rejected)
    assert bad.problems == ("ext.loyaltyTier 'gold' is not a valid Integer (loyaltyTier is declared Integer): write a "
                            "whole number from -2147483648 to 2147483647, such as 42",)
    fresh = UpdateVerb("contoso.onmicrosoft.com", None, CATALOG)
    good = fresh.validate(Row(2, {"objectId": key, "ext.loyaltyTier": "5", f"extension_{OTHER}_joined": "#clear"}))
    assert not isinstance(good, Rejected)
    assert good.changes == {f"extension_{HEX}_loyaltyTier": 5, f"extension_{HEX}_joined": None}


def test_validate_on_the_built_in_emulator_claims_bare_names_as_a_run_does(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`validate` and `create` agree on a column named by the attribute alone: its values are
    checked against the declared type, and it is not an ignored column."""
    from batch.cli import main

    store = Store(home / "emulator.db")
    try:
        store.add_extension_property(store.tenants()[0].id, "loyaltyTier", "Integer")
    finally:
        store.close()
    source = tmp_path / "in.csv"
    source.write_text("signInName,displayName,LoyaltyTier\r\na@example.com,A,3\r\nb@example.com,B,gold\r\n",
                      encoding="utf-8")
    assert main(["validate", str(source), "--verb", "create"]) == 1
    said = capsys.readouterr()
    assert "ignored columns" not in said.err
    assert said.out.startswith("row 2: ") and "Integer" in said.out and "row 1" not in said.out


def test_add_attribute_sets_up_a_fresh_built_in_emulator_and_never_retypes(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's JIT road starts with `emulator add-attribute` on a machine where nothing ran
    yet; an attribute keeps its name and type, as in the admin center."""
    from batch.cli import main

    assert main(["emulator", "add-attribute", "vip", "--type", "Boolean"]) == 0
    assert main(["emulator", "add-attribute", "vip", "--type", "Boolean"]) == 0  # again: nothing changes
    assert main(["emulator", "add-attribute", "vip", "--type", "String"]) == 2
    assert main(["emulator", "add-attribute", "VIP", "--type", "Boolean"]) == 2
    assert "declared already, as a Boolean" in capsys.readouterr().err
    store = Store(home / "emulator.db")
    try:
        assert list(store.declared_extensions(store.tenants()[0].id).values()) == ["Boolean"]
    finally:
        store.close()


def test_validate_against_a_tenant_says_what_it_could_not_check(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Offline, a tenant's attributes are unknown: an ext.<name> column is checked by its form
    (a run finds the extensions app by itself, so no app id is needed), and validate says so."""
    from batch.cli import main

    source = tmp_path / "in.csv"
    source.write_text("signInName,displayName,ext.zzz\r\na@example.com,A,maybe\r\n", encoding="utf-8")
    assert main(["validate", str(source), "--verb", "create", "--target", "http://127.0.0.1:9/v1.0",
                 "--domain", "contoso.onmicrosoft.com"]) == 0
    assert "checked by their form only" in capsys.readouterr().err


# --- which app is the extensions app (review finding 10) -----------------------------------------

REAL_NAME = "b2c-extensions-app. Do not modify. Used by AADB2C for storing user data."
IMPOSTOR = "22222222-2222-3333-4444-555555555555"


async def test_an_app_merely_named_like_the_extensions_app_is_not_taken_for_it():
    """Any app registration may be named b2c-extensions-app-…: it comes first in the answer."""
    apps = {"value": [{"id": "obj-2", "appId": IMPOSTOR, "displayName": "b2c-extensions-app-copy"},
                      {"id": "obj-1", "appId": APP, "displayName": REAL_NAME}]}
    reading, asked = await _read((200, apps))
    assert reading.catalog is not None and reading.catalog.app_id == APP
    assert "/applications/obj-1/extensionProperties" in asked[1]
    configured, asked = await _read((200, apps), configured=IMPOSTOR)
    assert configured.catalog is not None and configured.catalog.app_id == IMPOSTOR  # the administrator said so
    assert "/applications/obj-2/extensionProperties" in asked[1]


async def test_several_apps_with_the_extensions_app_s_name_are_refused_rather_than_guessed():
    apps = {"value": [{"id": "obj-2", "appId": IMPOSTOR, "displayName": REAL_NAME},
                      {"id": "obj-1", "appId": APP, "displayName": REAL_NAME}]}
    reading, asked = await _read((200, apps))
    assert reading.catalog is None and len(asked) == 1
    with pytest.raises(ConfigError, match=f"several applications .* \\(app ids {IMPOSTOR}, {APP}\\): set "
                                          "--extensions-app-id"):
        reading.required()
    chosen, _ = await _read((200, apps), configured=APP)
    assert chosen.catalog is not None and chosen.catalog.app_id == APP


# --- bare attribute names when the catalog cannot be read (review finding 1) ---------------------

async def test_without_application_read_all_a_bare_attribute_column_stops_the_run_naming_it(emulator: Emulator,
                                                                                             tmp_path: Path):
    """`loyaltyTier` may be a custom attribute named bare: without the catalog it cannot be
    told, so the run stops (exit 3) rather than create customers without it."""
    from batch.emulator.store import ALL_USER_PERMISSIONS
    emulator.store.add_extension_property(emulator.tenant_id, "loyaltyTier", "Integer")
    emulator.store.set_app_roles(emulator.client_id, [p for p in ALL_USER_PERMISSIONS if p != "Application.Read.All"])
    source = _write(tmp_path / "in.csv", [["signInName", "displayName", "loyaltyTier"], ["fi@example.com", "Fi", "3"]])
    for dry_run in (False, True):
        with pytest.raises(PermissionMissing) as stopped:
            await batch.start_run(batch.RunRequest(verb="create", input=str(source), dry_run=dry_run),
                                  emulator.target, runs_root=tmp_path / "runs", transport=emulator.transport)
        assert stopped.value.exit_code == 3
        assert ("The file's columns loyaltyTier may be custom attributes, which cannot be told without the tenant's "
                "list: grant Application.Read.All, or write the column as ext.loyaltyTier, or remove the column"
                in str(stopped.value))
    assert emulator.store.select_users(emulator.tenant_id, "live", limit=10) == []


async def test_an_exports_own_columns_never_stop_a_run_that_cannot_read_the_attributes(emulator: Emulator,
                                                                                       tmp_path: Path):
    """An export is update's input as it is (PRODUCT.md): its createdDateTime, creationType and
    signIn.* columns are Graph's or export's own, never a custom attribute named bare, so an app
    without Application.Read.All still updates from it (they are listed as ignored)."""
    from batch.emulator.store import ALL_USER_PERMISSIONS
    emulator.store.set_app_roles(emulator.client_id, [p for p in ALL_USER_PERMISSIONS if p != "Application.Read.All"])
    made = _write(tmp_path / "new.csv", [["signInName", "displayName"], ["jo@example.com", "Jo"]])
    assert (await batch.start_run(batch.RunRequest(verb="create", input=str(made)), emulator.target,
                                  runs_root=tmp_path / "runs", transport=emulator.transport)).counts["created"] == 1
    source = _write(tmp_path / "export.csv", [
        ["signInName", "displayName", "signIn.emailAddress", "createdDateTime", "creationType", "restorableUntil"],
        ["jo@example.com", "Jo Renamed", "jo@example.com", "2025-01-01T00:00:00Z", "LocalAccount", ""]])
    summary = await batch.start_run(batch.RunRequest(verb="update", input=str(source)), emulator.target,
                                    runs_root=tmp_path / "runs", transport=emulator.transport)
    assert summary.counts["updated"] == 1
    assert any(n.startswith("ignored columns: ") and "createdDateTime" in n for n in summary.notes)


async def test_a_bare_column_stops_with_exit_2_when_graph_cannot_list_the_attributes(tmp_path: Path):
    """A failed listing (here a 404: the app was just deleted): the same stop, as a
    ConfigError (exit 2), naming the columns."""
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/applications"):
            return httpx.Response(200, json=APPS)
        return httpx.Response(404, json={"error": {"code": "Request_ResourceNotFound", "message": "gone"}})

    client = GraphClient("https://graph.test/v1.0", StaticTokenProvider("token"), transport=httpx.MockTransport(handler))
    try:
        reading = await read_catalog(client, None)
    finally:
        await client.aclose()
    assert reading.catalog is None and not reading.absent and not reading.permission
    with pytest.raises(ConfigError, match="HTTP 404.*The file's columns loyaltyTier, notes may be custom attributes"):
        reading.required(columns=["loyaltyTier", "notes"])


async def test_a_tenant_without_extensions_app_has_no_attributes_to_miss(tmp_path: Path):
    """No extensions app at all: an unknown column cannot be a custom attribute (ignored, as before)."""
    reading, _ = await _read((200, {"value": []}))
    assert reading.absent
