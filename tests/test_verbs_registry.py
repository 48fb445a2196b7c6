"""The verbs' registry, their permission needs, and the field rules that create and update
share: what the CLI and a run build from, checked without the CLI."""

from __future__ import annotations

import pytest

from batch.io.columns import (
    PORTAL_CREATE_HEADER,
    PORTAL_DELETE_HEADER,
    PORTAL_RESTORE_HEADER,
)
from batch.io.csvio import Row
from batch.outcome import Status
from batch.verbs.base import Rejected, Verb
from batch.verbs.permissions import (
    CREATE,
    DELETE_RESTORE,
    ENABLE,
    IDENTITIES,
    PASSWORD,
    READ,
    UPDATE,
)
from batch.verbs.registry import VERBS, VerbSettings, build_verb

DOMAIN = "contoso.onmicrosoft.com"
EXT_APP = "5b2e9a7c-1f3d-4c8e-9a6b-2d4f8e1c3a5b"


def test_the_registry_lists_the_verbs_in_the_order_of_the_help() -> None:
    assert list(VERBS) == ["create", "delete", "update", "reset-password", "restore", "purge"]


@pytest.mark.parametrize("name", list(VERBS))
def test_each_verb_builds_with_its_name_and_columns(name: str) -> None:
    verb = build_verb(name, VerbSettings(domain=DOMAIN))
    assert isinstance(verb, Verb)
    assert verb.name == name and verb.columns is VERBS[name].columns
    assert VERBS[name].summary and VERBS[name].description and "examples:" in VERBS[name].epilog


def test_an_unknown_verb_is_named() -> None:
    with pytest.raises(ValueError, match="unknown verb 'frobnicate'"):
        build_verb("frobnicate", VerbSettings(domain=DOMAIN))


def test_options_and_confirmation() -> None:
    flags = {name: [option.flag for option in spec.options] for name, spec in VERBS.items()}
    assert flags == {"create": ["--on-existing", "--no-force-change", "--jit-migration",
                                "--legacy-id-attribute"], "delete": ["--yes"], "update": [],
                     "reset-password": ["--no-force-change", "--yes"], "restore": ["--yes"], "purge": ["--yes"]}
    assert {name: spec.confirm for name, spec in VERBS.items()} == {
        "create": "never", "delete": "above_limit", "update": "never", "reset-password": "never",
        "restore": "never", "purge": "always"}


@pytest.mark.parametrize("name, header", [
    ("create", PORTAL_CREATE_HEADER), ("delete", PORTAL_DELETE_HEADER), ("update", PORTAL_DELETE_HEADER),
    ("reset-password", PORTAL_DELETE_HEADER), ("restore", PORTAL_RESTORE_HEADER), ("purge", PORTAL_RESTORE_HEADER),
])
def test_templates(name: str, header: str) -> None:
    spec = VERBS[name]
    assert spec.template(portal=True) == f"version:v1.0\r\n{header}\r\n"
    assert spec.template() == ",".join(spec.columns.template_names) + "\r\n"


def test_every_verb_plans_its_own_dry_run() -> None:
    # A dry run reads the directory for every verb (tests/test_dry_run.py): there is no default
    # plan that only validates, so a verb without its own would not build.
    assert "plan" in Verb.__abstractmethods__


def test_settings_reach_the_verbs() -> None:
    create = build_verb("create", VerbSettings(domain=DOMAIN, on_existing="update"))
    assert create.needs.for_run(["signInName", "displayName"]) == (CREATE, READ, UPDATE, ENABLE)
    reset = build_verb("reset-password", VerbSettings(domain=DOMAIN, force_change_generated=False))
    assert reset.needs.for_run(["objectId"]) == (PASSWORD, READ)


