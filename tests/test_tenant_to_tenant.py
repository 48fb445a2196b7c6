"""Tenant to tenant (issue 14, item 5 and Done-when 2, the identity side): an export of
tenant A is create's input in tenant B, another emulator with another domain and another
extensions app. B's export then matches A's except the object ids, the UPNs (Graph makes
them from the id and the domain) and the dates; local issuers are B's domain (they are not
in the export's columns), federated issuers are the provider's, the same in both. Two
custom attributes, declared in each tenant on its own extensions app, travel by name; with
`--legacy-id-attribute` A's object ids are kept in B."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

import batch
from batch.emulator import ALL_USER_PERMISSIONS, EmulatorApp, Store
from batch.emulator.inprocess import EmulatorTransport
from batch.emulator.store import USER_ADMINISTRATOR

CUSTOMERS = [  # signInName, displayName, federatedIssuer, federatedId, federatedIssuer2, federatedId2,
    #            ext.loyaltyTier (Integer), ext.newsletter (Boolean)
    ("ada@example.com", "Ada Lovelace", "google.com", "108000000000000000001", "", "", "3", "yes"),
    ("grace@example.com", "Grace Hopper", "", "", "", "", "1", ""),
    ("alan_t", "Alan Turing", "facebook.com", "5eecb0cd", "", "", "", "no"),
    ("", "Gina Google", "google.com", "108000000000000000002", "", "", "2", "true"),
    ("", "Sam Social", "google.com", "108000000000000000003", "facebook.com", "10150000000000003", "", ""),
]
ATTRIBUTES = (("loyaltyTier", "Integer"), ("newsletter", "Boolean"))
# Columns that differ between two tenants by nature: who the object is, and when it was made.
DIFFERENT = ("id", "userPrincipalName", "createdDateTime")


@dataclasses.dataclass
class Tenant:
    store: Store
    transport: EmulatorTransport
    target: batch.Target


def _tenant(path: Path, domain: str | None, kind: str = "external", *, legacy_id: bool = False) -> Tenant:
    store = Store(path)
    if domain is None:
        app = store.default_app()
    else:  # a tenant of its own, with its own domain and extensions app
        tenant = store.add_tenant(domain, display_name="Fabrikam customers", kind=kind)
        app = store.add_app(tenant.id, ALL_USER_PERMISSIONS, display_name="entra-batch",
                            directory_roles=(USER_ADMINISTRATOR,))
    found = store.tenant(app.tenant_id)
    assert found is not None
    for name, data_type in ATTRIBUTES:  # each tenant declares them on its own extensions app
        store.add_extension_property(found.id, name, data_type)
    if legacy_id:  # B keeps A's object ids (--legacy-id-attribute)
        store.add_extension_property(found.id, "legacyId", "String")
    target = batch.Target("url", "http://emulator.local/v1.0", tenant_id=found.id, client_id=app.client_id,
                          client_secret=app.secret, authority_host="http://emulator.local",
                          domain=found.default_domain)
    return Tenant(store, EmulatorTransport(EmulatorApp(store)), target)


@pytest.fixture(params=["external", "b2c"])
def tenants(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Tenant, Tenant]]:
    """A: an External ID tenant, or an Azure AD B2C one (a B2C export moving to External ID)."""
    # Both declare legacyId: A's export then carries an ext.legacyId column (blank), which
    # --legacy-id-attribute must not let win over A's object ids.
    a = _tenant(tmp_path / "a.db", None, legacy_id=True) if request.param == "external" else \
        _tenant(tmp_path / "a.db", "contosob2c.onmicrosoft.com", kind="b2c", legacy_id=True)
    b = _tenant(tmp_path / "b.db", "fabrikam.onmicrosoft.com", legacy_id=True)
    assert a.target.domain != b.target.domain
    assert a.store.tenant(a.target.tenant_id).extensions_app_id != \
        b.store.tenant(b.target.tenant_id).extensions_app_id  # type: ignore[union-attr]
    yield a, b
    a.store.close()
    b.store.close()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


async def _create(tenant: Tenant, source: Path, runs: Path, **options: str) -> batch.RunSummary:
    return await batch.start_run(batch.RunRequest(verb="create", input=str(source), **options),  # type: ignore[arg-type]
                                 tenant.target, runs_root=runs, transport=tenant.transport)


async def _export(tenant: Tenant, out: Path, runs: Path) -> list[dict[str, str]]:
    await batch.run_export(batch.ExportRequest(out=str(out), sequential=True), tenant.target, runs_root=runs,
                           transport=tenant.transport)
    return sorted(_rows(out), key=lambda r: r["displayName"])


async def test_an_export_of_one_tenant_creates_the_same_customers_in_another(
        tenants: tuple[Tenant, Tenant], tmp_path: Path) -> None:
    a, b = tenants
    source = tmp_path / "customers.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["signInName", "displayName", "federatedIssuer", "federatedId", "federatedIssuer2",
                         "federatedId2", "ext.loyaltyTier", "ext.newsletter"])
        writer.writerows(CUSTOMERS)
    made = await _create(a, source, tmp_path / "runs-a")
    assert made.counts["created"] == len(CUSTOMERS) and made.exit_code == batch.ExitCode.OK
    # Passwords for those with an email or user name only: the social-only customers have none.
    assert {r["sign_in_name"] for r in _rows(made.run_dir / "passwords.csv")} == \
        {"ada@example.com", "grace@example.com", "alan_t"}

    first = await _export(a, tmp_path / "a.csv", tmp_path / "runs-a")
    assert [r["signIn.federated"] for r in first] == [
        "google.com/108000000000000000001", "facebook.com/5eecb0cd", "google.com/108000000000000000002", "",
        "google.com/108000000000000000003; facebook.com/10150000000000003"]

    assert [(r["ext.loyaltyTier"], r["ext.newsletter"]) for r in first] == [
        ("3", "true"), ("", "false"), ("2", "true"), ("1", ""), ("", "")]  # by displayName

    moved = await _create(b, tmp_path / "a.csv", tmp_path / "runs-b", legacy_id_attribute="legacyId")
    assert moved.counts["created"] == len(CUSTOMERS) and moved.exit_code == batch.ExitCode.OK
    # The export's own columns are said once, not per row; each dropped UPN is said in its row.
    assert any(note.startswith("ignored columns: createdDateTime, creationType, ext.legacyId") for note in moved.notes), \
        moved.notes
    results = _rows(moved.run_dir / "results.csv")
    assert all("another tenant's; Graph generated a new one" in r["error_message"] for r in results)
    assert len(_rows(moved.run_dir / "passwords.csv")) == 3

    second = await _export(b, tmp_path / "b.csv", tmp_path / "runs-b")
    assert [{k: v for k, v in r.items() if k not in (*DIFFERENT, "ext.legacyId")} for r in second] == \
        [{k: v for k, v in r.items() if k not in (*DIFFERENT, "ext.legacyId")} for r in first]
    assert [r["ext.legacyId"] for r in second] == [r["id"] for r in first]  # A's ids, kept in B
    assert all(r["userPrincipalName"].endswith("@fabrikam.onmicrosoft.com") for r in second)
    assert not {r["id"] for r in second} & {r["id"] for r in first}

    # Local identities carry B's domain as their issuer; federated ones the provider's.
    b_tenant = b.target.tenant_id
    issuers = {(i["signInType"], i["issuer"]) for u in b.store.select_users(b_tenant, "live", limit=100)
               for i in u.data["identities"]}
    assert issuers == {("emailAddress", "fabrikam.onmicrosoft.com"), ("userName", "fabrikam.onmicrosoft.com"),
                       ("userPrincipalName", "fabrikam.onmicrosoft.com"), ("federated", "google.com"),
                       ("federated", "facebook.com")}


async def test_the_same_export_again_creates_nobody_twice(tenants: tuple[Tenant, Tenant], tmp_path: Path) -> None:
    """A federated-only customer is found by its identity, so `--on-existing skip` skips it
    (the lookup a lost answer's reconciliation uses too)."""
    a, b = tenants
    source = tmp_path / "social.csv"
    source.write_text("displayName,federatedIssuer,federatedId\r\nGina Google,google.com,108000000000000000002\r\n",
                      encoding="utf-8")
    assert (await _create(a, source, tmp_path / "runs")).counts["created"] == 1
    again = await batch.start_run(batch.RunRequest(verb="create", input=str(source), on_existing="skip"), a.target,
                                  runs_root=tmp_path / "runs", transport=a.transport)
    assert again.counts["skipped"] == 1
    [line] = _rows(again.run_dir / "results.csv")
    assert (line["key"], line["status"]) == ("google.com/108000000000000000002", "skipped")


async def test_custom_attributes_under_the_source_app_name_are_mapped_by_name(
        tenants: tuple[Tenant, Tenant], tmp_path: Path) -> None:
    """A file whose columns carry tenant A's Graph names (`extension_<A's app>_<name>`, as a B2C
    tool exports them) writes B's attributes of the same names, and the run says so."""
    a, b = tenants
    a_hex = a.store.tenant(a.target.tenant_id).extensions_app_id.replace("-", "")  # type: ignore[union-attr]
    b_hex = b.store.tenant(b.target.tenant_id).extensions_app_id.replace("-", "")  # type: ignore[union-attr]
    source = tmp_path / "b2c.csv"
    source.write_text(f"signInName,displayName,extension_{a_hex}_loyaltyTier,extension_{a_hex}_newsletter\r\n"
                      "ada@example.com,Ada Lovelace,7,true\r\n", encoding="utf-8")
    moved = await _create(b, source, tmp_path / "runs")
    assert moved.counts["created"] == 1
    assert any(f"custom attributes of app {a_hex}" in note and "loyaltyTier" in note for note in moved.notes)
    [user] = [u.data for u in b.store.select_users(b.target.tenant_id, "live", limit=10)]  # type: ignore[arg-type]
    assert (user[f"extension_{b_hex}_loyaltyTier"], user[f"extension_{b_hex}_newsletter"]) == (7, True)
    assert not any(key.startswith(f"extension_{a_hex}") for key in user)
