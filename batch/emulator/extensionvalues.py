"""What Graph accepts as the value of a directory extension (a custom attribute) in a user's
body: the property must be declared on the tenant's extensions app, and the value must be
of its declared `dataType`.

Sources: microsoft-graph-docs-contrib api-reference/v1.0/resources/extensionproperty.md
(`dataType`: Binary "256 bytes maximum", Boolean, DateTime "Must be specified in ISO 8601
format. Will be stored in UTC.", Integer "32-bit value", LargeInteger "64-bit value", String
"256 characters maximum"); concepts/extensibility-overview.md (a directory extension is
written with the resource's own update, removed by writing null).

Graph's answers:
- an undeclared extension: 400 `Request_BadRequest` "Property 'X' does not exist as a
  declared property or extension property." (the wording Graph gives to an unknown property
  of a user, kept here for an extension that no app declares; UNSURE that the directory
  answers an undeclared `extension_…` in exactly these words, rather than writing nothing);
- a value of the wrong kind: 400 "Invalid value specified for property 'X' of resource
  'User'." (UNSURE: the wording Graph gives to bad values of a user's own properties; for
  a Boolean extension sent as the string "true" Graph's answer has not been seen, so the
  emulator refuses it, no kinder than Graph may be).
Imports nothing outside batch/emulator/.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from . import errors, schema

INT32 = (-(1 << 31), (1 << 31) - 1)
INT64 = (-(1 << 63), (1 << 63) - 1)
BINARY_MAX_BYTES = 256
_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,7})?)?"
                  r"(Z|z|[+-][0-9]{2}:?[0-9]{2})?)?")


def undeclared(raw_name: str) -> errors.GraphError:
    return errors.bad_request(f"Property '{raw_name}' does not exist as a declared property or extension property.")


def invalid(raw_name: str) -> errors.GraphError:
    return errors.bad_request(f"Invalid value specified for property '{raw_name}' of resource 'User'.",
                              target=raw_name)


def check_extension(raw_name: str, value: Any, app_hex: str, declared: Mapping[str, str]) -> Any:
    """The value the directory keeps for `raw_name`, or the GraphError Graph answers with.
    `declared` maps each declared extension's full name to its dataType; Graph's property
    names are case-insensitive (the OData reader of the directory; UNSURE for extensions)."""
    wanted = raw_name.lower()
    data_type = next((kind for name, kind in declared.items() if name.lower() == wanted), None)
    if schema.extension_app_hex(raw_name) != app_hex or data_type is None:
        raise undeclared(raw_name)
    if value is None:
        return None
    kept = _typed(value, data_type)
    if kept is None:
        raise invalid(raw_name)
    return kept


def _typed(value: Any, data_type: str) -> Any:
    if data_type == "Boolean":
        return value if isinstance(value, bool) else None
    if data_type in ("Integer", "LargeInteger"):
        low, high = INT32 if data_type == "Integer" else INT64
        return value if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high else None
    if not isinstance(value, str):
        return None
    if data_type == "DateTime":
        return _utc(value)
    if data_type == "Binary":
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        return value if len(raw) <= BINARY_MAX_BYTES else None
    return value if len(value) <= schema.EXTENSION_STRING_MAX else None


def _utc(text: str) -> str | None:
    """ISO 8601, stored in UTC ("2024-01-31T00:00:00Z")."""
    if not _ISO.fullmatch(text):
        return None
    written = re.sub(r"\.([0-9]{1,7})", lambda m: "." + m.group(1)[:6].ljust(6, "0"), text.replace("z", "Z"))
    try:
        moment = datetime.fromisoformat(written)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        utc = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}" + "Z"


__all__ = ["check_extension", "invalid", "undeclared"]
