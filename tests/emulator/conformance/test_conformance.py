"""The emulator against Graph's documented answers: one test, run once per fact.

The facts are tables (facts_*.py), each row a request and what Graph answers to it, with its
source. A fact the emulator does not meet yet is a strict xfail naming the helper whose work
will make it pass; every other fact must hold now.
"""

from __future__ import annotations

import pytest
from fact import Fact, problems_of
from facts_batch import FACTS as BATCH
from facts_deleted import FACTS as DELETED
from facts_envelope import FACTS as ENVELOPE
from facts_queries import FACTS as QUERIES
from facts_tenant import FACTS as TENANT
from facts_users import FACTS as USERS
from world import build_world, fill, send

ALL_FACTS: list[Fact] = USERS + QUERIES + DELETED + BATCH + ENVELOPE + TENANT


def _param(fact: Fact) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=f"awaiting {fact.awaiting}")] if fact.awaiting else []
    return pytest.param(fact, id=fact.name, marks=marks)


def test_fact_names_are_unique_and_sourced() -> None:
    names = [fact.name for fact in ALL_FACTS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert all(fact.source.strip() for fact in ALL_FACTS)


@pytest.mark.parametrize("fact", [_param(fact) for fact in ALL_FACTS])
async def test_emulator_answers_as_graph(graph, fact: Fact) -> None:
    world = await build_world(graph)
    response, followed = await send(graph, fact, world)
    problems = problems_of(fact, response, followed, lambda value: fill(value, world))
    assert not problems, f"{fact.name} (source: {fact.source}):\n  " + "\n  ".join(problems) + \
        f"\n  answer: {response.status_code} {response.text[:400]}"
