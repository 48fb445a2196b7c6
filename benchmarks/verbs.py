"""Rows/s of every verb on the same N customers, in process, with the emulator's throttling
and the client's pacing off (what the engine, the lookups and the emulator cost here):
create, update (block), reset-password, delete, restore, purge.

    python benchmarks/verbs.py [--rows 10000] [--batch-size 20]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(verb: str, source: Path, run_dir: Path, batch_size: int) -> tuple[float, dict[str, Any]]:
    """One run of `verb` in process on the local emulator (ENTRA_BATCH_HOME), throttling and
    pacing off: (seconds, summary.json)."""
    from batch import RunRequest, Target, start_run
    from batch.cli.local import LocalEmulator
    from batch.emulator import EmulatorSettings, Quotas

    request = RunRequest(verb=verb, input=str(source), out_dir=str(run_dir), batch_size=batch_size, concurrency=4)
    with LocalEmulator(EmulatorSettings(quotas=Quotas(enabled=False))) as local:
        target = local.target(Target("local", "http://emulator.local/v1.0"))
        started = time.perf_counter()
        summary = asyncio.run(start_run(request, target, transport=local.transport, pacing=False))
        elapsed = time.perf_counter() - started
    return elapsed, summary.as_json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ["ENTRA_BATCH_HOME"] = str(tmp / "home")
        source = tmp / "create.csv"
        subprocess.run([sys.executable, str(ROOT / "sample_data" / "generate.py"), str(args.rows), "--out", str(source)],
                       check=True)
        with source.open(newline="", encoding="utf-8") as handle:
            names = [row["signInName"] for row in csv.DictReader(handle)]
        keys = tmp / "keys.csv"
        keys.write_text("signInName\r\n" + "".join(n + "\r\n" for n in names), encoding="utf-8", newline="")
        blocks = tmp / "block.csv"
        blocks.write_text("signInName,blockSignIn\r\n" + "".join(n + ",Yes\r\n" for n in names), encoding="utf-8",
                          newline="")
        print(f"machine: {os.cpu_count()} cores; {args.rows} customers; --batch-size {args.batch_size}; "
              "throttling and pacing off")
        for verb, file in (("create", source), ("update", blocks), ("reset-password", keys), ("delete", keys),
                           ("restore", keys), ("purge", keys)):
            if verb == "purge":  # purge erases deleted customers: delete them again first (not timed)
                run("delete", keys, tmp / "run-delete-again", args.batch_size)
            elapsed, summary = run(verb, file, tmp / f"run-{verb}", args.batch_size)
            rows, counts = summary["rows"], {k: v for k, v in summary["counts"].items() if v}
            print(f"  {verb:15s} {rows:6d} rows in {elapsed:6.1f} s = {rows / elapsed:7.1f} rows/s   {counts}")


if __name__ == "__main__":
    main()
