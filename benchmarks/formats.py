"""Inputs beyond CSV (issue 14, item 4): seconds, rows/s and peak RSS of reading the same
generated rows (sample_data/generate.py, 1 % bad) as CSV, Parquet and .xlsx, and whether the
findings agree with the CSV's.

    python benchmarks/formats.py [--rows 1000000] [--xlsx-rows 100000] [--dry-run-rows 100000]

(0 skips a part: `--rows 0 --xlsx-rows 0` measures only the dry runs.)

Cases, each in a child process (`python -m batch ...`; peak RSS from wait4, the child's own):
- `validate` of --rows rows as CSV and Parquet, and of --xlsx-rows rows as CSV and xlsx;
- `create --dry-run` of --dry-run-rows rows as CSV, Parquet and xlsx against the built-in
  emulator (a fresh ENTRA_BATCH_HOME): a dry run looks every valid row up in the directory,
  so it is measured on the smaller file (0 skips it).
"Same" compares a digest of the findings: validate's row lines (the xlsx sheet row taken out),
or results.csv without its `line` column (which is the sheet's row for xlsx by design).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "contoso.onmicrosoft.com"


def generate(rows: int, out: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "sample_data" / "generate.py"), str(rows), "--out", str(out),
                    "--bad", "0.01"], check=True)


def to_parquet(source: Path, out: Path) -> None:
    """The CSV's cells as string columns, written a batch at a time (bounded memory)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    with source.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle))
    reader = pcsv.open_csv(source, read_options=pcsv.ReadOptions(block_size=1 << 24),
                           convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()),
                                                               strings_can_be_null=False))
    with pq.ParquetWriter(out, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)


def to_xlsx(source: Path, out: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Customers")
    with source.open(encoding="utf-8-sig", newline="") as handle:
        for record in csv.reader(handle):
            sheet.append([cell or None for cell in record])
    book.save(out)


def child(args: list[str], home: Path) -> tuple[float, float, str]:
    """Seconds, peak RSS (MB) and stdout of `python -m batch ARGS`."""
    env = dict(os.environ, ENTRA_BATCH_HOME=str(home), PYTHONPATH=str(ROOT), ENTRA_BATCH_REPLICATION_WAITS="0.01")
    for name in ("ENTRA_BATCH_TARGET", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        env.pop(name, None)
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "batch", *args], stdout=out, stderr=subprocess.DEVNULL,
                                   env=env, cwd=home.parent)
        _, _, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        return seconds, usage.ru_maxrss / 1024, out.read().decode("utf-8", "replace")


_SHEET_ROW = re.compile(r" \(sheet row \d+\)")


def validate_digest(out: str) -> str:
    lines = [_SHEET_ROW.sub("", line) for line in out.splitlines() if line.startswith("row ")]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12] + f" ({len(lines)} invalid)"


def results_digest(run_dir: Path) -> str:
    with (run_dir / "results.csv").open(encoding="utf-8-sig", newline="") as handle:
        lines = ["\x1f".join(v for k, v in row.items() if k != "line") for row in csv.DictReader(handle)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12] + f" ({len(lines)} rows)"


def report(label: str, rows: int, seconds: float, peak: float, digest: str, reference: str | None) -> None:
    same = "reference" if reference is None else ("same" if digest == reference else "DIFFERENT")
    print(f"{label:<28} {seconds:8.1f} s {rows / seconds:10,.0f} rows/s {peak:8.0f} MB peak  {same} {digest}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--dry-run-rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        home = work / "home"
        big, small = work / "big.csv", work / "small.csv"
        validate = ["validate", "--verb", "create", "--domain", DOMAIN]
        cases = []
        if args.rows:
            generate(args.rows, big)
            to_parquet(big, work / "big.parquet")
            cases.append((args.rows, (big, work / "big.parquet")))
        if args.xlsx_rows:
            generate(args.xlsx_rows, small)
            to_xlsx(small, work / "small.xlsx")
            cases.append((args.xlsx_rows, (small, work / "small.xlsx")))
        for rows, files in cases:
            reference = None
            for path in files:
                seconds, peak, out = child([*validate[:1], str(path), *validate[1:]], home)
                digest = validate_digest(out)
                report(f"validate {path.suffix[1:]} {rows:,}", rows, seconds, peak, digest, reference)
                reference = reference or digest
        if args.dry_run_rows:
            dry = work / "dry.csv"
            generate(args.dry_run_rows, dry)
            to_parquet(dry, work / "dry.parquet")
            to_xlsx(dry, work / "dry.xlsx")
            reference = None
            for path in (dry, work / "dry.parquet", work / "dry.xlsx"):
                run_dir = work / f"run-{path.suffix[1:]}"
                seconds, peak, _ = child(["create", str(path), "--dry-run", "--out-dir", str(run_dir), "--quiet"],
                                         home)
                digest = results_digest(run_dir)
                report(f"create --dry-run {path.suffix[1:]} {args.dry_run_rows:,}", args.dry_run_rows, seconds,
                       peak, digest, reference)
                reference = reference or digest


if __name__ == "__main__":
    main()
