"""A streaming summary of exported customers: counts by status, sign-in type, usage location
and creation month, as JSON, as a terminal table and as a self-contained HTML page.

`export` feeds it millions of flattened records, so it keeps counters only, never records:
memory grows with the number of distinct labels (a few statuses, ~250 country codes, one
month per month of the tenant's life), not with the number of customers.

Labels come from tenant data (a usage location is whatever the directory holds), so every
label is made printable before it reaches a terminal and HTML-escaped before it reaches the
page. The page loads nothing: CSS inline, charts as inline SVG drawn here, no script, no URL,
and a Content-Security-Policy that forbids the browser to fetch anything should that change.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NOT_SET = "(not set)"
UNKNOWN_MONTH = "(unknown)"
UPN_ONLY = "userPrincipalName only"
SIGN_IN_COLUMNS = {"signIn.emailAddress": "emailAddress", "signIn.userName": "userName",
                   "signIn.federated": "federated"}
TOP_LOCATIONS = 20
# A JIT password migration's flag (create --jit-migration): true while the customer's legacy
# password is still to be checked, false once Entra kept it (the custom extension's
# MigratePassword answer; entra-docs how-to-migrate-passwords-just-in-time.md); a customer
# without the attribute was never flagged.
MIGRATION_STATES = {"true": "still to migrate (true)", "false": "migrated (false)", "": "not flagged"}
MIGRATION_KEYS = {"true": "still_flagged", "false": "completed", "": "not_flagged"}
# Gaps between months are drawn as empty columns (time reads true), unless the span is so long
# (a stray 1601-01-01 in tenant data) that the columns would be hairlines.
MAX_FILLED_MONTHS = 240
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_LABEL_CHARS = 40


class CustomerCounts:
    """Counters over exported customers, one `add` per record (summary.json's `counts`, the
    `--summary` tables, the `--report` page)."""

    def __init__(self, migration: str | None = None) -> None:
        self._total = 0
        # The column holding the JIT migration flag (export --jit-migration), counted by value.
        self.migration = migration
        self.by_migration: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.by_sign_in_type: Counter[str] = Counter()
        self.by_usage_location: Counter[str] = Counter()
        self.by_creation_month: Counter[str] = Counter()

    def add(self, record: Mapping[str, str]) -> None:
        self._total += 1
        self.by_status[customer_status(record)] += 1
        types = [label for column, label in SIGN_IN_COLUMNS.items() if (record.get(column) or "").strip()]
        self.by_sign_in_type.update(types or (UPN_ONLY,))
        self.by_usage_location[(record.get("usageLocation") or "").strip() or NOT_SET] += 1
        self.by_creation_month[creation_month(record.get("createdDateTime") or "")] += 1
        if self.migration is not None:
            self.by_migration[_flag_value(record.get(self.migration) or "")] += 1

    def add_rows(self, rows: Sequence[Sequence[str]], names: Sequence[str]) -> None:
        """`add` of each row, a row being strings in `names` order (the export's hot path:
        no record dicts, the counters updated once per batch)."""
        at = {name: index for index, name in enumerate(names)}
        deleted, change, enabled = at.get("deletedDateTime"), at.get("change"), at.get("accountEnabled")
        location, created = at.get("usageLocation"), at.get("createdDateTime")
        signs = [(at[column], label) for column, label in SIGN_IN_COLUMNS.items() if column in at]
        statuses: list[str] = []
        types: list[str] = []
        locations: list[str] = []
        months: list[str] = []
        month_of: dict[str, str] = {}
        for row in rows:
            if deleted is not None and row[deleted].strip():
                statuses.append("deleted")
            elif change is not None and row[change].strip() == "removed":
                statuses.append("removed")
            elif enabled is not None and row[enabled].strip().lower() == "false":
                statuses.append("blocked")
            else:
                statuses.append("enabled")
            found = [label for index, label in signs if row[index].strip()]
            types.extend(found or (UPN_ONLY,))
            locations.append((row[location].strip() if location is not None else "") or NOT_SET)
            when = row[created].strip()[:7] if created is not None else ""  # all creation_month reads
            month = month_of.get(when)
            if month is None:
                month = month_of[when] = creation_month(when)
            months.append(month)
        self._total += len(rows)
        self.by_status.update(statuses)
        self.by_sign_in_type.update(types)
        self.by_usage_location.update(locations)
        self.by_creation_month.update(months)
        flag = at.get(self.migration) if self.migration is not None else None
        if flag is not None:
            self.by_migration.update(_flag_value(row[flag]) for row in rows)

    @property
    def total(self) -> int:
        return self._total

    def to_dict(self) -> dict[str, Any]:
        return {"total": self._total,
                "by_status": dict(by_count(self.by_status)),
                "by_sign_in_type": dict(by_count(self.by_sign_in_type)),
                "by_usage_location": dict(by_count(self.by_usage_location)),
                "by_creation_month": dict(by_month(self.by_creation_month)),
                **({"password_migration": self.migration_progress()} if self.migration is not None else {})}

    def migration_progress(self) -> dict[str, Any]:
        """summary.json's `password_migration`: the flag's column and how many customers carry each value."""
        return {"attribute": self.migration, **{key: self.by_migration[value] for value, key in MIGRATION_KEYS.items()}}

    def migration_rows(self) -> list[tuple[str, int]]:
        return [(label, self.by_migration[value]) for value, label in MIGRATION_STATES.items()]

    def text(self) -> str:
        """The four tables for a terminal; locations cut to the top 20 like the page's chart."""
        tables = [("Status", by_count(self.by_status)),
                  ("Sign-in type (a customer may have several)", by_count(self.by_sign_in_type)),
                  ("Usage location", top_with_other(by_count(self.by_usage_location), TOP_LOCATIONS)),
                  ("Creation month", by_month(self.by_creation_month))]
        if self.migration is not None:
            tables.append((f"Password migration ({self.migration})", self.migration_rows()))
        blocks = [f"Customers  {self._total:,}"]
        blocks += [heading + "\n" + _text_table(rows, self._total) for heading, rows in tables]
        return "\n\n".join(blocks) + "\n"


