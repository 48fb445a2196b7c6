"""How close `create` gets to a write quota it is not told (issue 16).

Serves the emulator on loopback with a write quota and a latency, and runs the real
`entra-batch create` against it: one app (the quota on the app: `--write-quota`), and a pool
of four apps from a profile (the quota on the tenant: `--tenant-write-quota`, each app keeping
Graph's documented 3000/150). For every quota of the sweep (below, at and above Graph's
documented rate), at 80 and 300 ms, it prints rows/s, the ratio to the enforced ceiling and the
share of calls answered 429; a naive sequential loop (one POST after another, sleeping
Retry-After) is measured in the same run as context; and a 300-row job on a fresh 3000/150
quota is compared with the same job on an emulator that throttles nothing (the latency and
concurrency bound). Each case is repeated (`--repeat`, default 3) and the medians printed.

The enforced ceiling over a run of t seconds is the window's allowance plus the refill:
rows / (amount + rate × t); a run shorter than its window is compared with the same job on an
emulator that admits everything. A run's time is its `summary.json` duration (from the run's
start: the token and the tenant's lookup included, so short runs read a little low).

    python benchmarks/pacing.py --quick             # about 30 s a case (a few hundred rows)
    python benchmarks/pacing.py                     # the issue's sizes: 1,500 / 6,000 / 2,000 rows (hours)
    python benchmarks/pacing.py --quick --quotas 30/3 --latencies 80 --repeat 1

Measured with --quick (2 cores shared with other work; medians of 3):

    machine: 2 cores; medians of 3; create: 4 workers, $batches of 20
    case                                          rows   rows/s  ceiling  ratio   429s
    one app, app quota 30/3, 80 ms                 330    10.44    10.95  0.953  2.36%
    pool of 4, tenant quota 30/3, 80 ms            330    10.29    10.94  0.941  4.61%
      sequential loop, quota 30/3, 80 ms            80     9.75    13.66  0.714
    one app, app quota 3000/150, 80 ms            3600    73.21    81.01  0.904  0.00%
    pool of 4, tenant quota 3000/150, 80 ms       3600    75.62    83.02  0.911  0.00%
      sequential loop, quota 3000/150, 80 ms       150    10.22   224.32  0.046
    one app, app quota 100/4, 80 ms                850    27.23    28.20  0.965  3.19%
    pool of 4, tenant quota 100/4, 80 ms           850    26.78    28.15  0.951  4.06%
      sequential loop, quota 100/4, 80 ms          150    10.48    31.99  0.328
    300 rows, fresh 3000/150, 80 ms                300   151.52   167.97  0.902  0.00%   (1.98 s; unthrottled 1.79 s)
    one app, app quota 30/3, 300 ms                330    10.11    10.92  0.926  1.19%
    pool of 4, tenant quota 30/3, 300 ms           330     9.92    10.90  0.910  2.65%
      sequential loop, quota 30/3, 300 ms           80     3.00    11.13  0.270
    one app, app quota 3000/150, 300 ms           3600    64.08    73.40  0.873  0.00%
    pool of 4, tenant quota 3000/150, 300 ms      3600    53.12    64.26  0.827  0.00%
      sequential loop, quota 3000/150, 300 ms      150     3.10    82.06  0.038
    one app, app quota 100/4, 300 ms               850    26.54    28.12  0.944  1.62%
    pool of 4, tenant quota 100/4, 300 ms          850    25.56    28.01  0.913  5.02%
      sequential loop, quota 100/4, 300 ms         150     3.12    27.08  0.115
    300 rows, fresh 3000/150, 300 ms               300    64.27    67.67  0.950  0.00%   (4.67 s; unthrottled 4.43 s)

In quick runs the fixed costs (a run's first round trips; the 10-40 429s that end the first
burst, whatever the size) weigh several times more than at the issue's sizes, and the 3,000-row
burst at 3000/150 is bound by the emulator's CPU rather than the quota.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "emulator"))

from benchmarks.create import generate, naive_loop  # noqa: E402

FULL_ROWS = {"30/3": 1500, "3000/150": 6000, "100/4": 2000}
POOL_APPS = 4


def quick_rows(quota: str) -> int:
    """About 30 s past the window's allowance."""
    amount, seconds = (float(x) for x in quota.split("/"))
    return int(amount + 30 * amount / seconds)


@dataclass
class Case:
    rows: int
    seconds: float
    calls: int
    throttled: int
    longest_hold: float = 0.0  # seconds (with --trace)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def share_429(self) -> float:
        return self.throttled / max(1, self.calls)


def ceiling_ratio(case: Case, quota: str) -> float:
    amount, seconds = (float(x) for x in quota.split("/"))
    return case.rows / (amount + amount / seconds * case.seconds)


