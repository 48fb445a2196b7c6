"""The soak harness (issue 6): the emulator as a separate server process with seeded faults,
the CLI as a separate process that is `kill -9`ed at random moments and resumed until it
finishes, and the invariants of PRODUCT.md ("Exactly once") checked against the emulator's
own directory (its SQLite file, read directly).

Used by `tests/soak/` (CI-sized) and `benchmarks/soak.py` (long runs); nothing here is
specific to pytest. Violations are returned as strings, never raised, so that a long soak can
count them.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT / "tests") not in sys.path:
    sys.path.append(str(REPO_ROOT / "tests"))
if "emulator" in sys.modules and not hasattr(sys.modules["emulator"], "__path__"):
    del sys.modules["emulator"]  # benchmarks/emulator.py, when run from benchmarks/soak.py

from emulator.server_process import _pump, parse_exports, stop  # noqa: E402
from secret_scan import input_passwords, run_passwords, scan_for_secrets  # noqa: E402

FINAL = {"created", "updated", "password_reset", "deleted", "restored", "purged", "skipped", "invalid", "failed"}
FAULT_KINDS = "429,500,502,503,504,reset,drop-before,drop-after,slow"
Log = Callable[[str], None]


# ---- the emulator, served by a separate process ---------------------------------------------------

class EmulatorServer:
    """`entra-batch emulator` on 127.0.0.1 (plain HTTP: the client uses its own
    client-credentials fetcher), on a SQLite file that outlives the process, so that the
    server can be killed and started again on the same port and directory mid-run."""

    def __init__(self, db: Path, *, fault_rate: float = 0.0, faults: str = FAULT_KINDS, seed: int = 1,
                 storm_seconds: float = 1.0, slow_ms: float = 300.0, token_fault_rate: float = 0.0,
                 token_lifetime: int | None = None, latency_ms: float = 0.0, extra: Sequence[str] = ()) -> None:
        self.db = db
        self.port = 0
        self.args = ["--fault-rate", str(fault_rate), "--faults", faults, "--seed", str(seed),
                     "--storm-seconds", str(storm_seconds), "--slow-ms", str(slow_ms),
                     "--token-fault-rate", str(token_fault_rate), "--latency-ms", str(latency_ms),
                     "--keep-password-digests", *extra]
        if token_lifetime is not None:
            self.args += ["--token-lifetime", str(token_lifetime)]
        self.process: subprocess.Popen[str] | None = None
        self.exports: dict[str, str] = {}
        self.starts = 0

    def start(self, timeout: float = 30.0) -> EmulatorServer:
        self.db.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ENTRA_BATCH_"))}
        env.update(ENTRA_BATCH_HOME=str(self.db.parent / "emulator-home"), PYTHONUNBUFFERED="1")
        # Each start draws other faults: a restarted server does not replay the same bad day.
        args = list(self.args)
        if self.starts:
            args[args.index("--seed") + 1] = str(int(args[args.index("--seed") + 1]) + 7919 * self.starts)
        command = [sys.executable, "-m", "batch", "emulator", "--host", "127.0.0.1", "--port", str(self.port),
                   "--db", str(self.db), *args]
        stderr = open(self.db.parent / "emulator.stderr", "a")
        deadline = time.monotonic() + timeout
        while True:
            process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr,
                                       stdin=subprocess.DEVNULL, text=True)
            lines: queue.Queue[str | None] = queue.Queue()
            threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
            seen: list[str] = []
            while "ENTRA_BATCH_EXTENSIONS_APP_ID" not in parse_exports(seen):
                try:
                    line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
                except queue.Empty:
                    stop(process)
                    raise RuntimeError(f"the emulator printed no export lines in time: {seen!r}") from None
                if line is None:
                    break
                seen.append(line)
            if process.poll() is None or "ENTRA_BATCH_EXTENSIONS_APP_ID" in parse_exports(seen):
                break
            # The port of a server just killed may still be in use for a moment: try again.
            if time.monotonic() > deadline:
                raise RuntimeError(f"the emulator would not start on port {self.port}")
            time.sleep(0.2)
        stderr.close()
        self.process = process
        self.exports = parse_exports(seen)
        self.port = int(self.exports["AZURE_AUTHORITY_HOST"].rsplit(":", 1)[1])
        self.starts += 1
        while True:
            try:
                if httpx.get(f"{self.origin}/", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not answer in time")
            time.sleep(0.05)

    @property
    def origin(self) -> str:
        return self.exports["AZURE_AUTHORITY_HOST"]

    @property
    def graph_url(self) -> str:
        return self.exports["ENTRA_BATCH_TARGET"]

    def kill(self) -> None:
        """kill -9: no graceful shutdown, connections cut mid-answer."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            if self.process.stdout is not None:
                self.process.stdout.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def client_env(server: EmulatorServer, home: Path, replication_waits: str | None = None) -> dict[str, str]:
    """The client's environment: the server's exports, its own home, and (when given) the
    pauses of its replication waits (ENTRA_BATCH_REPLICATION_WAITS; default: the product's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ENTRA_BATCH_"))}
    env.update(server.exports)
    if replication_waits is not None:
        env["ENTRA_BATCH_REPLICATION_WAITS"] = replication_waits
    env["ENTRA_BATCH_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ---- input files --------------------------------------------------------------------------------

def generate(path: Path, n: int, prefix: str, seed: int = 5, bad: float = 0.0) -> Path:
    subprocess.run([sys.executable, str(REPO_ROOT / "sample_data" / "generate.py"), str(n), "--out", str(path),
                    "--prefix", prefix, "--seed", str(seed), "--bad", str(bad)], check=True)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def derived_files(created_run: Path, source: Path, folder: Path, tag: str) -> dict[str, Path]:
    """update / reset-password / delete / restore files about the customers a create run made:
    update and reset-password by sign-in name (a new job title and department), delete by
    sign-in name, restore by object id."""
    lines = {int(r["row"]): r for r in read_csv(created_run / "results.csv")}
    rows = read_csv(source)
    made = [(rows[n - 1]["signInName"], lines[n]["object_id"]) for n in sorted(lines) if lines[n]["status"] == "created"]
    folder.mkdir(parents=True, exist_ok=True)
    files = {"update": folder / "update.csv", "reset-password": folder / "reset-password.csv",
             "delete": folder / "delete.csv", "restore": folder / "restore.csv"}
    with files["update"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["signInName", "jobTitle", "department"])
        writer.writerows([name, f"Title {tag} {i}", f"Dept {tag}"] for i, (name, _) in enumerate(made, 1))
    for verb in ("reset-password", "delete"):
        with files[verb].open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(["signInName"])
            writer.writerows([name] for name, _ in made)
    with files["restore"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["objectId"])
        writer.writerows([object_id] for _, object_id in made)
    return files


# ---- the client, killed and resumed ---------------------------------------------------------------

@dataclass
class Cycle:
    """One process of a run: started (or resumed), then killed or left to finish."""

    command: str  # "start" or "resume"
    killed_after: float | None  # seconds, when kill -9 struck
    phase: str  # what the kill aimed at
    exit_status: int | None
    seconds: float


@dataclass
class RunHistory:
    verb: str
    run_dir: Path
    cycles: list[Cycle] = field(default_factory=list)
    final_status: int | None = None
    stderr_tail: str = ""
    printed: list[str] = field(default_factory=list)  # every process's stdout and stderr, for secret scanning

    @property
    def kills(self) -> int:
        return sum(c.killed_after is not None for c in self.cycles)


def journal_counts(run_dir: Path) -> dict[str, int]:
    try:
        with sqlite3.connect(f"file:{run_dir / 'journal.db'}?mode=ro", uri=True, timeout=1) as db:
            return dict(db.execute("SELECT state, COUNT(*) FROM rows GROUP BY state").fetchall())
    except sqlite3.Error:
        return {}


def _kill_plan(rng: random.Random, rows: int, done: int = 0) -> tuple[str, int | None, float]:
    """Where the next kill strikes: while the file is read (before anything is journaled),
    mid-batch (after a random share of the rows still to do are done), or at the end
    (results being written). `done` is how many rows earlier processes finished."""
    phase = rng.choices(["reading", "mid-batch", "writing-results"], weights=[1, 6, 1])[0]
    if phase == "reading":
        return phase, None, rng.uniform(0.05, 0.6)
    if phase == "writing-results" or done >= rows - 1:
        return "writing-results", rows, 0.0
    return phase, rng.randint(done + 1, rows - 1), rng.uniform(0.0, 0.3)


def _run_once(args: list[str], env: dict[str, str], run_dir: Path, rows: int, kill: tuple[str, int | None, float] | None,
              timeout: float, printed: list[str] | None = None) -> tuple[int | None, float | None, str]:
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "batch", *args], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines: list[str] = []
    out_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(process.stderr or []), daemon=True)
    reader.start()
    out_reader = threading.Thread(target=lambda: out_lines.extend(process.stdout or []), daemon=True)
    out_reader.start()
    killed_after = None
    if kill is not None:
        phase, done_target, extra = kill
        while process.poll() is None and time.monotonic() - started < timeout:
            if done_target is None:
                time.sleep(extra)
                break
            counts = journal_counts(run_dir)
            if counts.get("done", 0) >= done_target:
                time.sleep(extra)
                break
            time.sleep(0.02)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            killed_after = time.monotonic() - started
    try:
        process.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        err_lines.append(f"(timed out after {timeout:.0f} s and was killed)\n")
    reader.join(timeout=5)
    out_reader.join(timeout=5)
    if printed is not None:
        printed += ["".join(out_lines), "".join(err_lines)]
    status = None if killed_after is not None else process.returncode
    return status, killed_after, "".join(err_lines)


def run_with_kills(verb: str, source: Path, run_dir: Path, env: dict[str, str], rows: int, rng: random.Random,
                   *, kills: int, extra_args: Sequence[str] = (), timeout: float = 300.0,
                   max_resumes: int = 12, log: Log | None = None,
                   between: Callable[[int], None] | None = None) -> RunHistory:
    """Start `verb`, kill -9 it `kills` times at random moments, resuming after each kill,
    then resume until the run finishes (exit 0 or 1). A process killed before its journal
    recorded the run (the very first moments) is started again, as its message says."""
    history = RunHistory(verb, run_dir)
    start_args = [verb, str(source), "--out-dir", str(run_dir), "--quiet", *extra_args]
    if verb in ("delete", "purge", "reset-password"):  # reset-password asks above 100 rows on a served emulator
        start_args.append("--yes")
    resume_args = ["resume", str(run_dir), "--quiet"]
    command = "resume" if (run_dir / "journal.db").exists() and _recorded(run_dir) else "start"
    left = kills
    attempts = 0
    while True:
        attempts += 1
        plan = _kill_plan(rng, rows, journal_counts(run_dir).get("done", 0)) if left > 0 else None
        began = time.monotonic()
        status, killed_after, err = _run_once(start_args if command == "start" else resume_args, env, run_dir, rows,
                                              plan, timeout, history.printed)
        history.cycles.append(Cycle(command, killed_after, plan[0] if plan else "", status,
                                    time.monotonic() - began))
        history.stderr_tail = err[-3000:]
        if log is not None:
            what = f"killed after {killed_after:.2f} s ({plan[0] if plan else ''})" if killed_after is not None \
                else f"exit {status}"
            log(f"  {verb} {command}: {what}, journal {journal_counts(run_dir)}")
        if between is not None:
            between(attempts)
        if killed_after is not None:
            left -= 1
        elif status in (0, 1):
            history.final_status = status
            return history
        elif status == 2 and "start" in err and "again" in err:
            pass  # a run killed before it was recorded: start it again (the message says so)
        elif status not in (3, 130):
            history.final_status = status
            return history
        if attempts > kills + max_resumes:
            history.final_status = status
            return history
        journal = run_dir / "journal.db"
        command = "resume" if journal.exists() and _recorded(run_dir) else "start"


def _calls(run_dir: Path) -> tuple[int, int]:
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        return int(summary["rows"]), int(summary["graph_calls"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0


def _recorded(run_dir: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{run_dir / 'journal.db'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT 1 FROM meta WHERE key = 'request'").fetchone() is not None
    except sqlite3.Error:
        return False


# ---- the invariants -------------------------------------------------------------------------------

@dataclass
class Directory:
    live: list[dict[str, Any]]
    deleted: list[dict[str, Any]]
    current_passwords: set[tuple[str, str]] = field(default_factory=set)

    @property
    def by_id(self) -> dict[str, tuple[str, dict[str, Any]]]:
        out = {u["id"]: ("live", u) for u in self.live}
        out.update({u["id"]: ("deleted", u) for u in self.deleted})
        return out


def read_directory(db: Path, passwords: Sequence[tuple[str, str]] = ()) -> Directory:
    """The emulator's directory, read from its file; of the (object id, password) pairs given,
    those that are the customer's current password (the emulator keeps a digest of each)."""
    from batch.emulator import Store

    store = Store(db)
    try:
        tenant = store.tenants()[0]
        return Directory([r.data for r in store.select_users(tenant.id, "live", limit=10_000_000)],
                         [r.data for r in store.select_users(tenant.id, "deleted", limit=10_000_000)],
                         {(i, pw) for i, pw in passwords if store.password_is(i, pw)})
    finally:
        store.close()


