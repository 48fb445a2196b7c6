"""Duplicate keys in one input file: the sign-in names and UPNs (or user keys) seen so far,
with the row that used each first. A row whose key an earlier row holds is refused."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import count

import numpy as np

_DIGEST_BITS = (1 << 63) - 1  # non-negative, so that they sort as int64


class SeenKeys:
    """Keys seen earlier in the file, as 63-bit hashes with the row that had each first.
    Recent ones sit in a dict; every half million they move into two sorted numpy arrays
    (12 bytes a key), so a ten-million-row file needs ~120 MB here, not gigabytes."""

    FLUSH_EVERY = 500_000

    def __init__(self) -> None:
        self._recent: dict[int, int] = {}
        self._digests = np.empty(0, dtype=np.int64)
        self._rows = np.empty(0, dtype=np.uint32)
        # What `prepare` looked up in the arrays: the digests asked, and the rows of those found.
        self._checked: set[int] = set()
        self._older: dict[int, int] = {}

    @staticmethod
    def digests(kind: str, values: Sequence[str]) -> list[int]:
        """The digest of each value of one kind (blank ones too), at C speed: what `claim`
        hashes, a column at a time."""
        hashed = np.fromiter(map(hash, map(str.lower, values)), dtype=np.int64, count=len(values))
        return ((hashed ^ hash(kind)) & _DIGEST_BITS).tolist()  # type: ignore[no-any-return]

    def prepare(self, digests: Sequence[int]) -> None:
        """Look up at once, in the compact arrays, the digests that rows are about to claim:
        one numpy search for a chunk, not one per claim. Claims use what was found until the
        next `prepare` or move to the arrays; a digest not prepared is looked up as before."""
        self._checked, self._older = set(), {}
        if not self._digests.size or not digests:
            return
        asked = np.sort(np.array(digests, dtype=np.int64))  # sorted keys: each search starts where the last ended
        at = np.minimum(np.searchsorted(self._digests, asked), self._digests.size - 1)
        found = self._digests[at] == asked
        self._checked = set(digests)
        self._older = dict(zip(asked[found].tolist(), self._rows[at[found]].tolist()))

    def claim(self, kind: str, value: str, row: int) -> int | None:
        """None when `row` is the first to use the value, else the first row that did."""
        # Python's own string hash (SipHash, 64 bits, keyed per process): this memory lives no
        # longer than the process, and it costs a tenth of a blake2b digest per row. The kind's
        # hash keeps the kinds apart without building a string per value.
        return self._claim((hash(value.lower()) ^ hash(kind)) & _DIGEST_BITS, row)

    def claim_all(self, digests: Sequence[int], rows: Sequence[int]) -> list[int]:
        """Claim each digest (from `digests`) for its row, in order, as `claim` would one by
        one; the positions whose digest an earlier row holds. At C speed when none does."""
        recent = self._recent
        firsts = list(map(recent.get, digests))
        if self._digests.size:
            older = self._older
            if older or not self._checked.issuperset(digests):
                firsts = [first if first is not None else self._older_row(digest)
                          for first, digest in zip(firsts, digests)]
        if firsts.count(None) != len(firsts) or len(set(digests)) != len(digests):
            return [at for at, digest, row in zip(count(), digests, rows) if self._claim(digest, row) is not None]
        recent.update(zip(digests, rows))
        if len(recent) >= self.FLUSH_EVERY:
            self._flush()
        return []

    def _older_row(self, digest: int) -> int | None:
        if digest in self._checked:
            return self._older.get(digest)
        at = int(np.searchsorted(self._digests, digest))
        if at < self._digests.size and int(self._digests[at]) == digest:
            return int(self._rows[at])
        return None

    def _claim(self, digest: int, row: int) -> int | None:
        first = self._recent.get(digest)
        if first is None and self._digests.size:
            first = self._older_row(digest)
        if first is not None:
            return None if first == row else first
        self._recent[digest] = row
        if len(self._recent) >= self.FLUSH_EVERY:
            self._flush()
        return None

    def _flush(self) -> None:
        digests = np.fromiter(self._recent.keys(), dtype=np.int64, count=len(self._recent))
        rows = np.fromiter(self._recent.values(), dtype=np.uint32, count=len(self._recent))
        all_digests = np.concatenate([self._digests, digests])
        order = np.argsort(all_digests)  # each digest is there once: no order among equals to keep
        self._digests = all_digests[order]
        self._rows = np.concatenate([self._rows, rows])[order]
        self._recent = {}
        self._checked, self._older = set(), {}  # the arrays changed: look up again

