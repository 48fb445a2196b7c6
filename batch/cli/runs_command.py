"""`entra-batch runs`: the run folders, as things. `runs` lists them (the run index under
ENTRA_BATCH_HOME, plus ./runs/ folders it does not know), `runs show DIR` prints one and
writes its provisional results.csv, `runs prune --older-than AGE` removes finished ones.

Deleting is careful: only real folders (never a symbolic link, never followed) that hold a
journal.db and belong to us, only finished runs, and not one holding passwords.csv unless
--including-passwords; the removal itself takes only the files a run writes (a link among
them is removed, never followed), then the folder when nothing else is left in it."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batch.cli.output import say
from batch.errors import ConfigError, ExitCode, RunError
from batch.run.files import STARTUP_LEFTOVERS, PasswordsFile, PlanFile
from batch.run.index import (
    FINISHED,
    RUNNING,
    RunIndex,
    folder_state,
    is_run_folder,
    read_journal,
)
from batch.run.lifecycle import write_provisional_results
from batch.run.private import check_dir

RUNS_ROOT = Path("runs")


@dataclass(frozen=True)
class RunFolder:
    """One run folder as `runs` shows it, read from the folder itself."""

    path: Path
    verb: str
    target: str
    started: float | None
    finished: float | None
    state: str
    counts: dict[str, int]
    sent: int
    records: int | None

    @property
    def not_finished(self) -> int | None:
        if self.records is None:
            return self.sent or None
        return max(self.records - sum(self.counts.values()), 0)


def runs(args: argparse.Namespace) -> int:
    action = getattr(args, "runs_action", None)
    if action == "show":
        return show(args.run_dir)
    if action == "prune":
        return prune(args.older_than, including_passwords=args.including_passwords, dry_run=args.dry_run)
    return list_runs()


def known_folders() -> list[Path]:
    """Run folders of the index (in the order they started), then those under ./runs/ it does not name."""
    seen: dict[Path, None] = {}
    for entry in RunIndex().runs():
        seen.setdefault(entry.run_dir, None)
    if RUNS_ROOT.is_dir() and not RUNS_ROOT.is_symlink():
        for path in sorted(RUNS_ROOT.iterdir()):
            seen.setdefault(path.resolve() if not path.is_symlink() else path.absolute(), None)
    return [path for path in seen if is_run_folder(path)]


def describe(path: Path) -> RunFolder:
    meta, counts, sent = read_journal(path)
    saved = meta.get("request")
    request: dict[str, Any] = saved if isinstance(saved, dict) else {}
    started, finished = meta.get("started"), meta.get("finished")
    records = meta.get("records")
    if finished is None and (path / "summary.json").is_file():
        finished = _summary_finished(path)
    verb = str(request.get("verb", "?")) + (" (dry run)" if request.get("dry_run") else "")
    return RunFolder(path, verb, str(meta.get("target", "?")),
                     float(started) if isinstance(started, (int, float)) else None,
                     float(finished) if isinstance(finished, (int, float)) else None,
                     folder_state(path, meta), counts, sent, records if isinstance(records, int) else None)


def _summary_finished(path: Path) -> float | None:
    """When a run of an earlier version finished: its summary.json (or the file's time)."""
    try:
        text = json.loads((path / "summary.json").read_text(encoding="utf-8")).get("finished", "")
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except (OSError, ValueError, AttributeError):
        try:
            return (path / "summary.json").stat().st_mtime
        except OSError:
            return None


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _when(moment: float | None) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "?"


def _counts(run: RunFolder) -> str:
    parts = [f"{status} {n}" for status, n in sorted(run.counts.items()) if n]
    if run.state != FINISHED and run.not_finished:
        parts.append(f"not finished {run.not_finished}")
    return ", ".join(parts) or "no rows yet"


def list_runs() -> int:
    folders = [describe(path) for path in known_folders()]
    if not folders:
        say("no run folders (the index under ENTRA_BATCH_HOME names none, and ./runs/ holds none)")
        return ExitCode.OK
    print("\t".join(("folder", "verb", "target", "started", "state", "counts")))
    for run in folders:
        print("\t".join((_shown(run.path), run.verb, run.target, _when(run.started), run.state, _counts(run))))
    return ExitCode.OK


def show(run_dir: Path) -> int:
    if not is_run_folder(run_dir):
        what = " (an export's folder holds its files only; nothing there needs resuming)" \
            if (run_dir / "summary.json").is_file() else ""
        raise ConfigError(f"{run_dir} is not the folder of a verb's run: it has no journal.db{what}. "
                          "`entra-batch runs` lists the run folders")
    run = describe(run_dir)
    saved = read_journal(run_dir)[0].get("request")
    request: dict[str, Any] = saved if isinstance(saved, dict) else {}
    print(f"folder:   {run_dir}")
    print(f"verb:     {run.verb}")
    print(f"input:    {request.get('input', '?')}")
    print(f"target:   {run.target}")
    print(f"started:  {_when(run.started)}")
    print(f"state:    {run.state}{'' if run.finished is None else ' at ' + _when(run.finished)}")
    print(f"counts:   {_counts(run)}")
    if run.sent:
        print(f"          {run.sent} row{'s' if run.sent != 1 else ''} sent without an answer (resume looks them up before anything is re-sent)")
    if (run_dir / "passwords.csv").is_file():
        print(f"passwords: {run_dir / 'passwords.csv'} (keep it secret; delete it once handed over)")
    if run.state == RUNNING:
        print(f"results:  {run_dir / 'results.csv'} is written when the run ends (a process is working on it)")
    elif run.state == FINISHED:
        print(f"results:  {run_dir / 'results.csv'}")
    else:
        written = write_provisional_results(run_dir)
        print(f"results:  {written} (provisional: only the rows finished so far; "
              f"`entra-batch resume {run_dir}` finishes the run and writes it whole)")
    return ExitCode.OK


def prune(age: float, *, including_passwords: bool, dry_run: bool) -> int:
    """Remove finished run folders whose run ended more than `age` seconds ago."""
    cutoff = time.time() - age
    removed: list[Path] = []
    kept = 0
    for path in known_folders():
        run = describe(path)
        when = run.finished or run.started
        if run.state != FINISHED or when is None or when > cutoff:
            continue
        if not isinstance(read_journal(path)[0].get("request"), dict):
            say(f"kept {_shown(path)}: its journal.db describes no run of entra-batch")
            continue
        if (path / "passwords.csv").exists() and not including_passwords:
            say(f"kept {_shown(path)}: it still holds passwords.csv (hand the passwords over and delete it, or "
                "pass --including-passwords)")
            kept += 1
        elif dry_run:
            print(f"would remove {_shown(path)}")
            removed.append(path)
        elif _remove(path):
            print(f"removed {_shown(path)}")
            removed.append(path)
    if not dry_run:
        RunIndex().forget(removed)
    held = f"; kept {kept} holding passwords.csv" if kept else ""
    say(f"{'would remove' if dry_run else 'removed'} {len(removed)} finished run folder(s) older than the age given"
        f"{held}")
    return ExitCode.OK


# What a run writes in its folder, and nothing else is removed (a folder given as --out-dir may
# hold the administrator's own files: `--out-dir .` made a project folder a run folder, and
# prune removed the project, its other runs' passwords.csv included; found by a review).
_RUN_FILES = STARTUP_LEFTOVERS | {"results.csv", "retry.csv", PlanFile.NAME, "summary.json", PasswordsFile.NAME,
                                  "error.log"}


def _remove(path: Path) -> bool:
    """The run's own files (`_RUN_FILES`, and the temporaries of a file being replaced), then
    the folder if nothing else is left in it; never the working directory or one above it."""
    try:
        check_dir(path, tighten=False)  # ours, a real folder (not a link), nobody else's
        here = Path.cwd().resolve()
        if here == path.resolve() or path.resolve() in here.parents:
            say(f"kept {_shown(path)}: it is the working directory, or holds it")
            return False
        for entry in path.iterdir():
            ours = entry.name in _RUN_FILES or (entry.name.startswith(".") and entry.name.endswith(".tmp"))
            if ours and (entry.is_symlink() or entry.is_file()):
                entry.unlink()
        left = sorted(entry.name for entry in path.iterdir())
        if left:
            shown_left = ", ".join(left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
            say(f"kept {_shown(path)}: its run's files are removed, but it holds others entra-batch did not write "
                f"({shown_left})")
            return False
        path.rmdir()
    except (OSError, RunError) as exc:
        say(f"could not remove {_shown(path)}: {getattr(exc, 'strerror', None) or exc}")
        return False
    return True


__all__ = ["describe", "known_folders", "runs"]