def password_pairs(run_dir: Path, source: Path | None = None) -> list[tuple[str, str]]:
    """(object id, password) of every line of the run's passwords.csv, and with `source` (a
    create file) of every created row that brought its own password."""
    pairs = [(p["object_id"], p["password"]) for p in read_csv(run_dir / "passwords.csv") if p.get("object_id")]
    if source is not None:
        rows = read_csv(source)
        pairs += [(r["object_id"], rows[int(r["row"]) - 1]["password"]) for r in read_csv(run_dir / "results.csv")
                  if r["status"] == "created" and rows[int(r["row"]) - 1].get("password")]
    return pairs


def wrong_passwords(verb: str, pairs: Sequence[tuple[str, str]], directory: Directory) -> list[str]:
    """A password handed out (passwords.csv) or brought by the file that the customer does not have."""
    wrong = [user_id for user_id, password in pairs if (user_id, password) not in directory.current_passwords]
    if not wrong:
        return []
    return [f"{verb}: {len(wrong)} customer(s) do not have the password the run reports for them, e.g. {wrong[:3]}"]


def sign_in_names(user: dict[str, Any]) -> list[str]:
    return [str(i.get("issuerAssignedId", "")).lower() for i in user.get("identities") or []
            if str(i.get("signInType", "")).lower() in ("emailaddress", "username")]