def _flag_value(text: str) -> str:
    """true, false, or '' (absent); anything else a directory could hold counts as flagged."""
    value = text.strip().lower()
    return value if value in ("", "false") else "true"


def customer_status(record: Mapping[str, str]) -> str:
    """deleted > removed > blocked > enabled: a deleted customer may also be disabled, and a
    delta `removed` row carries no accountEnabled worth trusting."""
    if (record.get("deletedDateTime") or "").strip():
        return "deleted"
    if (record.get("change") or "").strip() == "removed":
        return "removed"
    if (record.get("accountEnabled") or "").strip().lower() == "false":
        return "blocked"
    return "enabled"


def creation_month(created: str) -> str:
    match = _MONTH.match(created.strip())
    return f"{match.group(1)}-{match.group(2)}" if match else UNKNOWN_MONTH


def by_count(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def by_month(counter: Counter[str]) -> list[tuple[str, int]]:
    """Chronological (ISO months sort as text), the undated last."""
    return sorted(counter.items(), key=lambda item: (item[0] == UNKNOWN_MONTH, item[0]))


def top_with_other(rows: list[tuple[str, int]], limit: int) -> list[tuple[str, int]]:
    """The first `limit` rows, the rest summed into one row named after how many it holds (so
    it cannot be mistaken for a location really called "other")."""
    if len(rows) <= limit:
        return rows
    rest = rows[limit:]
    return rows[:limit] + [(f"other ({len(rest):,} locations)", sum(count for _, count in rest))]


def percent(count: int, total: int) -> str:
    if total == 0:
        return "-"
    share = 100 * count / total
    return "<0.1%" if 0 < share < 0.05 else f"{share:.1f}%"


def printable(label: str, limit: int = _LABEL_CHARS) -> str:
    """Tenant text made safe to show: control and format characters (escape sequences,
    bidi overrides) spelled out, and long values cut so columns stay aligned."""
    shown = "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch)[0] == "C" else ch for ch in label)
    return shown if len(shown) <= limit else shown[:limit - 1] + "…"


def _text_table(rows: list[tuple[str, int]], total: int) -> str:
    if not rows:
        return "  (none)"
    labels = [printable(label) for label, _ in rows]
    counts = [f"{count:,}" for _, count in rows]
    shares = [percent(count, total) for _, count in rows]
    wl, wc, ws = (max(map(len, column)) for column in (labels, counts, shares))
    return "\n".join(f"  {label:<{wl}}  {count:>{wc}}  {share:>{ws}}"
                     for label, count, share in zip(labels, counts, shares))


# --- the HTML page ---------------------------------------------------------------------------

def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _label(text: str, limit: int = _LABEL_CHARS) -> str:
    return _esc(printable(text, limit))


STATUS_CLASSES = {"enabled": "ok", "blocked": "warn", "deleted": "bad", "removed": "mute"}

CSS = """
:root { color-scheme: light; --ink: #1f2328; --soft: #59636e; --line: #d8dee4; --paper: #fff;
  --back: #f6f8fa; --accent: #1f6feb; --ok: #1a7f37; --warn: #bf8700; --bad: #cf222e; --mute: #8c959f; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--back); color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background: var(--paper); border-bottom: 1px solid var(--line); }
.wrap { max-width: 1100px; margin: 0 auto; padding: 22px 32px 18px; }
h1 { margin: 0 0 10px; font-size: 24px; overflow-wrap: anywhere; }
.meta { display: flex; flex-wrap: wrap; gap: 6px 28px; margin: 0; color: var(--soft); font-size: 14px; }
.meta div { display: flex; gap: 6px; min-width: 0; }
.meta dt { font-weight: 600; }
.meta dd { margin: 0; color: var(--ink); overflow-wrap: anywhere; }
main { max-width: 1100px; margin: 0 auto; padding: 20px 32px 40px; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px;
  margin-bottom: 20px; }
.figure { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
.figure b { display: block; font-size: 26px; font-variant-numeric: tabular-nums; }
.figure span { color: var(--soft); font-size: 13px; }
.figure.ok b { color: var(--ok); } .figure.warn b { color: var(--warn); }
.figure.bad b { color: var(--bad); } .figure.mute b { color: var(--mute); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(460px, 100%), 1fr)); gap: 20px; }
section { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px;
  min-width: 0; }
section.wide { grid-column: 1 / -1; }
h2 { margin: 0 0 2px; font-size: 17px; }
.note { margin: 0 0 10px; color: var(--soft); font-size: 13px; }
figure { margin: 0; overflow-x: auto; }
section.wide svg { min-width: 640px; }  /* on a phone: scroll sideways, keep the text legible */
svg { display: block; max-width: 100%; height: auto; }
svg text { font-size: 13px; fill: var(--ink); font-variant-numeric: tabular-nums; }
svg .value, svg .tick { fill: var(--soft); font-size: 12px; }
svg .axis { stroke: var(--line); } svg .gridline { stroke: var(--line); stroke-dasharray: 2 3; }
svg .track { fill: var(--back); }
.bar { fill: var(--accent); } .bar.ok { fill: var(--ok); } .bar.warn { fill: var(--warn); }
.bar.bad { fill: var(--bad); } .bar.mute, .bar.other { fill: var(--mute); }
details { margin-top: 8px; font-size: 13px; }
summary { color: var(--soft); cursor: pointer; }
table { border-collapse: collapse; margin-top: 6px; font-variant-numeric: tabular-nums; }
th, td { padding: 2px 12px 2px 0; text-align: left; border-bottom: 1px solid var(--line); }
td.n { text-align: right; }
.empty { color: var(--soft); font-style: italic; }
footer { text-align: center; color: var(--soft); font-size: 12px; padding-bottom: 24px; }
@media print { body { background: #fff; } details { display: none; } section { break-inside: avoid; } }
"""

# No source is allowed: the page must show the same offline, in a mail attachment or an
# air-gapped browser, and must never call home with the tenant's numbers.
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def render_report(summary: CustomerCounts, *, title: str, generated_at: str, target: str, source: str) -> str:
    """The summary as one HTML page with nothing to fetch."""
    total = summary.total
    meta = "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in (
        ("Target", _label(target, 200)), ("Source", _label(source, 200)),
        ("Generated", _label(generated_at, 80)), ("Customers", f"{total:,}")))
    statuses = by_count(summary.by_status)
    sign_in = by_count(summary.by_sign_in_type)
    locations = top_with_other(by_count(summary.by_usage_location), TOP_LOCATIONS)
    months = by_month(summary.by_creation_month)
    places = len(summary.by_usage_location)
    place_note = (f"Top {TOP_LOCATIONS} of {places:,} usage locations; the rest are grouped."
                  if places > TOP_LOCATIONS else f"{places:,} usage locations.")
    sections = [
        _section("status", "Status", "Deleted customers are in the recycle bin; blocked ones cannot sign in.",
                 statuses, total, _bar_chart("status", "Customers by status", statuses, total, width=460)),
        _section("sign-in", "Sign-in type", "A customer may have several, so the shares can add up to more "
                 "than 100%.", sign_in, total, _bar_chart("sign-in", "Customers by sign-in type", sign_in, total,
                                                          width=460)),
        _section("location", "Usage location", place_note, locations, total,
                 _bar_chart("location", "Customers by usage location", locations, total), wide=True),
        _section("month", "Creation month", _month_note(summary.by_creation_month, total), months, total,
                 _column_chart("month", "Customers created per month", months, total), wide=True),
    ]
    if summary.migration is not None:
        progress = summary.migration_rows()
        sections.append(_section("migration", f"Password migration ({summary.migration})",
                                 "Just-in-time password migration: a customer's flag turns false once its legacy "
                                 "password was checked at first sign-in and kept.", progress, total,
                                 _bar_chart("migration", "Customers by migration state", progress, total, width=460)))
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_label(title, 200)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f'<header><div class="wrap">\n<h1>{_label(title, 200)}</h1>\n'
            f'<dl class="meta">{meta}</dl>\n</div></header>\n'
            f"<main>\n{_figures(summary)}\n<div class=\"grid\">\n" + "\n".join(sections) + "\n</div>\n</main>\n"
            f"<footer>entra-batch export · generated {_label(generated_at, 80)}</footer>\n</body>\n</html>\n")


