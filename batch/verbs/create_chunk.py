"""`create`'s rows a chunk at a time (issue 16, "Validation at 200k rows/s").

What `CreateRows.read` gives for each of a chunk's consecutive rows, found a column at a time:

1. each column is screened over the whole chunk (batch/verbs/screen.py), and the checks that
   depend on the row as a whole (the sign-in name's syntax for its type, the UPN, the two
   flags together, custom attributes) run over the columns too;
2. duplicate keys are claimed in file order: the clean rows between two flagged ones at once
   (`SeenKeys.claim_all`), each flagged row by `read` where it stands, so that a key is held
   by the row that held it before. A clean row whose key an earlier row holds is read after
   the chunk: its claims are made already, and a claim is repeatable, so `read` says exactly
   what it would have said in its place;
3. the plans of the clean rows are built a column at a time: one pass per property over the
   chunk's bodies, in the order the per-row path fills a body.

Every other row is read by `read`, so that what is said about it is exactly what `read` says
(tests/test_validate_chunks.py compares both paths row by row).
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import MISSING, dataclass, fields
from itertools import compress, count, repeat
from typing import Any

from batch import rules
from batch.io.csvio import Row
from batch.verbs.base import Rejected
from batch.verbs.create_rows import SIGN_IN_TYPES, CreateOptions, CreatePlan, CreateRows
from batch.verbs.fields import FIELD_RULES, is_extension_column
from batch.verbs.identities import has_identity_columns
from batch.verbs.plans import property_columns
from batch.verbs.screen import FLAG_WORDS, SIGN_IN_SPELLINGS, failing, flagged

_EMAIL, _USER_NAME = "emailAddress", "userName"
# A screened signInType cell → the type it states (a blank one is absent: the name's '@' says).
_STATED = {s: SIGN_IN_TYPES[s.lower()] for s in SIGN_IN_SPELLINGS if s}
_GUESSED = {True: _EMAIL, False: _USER_NAME}  # '@' in the name → its type


def _enabled_table() -> dict[tuple[str, str], tuple[bool, bool]]:
    """(blockSignIn, accountEnabled) cells as screened → (accountEnabled, whether the row said
    it), as `account_enabled` reads them; a pair that disagrees is absent (the row is read)."""
    table = {}
    for block in [*FLAG_WORDS, ""]:
        for enabled in [*FLAG_WORDS, ""]:
            blocked = FLAG_WORDS[block] if block else None
            given = FLAG_WORDS[enabled] if enabled else None
            if blocked is None or given is None or blocked != given:
                value = (not blocked) if blocked is not None else (True if given is None else given)
                table[block, enabled] = (value, bool(block or enabled))
    return table


_ENABLED = _enabled_table()


@dataclass(frozen=True)
class _Layout:
    """What every row of a file with these columns shares, worked out once per file."""

    names: tuple[str, ...]
    names_set: frozenset[str]
    fields: tuple[tuple[str, str], ...]      # (column, property) of the field rules' columns present, in table order
    extensions: tuple[tuple[str, str], ...]  # (column, property) of the custom attribute columns
    usable: bool  # False: every row has a problem with the columns themselves (no displayName, a bad custom attribute)
    columns: dict[str, str]                  # property_columns of a row, but for blockSignIn
    identities: bool = False  # federated or export identity columns: every row is read by `read`


def _put(bodies: list[dict[str, Any]], key: str, values: Sequence[Any]) -> None:
    """body[key] = value for each body whose value is filled (truthy)."""
    if all(values):
        deque(map(operator.setitem, bodies, repeat(key), values), maxlen=0)
    else:
        for at in compress(count(), values):
            bodies[at][key] = values[at]


class ChunkedRows(CreateRows):
    """`CreateRows` that also reads a chunk of rows at once (`read_chunk`, `rejections`)."""

    def __init__(self, options: CreateOptions) -> None:
        super().__init__(options)
        self._layouts: dict[tuple[str, ...], _Layout] = {}

    def read_chunk(self, rows: Sequence[Row]) -> list[CreatePlan | Rejected]:
        """What `read` gives for each of these consecutive rows, in order."""
        return self._chunk(rows, build=True)  # type: ignore[return-value]  # built: no None left

    def rejections(self, rows: Sequence[Row]) -> list[Rejected]:
        """The rejections `read_chunk` would give for these rows, without making the plans
        of the valid ones (the `validate` command needs only what is wrong)."""
        return [checked for checked in self._chunk(rows, build=False) if isinstance(checked, Rejected)]

    def _chunk(self, rows: Sequence[Row], *, build: bool) -> list[CreatePlan | Rejected | None]:
        """Each row's plan or rejection; without `build`, None for a valid row read here."""
        if not rows:
            return []
        layout = self._layout(tuple(rows[0].cells))
        if layout.identities or not layout.usable:
            return [self.read(row) for row in rows]
        columns, same = _columns(rows, layout.names)
        n = len(rows)
        suspects = flagged(columns)
        for mark in ("blank", "problem", "example"):
            if any(map(operator.attrgetter(mark), rows)):
                suspects.update(compress(count(), map(operator.attrgetter(mark), rows)))
        if not same:  # rows of other shapes than the first: read
            suspects.update(i for i, row in enumerate(rows) if row.cells.keys() != layout.names_set)
        blank = [""] * n
        names, upns = columns.get("signInName", blank), columns.get("userPrincipalName", blank)
        at_signs = list(map(operator.contains, names, repeat("@")))
        types = list(map(_GUESSED.__getitem__, at_signs))  # each name screened for the type its '@' says
        suspects.update(self._key_suspects(columns, names, upns, types))
        pairs = list(map(_ENABLED.get, zip(columns.get("blockSignIn", blank), columns.get("accountEnabled", blank))))
        suspects.update(failing(pairs))
        attributes: dict[int, dict[str, Any]] = {}
        if layout.extensions:
            for at, cells in enumerate(row.cells for row in rows):
                if at not in suspects:
                    found = self._typed_extensions(cells, layout)
                    if found is None:
                        suspects.add(at)
                    else:
                        attributes[at] = found
        results: list[CreatePlan | Rejected | None] = [None] * n
        late = self._claim_in_order(rows, results, sorted(suspects), names, upns,
                                    "signInName" in columns, "userPrincipalName" in columns)
        for at in sorted(late):
            results[at] = self.read(rows[at])
        if build:
            self._build(rows, results, columns, layout, at_signs, types, pairs, attributes)
        return results

    def _key_suspects(self, columns: dict[str, list[str]], names: list[str], upns: list[str],
                      types: list[str]) -> list[int]:
        """Rows whose keys `read` must judge: a stated sign-in type that the name's '@' denies
        (each is screened for the type its '@' says), no key at all, a UPN that is wrong."""
        found: list[int] = []
        stated = columns.get("signInType")
        if stated is not None:
            # The type each row says (its guess where blank or misspelt: such a cell is flagged).
            said = map(_STATED.get, stated, types)
            denied = failing(map(operator.eq, said, types))
            found += [at for at in denied if names[at]] if "" in names else denied
        if "" in names:
            found += failing(map(operator.add, names, upns))
        if "userPrincipalName" in columns and any(upns):
            domain = self.options.domain.lower()
            found += [at for at in compress(count(), upns) if rules.upn_problem(upns[at]) or (
                domain and upns[at].partition("@")[2].lower() != domain)]
        return found

    def _claim_in_order(self, rows: Sequence[Row], results: list[CreatePlan | Rejected | None], suspects: list[int],
                        names: list[str], upns: list[str], by_name: bool, by_upn: bool) -> list[int]:
        """Claim the keys of the chunk in file order: the clean rows between two suspects at
        once, each suspect by `read` (its result into `results`); the clean rows whose key
        an earlier row holds."""
        numbers = list(map(operator.attrgetter("number"), rows))
        keys = [(self.seen.digests(kind, values), values)
                for kind, values, wanted in (("signin", names, by_name), ("upn", upns, by_upn)) if wanted]
        self.seen.prepare([d for digests, values in keys for d in compress(digests, values)])
        late: list[int] = []
        start = 0
        for stop in [*suspects, len(rows)]:
            if start < stop:
                for digests, values in keys:
                    late += self._claim_run(digests, values, numbers, start, stop)
            if stop < len(rows):
                results[stop] = self.read(rows[stop])
            start = stop + 1
        return late

    def _claim_run(self, digests: list[int], values: list[str], numbers: list[int], start: int,
                   stop: int) -> list[int]:
        """Claim the filled keys of rows start..stop-1; the rows whose key an earlier row holds."""
        if "" in values[start:stop]:
            where: Sequence[int] = list(compress(range(start, stop), values[start:stop]))
            held = self.seen.claim_all([digests[i] for i in where], [numbers[i] for i in where])
        else:
            where = range(start, stop)
            held = self.seen.claim_all(digests[start:stop], numbers[start:stop])
        return [where[i] for i in held]

    def _build(self, rows: Sequence[Row], results: list[CreatePlan | Rejected | None], columns: dict[str, list[str]],
               layout: _Layout, at_signs: list[bool], types: list[str], pairs: list[tuple[bool, bool] | None],
               attributes: dict[int, dict[str, Any]]) -> None:
        """The plans of the clean rows (None in `results`), a property at a time, into `results`."""
        keep = list(map(operator.is_, results, repeat(None)))
        clean = list(compress(count(), keep))
        if not clean:
            return
        pick: Callable[[Sequence[Any]], Sequence[Any]]
        if len(clean) == len(rows):
            def pick(values: Sequence[Any]) -> Sequence[Any]:
                return values
        else:
            def pick(values: Sequence[Any]) -> Sequence[Any]:
                return list(compress(values, keep))
        blank = [""] * len(clean)
        names: Sequence[str] = pick(columns["signInName"]) if "signInName" in columns else blank
        upns = pick(columns["userPrincipalName"]) if "userPrincipalName" in columns else None
        kinds = pick(types)
        bodies: list[dict[str, Any]] = [{} for _ in clean]
        domain = self.options.domain
        if "signInName" in columns:
            _put(bodies, "identities", [[{"signInType": kind, "issuer": domain, "issuerAssignedId": name}]
                                        if name else "" for kind, name in zip(kinds, names)])
        if upns is not None:
            _put(bodies, "userPrincipalName", upns)
            _put(bodies, "mailNickname", ["" if name or not upn else upn.partition("@")[0][:64]
                                          for name, upn in zip(names, upns)])
        for column, prop in layout.fields:
            values = pick(columns[column])
            _put(bodies, prop, [[value] if value else "" for value in values] if prop == "businessPhones" else values)
        enabled = pick(pairs)
        deque(map(operator.setitem, bodies, repeat("accountEnabled"), map(operator.itemgetter(0), enabled)), maxlen=0)
        mails = pick(columns["mail"]) if "mail" in columns else blank
        # An email sign-in name becomes the mail, as the admin center and Graph's External ID example do.
        _put(bodies, "mail", [name if at_sign and not mail else "" for name, at_sign, mail in
                              zip(names, pick(at_signs), mails)])
        passwords = pick(columns["password"]) if "password" in columns else blank
        forces = pick(columns["forceChangePasswordNextSignIn"]) if "forceChangePasswordNextSignIn" in columns else blank
        generated = self.options.force_change_generated
        _put(bodies, "passwordProfile", [
            {"password": password or None,
             "forceChangePasswordNextSignIn": FLAG_WORDS[force] if force else (not password and generated)}
            for password, force in zip(passwords, forces)])
        _put(bodies, "passwordPolicies", ["DisablePasswordExpiration"] * len(clean))
        for body, at in zip(bodies, clean):
            if attributes.get(at):
                body.update(attributes[at])
        with_block = {"accountEnabled": "blockSignIn", **layout.columns}
        blocks = pick(columns["blockSignIn"]) if "blockSignIn" in columns else blank
        named = "" not in names
        plans = _plans(
            row=pick(list(map(operator.attrgetter("number"), rows))),
            key=names if named else [name or upn or "" for name, upn in zip(names, upns or blank)],
            sign_in_type=kinds if named else [kind if name else None for kind, name in zip(kinds, names)],
            sign_in_name=names if named else [name or None for name in names],
            upn=repeat(None) if upns is None else [upn or None for upn in upns],
            body=bodies, generates_password=map(operator.not_, passwords),
            enabled_given=map(operator.itemgetter(1), enabled),
            columns=[with_block.copy() if block else layout.columns.copy() for block in blocks])
        for at, plan in zip(clean, plans):
            results[at] = plan

    def _layout(self, names: tuple[str, ...]) -> _Layout:
        layout = self._layouts.get(names)
        if layout is None:
            present = set(names)
            fields = tuple((c, "businessPhones" if c == "businessPhone" else c) for c in FIELD_RULES if c in present)
            problems: list[str] = []
            # A column naming an attribute the tenant lacks holds back only the rows with a value
            # in it ("" here sends such a row to `read`, which says so).
            extensions = tuple((c, "" if self.extensions.unknown(c) else self.extensions.property_name(c, problems)
                                or "") for c in names if is_extension_column(c))
            columns = property_columns(dict.fromkeys(names, ""), self.extensions)
            layout = self._layouts[names] = _Layout(names, frozenset(names), fields, extensions,
                                                     not problems and "displayName" in present, columns,
                                                     has_identity_columns(present))
        return layout

    def _typed_extensions(self, cells: dict[str, str], layout: _Layout) -> dict[str, Any] | None:
        """The custom attributes of a row (typed by the catalog when there is one), or None
        when a value is too long or does not fit its type and `read` must say so."""
        found: dict[str, Any] = {}
        for column, prop in layout.extensions:
            value = cells[column]
            if value:
                if not prop or len(value) > rules.EXTENSION_VALUE_MAX_LENGTH:
                    return None
                if self.extensions.catalog is None:
                    lowered = value.strip().lower()
                    found[prop] = True if lowered == "true" else False if lowered == "false" else value
                    continue
                problems: list[str] = []
                checked = self.extensions.check(column, value, problems)
                if checked is None or problems:
                    return None
                found[prop] = checked[1]
        return found