def check_run_folder(run_dir: Path, source: Path, verb: str) -> tuple[list[str], list[dict[str, str]]]:
    """What holds for any finished run: one final line per input row, in order; summary and
    journal agree with results.csv; nothing left `sent`; passwords.csv private."""
    problems: list[str] = []
    lines = read_csv(run_dir / "results.csv")
    n = len(read_csv(source))
    numbers = [int(r["row"]) for r in lines]
    if numbers != list(range(1, n + 1)):
        missing = sorted(set(range(1, n + 1)) - set(numbers))[:5]
        problems.append(f"{verb}: results.csv has {len(lines)} lines for {n} rows (missing {missing}, "
                        f"duplicated {len(numbers) - len(set(numbers))})")
    bad = [r["row"] for r in lines if r["status"] not in FINAL]
    if bad:
        problems.append(f"{verb}: rows without a final status: {bad[:5]}")
    counts: dict[str, int] = {}
    for r in lines:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        said = {k: v for k, v in summary["counts"].items() if v}
        if said != counts or summary["rows"] != len(lines):
            problems.append(f"{verb}: summary.json counts {said} differ from results.csv {counts}")
    except (OSError, ValueError, KeyError) as exc:
        problems.append(f"{verb}: summary.json unreadable ({exc})")
    try:
        with sqlite3.connect(f"file:{run_dir / 'journal.db'}?mode=ro", uri=True) as db:
            states = dict(db.execute("SELECT state, COUNT(*) FROM rows GROUP BY state").fetchall())
            journaled = dict(db.execute("SELECT row, status FROM rows WHERE state = 'done'").fetchall())
    except sqlite3.Error as exc:
        problems.append(f"{verb}: journal unreadable ({exc})")
        states, journaled = {}, {}
    if states.get("sent"):
        problems.append(f"{verb}: {states['sent']} row(s) left `sent` in the journal after the run finished")
    if any(journaled.get(int(r["row"])) != r["status"] for r in lines) or len(journaled) != len(lines):
        problems.append(f"{verb}: results.csv disagrees with the journal")
    passwords = run_dir / "passwords.csv"
    if passwords.exists() and stat.S_IMODE(passwords.stat().st_mode) != 0o600:
        problems.append(f"{verb}: passwords.csv has mode {oct(stat.S_IMODE(passwords.stat().st_mode))}")
    for name in ("results.csv", "summary.json"):
        if (run_dir / name).exists() and "Legacy-" in (run_dir / name).read_text(encoding="utf-8"):
            problems.append(f"{verb}: a password appears in {name}")
    return problems, lines


