"""A create dry run with and without the directory's digest index (issue 16), in one run.

    python benchmarks/dry_run.py --rows 100000 --customers 0
    python benchmarks/dry_run.py --rows 100000 --customers 100000

N generated rows (`sample_data/generate.py N --bad 0.01`) are planned by `create --dry-run`
against the in-process emulator with its default quotas and the client's pacing on (what
`--target local` does), whose directory holds D customers written straight into its store
(benchmarks/export.py's `seed`). Each case runs with the index (the directory listed in the
background; once complete, only keys some customer may hold are looked up) and without it
(`start_run(directory_index=False)`: one lookup per key, paced under the read quota), and
prints rows/s of each, their ratio, and whether plan.csv and results.csv are identical.
--old-rows plans only the first M rows on the old path (it runs at the read quota's pace:
100,000 rows take ~4.5 minutes), rows/s being compared.

Figures (2 cores shared with other benchmarks; ratios within one run):
    (filled in below by the runs reported in the commit)
"""

from __future__ import annotations

import argparse
import asyncio
import filecmp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.export import seed  # noqa: E402


def generate(path: Path, rows: int) -> Path:
    subprocess.run([sys.executable, str(ROOT / "sample_data" / "generate.py"), str(rows), "--bad", "0.01",
                    "--out", str(path)], check=True)
    return path


def head(source: Path, rows: int, path: Path) -> Path:
    """The header and first `rows` data lines of a generated file (one record a line)."""
    with source.open(encoding="utf-8", newline="") as src, path.open("w", encoding="utf-8", newline="") as out:
        for number, line in enumerate(src):
            if number > rows:
                break
            out.write(line)
    return path


def dry_run(db: Path, source: Path, run_dir: Path, *, index: bool) -> tuple[float, dict[str, Any]]:
    """One create dry run in process on the emulator directory `db`: (seconds, summary.json)."""
    from batch import RunRequest, Target, start_run
    from batch.cli.local import LocalEmulator

    request = RunRequest(verb="create", input=str(source), out_dir=str(run_dir), dry_run=True)
    with LocalEmulator(db_path=db) as local:
        target = local.target(Target("local", "http://emulator.local/v1.0"))
        started = time.perf_counter()
        summary = asyncio.run(start_run(request, target, transport=local.transport, directory_index=index))
        elapsed = time.perf_counter() - started
    return elapsed, {**summary.as_json(), "notes": list(summary.notes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the file (default 100,000)")
    parser.add_argument("--customers", type=int, default=0, help="customers in the directory (default 0)")
    parser.add_argument("--old-rows", type=int, help="rows planned without the index (default: --rows)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dry-run-bench-") as name:
        tmp = Path(name)
        os.environ["ENTRA_BATCH_HOME"] = str(tmp / "home")
        db = tmp / "emulator" / "emulator.db"
        db.parent.mkdir(mode=0o700)
        if args.customers:
            seed(db, args.customers)
        else:  # an empty directory: made by the emulator itself
            from batch.cli.local import LocalEmulator
            with LocalEmulator(db_path=db):
                pass
        source = generate(tmp / "rows.csv", args.rows)
        old_rows = min(args.old_rows or args.rows, args.rows)
        old_source = source if old_rows == args.rows else head(source, old_rows, tmp / "old-rows.csv")
        print(f"machine: {os.cpu_count()} cores; {args.rows:,} rows (old path: {old_rows:,}); "
              f"{args.customers:,} customers; default quotas, pacing on", flush=True)
        new_seconds, new = dry_run(db, source, tmp / "new", index=True)
        print(f"  with the index:    {args.rows:>9,} rows in {new_seconds:7.1f} s = {args.rows / new_seconds:>9,.0f} "
              f"rows/s ({new['requests']:,} requests, throttled {new['throttled_429']})", flush=True)
        for note in new.get("notes") or ():
            print(f"    note: {note}")
        old_seconds, old = dry_run(db, old_source, tmp / "old", index=False)
        print(f"  without the index: {old_rows:>9,} rows in {old_seconds:7.1f} s = {old_rows / old_seconds:>9,.0f} "
              f"rows/s ({old['requests']:,} requests, throttled {old['throttled_429']})", flush=True)
        print(f"  ratio: {(args.rows / new_seconds) / (old_rows / old_seconds):,.1f}x rows/s")
        if old_rows == args.rows:
            same = all(filecmp.cmp(tmp / "new" / f, tmp / "old" / f, shallow=False)
                       for f in ("plan.csv", "results.csv"))
            print(f"  plan.csv and results.csv identical: {same}")


if __name__ == "__main__":
    main()
