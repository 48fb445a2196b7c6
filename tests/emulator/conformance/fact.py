"""What one conformance case is: a request, and Graph's documented answer to it.

A `Fact` is one row of the table: the request (method, url, body, headers, which token), the
world it runs in (`given` steps), and what Graph answers (status, error code and message,
key fields of the body, headers). Each names its `source`: a file of
microsoftgraph/microsoft-graph-docs-contrib or the issue thread where the answer was posted.
Cases the emulator does not meet yet carry `awaiting` ("<helper>: <what>"): they run as strict
xfails until that helper's work is merged.

Placeholders such as `{ada}` in urls, bodies and expected values are filled from the world
(`world.py`): object ids, UPNs, the tenant's domain and ids, links from earlier steps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

NO_BODY = object()
_PATH_PART = re.compile(r"@odata\.[^.]+|[^.]+")  # "@odata.nextLink" is one key


@dataclass(frozen=True)
class Check:
    """An expected value that is a property rather than a literal: `what` is shown on failure."""

    what: str
    test: Callable[[Any], bool]

    def __call__(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except (TypeError, KeyError, AttributeError, ValueError):
            return False


ABSENT = Check("absent", lambda value: value is MISSING)
PRESENT = Check("present", lambda value: value is not MISSING)
MISSING = object()


def matches(pattern: str) -> Check:
    return Check(f"matches {pattern!r}", lambda value: isinstance(value, str) and re.search(pattern, value) is not None)


def length(n: int) -> Check:
    return Check(f"has {n} items", lambda value: isinstance(value, list) and len(value) == n)


def one_of(*values: Any) -> Check:
    return Check(f"one of {values!r}", lambda value: value in values)


def keys_are(keys: set[str]) -> Check:
    return Check(f"keys are {sorted(keys)}", lambda value: isinstance(value, dict) and set(value) == keys)


@dataclass(frozen=True)
class WorldCheck:
    """A check that needs the world (an id made by a step): `world.fill` turns it into a Check."""

    what: str
    test: Callable[[Any, Mapping[str, str]], bool]

    def bind(self, world: Mapping[str, str]) -> Check:
        return Check(self.what, lambda value: self.test(value, world))


def differs_from(key: str) -> WorldCheck:
    return WorldCheck(f"differs from {{{key}}}", lambda value, world: value != world[key])


@dataclass(frozen=True)
class Fact:
    name: str
    source: str
    method: str
    url: str
    status: int | Check
    json: Any = NO_BODY
    form: Mapping[str, str] | None = None     # a form body (the token endpoint)
    content: str | None = None                # a raw body (malformed JSON)
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: str = "app"                         # app | none | raw:<header> | readonly | expired
    given: tuple[str, ...] = ()               # steps run first, in order (world.STEPS)
    code: str | None = None                   # error.code (Graph) or error (token endpoint)
    message: str | None = None                # error.message, exact
    detail: tuple[str, str] | None = None     # error.details[0] (target, code)
    fields: Mapping[str, Any] = field(default_factory=dict)            # body path → value or Check
    response_headers: Mapping[str, Any] = field(default_factory=dict)  # header → value or Check
    text: str | None = None                   # the whole body, for text/plain answers
    same: tuple[str, str] | None = None       # (header, body path) that must hold one value
    then: str | None = None                   # a GET after the request, whose body `fields` describes
    awaiting: str | None = None               # "<helper>: <what>" while the emulator differs


def at(body: Any, path: str) -> Any:
    """`value.0.id`, `error.details.0.target`, `responses#2.status` (the item whose id is 2)."""
    node = body
    for part in _PATH_PART.findall(path):
        name, _, item_id = part.partition("#")
        node = _step(node, name)
        if item_id and node is not MISSING:
            node = next((item for item in node if isinstance(item, dict) and item.get("id") == item_id), MISSING)
        if node is MISSING:
            return MISSING
    return node


def _step(node: Any, name: str) -> Any:
    if isinstance(node, list):
        return node[int(name)] if name.isdigit() and int(name) < len(node) else MISSING
    if isinstance(node, dict):
        return node.get(name, MISSING)
    return MISSING


def problems_of(fact: Fact, response: httpx.Response, followed: httpx.Response | None,
                fill: Callable[[Any], Any]) -> list[str]:
    """Every way the answer differs from the fact (empty: it conforms)."""
    found: list[str] = []
    _expect(found, "status", response.status_code, fill(fact.status))
    body = _json(response)
    if fact.code is not None:
        error = body.get("error") if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) else error
        _expect(found, "error code", code, fact.code)
    if fact.message is not None:
        _expect(found, "error message", at(body, "error.message"), fill(fact.message))
    if fact.detail is not None:
        detail = at(body, "error.details.0")
        got = (detail.get("target"), detail.get("code")) if isinstance(detail, dict) else None
        _expect(found, "error detail", got, fact.detail)
    if fact.text is not None:
        _expect(found, "body text", response.text, fill(fact.text))
    if fact.same is not None:
        header, path = fact.same
        _expect(found, f"header {header} = {path}", response.headers.get(header, MISSING), at(body, path))
    described = _json(followed) if followed is not None else body
    for path, wanted in fact.fields.items():
        _expect(found, f"field {path}", at(described, path), fill(wanted))
    for name, wanted in fact.response_headers.items():
        _expect(found, f"header {name}", response.headers.get(name, MISSING), fill(wanted))
    return found


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return MISSING


def _expect(found: list[str], what: str, got: Any, wanted: Any) -> None:
    ok = wanted(got) if isinstance(wanted, Check) else got == wanted
    if not ok:
        shown = wanted.what if isinstance(wanted, Check) else repr(wanted)
        found.append(f"{what}: expected {shown}, got {'(missing)' if got is MISSING else repr(got)[:300]}")