def check_create(run_dir: Path, source: Path, directory: Directory) -> list[str]:
    problems, lines = check_run_folder(run_dir, source, "create")
    rows = read_csv(source)
    names = {n: r["signInName"].lower() for n, r in enumerate(rows, 1)}
    ours = set(names.values())
    # No duplicate identity anywhere, and no input row with two customers.
    holders: dict[str, list[str]] = {}
    for user in directory.live + directory.deleted:
        for name in sign_in_names(user):
            holders.setdefault(name, []).append(user["id"])
    twice = {name: ids for name, ids in holders.items() if len(ids) > 1}
    if twice:
        problems.append(f"create: {len(twice)} identity(ies) held by several customers, e.g. {next(iter(twice.items()))}")
    by_id = directory.by_id
    created = {int(r["row"]): r for r in lines if r["status"] == "created"}
    for number, line in created.items():
        found = by_id.get(line["object_id"])
        if found is None:
            problems.append(f"create: row {number} reported created as {line['object_id']!r}, not in the directory")
        elif names.get(number) not in sign_in_names(found[1]):
            problems.append(f"create: row {number}'s customer {line['object_id']} has not the row's sign-in name")
    claimed = {line["object_id"] for line in created.values()}
    made = {user_id for name, ids in holders.items() if name in ours for user_id in ids}
    lost = made - claimed
    if lost:
        problems.append(f"create: {len(lost)} customer(s) of the file exist but no result line says created, "
                        f"e.g. {sorted(lost)[:3]}")
    # Every created customer's password is on file, or the row says a reset is needed.
    on_file: dict[str, list[dict[str, str]]] = {}
    for p in read_csv(run_dir / "passwords.csv"):
        on_file.setdefault(p["row"], []).append(p)
    for number, line in created.items():
        provided = bool(rows[number - 1].get("password"))
        entries = on_file.get(str(number), [])
        if provided and entries:
            problems.append(f"create: row {number} brought its own password but has a line in passwords.csv")
        elif not provided and not entries and "reset" not in line["error_message"].lower():
            problems.append(f"create: row {number} created without its generated password on file "
                            "and without saying a reset is needed")
        elif len(entries) > 1:
            problems.append(f"create: row {number} has {len(entries)} lines in passwords.csv")
        elif entries and (entries[0]["object_id"] != line["object_id"] or len(entries[0]["password"]) < 8):
            problems.append(f"create: row {number}'s password line is for another customer or incomplete")
    return problems


