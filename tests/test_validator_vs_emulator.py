"""The create verb's validation against the emulator's rules, one rule class at a time.

A row that `CreateRows.read` accepts becomes a body that the emulator must create (201); a row
it refuses must be refused by the emulator too, for the same property. So a wrong belief of
ours about Graph (a rule too loose or too strict) shows up here as a disagreement. Each class
varies one column of an otherwise valid row near the edges of its rule; the emulator's refusal
is classified by the property it names (`error.details[0].target`).

Rules the client keeps on purpose and the emulator has not (a tab or line break in a one-line
field; `<` and `>` in displayName, a B2C rule [B2CAttrs] that External ID does not document;
the Yes/No spelling of flags) are not generated here.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from emulator.helpers import DOMAIN, FakeClock, Graph, build_graph
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from batch import rules
from batch.emulator import EmulatorSettings, Store
from batch.io.csvio import Row
from batch.verbs.attributes import AttributeCatalog
from batch.verbs.base import Rejected
from batch.verbs.create_rows import CreateOptions, CreatePlan, CreateRows

PASSWORD = "Xy12345678!"
LOCAL_CHARS = "abcXYZ019.+_-'!#~^é"
DOMAINS = ["example.com", "ex-ample.co.uk", "exämple.com", "example", "a.b", "xn--bcher-kva.example",
           "example.c0m", "sub.example.travel"]
CASES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass
class Verdicts:
    validator: tuple[str, ...]  # the row's problems (empty: accepted)
    status: int
    target: str | None          # the property the emulator's refusal names
    answer: str


class Bench:
    """One emulator on one event loop, and the validator with the tenant's options."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = Store(":memory:")
        self.graph: Graph = build_graph(self.store, EmulatorSettings(), FakeClock())
        tenant = self.graph.tenant
        # Graph writes only declared attributes; the validator knows them as a run does (its catalog).
        declared = self.store.add_extension_property(tenant.id, "loyaltyLevel", "String")
        self.options = CreateOptions(domain=DOMAIN, extensions_app_id=tenant.extensions_app_id,
                                     attributes=AttributeCatalog.of(tenant.extensions_app_id, [(declared, "String")]))
        self.counter = itertools.count()

    def close(self) -> None:
        self.loop.run_until_complete(self.graph.client.aclose())
        self.loop.close()
        self.store.close()

    def unique_email(self) -> str:
        return f"base{next(self.counter)}@example.com"

    def judge(self, cells: dict[str, str], raw: Callable[[dict[str, Any]], None]) -> Verdicts:
        """The validator's verdict on the row, and the emulator's on its body: the validator's
        own body when it accepts the row, else the valid base body with `raw` applied."""
        rows = CreateRows(self.options)
        read = rows.read(Row(2, cells))
        if isinstance(read, Rejected):
            base = CreateRows(self.options).read(Row(2, {**cells, **self._valid_overrides(cells)}))
            assert isinstance(base, CreatePlan), base
            body = copy.deepcopy(base.with_password().body)
            raw(body)
            problems = read.problems
        else:
            body = read.with_password().body
            problems = ()
        return self.loop.run_until_complete(self._post(body, problems))

    def _valid_overrides(self, cells: dict[str, str]) -> dict[str, str]:
        valid = {"displayName": "Base Person", "signInName": self.unique_email(), "signInType": "emailAddress",
                 "password": PASSWORD, "usageLocation": "US", "mail": "", "forceChangePasswordNextSignIn": "no"}
        valid.update({k: "x" for k in cells if k in rules.PROPERTY_MAX_LENGTHS and k not in valid})
        valid.update({k: "" for k in cells if k.startswith("extension_") or k == "preferredLanguage"})
        if "userPrincipalName" in cells:
            valid.update(userPrincipalName=f"base{next(self.counter)}@{DOMAIN}", signInName="")
        return {k: v for k, v in valid.items() if k in cells or k in ("displayName", "password")}

    async def _post(self, body: dict[str, Any], problems: tuple[str, ...]) -> Verdicts:
        response = await self.graph.post("/v1.0/users", json=body)
        target = None
        if response.status_code == 201:
            # Free the names again (soft delete frees sign-in names and the UPN, GRAPH.md §15.2).
            await self.graph.delete(f"/v1.0/users/{response.json()['id']}")
        else:
            details = response.json().get("error", {}).get("details") or [{}]
            target = details[0].get("target")
        return Verdicts(problems, response.status_code, target, response.text[:300])


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    b = Bench()
    yield b
    b.close()


