"""Renamed: the verbs on existing customers live in batch/verbs/existing.py.

This name stays only because tests/soak/test_clock_and_lost_answers.py (another worktree of
issue 10) imports `KeyPlan` from here; delete this file when that import is changed."""

from batch.verbs.existing import KeyPlan

__all__ = ["KeyPlan"]