@pytest.mark.parametrize("name, columns, needed", [
    ("create", ["signInName", "displayName", "blockSignIn"], (CREATE, READ)),
    ("update", ["objectId", "displayName"], (UPDATE, READ)),
    ("update", ["objectId", "blockSignIn", "accountEnabled"], (UPDATE, READ, ENABLE)),
    ("update", ["objectId", "newSignInName", "accountEnabled"], (UPDATE, READ, ENABLE, IDENTITIES)),
    ("delete", ["signInName"], (DELETE_RESTORE, READ)),
    ("restore", ["objectId"], (DELETE_RESTORE, READ)),
    ("purge", ["objectId"], (DELETE_RESTORE, READ)),
])
def test_permissions_a_run_needs(name: str, columns: list[str], needed: tuple[frozenset[str], ...]) -> None:
    verb = build_verb(name, VerbSettings(domain=DOMAIN))
    assert verb.needs.for_run(columns) == needed
    assert verb.needs.for_run(columns, reads_only=True) == (READ,)  # a dry run that reads only reads


def problems_of(name: str, app_id: str | None = EXT_APP, **cells: str) -> tuple[str, ...]:
    verb = build_verb(name, VerbSettings(domain=DOMAIN, extensions_app_id=app_id))
    key = {"signInName": "ada@example.com"} | ({"displayName": "Ada"} if name == "create" else {})
    result = verb.validate(Row(1, key | cells))
    assert isinstance(result, Rejected), result
    return result.problems


@pytest.mark.parametrize("cells, expected", [
    ({"usageLocation": "XX"}, "usageLocation 'XX' is not an ISO 3166-1 two-letter country code (e.g. US, FR, NA)"),
    ({"mail": "not-an-address"}, "mail 'not-an-address' is not a valid email address: "),
    ({"givenName": "x" * 65}, "givenName is 65 characters long; Entra allows 64"),
    ({"displayName": "<b>"}, "displayName cannot contain < or >"),
    ({"preferredLanguage": "english"}, "preferredLanguage 'english' is not a language tag such as en-US"),
    ({"blockSignIn": "maybe"}, "blockSignIn 'maybe' is not Yes/No (true/false, 1/0)"),
    ({"blockSignIn": "yes", "accountEnabled": "true"}, "blockSignIn and accountEnabled disagree"),
    ({"extension_0123456789abcdef0123456789abcdef_tier": "gold"}, "belongs to another app than the extensions app"),
    ({"extension_" + EXT_APP.replace("-", "") + "_tier": "x" * 257}, "is longer than 256 characters"),
])
def test_create_and_update_say_the_same_about_the_same_column(cells: dict[str, str], expected: str) -> None:
    for name in ("create", "update"):
        assert any(expected in problem for problem in problems_of(name, **cells)), name


def test_an_ext_column_is_checked_alike_in_both_without_the_tenants_attributes() -> None:
    """Offline (`validate`), with neither the catalog nor the app id: the name's form only, in
    create and update alike (a run reads the tenant's attributes before any row is checked)."""
    for name in ("create", "update"):
        verb = build_verb(name, VerbSettings(domain=DOMAIN))
        key = {"signInName": "ada@example.com"} | ({"displayName": "Ada"} if name == "create" else {})
        read = verb.validate(Row(1, key | {"ext.tier": "gold"}))
        assert not (isinstance(read, Rejected) and read.status is Status.INVALID), read
    expected = ("column 'ext.9 lives' is not a custom attribute name (ext.<name>)",)
    assert problems_of("create", None, **{"ext.9 lives": "gold"}) == expected
    assert problems_of("update", None, **{"ext.9 lives": "gold"}) == expected


def test_a_new_sign_in_name_is_checked_as_a_sign_in_name() -> None:
    assert problems_of("update", newSignInName="-dash") == (
        ("newSignInName '-dash' is not a valid user name: it must start with a letter or digit and hold only "
         "letters, digits, '-' and '_'"),)
    (problem,) = problems_of("update", newSignInName="a b@example.com")
    assert problem.startswith("newSignInName 'a b@example.com' is not a valid email address: ")
    assert problems_of("update", newSignInName="#clear") == ("newSignInName cannot be cleared",)


def test_a_key_that_email_validator_refuses_is_not_a_sign_in_name() -> None:
    verb = build_verb("delete", VerbSettings(domain=DOMAIN))
    result = verb.validate(Row(1, {"signInName": "0@00--0.aa"}))
    assert isinstance(result, Rejected)
    assert result.problems == ("signInName '0@00--0.aa' is neither an email address nor a user name",)