def check_update(run_dir: Path, source: Path, directory: Directory) -> list[str]:
    problems, lines = check_run_folder(run_dir, source, "update")
    rows = read_csv(source)
    by_id = directory.by_id
    for line in lines:
        if line["status"] not in ("updated", "skipped"):
            continue
        found = by_id.get(line["object_id"])
        wanted = rows[int(line["row"]) - 1]
        if found is None:
            problems.append(f"update: row {line['row']} names {line['object_id']!r}, not in the directory")
        elif found[1].get("jobTitle") != wanted["jobTitle"] or found[1].get("department") != wanted["department"]:
            problems.append(f"update: row {line['row']} is {line['status']} but its values are not in place")
    return problems


def check_delete(run_dir: Path, source: Path, directory: Directory) -> list[str]:
    problems, lines = check_run_folder(run_dir, source, "delete")
    by_id = directory.by_id
    for line in lines:
        if line["status"] in ("deleted", "skipped") and line["object_id"]:
            state = by_id.get(line["object_id"], ("absent", {}))[0]
            if state != "deleted":
                problems.append(f"delete: row {line['row']} is {line['status']} but the customer is {state}")
    return problems


def check_restore(run_dir: Path, source: Path, directory: Directory) -> list[str]:
    problems, lines = check_run_folder(run_dir, source, "restore")
    by_id = directory.by_id
    for line in lines:
        if line["status"] in ("restored", "skipped"):
            state = by_id.get(line["object_id"], ("absent", {}))[0]
            if state != "live":
                problems.append(f"restore: row {line['row']} is {line['status']} but the customer is {state}")
    return problems


def check_reset(run_dir: Path, source: Path, directory: Directory) -> list[str]:
    """Every reset customer is live and has exactly one password line, for itself."""
    problems, lines = check_run_folder(run_dir, source, "reset-password")
    by_id = directory.by_id
    on_file: dict[str, list[dict[str, str]]] = {}
    for p in read_csv(run_dir / "passwords.csv"):
        on_file.setdefault(p["row"], []).append(p)
    for line in lines:
        entries = on_file.get(line["row"], [])
        if line["status"] != "password_reset":
            if entries:
                problems.append(f"reset-password: row {line['row']} is {line['status']} but has a password line")
            continue
        state = by_id.get(line["object_id"], ("absent", {}))[0]
        if state != "live":
            problems.append(f"reset-password: row {line['row']} was reset but the customer is {state}")
        if len(entries) != 1 or entries[0]["object_id"] != line["object_id"] or len(entries[0]["password"]) < 8:
            problems.append(f"reset-password: row {line['row']} has {len(entries)} password line(s), "
                            "or one for another customer")
    return problems