def bound_ratio(case: Case, quota: str, unthrottled: float, fixed: float) -> float:
    """The fastest any client could go over ours: the same job on an emulator that throttles
    nothing (latency, concurrency, CPU, the run's fixed costs), or the run's fixed costs (a
    one-row job: the token, the tenant's checks; Graph's bucket is full meanwhile) plus the
    quota's refill of what its allowance does not hold, whichever takes longer."""
    amount, seconds = (float(x) for x in quota.split("/"))
    return max(unthrottled, fixed + (case.rows - amount) / (amount / seconds)) / case.seconds


# `entra-batch create` with the pacer's state changes (logger `batch.graph.pacing`) in a file.
TRACED = """import logging, sys
handler = logging.FileHandler(sys.argv[1], encoding="utf-8")
handler.setFormatter(logging.Formatter("%(message)s"))
log = logging.getLogger("batch.graph.pacing")
log.addHandler(handler)
log.setLevel(logging.DEBUG)
from batch.cli import main
sys.exit(main(sys.argv[2:]))
"""


def longest_hold(trace: Path) -> float:
    """The longest time the trace shows a request held by the pacer (a stall), in seconds."""
    longest = 0.0
    for line in trace.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if len(words) > 3 and words[2] == "held":
            longest = max(longest, float(words[3]))
    return longest


def run_create(tmp: Path, name: str, rows: int, emulator_args: list[str], *, pool: bool,
               trace: Path | None = None) -> Case:
    """One `entra-batch create` of `rows` fresh customers on a freshly served emulator
    (`trace`: where to write the pacer's state changes)."""
    from server_process import running_emulator

    from batch.emulator import Store

    home = tmp / name
    db = home / "emu" / "emulator.db"
    db.parent.mkdir(parents=True)
    extra = []
    if pool:
        store = Store(db)
        tenant = store.tenants()[0]
        extra = [store.add_app(tenant.id, ["User.ReadWrite.All", "Organization.Read.All"], display_name=f"pool{i}")
                 for i in range(POOL_APPS - 1)]
        store.close()
    source = generate(home / "in.csv", rows, name.replace("-", "")[:12])
    with running_emulator(home / "emu", db=db, extra_args=emulator_args) as emulator:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ENTRA_BATCH_"))}
        env.update(emulator.exports)
        env["ENTRA_BATCH_HOME"] = str(home / "client")
        launcher = [sys.executable, "-c", TRACED, str(trace)] if trace is not None else [sys.executable, "-m", "batch"]
        args = [*launcher, "create", str(source), "--out-dir", str(home / "run"), "--quiet"]
        if pool:
            (home / "client").mkdir()
            profile = (f'[pool]\ntarget = "{emulator.graph_url}"\ntenant_id = "{emulator.tenant_id}"\n'
                       f'client_id = "{emulator.client_id}"\nclient_secret_env = "APP0_SECRET"\n'
                       f'authority_host = "{emulator.authority_host}"\nca_file = "{emulator.ca_path}"\n')
            env["APP0_SECRET"] = emulator.client_secret
            for i, app in enumerate(extra, start=1):
                profile += f'[[pool.apps]]\nclient_id = "{app.client_id}"\nclient_secret_env = "APP{i}_SECRET"\n'
                env[f"APP{i}_SECRET"] = app.secret or ""
            (home / "client" / "profiles.toml").write_text(profile, encoding="utf-8")
            for variable in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "ENTRA_BATCH_TARGET"):
                env.pop(variable, None)
            args += ["--profile", "pool"]
        done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"create failed ({done.returncode}): {done.stderr[-2000:]}")
        summary = json.loads((home / "run" / "summary.json").read_text(encoding="utf-8"))
    if pool:
        assert summary["apps"] == POOL_APPS, summary["apps"]
    return Case(summary["counts"]["created"], summary["duration_seconds"], summary["graph_calls"],
                summary["throttled_429"], longest_hold(trace) if trace is not None else 0.0)


def run_naive(tmp: Path, name: str, rows: int, emulator_args: list[str]) -> Case:
    from server_process import running_emulator

    home = tmp / name
    home.mkdir(parents=True)
    source = generate(home / "in.csv", rows, name.replace("-", "")[:12])
    with running_emulator(home / "emu", extra_args=emulator_args) as emulator:
        created, elapsed = asyncio.run(naive_loop(emulator, source, rows))
    return Case(created, elapsed, 0, 0)


