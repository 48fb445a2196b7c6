"""The pipeline of ARCHITECTURE.md: read → validate → (journal: sent) → send → (passwords,
journal: done), streamed, with a bounded queue between the reader and a few workers so that
a ten-million-row file never sits in memory.

The engine is verb-agnostic: the verb validates a row into a plan (or a rejection), and
executes or reconciles groups of plans through the Graph client. The engine owns the order
of durable steps: `sent` is committed before a request leaves; a generated password is
fsynced to passwords.csv before its row is `done`. Nothing here prints, reads the
environment or exits: progress goes to a callback.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from operator import attrgetter
from typing import Any

from batch.errors import ConfigError, RowsUnresolved, first_failure
from batch.graph import Hold
from batch.io.csvio import Row
from batch.outcome import Outcome, SentRow, Status
from batch.run.files import PasswordsFile, PlanFile
from batch.run.journal import Journal
from batch.verbs.base import Executed, PlanLine, Rejected, Session, Verb

# (kind, plans, n): `n` numbers a dry run's groups, which are recorded in input order.
Queue = asyncio.Queue[tuple[str, list[Any], int] | None]

CHUNK_ROWS = 2000
_ROW = attrgetter("row")
_STATUS = attrgetter("status")
# A dry run's group once its directory index is ready (`Engine._group_rows`).
INDEXED_GROUP_ROWS = 1000


@dataclass(frozen=True)
class EngineOptions:
    batch_size: int = 20
    concurrency: int = 4
    dry_run: bool = False


@dataclass
class Progress:
    """What the progress bar shows; updated as rows finish."""

    rows_done: int = 0
    rows_total: int | None = None  # data records in the input, when known
    sent: int = 0
    throttled: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    hold: Callable[[], Hold | None] | None = None  # why sending is held now (the client's read-out)

    def add(self, outcomes: list[Outcome]) -> None:
        self.rows_done += len(outcomes)
        for status, n in Counter(map(_STATUS, outcomes)).items():
            self.by_status[status.value] = self.by_status.get(status.value, 0) + n


ProgressCallback = Callable[[Progress], None]


class Engine:
    def __init__(self, verb: Verb[Any], rows: Iterator[Row], journal: Journal, passwords: PasswordsFile,
                 session: Session | None, options: EngineOptions,
                 on_progress: ProgressCallback | None = None, clock: Callable[[], float] = time.time,
                 plan_file: PlanFile | None = None) -> None:
        if session is None:
            raise ValueError("a run needs a session: it sends, or in a dry run reads the directory")
        if options.dry_run and plan_file is None:
            raise ValueError("a dry run writes plan.csv")
        self.plan_file = plan_file
        # A dry run's groups of plans: how many were queued, recorded, and those done but not
        # yet recorded (waiting for an earlier group), by number.
        self._planned = 0
        self._recorded = 0
        self._plans_done: dict[int, tuple[Executed, list[int]]] = {}
        # A dry run's rows that validation refused, since the last group queued: recorded with
        # that group (or after the last one), so that plan.csv holds every row in input order.
        self._refused: list[Rejected] = []
        self._refused_by_group: dict[int, list[Rejected]] = {}
        self.verb = verb
        self.rows = rows
        self.journal = journal
        self.passwords = passwords
        self.session = session
        self.options = options
        self.progress = Progress()
        self.on_progress = on_progress or (lambda _p: None)
        self.clock = clock
        self.unresolved = 0
        # Plans a verb handed back for a second look (Executed.later, batch/verbs/lag.py), and
        # how many rows had one, with the seconds the run waited for it (the summary says so).
        self.later: list[Any] = []
        self.second_looks = 0
        self.second_look_wait = 0.0

    async def run(self) -> Progress:
        """Reader and workers in one task group: the first failure (a run-level error such as
        credentials refused mid-run, a full disk, a bug) cancels the others at once, and is
        raised as itself. Rows in flight stay `sent` in the journal for `resume`."""
        try:
            await self._work(self._produce)
            if self.later:
                await self._second_look()
        finally:
            self.journal.flush()
        if self.unresolved:
            raise RowsUnresolved(self.unresolved)
        return self.progress

    async def _work(self, produce: Callable[[Queue], Awaitable[None]]) -> None:
        """`produce` fills a queue that `concurrency` workers empty, in one task group."""
        queue: Queue = asyncio.Queue(maxsize=max(2, self.options.concurrency * 2))

        async def produce_all() -> None:
            await produce(queue)
            for _ in range(self.options.concurrency):
                await queue.put(None)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.options.concurrency):
                    group.create_task(self._worker(queue))
                group.create_task(produce_all())
        except BaseExceptionGroup as failures:
            raise first_failure(failures) from None

    async def _second_look(self) -> None:
        """Rows whose customer was not where the row wants it, at a moment when Graph's
        replication delay could explain it (a customer created or deleted moments before the
        run): sent to `execute` once more, once the replication window has passed since the
        last of them was missed. In a run longer than the window the rest of the run has
        already waited it; otherwise the run waits the remainder, once."""
        session = self.session
        assert session is not None
        plans, self.later = self.later, []
        self.second_looks += len(plans)
        due = max(p.missed_at for p in plans) + sum(session.replication_waits)
        if due > session.clock():
            self.second_look_wait += due - session.clock()
            await session.sleep(due - session.clock())
        size = self.options.batch_size

        async def produce(queue: Queue) -> None:
            for i in range(0, len(plans), size):
                await queue.put(("again", plans[i:i + size], 0))

        await self._work(produce)
        # A verb looks twice at most (it believes the second absence); anything handed back
        # again would be a defect, reported on its row rather than looped on.
        lost, self.later = self.later, []
        if lost:
            self._record(Executed(), [p.row for p in lost])

    async def _produce(self, queue: Queue) -> None:
        batch: list[Any] = []
        reconcile: list[Any] = []
        size = self.options.batch_size
        # Rows past the last one an earlier part of the run journaled have no state: their
        # chunks need no query (nor the commit that comes with one). This run's own states are
        # only ever behind the reader.
        journaled = self.journal.last_row()
        for chunk in chunks(self.rows, CHUNK_ROWS):
            states = self.journal.states_between(chunk[0].number, chunk[-1].number) if chunk[0].number <= journaled else {}
            finished: list[Outcome] = []
            # Every row is validated, done or not: duplicate checks need them all. A chunk at a
            # time, so that a verb can check it column by column (batch/verbs/screen.py).
            for row, plan in zip(chunk, self.verb.validate_chunk(chunk)):
                state = states.get(row.number)
                if state == "done":
                    continue
                if state == "sent":
                    sent = self.journal.sent_row(row.number)
                    assert sent is not None
                    if isinstance(plan, Rejected) or plan.key != sent.key:
                        # The run's rows are fixed by the file's hash and the remembered settings;
                        # reaching here means they were bypassed. Never reconcile the wrong customer.
                        raise ConfigError(f"row {row.number} is not the row this run sent (it sent {sent.key!r}); "
                                          "resume needs the same file and settings")
                    reconcile.append((plan, sent))
                    if len(reconcile) >= size:
                        await queue.put(("reconcile", reconcile, 0))
                        reconcile = []
                elif isinstance(plan, Rejected) and self.options.dry_run:
                    self._refused.append(plan)
                elif isinstance(plan, Rejected):
                    finished.append(plan.outcome())
                else:
                    batch.append(plan)
                    if len(batch) >= size and len(batch) >= self._group_rows():
                        await self._put(queue, batch)
                        batch = []
            if finished:
                self.journal.mark_done(finished, commit=False)
                self.progress.add(finished)
                self.on_progress(self.progress)
            batch = await self._few_refusals(queue, batch)
            await asyncio.sleep(0)
        if reconcile:
            await queue.put(("reconcile", reconcile, 0))
        if batch:
            await self._put(queue, batch)
        if self._refused:
            self._record_refused()

    async def _few_refusals(self, queue: Queue, batch: list[Any]) -> list[Any]:
        """A dry run's refusals do not pile up in memory (a file of invalid rows held 340 MB
        at 300,000 rows): past a chunk's worth they are recorded, with the valid rows read
        before them. Returns the batch still to fill."""
        if len(self._refused) < CHUNK_ROWS:
            return batch
        if batch:
            await self._put(queue, batch)  # the refusals go with it
            return []
        self._record_refused()
        return batch

    def _record_refused(self) -> None:
        """A dry run's refusals since the last group queued, as a group of their own: recorded
        once the groups before them are (a file of invalid rows, or its end)."""
        self._refused_by_group[self._planned] = self._refused
        self._plans_done[self._planned] = (Executed(), [])
        self._planned += 1
        self._refused = []
        self._record_plans()

    def _group_rows(self) -> int:
        """Rows a group holds: the batch size, or in a dry run whose directory index is
        ready (batch/verbs/absence.py) INDEXED_GROUP_ROWS, most of its keys needing no lookup:
        a group costs ~2 ms of queueing, planning and recording, 0.1 ms a row at 20."""
        keys = self.session.directory_keys if self.session is not None else None
        if self.options.dry_run and keys is not None and keys.ready:
            return max(self.options.batch_size, INDEXED_GROUP_ROWS)
        return self.options.batch_size

    async def _put(self, queue: Queue, batch: list[Any]) -> None:
        """A group of valid rows: to execute, or in a dry run to plan (numbered, for its order)."""
        if self.options.dry_run:
            self._refused_by_group[self._planned], self._refused = self._refused, []
            await queue.put(("plan", batch, self._planned))
            self._planned += 1
        else:
            await queue.put(("execute", batch, 0))

    async def _worker(self, queue: Queue) -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            kind, plans, number = item
            session = self.session
            assert session is not None, "rows reach a worker only in a run that reads or sends"
            if kind == "plan":
                self._plans_done[number] = (await self.verb.plan(plans, session), [p.row for p in plans])
                self._record_plans()
                continue
            if kind == "again":  # still journaled `sent` from its first round, which sent nothing for it
                executed = await self.verb.execute(plans, session)
                rows = [p.row for p in plans]
            elif kind == "execute":
                now, offset = self.clock(), session.client.server_clock_offset
                self.journal.mark_sent([SentRow(p.row, p.key, now, self.verb.sent_marker(p), 1, offset) for p in plans])
                self.progress.sent += len(plans)
                executed = await self.verb.execute(plans, session)
                rows = [p.row for p in plans]
            else:
                executed = await self.verb.reconcile(plans, session)
                rows = [p.row for p, _ in plans]
            self._record(executed, rows)

    def _record_plans(self) -> None:
        """A dry run's groups, recorded in the order they were read: plan.csv lists the rows
        in input order, and each row is `done` in the journal once its line is written (an
        interrupted dry run plans again what it had not written)."""
        assert self.plan_file is not None
        while self._recorded in self._plans_done:
            executed, rows = self._plans_done.pop(self._recorded)
            refused = self._refused_by_group.pop(self._recorded, [])
            self._recorded += 1
            if refused:
                executed.plan += [refusal_line(r) for r in refused]
                executed.outcomes += [r.outcome() for r in refused]
                rows = sorted(rows + [r.row for r in refused])
            if executed.unresolved:
                # A row whose lookup was refused (a 401/403 stops the run) has no line. The
                # group's rows after it go unrecorded too, and the run stops here: the rows
                # journaled stay the first rows of the input, which resume relies on
                # (`PlanFile.keep_rows_up_to`), and it plans the others again in their order.
                first = min(executed.unresolved)
                executed.plan = [line for line in executed.plan if line.row < first]
                executed.outcomes = [outcome for outcome in executed.outcomes if outcome.row < first]
                rows = [row for row in rows if row < first]
                executed.stop = executed.stop or RowsUnresolved(len(executed.unresolved))
            executed.outcomes.sort(key=_ROW)  # in row order, as `rows` (sorted already, the usual case)
            self.plan_file.append(sorted(executed.plan, key=_ROW))
            self._record(executed, rows)

    def _record(self, executed: Executed, rows: list[int]) -> None:
        # The passwords reach the disk before their rows are done: a crash in between is
        # reconciled by reading passwords.csv back.
        self.passwords.append(executed.passwords)
        unresolved = set(executed.unresolved)
        self.unresolved += len(unresolved)
        self.later += executed.later
        waiting = unresolved | {p.row for p in executed.later}
        outcomes = _one_per_row([o for o in executed.outcomes if o.row not in waiting],
                                [r for r in rows if r not in waiting])
        self.journal.mark_done(outcomes)
        self.progress.add(outcomes)
        if self.session is not None:
            self.progress.throttled = self.session.client.stats.throttled
        self.on_progress(self.progress)
        if executed.stop is not None:
            raise executed.stop



def refusal_line(refused: Rejected) -> PlanLine:
    """plan.csv's line for a row that validation refused: it would fail (invalid, never sent),
    or be skipped (a blank row)."""
    if refused.status is Status.INVALID:
        return PlanLine(refused.row, refused.key, "fail", reason="invalid: " + "; ".join(refused.problems))
    return PlanLine(refused.row, refused.key, "skip", reason="; ".join(refused.problems))


def _one_per_row(outcomes: list[Outcome], rows: list[int]) -> list[Outcome]:
    """Exactly one outcome per row sent; a verb that lost track of a row is a bug, reported as such."""
    if len(outcomes) == len(rows) and [o.row for o in outcomes] == rows:
        return outcomes  # the usual case: one each, in the order of `rows`
    by_row: dict[int, Outcome] = {}
    for outcome in outcomes:
        by_row.setdefault(outcome.row, outcome)
    for row in rows:
        if row not in by_row:
            by_row[row] = Outcome(row, "", Status.FAILED, error_code="InternalError",
                                  error_message="entra-batch lost track of this row (a defect): check the "
                                                "directory for this customer before running the row again")
    return [by_row[r] for r in rows]


def chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    """`rows` in lists of `size` (the last one shorter), in order: what `validate_chunk` takes."""
    while chunk := list(islice(rows, size)):
        yield chunk
