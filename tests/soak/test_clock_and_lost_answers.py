"""Ownership on Graph's clock when this machine's clock jumps (a laptop put to sleep, NTP
correcting a clock hours off), and a restore whose request never arrived: scripted against a
fake client, as in test_create_reconcile.py."""

from __future__ import annotations

import time
from pathlib import Path

from test_create_reconcile import EMPTY, FakeClient, answer, found

from batch.io.csvio import Row
from batch.outcome import SentRow, Status
from batch.run.journal import Journal
from batch.verbs.base import Session
from batch.verbs.create import CreateOptions, CreatePlan, CreateVerb
from batch.verbs.existing import KeyPlan
from batch.verbs.restore import RestoreVerb

HOURS = 3 * 3600.0
NOW = time.time()


def plan(verb: CreateVerb, number: int = 1) -> CreatePlan:
    result = verb.validate(Row(number, {"signInName": f"c{number}@example.com", "displayName": "C"}))
    assert isinstance(result, CreatePlan)
    return result


def verb() -> CreateVerb:
    return CreateVerb(CreateOptions(domain="contoso.onmicrosoft.com"))


async def test_resume_after_the_clock_was_corrected_still_claims_our_customer() -> None:
    # The row left while this machine's clock ran 3 h fast (journaled: Graph's clock was 3 h
    # behind); the clock was corrected before resume. Our customer is still ours.
    v = verb()
    client = FakeClient({"GET": [found(NOW)]})
    client.server_clock_offset = 0.0  # type: ignore[attr-defined]
    sent = SentRow(1, "c1@example.com", NOW + HOURS, False, 1, clock_offset=-HOURS)
    done = await v.reconcile([(plan(v), sent)], Session(client=client, clock=lambda: NOW + 5))  # type: ignore[arg-type]
    assert [o.status for o in done.outcomes] == [Status.CREATED]


async def test_resume_after_the_clock_was_corrected_never_claims_an_older_customer() -> None:
    # The row left while this machine's clock ran 3 h slow; a customer made by someone else an
    # hour before the send is not ours.
    v = verb()
    client = FakeClient({"GET": [found(NOW - 3600, "theirs")]})
    client.server_clock_offset = 0.0  # type: ignore[attr-defined]
    sent = SentRow(1, "c1@example.com", NOW - HOURS, False, 1, clock_offset=HOURS)
    done = await v.reconcile([(plan(v), sent)], Session(client=client, clock=lambda: NOW + 5))  # type: ignore[arg-type]
    assert [(o.status, o.object_id) for o in done.outcomes] == [(Status.FAILED, "theirs")]


async def test_a_clock_jump_between_send_and_lookup_does_not_move_the_send_time() -> None:
    # The answer is lost; before the lookup this machine's clock jumps 3 h ahead (Graph's Date
    # header now says it is 3 h behind us). A customer made an hour before the send is not ours.
    v = verb()
    moments = iter([NOW, NOW + HOURS])
    client = FakeClient({"POST": [answer(0, ambiguous=True)], "GET": []})
    client.server_clock_offset = 0.0  # type: ignore[attr-defined]

    def lookup(call):  # type: ignore[no-untyped-def]
        client.server_clock_offset = -HOURS  # type: ignore[attr-defined]
        return found(NOW - 3600, "theirs")(call)

    client.script["GET"].append(lookup)
    done = await v.execute([plan(v)], Session(client=client, clock=lambda: next(moments)))  # type: ignore[arg-type]
    assert [(o.status, o.object_id) for o in done.outcomes] == [(Status.FAILED, "theirs")]


def test_the_journal_keeps_graphs_clock_offset(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.mark_sent([SentRow(1, "k", NOW, True, 1, clock_offset=-12.5), SentRow(2, "l", NOW, False, 1)])
    assert [r.clock_offset for r in journal.sent_rows()] == [-12.5, None]
    assert journal.sent_row(1) == SentRow(1, "k", NOW, True, 1, clock_offset=-12.5)
    journal.close()


async def test_a_restore_that_never_arrived_is_sent_again() -> None:
    # The connection dropped before the restore was read: not live afterwards, still deleted.
    restore = RestoreVerb("contoso.onmicrosoft.com")
    deleted = answer(200, {"value": [{"id": "obj-1", "deletedDateTime": "2026-01-01T00:00:00Z"}]})
    client = FakeClient({"GET": [deleted, answer(404, code="Request_ResourceNotFound"), deleted],
                         "POST": [answer(0, ambiguous=True), answer(200, {"id": "obj-1"})]})
    from batch.verbs.lookups import UserKey

    done = await restore.execute([KeyPlan(1, "a@example.com", UserKey("signin", "a@example.com"))],
                                 Session(client=client))  # type: ignore[arg-type]
    assert done.unresolved == [] and [(o.status, o.object_id) for o in done.outcomes] == [(Status.RESTORED, "obj-1")]
    _ = EMPTY