def _figures(summary: CustomerCounts) -> str:
    """The headline numbers above the charts; deleted/removed only when there are any."""
    total = summary.total
    cards = [("", f"{total:,}", "customers")]
    for status in ("enabled", "blocked", "deleted", "removed"):
        count = summary.by_status[status]
        if count or status in ("enabled", "blocked"):
            css = STATUS_CLASSES[status] if count else ""  # a zero in alarm colours would alarm for nothing
            cards.append((css, f"{count:,}", f"{status} · {percent(count, total)}"))
    cards.append(("", f"{len(summary.by_usage_location):,}", "usage locations"))
    return ('<div class="figures" aria-label="Key figures">'
            + "".join(f'<div class="figure {css}"><b>{value}</b><span>{_esc(label)}</span></div>'
                      for css, value, label in cards) + "</div>")


def _section(key: str, heading: str, note: str, rows: list[tuple[str, int]], total: int, chart: str,
             *, wide: bool = False) -> str:
    table = "".join(f'<tr><td>{_label(label, 200)}</td><td class="n">{count:,}</td>'
                    f'<td class="n">{percent(count, total)}</td></tr>' for label, count in rows)
    return (f'<section id="{key}"{" class=wide" if wide else ""}>\n<h2>{_esc(heading)}</h2>\n'
            f'<p class="note">{_esc(note)}</p>\n<figure>{chart}</figure>\n'
            f"<details><summary>Numbers as a table</summary><table><thead><tr><th>{_esc(heading)}</th>"
            f'<th>Customers</th><th>Share</th></tr></thead><tbody>{table}</tbody></table></details>\n</section>')