def agree(verdicts: Verdicts, targets: set[str]) -> None:
    refused_by_emulator = verdicts.status != 201
    assert verdicts.status in (201, 400), verdicts
    if refused_by_emulator:
        assert verdicts.target in targets, f"the emulator refused for another property: {verdicts}"
    assert bool(verdicts.validator) == refused_by_emulator, (
        f"validator {'refuses' if verdicts.validator else 'accepts'} but the emulator answers {verdicts.status}: "
        f"{verdicts}")


# ---- the rule classes --------------------------------------------------------------------

def emails() -> st.SearchStrategy[str]:
    local = st.text(alphabet=LOCAL_CHARS, min_size=0, max_size=66)
    return st.builds(lambda lp, d: f"{lp}@{d}", local, st.sampled_from(DOMAINS))


def near(limit: int) -> st.SearchStrategy[int]:
    return st.integers(min_value=max(limit - 2, 0), max_value=limit + 2)


@CASES
@given(name=st.one_of(st.text(alphabet="Ab é'-.", min_size=0, max_size=8), near(256).map(lambda n: "a" * n)))
def test_display_name(bench: Bench, name: str) -> None:
    cells = {"displayName": name, "signInName": bench.unique_email(), "password": PASSWORD}
    agree(bench.judge(cells, lambda body: body.update(displayName=name.strip())), {"displayName"})


@CASES
@given(address=emails())
@example(address="a@b.c")
@example(address="zoë@example.com")
def test_email_sign_in_name(bench: Bench, address: str) -> None:
    cells = {"displayName": "Mail Person", "signInName": address, "signInType": "emailAddress", "password": PASSWORD}

    def raw(body: dict[str, Any]) -> None:
        body["identities"][0]["issuerAssignedId"] = address.strip()
        body["mail"] = address.strip()

    agree(bench.judge(cells, raw), {"identities", "mail"})


@CASES
@given(name=st.text(alphabet="abXY09_-.é@ ", min_size=1, max_size=66))
@example(name="a" * 64)
@example(name="a" * 65)
@example(name="_a")
def test_user_name_sign_in_name(bench: Bench, name: str) -> None:
    unique = f"{name}{next(bench.counter)}" if len(name) < 60 else name
    cells = {"displayName": "Name Person", "signInName": unique, "signInType": "userName", "password": PASSWORD}

    def raw(body: dict[str, Any]) -> None:
        body["identities"][0].update(signInType="userName", issuerAssignedId=unique.strip())
        body.pop("mail", None)

    agree(bench.judge(cells, raw), {"identities"})


@CASES
@given(local=st.one_of(st.text(alphabet="abXY09'._!#^~-é+ ", min_size=0, max_size=8), near(64).map(lambda n: "u" * n)),
       domain=st.sampled_from([DOMAIN, DOMAIN.upper(), "fabrikam.com"]))
@example(local="john.", domain=DOMAIN)
def test_user_principal_name(bench: Bench, local: str, domain: str) -> None:
    upn = f"{local}{next(bench.counter)}@{domain}" if len(local) < 60 else f"{local}@{domain}"
    cells = {"displayName": "Work Person", "userPrincipalName": upn, "password": PASSWORD}

    def raw(body: dict[str, Any]) -> None:
        body["userPrincipalName"] = upn.strip()

    agree(bench.judge(cells, raw), {"userPrincipalName"})


