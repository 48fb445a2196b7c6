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

Figures (2 cores shared with other benchmarks; compare the ratios, measured within one run):

    --rows 100000 --customers 0          with: 30,873 rows/s (3.2 s, 6 requests)
                                         without: 365 rows/s (274.2 s, 4,955 requests)   84.7x
                                         plan.csv and results.csv identical
    --rows 100000 --customers 100000     with: 14,021 rows/s (7.1 s, 219 requests; "read the
                                         directory's 100,000 customers in 3.8 s; 97,538 of
                                         99,058 rows needed no lookup")
                                         without: 869 rows/s (115.0 s; a directory this large
                                         has the large tenant's read quota)             16.1x
                                         plan.csv and results.csv identical
    --rows 100000 --customers 1000000    with: 2,032 rows/s (49.2 s, 1,411 requests; "read the
                                         directory's 1,000,000 customers in 45.5 s; 91,618 of
                                         99,058 rows needed no lookup": the in-process listing,
                                         on the same 2 cores, is most of the run)
                                         without: 868 rows/s (115.2 s)                   2.3x
                                         plan.csv and results.csv identical
    --rows 1000000 --customers 0 --old-rows 100000
                                         with: 29,776 rows/s (33.6 s, 2 requests)
                                         without: 365 rows/s (first 100,000 rows)       81.7x

With the index a dry run is bound by the rest of the pipeline, not Graph: at 200,000 rows
(cProfile, at b3f3f0e) plan() took 18 % of the time (its verdicts and plan lines), plan.csv's
cell neutralising 17 %, results.csv (read back from the journal, neutralised) 18 %, the
summary's plan counts 10 %, validation 12 %, the journal 5 %, retry.csv 5 %.

Those writers then went a chunk at a time (plan.csv neutralised per block of 128 rows,
results.csv written from one query, the plan counts by SQLite, named tuples for outcomes and
plan lines, the CLI's collector thresholds). The whole CLI (`entra-batch create FILE
--dry-run`, 1,000,000 generated rows, empty directory), b3f3f0e against d28d424 interleaved,
medians of 3, on a slower day of the same machine: 62.4 s -> 35.4 s wall (CPU 60.5 -> 34.5 s),
1.76x; peak RSS 184 MB both; plan.csv, results.csv and retry.csv byte for byte the same.
Where the time goes now (py-spy, 1,000,000 rows): reading and validating 32 %, results.csv
14 % (the query 2 us a row, the csv writer 2), planning and recording groups 22 % (the
journal's inserts 10 %, plan.csv's csv writer 6 %), retry.csv 5 % (the input read again for
its failing rows), the summary's counts 4 %. 200,000 rows/s would be 5 us a row for all of it,
where reading and validating alone take 6-8 (benchmarks/validate.py, `stage-new`).
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
    """One create dry run in process on the emulator directory `db`: (seconds, summary.json
    with the run's CPU seconds, this process's, the in-process emulator's included, as `cpu`)."""
    from batch import RunRequest, Target, start_run
    from batch.cli.local import LocalEmulator

    request = RunRequest(verb="create", input=str(source), out_dir=str(run_dir), dry_run=True)
    with LocalEmulator(db_path=db) as local:
        target = local.target(Target("local", "http://emulator.local/v1.0"))
        started, cpu = time.perf_counter(), time.process_time()
        summary = asyncio.run(start_run(request, target, transport=local.transport, directory_index=index))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return elapsed, {**summary.as_json(), "notes": list(summary.notes), "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the file (default 100,000)")
    parser.add_argument("--customers", type=int, default=0, help="customers in the directory (default 0)")
    parser.add_argument("--old-rows", type=int, help="rows planned without the index (default: --rows)")
    args = parser.parse_args()
    from batch.cli import collect_less_often

    collect_less_often()  # what the CLI does for a create dry run (batch/cli/__init__.py)
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
              f"rows/s, CPU {new['cpu']:.1f} s ({new['requests']:,} requests, throttled {new['throttled_429']})",
              flush=True)
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