def _description(rows: Iterable[tuple[str, int]], total: int) -> str:
    return "; ".join(f"{printable(label)}: {count:,} ({percent(count, total)})" for label, count in rows)


def _svg_open(key: str, title: str, desc: str, width: int, height: int) -> str:
    """role=img with a title and a description holding every number, for screen readers."""
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-labelledby="{key}-title {key}-desc"><title id="{key}-title">{_esc(title)}</title>'
            f'<desc id="{key}-desc">{_esc(desc)}</desc>')


def _bar_chart(key: str, title: str, rows: list[tuple[str, int]], total: int, *, width: int = 1000) -> str:
    """Horizontal bars scaled to the largest row, each labelled with its count and share; drawn at
    the width of its card (the SVG shrinks on a narrow screen but never grows, so text keeps its size)."""
    if not rows:
        return '<p class="empty">No customers exported.</p>'
    label_w, value_w, label_chars = (250, 150, 30) if width >= 700 else (170, 120, 22)
    row_h, bar_h = 30, 20
    track = width - label_w - value_w
    largest = max(count for _, count in rows)
    parts = [_svg_open(key, title, _description(rows, total), width, row_h * len(rows) + 4)]
    for index, (label, count) in enumerate(rows):
        y = index * row_h + 2
        length = max(count / largest * track, 2.0 if count else 0.0)
        css = STATUS_CLASSES.get(label, "") if key == "status" else ("other" if label.startswith("other (") else "")
        tip = f"{printable(label, 200)}: {count:,} ({percent(count, total)})"
        parts.append(
            f'<g><title>{_esc(tip)}</title>'
            f'<text x="{label_w - 12}" y="{y + bar_h - 5}" text-anchor="end">{_label(label, label_chars)}</text>'
            f'<rect class="track" x="{label_w}" y="{y}" width="{track}" height="{bar_h}" rx="3"/>'
            f'<rect class="bar {css}" x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_h}" rx="3"/>'
            f'<text class="value" x="{label_w + track + 10}" y="{y + bar_h - 5}">{count:,}  ·  '
            f"{percent(count, total)}</text></g>")
    return "".join(parts) + "</svg>"


