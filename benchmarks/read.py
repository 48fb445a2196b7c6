"""Reading a CSV input file (issue 16, "Validation at 200k rows/s"): the block reader
(`CsvSource.rows()`, `scan()`, batch/io/blocks.py) against the record-by-record reader it
replaced (`CsvSource.rows_by_record()`, and the old `scan()`, rebuilt here from `_records`),
on N generated rows (sample_data/generate.py, 1 % bad), as generated and with every cell quoted
(`--quoted`, as some exporters write).

    python benchmarks/read.py [--rows 1000000] [--repeat 3] [--quoted]

Cases, each in a fresh process (peak RSS from wait4, the process's own), interleaved so that
the shared machine's load falls on every case alike:
- `rows-old` / `rows-new`: every Row of the file;
- `scan-old` / `scan-new`: the pass a run makes first (hash, record count, decoding);
- `no-checks`: the csv reader over the file, the cells' dicts and the Rows made at C speed,
  with no check at all, for scale: the objects alone (the block reader goes below it by
  splitting a block without quotes with `str.split`).
Printed: medians of wall and CPU seconds, rows/s (wall), peak RSS, the new/old ratios of the
same run, and whether old and new give the same Rows (a digest of every row's number, cells,
problem, example and blank marks; taken in an untimed second pass) and the same scan.

Measured on the shared 2-core machine (two other helpers' benchmarks running: read the CPU
column and the ratios), 1,000,000 rows, medians of 3,
`python benchmarks/read.py --rows 1000000 --repeat 3`:

    case          wall s   CPU s      rows/s  peak MB
    rows-old        3.99    3.53     250,763       31
    rows-new        2.34    2.04     426,876       31
    scan-old        1.64    1.49     608,143       31
    scan-new        0.63    0.61   1,577,165       31
    no-checks       2.02    1.93     496,122       31
    rows: new is 1.70x the old reader (wall), 1.73x (CPU); scan: new is 2.59x (wall), 2.46x (CPU)
    same Rows, old and new: yes; same scan: yes

and with `--quoted` (every cell between quotes: the csv reader splits every block, and a
scan must split them too):

    rows-old        4.06    3.96     246,015       31
    rows-new        3.59    2.63     278,537       31
    scan-old        2.64    1.62     378,233       31
    scan-new        3.01    1.55     332,396       31
    no-checks       2.80    1.96     357,219       31
    rows: 1.13x (wall), 1.51x (CPU); scan: 0.88x (wall), 1.04x (CPU)

Peak RSS is the interpreter's and the imports' (31 MB in every case): a block holds about 16 Ki
characters and its ~180 rows (tests/test_csvio.py's tracemalloc bound, 2 MB, holds).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = ("rows-old", "rows-new", "scan-old", "scan-new", "no-checks")


def one_case(case: str, path: Path) -> None:
    """Run one case in this process; print wall and CPU seconds, rows, and a digest."""
    from batch.io.columns import CREATE_COLUMNS
    from batch.io.csvio import Inspecting, _new_rows, open_csv, open_input

    source = open_csv(path, CREATE_COLUMNS)

    def old_scan() -> tuple[int, str]:  # CsvSource.scan() before the block reader
        digest = hashlib.sha256()
        with open_input(source.path) as raw:
            records = sum(1 for _ in source._records(Inspecting(raw, source.encoding, digest)))
            for block in iter(lambda: raw.read(1 << 20), b""):
                digest.update(block)
        return records, digest.hexdigest()

    def no_checks() -> int:
        names = [source.match.by_index[i] for i in range(len(source.headers))]
        count = 0
        with path.open(encoding=source.encoding, newline="") as text:
            reader = csv.reader(text, delimiter=source.delimiter)
            next(reader)
            for block in iter(lambda: list(itertools.islice(reader, 200)), []):
                count += len(_new_rows(count + 1, list(map(dict, map(zip, itertools.repeat(names), block)))))
        return count

    run = {
        "rows-old": lambda: sum(1 for _ in source.rows_by_record()),
        "rows-new": lambda: sum(1 for _ in source.rows()),
        "scan-old": lambda: old_scan()[0],
        "scan-new": lambda: source.scan().records,
        "no-checks": no_checks,
    }[case]
    wall, cpu = time.perf_counter(), time.process_time()
    count = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

    digest = hashlib.sha256()
    if case.startswith("rows"):
        for row in source.rows() if case == "rows-new" else source.rows_by_record():
            digest.update(f"{row.number}|{row.problem}|{row.example}|{row.blank}|{sorted(row.cells.items())}\n".encode())
    elif case.startswith("scan"):
        scan = source.scan()
        digest.update(repr((scan.records, scan.sha256) if case == "scan-new" else old_scan()).encode())
    print(f"{wall} {cpu} {count} {digest.hexdigest()}")


def measure(case: str, path: Path) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS in MB, digest) of one case in a fresh process."""
    child = subprocess.Popen([sys.executable, __file__, "--case", case, "--file", str(path)],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"case {case} failed")
    wall, cpu, _, digest = out.split()
    return float(wall), float(cpu), usage.ru_maxrss / 1024, digest


def quoted_copy(path: Path, out: Path) -> None:
    with path.open(encoding="utf-8", newline="") as src, out.open("w", encoding="utf-8", newline="") as dst:
        csv.writer(dst, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(csv.reader(src))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quoted", action="store_true", help="every cell between quotes")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        one_case(args.case, args.file)
        return
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "create.csv"
        subprocess.run([sys.executable, str(ROOT / "sample_data" / "generate.py"), str(args.rows), "--out", str(path),
                        "--bad", "0.01"], check=True)
        if args.quoted:
            quoted_copy(path, Path(name) / "quoted.csv")
            path = Path(name) / "quoted.csv"
        runs: dict[str, list[tuple[float, float, float, str]]] = {case: [] for case in CASES}
        for _ in range(args.repeat):
            for case in CASES:
                runs[case].append(measure(case, path))
    med = {case: [statistics.median(run[i] for run in found) for i in range(3)] for case, found in runs.items()}
    out = io.StringIO()
    print(f"{args.rows:,} rows{' (every cell quoted)' if args.quoted else ''}, medians of {args.repeat}", file=out)
    print(f"{'case':<12}{'wall s':>8}{'CPU s':>8}{'rows/s':>12}{'peak MB':>9}", file=out)
    for case, (wall, cpu, peak) in med.items():
        print(f"{case:<12}{wall:>8.2f}{cpu:>8.2f}{args.rows / wall:>12,.0f}{peak:>9.0f}", file=out)
    ratios = [f"{kind}: new is {med[f'{kind}-old'][0] / med[f'{kind}-new'][0]:.2f}x the old reader (wall), "
              f"{med[f'{kind}-old'][1] / med[f'{kind}-new'][1]:.2f}x (CPU)" for kind in ("rows", "scan")]
    print("; ".join(ratios), file=out)
    same = {kind: len({run[3] for run in runs[f"{kind}-old"] + runs[f"{kind}-new"]}) == 1 for kind in ("rows", "scan")}
    print(f"same Rows, old and new: {'yes' if same['rows'] else 'NO'}; same scan: {'yes' if same['scan'] else 'NO'}",
          file=out)
    sys.stdout.write(out.getvalue())
    if not all(same.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