CHECKS = {"create": check_create, "update": check_update, "reset-password": check_reset, "delete": check_delete,
          "restore": check_restore}


def check_secrets(history: RunHistory, passwords: list[str], client_secret: str | None,
                  brought: Sequence[str] = ()) -> list[str]:
    """The review's method after every run: every password known so far (generated by this run
    or an earlier one, or brought by an input file), the client secret and any access token,
    searched in every file of the run folder (SQLite dumped) and everything the processes printed.
    `brought`: the passwords of this run's own input, which its retry.csv may copy (documented)."""
    printed = {f"output of process {n // 2 + 1} ({'stdout' if n % 2 == 0 else 'stderr'})": text
               for n, text in enumerate(history.printed)}
    return [f"{history.verb}: a secret leaked: {found}"
            for found in scan_for_secrets(history.run_dir, passwords=passwords, client_secrets=[client_secret],
                                          texts=printed, brought=brought)]


# ---- one soak cycle: create, then update, delete and restore, each killed and resumed ----------------

@dataclass
class SoakReport:
    violations: list[str] = field(default_factory=list)
    histories: list[RunHistory] = field(default_factory=list)
    seconds: float = 0.0
    # verb → (rows, Graph calls) from each run's summary.json (processes killed -9 before
    # writing a summary are not counted: a lower bound of the traffic).
    calls: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def kills(self) -> int:
        return sum(h.kills for h in self.histories)


def soak_cycle(work: Path, server: EmulatorServer, *, rows: int, seed: int, kills: int, verbs: Sequence[str] =
               ("create", "update", "reset-password", "delete", "restore"), bad: float = 0.01, log: Log | None = None,
               extra_args: Sequence[str] = ("--batch-size", "10", "--concurrency", "4"),
               timeout: float = 300.0, replication_waits: str | None = None) -> SoakReport:
    """Generate `rows` customers (prefix from the seed, so cycles never collide), run each verb
    with `kills` kill -9s and resumes, and check the invariants after each verb."""
    began = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    report = SoakReport()
    env = client_env(server, work / "client-home", replication_waits)
    source = generate(work / "create.csv", rows, f"s{seed}x", seed=seed, bad=bad)
    files: dict[str, Path] = {"create": source}
    passwords = input_passwords(source)
    for verb in verbs:
        if verb != "create" and verb not in files:
            files.update(derived_files(work / "create", source, work / "derived", str(seed)))
        history = run_with_kills(verb, files[verb], work / verb, env, len(read_csv(files[verb])), rng, kills=kills,
                                 extra_args=extra_args,
                                 timeout=timeout, log=log)
        report.histories.append(history)
        if history.final_status not in (0, 1):
            report.violations.append(f"{verb}: the run never finished (last exit {history.final_status}): "
                                     f"{history.stderr_tail[-800:]}")
            break
        pairs = password_pairs(work / verb, files[verb] if verb == "create" else None)
        directory = read_directory(server.db, pairs)
        found = CHECKS[verb](work / verb, files[verb], directory) + wrong_passwords(verb, pairs, directory)
        passwords += run_passwords(work / verb)
        found += check_secrets(history, passwords, server.exports.get("AZURE_CLIENT_SECRET"),
                               brought=input_passwords(files[verb]))
        report.violations += found
        report.calls[verb] = _calls(work / verb)
        if log is not None:
            rows_done, calls = report.calls[verb]
            log(f"  {verb}: {rows_done} rows, {calls} Graph calls ({calls / max(rows_done, 1):.2f} per row)")
        if history.final_status != 0:
            # Rows the file got wrong are `invalid`; under faults alone no row may fail.
            failed = [r for r in read_csv(work / verb / "results.csv")
                      if r["status"] == "failed" or (verb != "create" and r["status"] == "invalid")]
            report.violations += [f"{verb}: row {r['row']} {r['status']}: {r['error_code']} {r['error_message']}"
                                  for r in failed[:5]]
        if found:
            break
    report.seconds = time.monotonic() - began
    return report