_PLAN_FIELDS = fields(CreatePlan)


def _plans(**given: Iterable[Any]) -> list[CreatePlan]:
    """CreatePlan(**values) for each row's values of the given fields (the others at their
    defaults), a chunk at a time: positional, in the dataclass's field order, through map."""
    assert given.keys() <= {field.name for field in _PLAN_FIELDS}, given.keys()
    arguments = []
    for field in _PLAN_FIELDS:
        if field.name in given:
            arguments.append(given[field.name])
        else:
            assert field.default is not MISSING, field.name  # a default_factory would be shared here
            arguments.append(repeat(field.default))
    return list(map(CreatePlan, *arguments))


def _columns(rows: Sequence[Row], names: tuple[str, ...]) -> tuple[dict[str, list[str]], bool]:
    """The chunk's cells a column at a time, and whether every row has exactly these columns."""
    cells = list(map(operator.attrgetter("cells"), rows))
    if set(map(len, cells)) == {len(names)}:
        try:  # every row has these columns and no other: the chunk's columns, at C speed (no tuple per row)
            return {name: list(map(operator.itemgetter(name), cells)) for name in names}, True
        except KeyError:
            pass
    # Rows of other shapes than the first: screened as blank where a column lacks.
    return {name: [c.get(name, "") for c in cells] for name in names}, False
