"""The export summary: its counting rules, its terminal tables, and the HTML report, checked
as text and then in a real headless Chromium with every network route closed.

The browser test is the one that proves the page is self-contained and readable: it loads the
file with DNS mapped to nothing and a proxy on a dead loopback port, dumps the DOM the browser
built (the SVG charts are there, tenant text stayed text) and decodes the screenshot with zlib
to see the bars painted in their colours.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from batch.export.summary import CustomerCounts, percent, printable, render_report

EVIL = '<script>alert("x")</script>'


def summary_of(*records: dict[str, str]) -> CustomerCounts:
    summary = CustomerCounts()
    for record in records:
        summary.add(record)
    return summary


def made_up_records(count: int = 1000, *, seed: int = 7) -> list[dict[str, str]]:
    """Customers over a few countries, both sign-in types and a few months, with a hostile
    usage location among them."""
    rnd = random.Random(seed)
    countries = ["US"] * 40 + ["GB"] * 15 + ["DE"] * 12 + ["FR"] * 8 + ["JP"] * 4 + [""] * 6 + [EVIL]
    records = []
    for index in range(count):
        record = {"id": f"id-{index}", "usageLocation": rnd.choice(countries),
                  "createdDateTime": f"2026-{rnd.choice([1, 2, 2, 3, 3, 3, 5, 6]):02d}-03T10:22:31Z",
                  "accountEnabled": "false" if rnd.random() < 0.08 else "true"}
        kind = rnd.random()
        if kind < 0.75:
            record["signIn.emailAddress"] = f"user{index}@example.com"
        elif kind < 0.95:
            record["signIn.userName"] = f"user{index}"
        if rnd.random() < 0.03:
            record["deletedDateTime"] = "2026-08-01T00:00:00Z"
        records.append(record)
    return records


def render(summary: CustomerCounts, **overrides: str) -> str:
    fields = {"title": "Contoso customers", "generated_at": "2026-11-29T04:10:00Z",
              "target": "contoso.onmicrosoft.com", "source": "GET /users"} | overrides
    return render_report(summary, **fields)


# --- counting -------------------------------------------------------------------------------

@pytest.mark.parametrize(("record", "status"), [
    ({}, "enabled"),
    ({"accountEnabled": "true"}, "enabled"),
    ({"accountEnabled": "false"}, "blocked"),
    ({"accountEnabled": "false", "change": "removed"}, "removed"),
    ({"accountEnabled": "false", "change": "changed"}, "blocked"),
    ({"change": "removed", "deletedDateTime": "2026-11-03T10:22:31Z"}, "deleted"),
    ({"accountEnabled": "false", "deletedDateTime": "2026-11-03T10:22:31Z"}, "deleted"),
    ({"deletedDateTime": ""}, "enabled"),
])
def test_status_follows_deleted_removed_blocked_enabled(record: dict[str, str], status: str) -> None:
    assert summary_of(record).to_dict()["by_status"] == {status: 1}


def test_each_sign_in_type_counts_and_a_customer_with_none_is_upn_only() -> None:
    summary = summary_of({"signIn.emailAddress": "a@example.com", "signIn.userName": "a"},
                         {"signIn.emailAddress": "b@example.com"},
                         {"signIn.federated": "google.com"},
                         {"signIn.emailAddress": "", "signIn.userName": " "},
                         {})
    assert summary.total == 5
    assert summary.to_dict()["by_sign_in_type"] == {"emailAddress": 2, "userPrincipalName only": 2,
                                                    "federated": 1, "userName": 1}


def test_missing_location_and_unreadable_dates_have_their_own_labels() -> None:
    summary = summary_of({"usageLocation": "NL", "createdDateTime": "2026-11-03T10:22:31Z"},
                         {"usageLocation": "", "createdDateTime": "2026-13-01T00:00:00Z"},
                         {"usageLocation": "  ", "createdDateTime": "yesterday"},
                         {})
    result = summary.to_dict()
    assert result["by_usage_location"] == {"(not set)": 3, "NL": 1}
    assert result["by_creation_month"] == {"2026-11": 1, "(unknown)": 3}


def test_to_dict_orders_by_count_then_label_and_months_chronologically() -> None:
    records = ([{"usageLocation": "US", "createdDateTime": "2026-02-01T00:00:00Z"}] * 3
               + [{"usageLocation": "DE", "createdDateTime": "2025-12-01T00:00:00Z"}] * 2
               + [{"usageLocation": "AT", "createdDateTime": ""}] * 2
               + [{"usageLocation": "FR", "createdDateTime": "2026-01-31T23:59:59Z"}])
    result = summary_of(*records).to_dict()
    assert list(result["by_usage_location"].items()) == [("US", 3), ("AT", 2), ("DE", 2), ("FR", 1)]
    assert list(result["by_creation_month"]) == ["2025-12", "2026-01", "2026-02", "(unknown)"]
    assert json.loads(json.dumps(result)) == result


def test_empty_summary() -> None:
    summary = CustomerCounts()
    assert summary.total == 0
    assert summary.to_dict() == {"total": 0, "by_status": {}, "by_sign_in_type": {}, "by_usage_location": {},
                                 "by_creation_month": {}}
    assert summary.text() == ("Customers  0\n\nStatus\n  (none)\n\nSign-in type (a customer may have several)\n"
                              "  (none)\n\nUsage location\n  (none)\n\nCreation month\n  (none)\n")
    page = render(summary)
    assert "No customers exported." in page and "<svg" not in page


def test_memory_stays_with_the_labels_not_the_records() -> None:
    summary = CustomerCounts()
    for index in range(50_000):
        summary.add({"id": str(index), "usageLocation": "US", "createdDateTime": "2026-01-01T00:00:00Z",
                     "signIn.emailAddress": f"u{index}@example.com"})
    assert summary.total == 50_000
    sizes = [len(counter) for counter in (summary.by_status, summary.by_sign_in_type, summary.by_usage_location,
                                          summary.by_creation_month)]
    assert sizes == [1, 1, 1, 1]


# --- the terminal tables --------------------------------------------------------------------

def test_text_aligns_counts_and_percentages() -> None:
    records = ([{"accountEnabled": "true", "signIn.emailAddress": "a@example.com", "usageLocation": "US",
                 "createdDateTime": "2026-01-05T00:00:00Z"}] * 1234
               + [{"accountEnabled": "false", "signIn.userName": "b", "createdDateTime": "2026-03-05T00:00:00Z"}] * 106)
    assert summary_of(*records).text() == (
        "Customers  1,340\n"
        "\n"
        "Status\n"
        "  enabled  1,234  92.1%\n"
        "  blocked    106   7.9%\n"
        "\n"
        "Sign-in type (a customer may have several)\n"
        "  emailAddress  1,234  92.1%\n"
        "  userName        106   7.9%\n"
        "\n"
        "Usage location\n"
        "  US         1,234  92.1%\n"
        "  (not set)    106   7.9%\n"
        "\n"
        "Creation month\n"
        "  2026-01  1,234  92.1%\n"
        "  2026-03    106   7.9%\n")


def test_percentages() -> None:
    assert percent(1, 3) == "33.3%"
    assert percent(1, 10_000) == "<0.1%"
    assert percent(0, 10) == "0.0%"
    assert percent(0, 0) == "-"


def test_text_spells_out_control_characters_and_cuts_long_labels() -> None:
    assert printable("\x1b[31mUS\u202e") == "\\u001b[31mUS\\u202e"
    assert printable("X" * 100) == "X" * 39 + "…"
    text = summary_of({"usageLocation": "\x1b]0;pwned\x07"}).text()
    assert "\x1b" not in text and "\\u001b]0;pwned\\u0007" in text


def test_more_than_twenty_locations_end_in_one_other_row() -> None:
    records = [{"usageLocation": f"C{index:02d}"} for index in range(25) for _ in range(30 - index)]
    summary = summary_of(*records)
    assert len(summary.to_dict()["by_usage_location"]) == 25
    text = summary.text()
    assert "C19" in text and "C20" not in text
    assert re.search(r"other \(5 locations\)\s+40\s", text)  # 10 + 9 + 8 + 7 + 6
    page = render(summary)
    assert "other (5 locations): 40" in page and "C20" not in page
    assert "Top 20 of 25 usage locations" in page


# --- the HTML page ----------------------------------------------------------------------------

FETCHING = re.compile(r"""\b(?:src|href|srcset|action|poster|data|xlink:href|formaction)\s*=|url\s*\(|@import""",
                      re.IGNORECASE)


def test_page_escapes_every_piece_of_tenant_text() -> None:
    summary = summary_of(*made_up_records(200), {"usageLocation": '"><img src=x onerror=alert(1)>'})
    page = render(summary, title=f"Export {EVIL}", target=f"tenant {EVIL}", source=EVIL, generated_at=EVIL)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<title>Export &lt;script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page


def test_page_fetches_nothing() -> None:
    page = render(summary_of(*made_up_records(300)))
    assert FETCHING.findall(page) == []
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    assert "Content-Security-Policy\" content=\"default-src 'none'" in page


def test_a_url_as_target_stays_text() -> None:
    page = render(summary_of({}), target="https://graph.microsoft.com/v1.0")
    assert FETCHING.findall(page) == []
    assert "<dd>https://graph.microsoft.com/v1.0</dd>" in page


def test_each_chart_carries_its_numbers_as_text() -> None:
    page = render(summary_of(*made_up_records(1000)))
    charts = re.findall(r"<svg [^>]*>.*?</svg>", page, re.DOTALL)
    assert len(charts) == 4
    for chart in charts:
        assert 'role="img"' in chart and "aria-labelledby=" in chart
        assert re.search(r"<desc id=\"[\w-]+-desc\">[^<]*\d[^<]*</desc>", chart)
    assert page.count("<table>") == 4
    assert "<h1>Contoso customers</h1>" in page
    for shown in ("contoso.onmicrosoft.com", "GET /users", "2026-11-29T04:10:00Z", "<b>1,000</b>"):
        assert shown in page


def test_month_chart_fills_gaps_but_not_centuries() -> None:
    page = render(summary_of({"createdDateTime": "2026-01-02T00:00:00Z"}, {"createdDateTime": "2026-04-02T00:00:00Z"}))
    assert "2026-02: 0 (0.0%); 2026-03: 0 (0.0%)" in page
    page = render(summary_of({"createdDateTime": "1601-01-01T00:00:00Z"}, {"createdDateTime": "2026-04-02T00:00:00Z"}))
    assert "1601-01: 1 (50.0%); 2026-04: 1 (50.0%)" in page


def test_undated_customers_are_counted_but_not_drawn() -> None:
    page = render(summary_of({"createdDateTime": "2026-01-02T00:00:00Z"}, {}))
    assert "1 (50.0%) have no creation date" in page
    assert "<td>(unknown)</td>" in page


# --- in a real browser ------------------------------------------------------------------------

def find_chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (apt-get install chromium): the report is not checked in a browser")
    return found


def run_chromium(chromium: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Headless, with no way out: every host name resolves to nothing and every request goes
    to a proxy on the discard port of loopback, where nothing listens."""
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check",
               "--disable-extensions", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
               "--hide-scrollbars", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB(A) rows of an 8-bit non-interlaced PNG, as Chromium writes them."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, compressed = 8, bytearray()
    width = height = bpp = 0
    while position < len(data):
        (length,), kind = struct.unpack(">I", data[position:position + 4]), data[position + 4:position + 8]
        body = data[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, "unexpected PNG format"
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            compressed += body
    raw, stride = zlib.decompress(bytes(compressed)), width * bpp
    prior = bytearray(stride)
    rows: list[bytes] = []
    for y in range(height):
        start = y * (stride + 1)
        row_filter, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride) if row_filter else ():
            left = line[i - bpp] if i >= bpp else 0
            up, corner = prior[i], (prior[i - bpp] if i >= bpp else 0)
            if row_filter == 1:
                line[i] = (line[i] + left) & 0xFF
            elif row_filter == 2:
                line[i] = (line[i] + up) & 0xFF
            elif row_filter == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            else:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        prior = line
    if bpp == 4:  # drop alpha: the page is opaque
        rows = [bytes(b for x in range(0, stride, 4) for b in row[x:x + 3]) for row in rows]
    return width, height, rows


def pixel_colours(rows: list[bytes]) -> Counter[bytes]:
    return Counter(row[x:x + 3] for row in rows for x in range(0, len(row), 3))


def test_report_renders_offline_in_chromium(tmp_path: Path) -> None:
    chromium = find_chromium()
    page = tmp_path / "report.html"
    page.write_text(render(summary_of(*made_up_records(1000)), title=f"Contoso {EVIL}"), encoding="utf-8")

    dumped = run_chromium(chromium, tmp_path / "profile-dom", "--dump-dom", page.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    assert dom.count("<svg") == 4 and dom.count("<rect") > 20
    assert "<b>1,000</b>" in dom and "Customers" in dom
    assert "&lt;script&gt;alert(\"x\")&lt;/script&gt;" in dom  # tenant text stayed text ...
    assert "<script" not in dom.lower()  # ... and became no element

    screenshot = tmp_path / "report.png"
    shot = run_chromium(chromium, tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=1200,2000",
                        page.as_uri())
    assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-2000:]
    width, height, rows = decode_png(screenshot.read_bytes())
    assert (width, height) == (1200, 2000)
    colours = pixel_colours(rows)
    background, most = colours.most_common(1)[0]
    assert most < 0.9 * width * height, "the page is (nearly) one colour"
    assert len(colours) > 50, "no text or charts were painted"
    # The bars, in the page's own colours: the accent blue and the status green.
    assert colours[bytes.fromhex("1f6feb")] > 5_000
    assert colours[bytes.fromhex("1a7f37")] > 500