def median(cases: list[Case], value: str) -> float:
    return statistics.median(getattr(c, value) for c in cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about 30 s a case instead of the issue's sizes")
    parser.add_argument("--quotas", default="30/3,3000/150,100/4", help="N/SECONDS, comma-separated")
    parser.add_argument("--latencies", default="80,300", help="milliseconds, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-pool", action="store_true")
    parser.add_argument("--no-naive", action="store_true")
    parser.add_argument("--trace", metavar="FOLDER", type=Path,
                        help="write each run's pacer state changes there (and print its longest hold)")
    args = parser.parse_args()
    if args.trace is not None:
        args.trace.mkdir(parents=True, exist_ok=True)
    quotas = args.quotas.split(",")
    latencies = [float(x) for x in args.latencies.split(",")]
    print(f"machine: {os.cpu_count()} cores; medians of {args.repeat}; create: 4 workers, $batches of 20")
    print(f"{'case':44} {'rows':>5} {'rows/s':>8} {'ceiling':>8} {'ratio':>6} {'429s':>6} {'unthr.s':>7} "
          f"{'fixed':>5} {'÷bound':>6}" + (f" {'hold':>6}" if args.trace else ""))
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        n = 0
        for latency in latencies:
            # The run's fixed costs (token, the tenant's checks, one round trip): a one-row job.
            fixed: dict[bool, float] = {}
            for pool in ([False] if args.no_pool else [False, True]):
                one = []
                for _ in range(args.repeat):
                    n += 1
                    one.append(run_create(tmp, f"o{n}", 1, ["--no-throttle", "--latency-ms", str(latency)],
                                          pool=pool))
                fixed[pool] = median(one, "seconds")
            for quota in quotas:
                rows = quick_rows(quota) if args.quick else FULL_ROWS.get(quota, quick_rows(quota))
                for pool in ([False] if args.no_pool else [False, True]):
                    flag = "--tenant-write-quota" if pool else "--write-quota"
                    emulator_args = [flag, quota, "--latency-ms", str(latency)]
                    cases, free = [], []
                    for _ in range(args.repeat):
                        n += 1
                        trace = args.trace / f"c{n}.log" if args.trace is not None else None
                        cases.append(run_create(tmp, f"c{n}", rows, emulator_args, pool=pool, trace=trace))
                        # The same job where nothing throttles: the bound of latency and concurrency.
                        free.append(run_create(tmp, f"u{n}", rows, ["--no-throttle", "--latency-ms", str(latency)],
                                               pool=pool))
                    amount, seconds = (float(x) for x in quota.split("/"))
                    rate = median(cases, "rate")
                    ratio = statistics.median(ceiling_ratio(c, quota) for c in cases)
                    unthrottled = median(free, "seconds")
                    by_bound = statistics.median(bound_ratio(c, quota, unthrottled, fixed[pool]) for c in cases)
                    label = f"{'pool of 4, tenant' if pool else 'one app, app'} quota {quota}, {latency:g} ms"
                    print(f"{label:44} {rows:5d} {rate:8.2f} {rate / ratio:8.2f} {ratio:6.3f} "
                          f"{median(cases, 'share_429'):6.2%} {unthrottled:7.2f} {fixed[pool]:5.2f} {by_bound:6.3f}"
                          + (f" {max(c.longest_hold for c in cases):5.1f}s" if args.trace else ""), flush=True)
                if not args.no_naive:
                    naive_rows = min(150, int(amount) + 50)
                    naive = []
                    for _ in range(args.repeat):
                        n += 1
                        naive.append(run_naive(tmp, f"n{n}", naive_rows, ["--write-quota", quota, "--latency-ms",
                                                                           str(latency)]))
                    rate = median(naive, "rate")
                    ratio = statistics.median(ceiling_ratio(c, quota) for c in naive)
                    label = f"  sequential loop, quota {quota}, {latency:g} ms"
                    print(f"{label:44} {naive_rows:5d} {rate:8.2f} {rate / ratio:8.2f} {ratio:6.3f}", flush=True)
            # A small job on a fresh documented quota: the window's allowance, spent at the latency bound.
            fresh, bound = [], []
            for _ in range(args.repeat):
                n += 1
                fresh.append(run_create(tmp, f"f{n}", 300, ["--latency-ms", str(latency)], pool=False))
                bound.append(run_create(tmp, f"b{n}", 300, ["--no-throttle", "--latency-ms", str(latency)],
                                        pool=False))
            ratio = median(bound, "seconds") / median(fresh, "seconds")
            print(f"{f'300 rows, fresh 3000/150, {latency:g} ms':44} {300:5d} {median(fresh, 'rate'):8.2f} "
                  f"{median(bound, 'rate'):8.2f} {ratio:6.3f} {median(fresh, 'share_429'):6.2%}"
                  f"   ({median(fresh, 'seconds'):.2f} s; unthrottled {median(bound, 'seconds'):.2f} s)", flush=True)


if __name__ == "__main__":
    main()
