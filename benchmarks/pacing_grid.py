"""The pacer against many write quotas it is not told, in virtual time (issue 16: "at the
ceiling whatever the tenant's quota").

    python benchmarks/pacing_grid.py                              # 12 quotas x 3 latencies, 8 seeds (~2 min)
    python benchmarks/pacing_grid.py --quotas 20/2,100/4 --latencies 80,600 --seeds 4

benchmarks/pacing.py measures the real `create` against the served emulator, for the issue's
sweep (30/3, 3000/150, 100/4 at 80 and 300 ms): an hour for medians of 3. This one drives the
pacer alone (4 workers, $batches of 20, refusals re-sent after their Retry-After) against a
simulated Graph in virtual time (tests/graph/simulated.py: the emulator's throttle model, its
log-normal latency spread, answers in any order), one app and a pool of four, over seeds: a
pacer change can be checked against quotas and latencies far outside the sweep in two
minutes. Each cell prints the median 429s (and the worst seed), their median share of the
calls, and the median and lowest ratio to the enforced ceiling (the fastest any client could
go: the window's allowance at once, then its rate); `<<` marks a cell off the issue's bar
(median >= 0.95 of the ceiling and <= 1 % 429s). Rows: 2,000 or three windows, whichever is
more (`--rows` to choose). Latencies are an item's median; a $batch is answered after its
slowest item (about twice the median).

Measured at commit 947374d (8 seeds; virtual time, so the figures do not depend on the
machine): median ratio to the ceiling (app / pool), median share of 429s, `<<` off the bar.

    quota       80 ms                         300 ms                        600 ms
    20/2        0.811, none <<                0.667, none <<                0.618, none <<
    30/3        0.996, 0.45 %                 0.980 / 0.984, 0.22 / 0.25 %  0.955 / 0.952, 0.92 / 0.79 %
    40/2        0.969 / 0.972, none           0.955 / 0.958, 0.05 / 0.07 %  0.927 / 0.948, 0.20 / 0.60 % <<
    100/4       0.988, none                   0.976 / 0.980, 0.05 / 0.07 %  0.952 / 0.949, 1.31 / 1.57 % <<
    150/5       0.982 / 0.981, 0.05 %         0.974 / 0.975, 1.43 % <<      0.939 / 0.937, 0.52 / 0.45 % <<
    200/5       0.975, none                   0.963, 0.40 / 0.47 %          0.880 / 0.899, none <<
    300/10      0.985 / 0.977, none           0.971 / 0.973, 0 / 0.05 %     0.931, none <<
    600/20      0.979 / 0.976, none           0.967 / 0.964, none           0.915 / 0.917, none <<
    50/5, 80/4, 1500/60, 3000/150: on the bar in every cell (0.956-0.995, at most 0.92 %).

Two changes of this session, each against the grid before it (0dd0eab, where the figures
were the same elsewhere, within a few 429s):
- 20/2 slid all run long on readings that were only lower bounds (bucket.py `warned`): 0.22
  of the ceiling at 80 ms, 0.08-0.14 at 300 ms, 0.06-0.12 at 600 ms. (30/3 at 600 ms moved
  from 13 / 10 median 429s and 0.947 / 0.946 of the ceiling to 18.5 / 16 and 0.955 / 0.952.)
- The answers of the first burst's tail no longer bound the rate: the worst seed of a cell
  (the `(min)` column) rose from 0.566 to 0.968 at 150/5 and 300 ms (pool), 0.585 / 0.591 to
  0.952 / 0.943 at 200/5 and 300 ms, 0.650 to 0.925 at 100/4 and 600 ms (pool), 0.795 to 0.895
  at 600/20 and 600 ms; medians unchanged (`--seeds 16` at 300 ms: the same).

What is left off the bar: the first burst's edge at 150/5 and 300 ms and at 100/4 and
600 ms (once a run: 26-32 429s, 1.3-1.6 % of 2,000 rows and 0.3 % of 10,000; Graph warns
only in the last 20 % of its window, and the ramp has three $batches in flight by then), and,
at 600 ms, a pace 5-12 % under Graph's rate for windows of 40-600: readings are dated by when
their answers come, a round trip (~1.2 s for a $batch) after Graph counted them. Dating them
by their requests instead (the pacer's clock at the grant) was tried in two variants: 30/3 at
300 and 600 ms rose to 0.99 of the ceiling and 600/20 at 600 ms to 0.93, but one variant
drew 1.8 % 429s at 200/5 and 300 ms, the other fell to 0.966 at 100/4 and 80 ms; not kept.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "graph")]

from fakes import FakeClock  # noqa: E402
from simulated import EMULATOR_SPREAD, SimulatedGraph, ceiling_share, drive  # noqa: E402

from batch.auth import StaticTokenProvider  # noqa: E402
from batch.emulator.settings import Quota as ServerQuota  # noqa: E402
from batch.graph.pacing import Pacer  # noqa: E402
from batch.graph.pool import AppPool  # noqa: E402

QUOTAS = "20/2,30/3,40/2,50/5,80/4,100/4,150/5,200/5,300/10,600/20,1500/60,3000/150"


async def one_run(quota: ServerQuota, latency: float, pool: bool, seed: int, rows: int) -> tuple[int, float, float]:
    """(429s, their share of the calls, ratio to the enforced ceiling) of one seeded run."""
    vt = FakeClock()
    graph = SimulatedGraph(vt, quota, latency, tenant=pool, spread=EMULATOR_SPREAD, seed=seed)
    pacer: Pacer | AppPool
    if pool:
        pacer = AppPool.of([StaticTokenProvider(t) for t in "abcd"], clock=vt.clock, sleep=vt.sleep)
    else:
        pacer = Pacer(clock=vt.clock, sleep=vt.sleep)
    elapsed = await drive(vt, graph, pacer, rows, workers=4)
    return graph.refused, graph.refused / (graph.admitted + graph.refused), ceiling_share(quota, rows, elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quotas", default=QUOTAS, help="N/SECONDS, comma-separated (default: twelve)")
    parser.add_argument("--latencies", default="80,300,600", help="milliseconds, comma-separated")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--rows", type=int, help="rows a run (default: 2,000 or three windows)")
    args = parser.parse_args()
    try:
        quotas = [ServerQuota.parse(q) for q in args.quotas.split(",")]
        latencies = [float(ms) / 1000 for ms in args.latencies.split(",")]
    except ValueError as exc:
        parser.error(str(exc))
    if args.seeds < 1 or (args.rows is not None and args.rows < 1) or any(not 0 <= ms < 60 for ms in latencies):
        parser.error("--seeds and --rows must be positive, each latency between 0 and 60,000 ms")
    print(f"{args.seeds} seeds a cell; 4 workers, $batches of 20; latency spread {EMULATOR_SPREAD}")
    print(f"{'quota':<10} {'latency':>7} {'':4} {'rows':>6} {'429s':>5} {'(max)':>6} {'share':>7} {'ratio':>6} {'(min)':>6}")
    off = 0
    for quota in quotas:
        rows = args.rows or max(2000, 3 * int(quota.amount))
        for latency in latencies:
            for pool in (False, True):
                runs = [asyncio.run(one_run(quota, latency, pool, seed, rows)) for seed in range(args.seeds)]
                refused = statistics.median(r[0] for r in runs)
                share = statistics.median(r[1] for r in runs)
                ratio = statistics.median(r[2] for r in runs)
                mark = share > 0.01 or ratio < 0.95
                off += mark
                print(f"{quota.amount:g}/{quota.seconds:g}".ljust(10)
                      + f" {latency * 1000:5.0f}ms {'pool' if pool else 'app':4} {rows:6} {refused:5.1f} "
                      f"{max(r[0] for r in runs):6} {share:7.2%} {ratio:6.3f} {min(r[2] for r in runs):6.3f}"
                      f"{'  <<' if mark else ''}", flush=True)
    print(f"cells off the bar (median > 1 % 429s or < 0.95 of the ceiling): {off}")


if __name__ == "__main__":
    main()