def _month_series(rows: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], bool]:
    """Dated months with the empty months between them filled in, so the x axis is time, and
    whether they were (when not, the columns are only the months that have customers)."""
    counts = dict(row for row in rows if row[0] != UNKNOWN_MONTH)
    if not counts:
        return [], True
    first, last = min(counts), max(counts)
    (y0, m0), (y1, m1) = (map(int, month.split("-")) for month in (first, last))
    span = (y1 - y0) * 12 + (m1 - m0) + 1
    if span > MAX_FILLED_MONTHS:
        return sorted(counts.items()), False
    months = [f"{y0 + (m0 - 1 + i) // 12:04d}-{(m0 - 1 + i) % 12 + 1:02d}" for i in range(span)]
    return [(month, counts.get(month, 0)) for month in months], True


def _month_note(counter: Counter[str], total: int) -> str:
    unknown = counter[UNKNOWN_MONTH]
    note = "Customers created per month (UTC)."
    if unknown:
        note += f" {unknown:,} ({percent(unknown, total)}) have no creation date and are not drawn."
    return note


def _nice_ceiling(value: int) -> tuple[int, int]:
    """An axis maximum and step of 1, 2 or 5 x 10^k, about four steps high."""
    raw = max(value, 1) / 4
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(power * m for m in (1, 2, 5, 10) if power * m >= raw)
    return step * math.ceil(max(value, 1) / step), step


def _column_chart(key: str, title: str, rows: list[tuple[str, int]], total: int) -> str:
    series, filled = _month_series(rows)
    if not series:
        return '<p class="empty">No creation dates.</p>'
    width, height, left, right, top, bottom = 1000, 300, 64, 32, 24, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value, step = _nice_ceiling(max(count for _, count in series))
    parts = [_svg_open(key, title, _description(series, total), width, height)]
    for tick in range(0, top_value + 1, step):
        y = top + plot_h - tick / top_value * plot_h
        parts.append(f'<line class="{"axis" if tick == 0 else "gridline"}" x1="{left}" x2="{width - right}" '
                     f'y1="{y:.1f}" y2="{y:.1f}"/><text class="tick" x="{left - 8}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{tick:,}</text>')
    band = plot_w / len(series)
    column_w = min(band * 0.75, 56)
    # About a dozen axis labels; on a filled axis they fall on January, April, July... so that
    # the eye finds the years.
    label_every = next((step for step in (1, 2, 3, 6, 12, 24, 60, 120) if len(series) / step <= 12),
                       math.ceil(len(series) / 12))
    for index, (month, count) in enumerate(series):
        x = left + index * band + (band - column_w) / 2
        h = count / top_value * plot_h
        tip = f"{month}: {count:,} ({percent(count, total)})"
        parts.append(f'<g><title>{_esc(tip)}</title><rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" '
                     f'width="{column_w:.1f}" height="{h:.1f}" rx="2"/>')
        if len(series) <= 24 and count:
            parts.append(f'<text class="value" x="{x + column_w / 2:.1f}" y="{top + plot_h - h - 6:.1f}" '
                         f'text-anchor="middle">{count:,}</text>')
        if ((int(month[:4]) * 12 + int(month[5:7]) - 1) if filled else index) % label_every == 0:
            parts.append(f'<text class="tick" x="{x + column_w / 2:.1f}" y="{height - bottom + 20}" '
                         f'text-anchor="middle">{_esc(month)}</text>')
        parts.append("</g>")
    return "".join(parts) + "</svg>"
