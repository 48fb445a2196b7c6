"""A custom attribute's cell, checked against the attribute's declared type and turned into
the JSON value Graph stores for that type, before anything is sent.

The types and their limits are extensionProperty's `dataType` (microsoft-graph-docs-contrib
api-reference/v1.0/resources/extensionproperty.md): `Binary` (256 bytes), `Boolean`,
`DateTime` ("Must be specified in ISO 8601 format. Will be stored in UTC."), `Integer`
("32-bit value"), `LargeInteger` ("64-bit value"), `String` (256 characters).

Decisions (README, custom attributes):
- Boolean takes the words every Yes/No column of ours takes (true/false, yes/no, y/n, 1/0,
  any case): a spreadsheet's TRUE and a legacy export's 1 both mean true. It is sent as a
  JSON boolean.
- Integer and LargeInteger take an optional sign and digits only ("1,000", "1.0", "1e3" are
  refused rather than guessed); they are sent as JSON numbers.
- DateTime takes ISO 8601 dates and date-times (`2024-01-31`, `2024-01-31T08:30`,
  `2024-01-31T08:30:00+02:00`, `…Z`); a time without an offset is read as UTC (Graph stores
  UTC); it is sent as UTC with a `Z`, e.g. "2024-01-31T00:00:00Z", the form of the
  documentation's examples (concepts/extensibility-overview.md).
- String: at most 256 characters, sent as written ("true" stays a string).
- Binary is not written: Graph's wire form of an Edm.Binary directory extension value
  (base64 or base64url) is not documented for PATCH /users, and a wrong guess would store
  other bytes than the file holds. The cell must be blank; the column is kept for export.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from batch import rules
from batch.io.quoting import shown
from batch.verbs.attributes import Attribute

INT32 = (-(1 << 31), (1 << 31) - 1)
INT64 = (-(1 << 63), (1 << 63) - 1)
_WHOLE = re.compile(r"[+-]?[0-9]+")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,7})?)?"
                       r"(Z|z|[+-][0-9]{2}:?[0-9]{2})?)?")
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})

EXAMPLES = {
    "Boolean": "true or false",
    "Integer": f"a whole number from {INT32[0]} to {INT32[1]}, such as 42",
    "LargeInteger": "a whole number such as 9007199254740993",
    "DateTime": "an ISO 8601 date or time such as 2024-01-31 or 2024-01-31T08:30:00Z",
    "String": f"text of at most {rules.EXTENSION_VALUE_MAX_LENGTH} characters",
}


def typed_value(column: str, value: str, attribute: Attribute, problems: list[str]) -> Any:
    """The JSON value of a filled cell for `attribute`'s declared type; None with the problem
    said when the cell does not fit it."""
    kind = attribute.data_type
    text = value.strip()
    if kind == "Boolean":
        word = text.lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
    elif kind in ("Integer", "LargeInteger"):
        low, high = INT32 if kind == "Integer" else INT64
        if _WHOLE.fullmatch(text) and low <= int(text) <= high:
            return int(text)
    elif kind == "DateTime":
        moment = parse_datetime(text)
        if moment is not None:
            return moment
    elif kind == "Binary":
        problems.append(f"{shown(column, 60)} is a Binary custom attribute ({attribute.name}), which entra-batch "
                        "does not write: leave its cells blank")
        return None
    else:  # String, and any type Graph adds later: kept as written
        if len(value) <= rules.EXTENSION_VALUE_MAX_LENGTH:
            return value
        problems.append(f"{shown(column, 60)} is {len(value)} characters long; the String custom attribute "
                        f"{attribute.name} holds at most {rules.EXTENSION_VALUE_MAX_LENGTH}")
        return None
    problems.append(f"{shown(column, 60)} '{shown(text)}' is not a valid {kind} ({attribute.name} is declared {kind}): "
                    f"write {EXAMPLES[kind]}")
    return None


def parse_datetime(text: str) -> str | None:
    """An ISO 8601 date or date-time as Graph's UTC form ("2024-01-31T00:00:00Z", fractions
    of a second kept), or None when it is not one (or names no real day or time)."""
    if not _ISO_DATE.fullmatch(text):
        return None
    written = text.replace("z", "Z")
    fraction = re.search(r"\.([0-9]{1,7})", written)
    if fraction is not None:  # Python reads at most 6 digits of a fraction; Graph's ticks have 7
        written = written.replace(fraction.group(0), "." + fraction.group(1)[:6].ljust(6, "0"))
    try:
        moment = datetime.fromisoformat(written)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the year 1 in UTC
        return None
    stamp = f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}"
    if fraction is not None:
        digits = fraction.group(1).rstrip("0")
        if digits:
            stamp += "." + digits
    return stamp + "Z"


__all__ = ["EXAMPLES", "INT32", "INT64", "parse_datetime", "typed_value"]
