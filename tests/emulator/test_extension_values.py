"""The emulator writes a custom attribute only when the extensions app declares it, and only
a value of its declared type (batch/emulator/extensionvalues.py; extensionproperty.md)."""

from __future__ import annotations

import pytest
from emulator.helpers import customer, error_of, graph_error, unique_email

from batch.cli.emulator_command import add_attribute


def _invalid(name: str) -> dict[str, object]:
    return graph_error("Request_BadRequest", f"Invalid value specified for property '{name}' of resource 'User'.",
                       [{"target": name, "code": "InvalidValue"}])


async def test_an_attribute_never_declared_is_refused_not_declared_on_first_use(graph):
    name = f"extension_{graph.tenant.extensions_app_hex}_neverDeclared"
    response = await graph.post("/v1.0/users", json=customer(unique_email(), **{name: "x"}))
    assert response.status_code == 400
    assert error_of(response) == graph_error(
        "Request_BadRequest", f"Property '{name}' does not exist as a declared property or extension property.")
    listed = await graph.get(f"/v1.0/applications(appId='{graph.tenant.extensions_app_id}')/extensionProperties")
    assert name not in [p["name"] for p in listed.json()["value"]]


@pytest.mark.parametrize(("data_type", "good", "bad"), [
    ("Boolean", True, "true"),
    ("Integer", 2147483647, 2147483648),
    ("Integer", -5, 1.5),
    ("LargeInteger", 9007199254740993, "9007199254740993"),
    ("DateTime", "2024-01-31T00:00:00Z", "31/01/2024"),
    ("String", "x" * 256, "x" * 257),
    ("String", "plain", True),
    ("Binary", "AAEC", "not base64!"),
])
async def test_a_value_must_fit_the_declared_type(graph, data_type, good, bad):
    name = graph.store.add_extension_property(graph.tenant.id, f"attr{data_type}", data_type)
    created = await graph.create(customer(unique_email(), **{name: good}))
    read = await graph.get(f"/v1.0/users/{created['id']}", params={"$select": f"id,{name}"})
    assert read.json()[name] == good
    response = await graph.patch(f"/v1.0/users/{created['id']}", json={name: bad})
    assert response.status_code == 400
    assert error_of(response) == _invalid(name)


async def test_a_datetime_is_stored_in_utc(graph):
    name = graph.store.add_extension_property(graph.tenant.id, "joined", "DateTime")
    created = await graph.create(customer(unique_email(), **{name: "2024-01-31T08:30:00+02:00"}))
    read = await graph.get(f"/v1.0/users/{created['id']}", params={"$select": f"id,{name}"})
    assert read.json()[name] == "2024-01-31T06:30:00Z"


async def test_no_extensions_app_declares_nothing(graph):
    name = graph.store.add_extension_property(graph.tenant.id, "tier")
    graph.store.remove_extensions_app(graph.tenant.id)
    response = await graph.post("/v1.0/users", json=customer(unique_email(), **{name: "gold"}))
    assert response.status_code == 400


def test_add_attribute_declares_with_its_type(tmp_path, capsys):
    import argparse

    from batch.emulator.store import Store

    db = tmp_path / "emulator.db"
    Store(db).close()  # a directory the emulator made (add-attribute, like add-admin, never makes one)
    args = argparse.Namespace(user_code="loyaltyTier", type="integer", db=db)
    assert add_attribute(args) == 0
    assert "loyaltyTier (Integer)" in capsys.readouterr().err
    store = Store(db)
    try:
        tenant = store.default_app().tenant_id
        declared = store.declared_extensions(tenant)
        assert list(declared.values()) == ["Integer"]
        assert next(iter(declared)).endswith("_loyaltyTier")
    finally:
        store.close()
    assert add_attribute(argparse.Namespace(user_code="bad name", type=None, db=db)) == 2
    assert add_attribute(argparse.Namespace(user_code="ok", type="Float", db=db)) == 2
