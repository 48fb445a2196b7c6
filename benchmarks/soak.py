"""The long soak (issue 6): kill -9 / resume cycles against the emulator served by a separate
process with seeded faults, checking the exactly-once invariants after every run.

Each round generates a file of --rows customers and runs create, update, reset-password, delete and restore
on it; every run is killed (kill -9, at a random moment: while reading, mid-batch, while
writing results) --kills-per-run times and resumed until it finishes. A cycle is one kill
followed by its resume; rounds go on until --cycles cycles have run. Every few rounds the
emulator server itself is killed and started again on the same port and directory.

    python benchmarks/soak.py --cycles 200 [--rows 2000] [--fault-rate 0.05] [--seed 1]

Prints each run and a final line `soak: N cycles, R rows, V violations, T s`; exits 1 on any
violation.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# tests/ before benchmarks/ (whose emulator.py would shadow the tests' emulator package).
sys.path[:] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "soak")] + \
    [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from harness import FAULT_KINDS, EmulatorServer, soak_cycle  # noqa: E402  (tests/soak/harness.py)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=20, help="kill -9 / resume cycles to run (default 20)")
    parser.add_argument("--rows", type=int, default=2000, help="rows per generated file (default 2000)")
    parser.add_argument("--fault-rate", type=float, default=0.05, help="share of requests meeting a fault (default 0.05)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the faults, the files and the kill moments")
    parser.add_argument("--kills-per-run", type=int, default=3, help="kill -9s per verb run (default 3)")
    parser.add_argument("--rounds", type=int, default=0,
                        help="stop after this many rounds (with --kills-per-run 0: runs that are never killed, "
                             "to count Graph calls per row)")
    parser.add_argument("--replication-lag-ms", type=float, default=2000.0, metavar="N",
                        help="the emulator's replication lag: a write shows in reads up to N ms later (default 2000)")
    parser.add_argument("--faults", default=None, metavar="KINDS",
                        help="fault kinds (default: every kind, see `entra-batch emulator --help`)")
    parser.add_argument("--verbs", default="create,update,reset-password,delete,restore", help="verbs of each round")
    parser.add_argument("--restart-server-every", type=int, default=3, metavar="ROUNDS",
                        help="kill -9 and restart the emulator server every N rounds (0: never)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="entra-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    verbs = tuple(v.strip() for v in args.verbs.split(",") if v.strip())
    started = time.monotonic()
    violations: list[str] = []
    cycles = rounds = rows = 0
    calls: dict[str, list[int]] = {}
    server = EmulatorServer(work / "emulator" / "emulator.db", fault_rate=args.fault_rate, seed=args.seed,
                            faults=args.faults or FAULT_KINDS, token_fault_rate=args.fault_rate, token_lifetime=120,
                            extra=["--no-throttle", "--replication-lag-ms", f"{args.replication_lag_ms:g}"])
    print(f"soak: {args.cycles} cycles of kill -9/resume, {args.rows} rows a file, faults {args.fault_rate:.0%} "
          f"({server.args[3]}), replication lag up to {args.replication_lag_ms:g} ms, seed {args.seed}, "
          f"work in {work}", flush=True)
    try:
        server.start()
        while cycles < args.cycles or (args.kills_per_run == 0 and rounds < args.rounds):
            if args.rounds and rounds >= args.rounds:
                break
            rounds += 1
            if args.restart_server_every and rounds > 1 and (rounds - 1) % args.restart_server_every == 0:
                server.kill()
                server.start()
                print(f"round {rounds}: emulator server killed and restarted on port {server.port}", flush=True)
            folder = work / f"round-{rounds}"
            kills = min(args.kills_per_run, max(1, -(-(args.cycles - cycles) // len(verbs))))
            report = soak_cycle(folder, server, rows=args.rows, seed=args.seed * 1000 + rounds, kills=kills,
                                verbs=verbs, log=lambda line: print(line, flush=True))
            cycles += report.kills
            for verb, (done, made) in report.calls.items():
                total = calls.setdefault(verb, [0, 0])
                total[0] += done
                total[1] += made
            rows += args.rows * len(report.histories)
            violations += [f"round {rounds}: {v}" for v in report.violations]
            print(f"round {rounds}: {report.kills} cycles in {report.seconds:.1f} s, "
                  f"{len(report.violations)} violation(s); total {cycles} cycles, {len(violations)} violation(s)",
                  flush=True)
            for violation in report.violations:
                print(f"  VIOLATION {violation}", flush=True)
            if not args.keep and not report.violations:
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        server.stop()
    elapsed = time.monotonic() - started
    print("Graph calls per row (summaries of the processes that finished): " + ", ".join(
        f"{verb} {made / max(done, 1):.2f}" for verb, (done, made) in calls.items()))
    print(f"soak: {cycles} cycles, {rounds} rounds, {rows} rows processed, {len(violations)} violations, "
          f"{elapsed:.0f} s")
    if not args.keep and not violations:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