@CASES
@given(password=st.one_of(st.text(alphabet="aB1!é€ ", min_size=1, max_size=12),
                          near(256).map(lambda n: ("aB1!" * 70)[:n])))
@example(password="abcDEF12")
@example(password="Ab1!xyz")
def test_password(bench: Bench, password: str) -> None:
    cells = {"displayName": "Password Person", "signInName": bench.unique_email(), "password": password}
    agree(bench.judge(cells, lambda body: body["passwordProfile"].update(password=password)),
          {"passwordProfile", "passwordProfile.password"})


@CASES
@given(code=st.one_of(st.text(alphabet="usUSıéx", min_size=1, max_size=3), st.sampled_from(sorted(rules.USAGE_LOCATIONS))))
def test_usage_location(bench: Bench, code: str) -> None:
    cells = {"displayName": "Place Person", "signInName": bench.unique_email(), "password": PASSWORD,
             "usageLocation": code}
    agree(bench.judge(cells, lambda body: body.update(usageLocation=code.strip())), {"usageLocation"})


@CASES
@given(address=emails())
def test_mail(bench: Bench, address: str) -> None:
    cells = {"displayName": "Mail Person", "signInName": bench.unique_email(), "password": PASSWORD, "mail": address}
    agree(bench.judge(cells, lambda body: body.update(mail=address.strip())), {"mail"})


@CASES
@given(column=st.sampled_from(["givenName", "surname", "jobTitle", "city", "postalCode", "companyName", "employeeId"]),
       extra=st.integers(min_value=-2, max_value=2))
def test_profile_lengths(bench: Bench, column: str, extra: int) -> None:
    value = "p" * (rules.PROPERTY_MAX_LENGTHS[column] + extra)
    cells = {"displayName": "Long Person", "signInName": bench.unique_email(), "password": PASSWORD, column: value}
    agree(bench.judge(cells, lambda body: body.update({column: value})), {column})


@CASES
@given(tag=st.one_of(st.sampled_from(["en-US", "fr", "zh-Hant", "en_US", "english", "e", "de-DE-1996"]),
                     st.text(alphabet="enUS-_1", min_size=1, max_size=9)))
def test_preferred_language(bench: Bench, tag: str) -> None:
    cells = {"displayName": "Lang Person", "signInName": bench.unique_email(), "password": PASSWORD,
             "preferredLanguage": tag}
    agree(bench.judge(cells, lambda body: body.update(preferredLanguage=tag.strip())), {"preferredLanguage"})


@CASES
@given(value=st.one_of(near(256).map(lambda n: "v" * n), st.sampled_from(["true", "False", "42", "x"])))
def test_extension_value(bench: Bench, value: str) -> None:
    name = f"extension_{bench.graph.tenant.extensions_app_hex}_loyaltyLevel"
    cells = {"displayName": "Custom Person", "signInName": bench.unique_email(), "password": PASSWORD, name: value}
    agree(bench.judge(cells, lambda body: body.update({name: value})), {name})


@CASES
@given(word=st.sampled_from(["yes", "No", "TRUE", "false", "1", "0", "y", "N"]))
def test_force_change_flag(bench: Bench, word: str) -> None:
    cells = {"displayName": "Flag Person", "signInName": bench.unique_email(), "password": PASSWORD,
             "forceChangePasswordNextSignIn": word}
    agree(bench.judge(cells, lambda body: None), set())


# ---- disagreements found, and who is wrong -------------------------------------------------

def test_domain_label_starting_with_a_hyphen(bench: Bench) -> None:
    """Found by this suite: the emulator took `zero@-bad.com`, which is no host name (RFC 1123)."""
    address = "zero@-bad.com"
    cells = {"displayName": "Mail Person", "signInName": address, "signInType": "emailAddress", "password": PASSWORD}

    def raw(body: dict[str, Any]) -> None:
        body["identities"][0]["issuerAssignedId"] = address
        body["mail"] = address

    agree(bench.judge(cells, raw), {"identities", "mail"})
