"""A create dry run with and without the directory's digest index (issue 16), in one run.

    python benchmarks/dry_run.py --rows 100000 --customers 0
    python benchmarks/dry_run.py --rows 100000 --customers 100000
    python benchmarks/dry_run.py --rows 1000000 --floor

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

`--floor` (instead of the path without the index) measures, after the dry run and in the
same process, each piece of per-row work that the run contract asks of a dry run, alone:
reading the file, validating it (the `validate` command's chunked path, which builds no
request), one plan.csv line a row, one journal row a row (what makes `resume` exact) and
results.csv read back from the journal (results are regenerated from the journal, so that
they never disagree with it); then the same lines and rows through csv.writer and SQLite
alone (no neutralising, no fsync): a bound no code of ours can beat. At commit 41ae0b7,
1,000,000 rows, a quiet machine (`--rows 1000000 --floor`):

    the dry run (the CLI's work, in process)          23.8 s   42,049 rows/s
    read the file                                      1.76 s   1.76 us/row
    validate (chunks, building no request)             2.69 s   2.69 us/row
    plan.csv, a line a row                             2.80 s   2.80 us/row
    the journal, a row a row                           3.69 s   3.69 us/row
    results.csv from the journal                       4.62 s   4.62 us/row
    bare: a csv line a row (plan.csv's cells)          2.18 s   2.18 us/row
    bare: an SQLite row a row                          2.99 s   2.99 us/row
    bare: results.csv's cells read back and written    3.43 s   3.43 us/row
    in all, our writers:                              15.57 s  15.57 us/row =  64,221 rows/s on one core, 128,442 over 2
    in all, the bare writers instead:                 13.06 s  13.06 us/row =  76,579 rows/s on one core, 153,159 over 2
    no journal: read, validate, two bare csv lines:    8.82 s   8.82 us/row = 113,382 rows/s on one core, 226,765 over 2

With results.csv's query looking at a cell's quotes only when it starts with one or with a
formula start (the next commit), results.csv from the journal took 4.09 s (4.41 before it,
measured one after the other).

So the issue's 200,000 rows/s for `create --dry-run` (5 us a row) is out of reach of any
dry run that keeps a journal row per input row and regenerates results.csv from it, even
split over both cores without loss and with writers that cost nothing of ours (153,000).
Only a dry run without the per-row journal (plan.csv and results.csv written as rows are
planned, an interrupted dry run started again rather than resumed: a change to the run
contract) whose rows are split over both processes with nothing lost to the split (the
duplicate-key check made across them) could reach it (226,000 as a bound). The dry run
itself is 1.5x the sum of its pieces: the rest is planning (verdicts, plan lines and
outcomes), retry.csv and the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import filecmp
import os
import sqlite3
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


def floor(source: Path, run_dir: Path) -> list[tuple[str, float]]:
    """Seconds of each piece of work that a dry run's contract asks for every row, each alone
    and in this process, on `source`: reading it, validating it (the `validate` command's
    chunked path, which builds no request), one plan.csv line a row (`PlanFile.append`, the
    writer a dry run uses), one journal row a row (`Journal.mark_done`, committed as a run
    commits them) and results.csv read back from the journal (`write_results`). Every valid
    row gets the line and outcome of a create that no customer's key blocks (an empty
    directory), every invalid row its refusal, so the files are the size a dry run writes."""
    from batch.io.csvio import open_csv
    from batch.run.files import PlanFile, write_results
    from batch.run.journal import Journal
    from batch.run.pipeline import CHUNK_ROWS, chunks, refusal_line
    from batch.verbs.base import PlanLine
    from batch.verbs.registry import VerbSettings, build_verb

    verb = build_verb("create", VerbSettings(domain="contoso.onmicrosoft.com"))
    pieces: list[tuple[str, float]] = []

    def timed(name: str, work: Any) -> Any:
        started = time.perf_counter()
        result = work()
        pieces.append((name, time.perf_counter() - started))
        return result

    timed("read the file", lambda: sum(1 for _ in open_csv(source, verb.columns).rows()))
    refused = {r.row: r for r in timed("read and validate", lambda: [
        rejected for chunk in chunks(open_csv(source, verb.columns).rows(), CHUNK_ROWS)
        for rejected in verb.rejections(chunk)])}
    pieces[-1] = ("validate (chunks, building no request)", pieces[-1][1] - pieces[0][1])
    reason = "no customer has this sign-in name"
    lines = [refusal_line(refused[row.number]) if row.number in refused else
             PlanLine(row.number, row.cells.get("signInName", ""), "create", reason=reason)
             for row in open_csv(source, verb.columns).rows()]
    run_dir.mkdir(mode=0o700)
    plan = PlanFile(run_dir)
    timed("plan.csv, a line a row", lambda: [plan.append(lines[i:i + 1000]) for i in range(0, len(lines), 1000)])
    plan.close()
    outcomes = [line.outcome() for line in lines]
    journal = Journal(run_dir)

    def journal_rows() -> None:
        for i in range(0, len(outcomes), 1000):
            journal.mark_done(outcomes[i:i + 1000])

    timed("the journal, a row a row", journal_rows)
    timed("results.csv from the journal", lambda: write_results(journal, run_dir))
    journal.close()
    # The same lines and rows through nothing of ours: csv.writer alone (no neutralising) and
    # SQLite's executemany alone (a plain INSERT into a table of the journal's columns, no
    # fsync), a bound that no code of ours can beat on these files.
    bare = sqlite3.connect(run_dir / "bare.db", isolation_level=None)
    bare.execute("PRAGMA journal_mode=WAL")
    bare.execute("PRAGMA synchronous=OFF")  # not even the journal's fsync at each commit
    bare.execute("CREATE TABLE rows (row INTEGER PRIMARY KEY, state TEXT, key TEXT, status TEXT, object_id TEXT,"
                 " http_status INTEGER, error_code TEXT, error_message TEXT, attempts INTEGER)")

    def bare_rows() -> None:
        for i in range(0, len(outcomes), 1000):
            bare.execute("BEGIN")
            bare.executemany("INSERT INTO rows VALUES (?, 'done', ?, ?, ?, ?, ?, ?, ?)", outcomes[i:i + 1000])
            bare.execute("COMMIT")

    def bare_lines(name: str, records: Any) -> None:
        with (run_dir / name).open("w", encoding="utf-8", newline="") as out:
            csv.writer(out, lineterminator="\r\n").writerows(records)

    timed("bare: a csv line a row (plan.csv's cells)", lambda: bare_lines("bare-plan.csv", (
        (o.row, o.key, "create", "", "", "", o.error_message, "", o.row + 1) for o in outcomes)))
    timed("bare: an SQLite row a row", bare_rows)
    timed("bare: results.csv's cells read back and written", lambda: bare_lines("bare-results.csv", bare.execute(
        "SELECT row, key, status, coalesce(object_id, ''), coalesce(http_status, ''), coalesce(error_code, ''),"
        " error_message, attempts, row + 1 FROM rows ORDER BY row")))
    bare.close()
    return pieces


def print_floor(pieces: list[tuple[str, float]], rows: int, dry_run_seconds: float) -> None:
    """The pieces, and two sums: with our writers, and with the bare ones in their place."""
    cores = os.cpu_count() or 1
    ours = [p for p in pieces if not p[0].startswith("bare")]
    bare = ours[:2] + [p for p in pieces if p[0].startswith("bare")]
    line = [p for p in pieces if p[0].startswith("bare: a csv line")]
    unjournaled = ours[:2] + line + line  # plan.csv and results.csv written as the rows are planned
    print("  the per-row work of the dry run's contract, each piece alone:")
    for name, seconds in pieces:
        print(f"    {name:<48} {seconds:6.2f} s {seconds / rows * 1e6:6.2f} us/row")
    for label, chosen in (("in all, our writers", ours), ("in all, the bare writers instead", bare),
                          ("no journal: read, validate, two bare csv lines", unjournaled)):
        total = sum(seconds for _, seconds in chosen)
        print(f"    {label + ':':<48} {total:6.2f} s {total / rows * 1e6:6.2f} us/row = {rows / total:>9,.0f} rows/s "
              f"on one core, {cores * rows / total:>9,.0f} split without loss over {cores}")
    print(f"    the bar: 200,000 rows/s (5 us/row); the dry run above took "
          f"{dry_run_seconds / sum(s for _, s in ours):.2f}x the sum with our writers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the file (default 100,000)")
    parser.add_argument("--customers", type=int, default=0, help="customers in the directory (default 0)")
    parser.add_argument("--old-rows", type=int, help="rows planned without the index (default: --rows)")
    parser.add_argument("--floor", action="store_true",
                        help="instead of the path without the index: the per-row work a dry run cannot skip, "
                             "each piece alone, against the issue's 200,000 rows/s")
    args = parser.parse_args()
    if args.rows < 1 or args.customers < 0 or (args.old_rows is not None and args.old_rows < 1):
        parser.error("--rows and --old-rows must be positive, --customers at least 0")
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
        if args.floor:
            print_floor(floor(source, tmp / "floor"), args.rows, new_seconds)
            return
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
