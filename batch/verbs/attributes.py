"""The tenant's custom attributes, as a run knows them: the extensions app
(`b2c-extensions-app`) that holds them, and each attribute's short name, Graph property
(`extension_<appId without hyphens>_<name>`) and declared data type.

Read once per run from Graph (`GET /applications?$filter=startswith(displayName,
'b2c-extensions-app')`, then `…/extensionProperties`), remembered in the journal so that a
resumed run validates its rows as the run that started them did, and handed to the verbs
through `VerbSettings.attributes`. Pure data here; the reading is done where Graph is reached.

Sources: entra-docs external-id/customers/concept-user-attributes.md (custom attributes live
on the b2c-extensions-app); microsoft-graph-docs-contrib v1.0 extensionproperty.md (`name`,
`dataType`: Binary, Boolean, DateTime, Integer, LargeInteger, String; `targetObjects`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

DATA_TYPES = ("Binary", "Boolean", "DateTime", "Integer", "LargeInteger", "String")


@dataclass(frozen=True)
class Attribute:
    name: str        # "requiresMigration": what the administrator calls it (ext.<name> columns)
    property: str    # "extension_<hex>_requiresMigration": the user property Graph stores it under
    data_type: str   # one of DATA_TYPES


@dataclass(frozen=True)
class AttributeCatalog:
    """The custom attributes of one tenant's extensions app."""

    app_id: str
    attributes: tuple[Attribute, ...]

    @property
    def hex(self) -> str:
        return self.app_id.replace("-", "").lower()

    def find(self, name: str) -> Attribute | None:
        """The attribute with this short name (case-insensitively), or None."""
        wanted = name.lower()
        return next((a for a in self.attributes if a.name.lower() == wanted), None)

    def by_property(self, prop: str) -> Attribute | None:
        wanted = prop.lower()
        return next((a for a in self.attributes if a.property.lower() == wanted), None)

    def names(self) -> list[str]:
        return sorted((a.name for a in self.attributes), key=str.lower)

    def listed(self) -> str:
        """The tenant's attributes for a message: "loyaltyId (String), requiresMigration (Boolean)"."""
        shown = [f"{a.name} ({a.data_type})" for a in sorted(self.attributes, key=lambda a: a.name.lower())]
        return ", ".join(shown) if shown else "none"

    @classmethod
    def of(cls, app_id: str, declared: Iterable[tuple[str, str]]) -> AttributeCatalog:
        """From the extension properties' (`name`, `dataType`) pairs; names of other apps are left out."""
        prefix = f"extension_{app_id.replace('-', '').lower()}_"
        attributes = tuple(Attribute(name[len(prefix):], name, data_type or "String")
                           for name, data_type in declared if name.lower().startswith(prefix))
        return cls(app_id, attributes)

    def as_meta(self) -> dict[str, Any]:
        """For the journal's meta (JSON)."""
        return {"app_id": self.app_id, "attributes": [[a.property, a.data_type] for a in self.attributes]}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> AttributeCatalog:
        return cls.of(str(meta["app_id"]), [(str(p), str(t)) for p, t in meta.get("attributes") or []])


__all__ = ["DATA_TYPES", "Attribute", "AttributeCatalog"]
