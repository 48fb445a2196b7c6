"""Duplicate keys in one input file: the sign-in names and UPNs (or user keys) seen so far,
with the row that used each first. A row whose key an earlier row holds is refused."""

from __future__ import annotations

from collections.abc import Iterable

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

    def prepare(self, *keys: tuple[str, Iterable[str]]) -> None:
        """Look up at once, in the compact arrays, the values of each (kind, values) that rows
        are about to claim: one numpy search for a chunk, not one per claim. `claim` uses what
        was found until the next `prepare` or move to the arrays; a value not prepared is
        looked up as before."""
        self._checked, self._older = set(), {}
        if not self._digests.size:
            return
        digests = np.fromiter((hash(f"{kind}\0{value.lower()}") & _DIGEST_BITS
                               for kind, values in keys for value in values if value), dtype=np.int64)
        at = np.minimum(np.searchsorted(self._digests, digests), self._digests.size - 1)
        found = self._digests[at] == digests
        self._checked = set(digests.tolist())
        self._older = dict(zip(digests[found].tolist(), self._rows[at[found]].tolist()))

    def claim(self, kind: str, value: str, row: int) -> int | None:
        """None when `row` is the first to use the value, else the first row that did."""
        # Python's own string hash (SipHash, 64 bits, keyed per process): this memory lives no
        # longer than the process, and it costs a tenth of a blake2b digest per row.
        digest = hash(f"{kind}\0{value.lower()}") & _DIGEST_BITS
        first = self._recent.get(digest)
        if first is None and digest in self._checked:
            first = self._older.get(digest)
        elif first is None and self._digests.size:
            at = int(np.searchsorted(self._digests, digest))
            if at < self._digests.size and int(self._digests[at]) == digest:
                first = int(self._rows[at])
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
        order = np.argsort(all_digests, kind="stable")
        self._digests = all_digests[order]
        self._rows = np.concatenate([self._rows, rows])[order]
        self._recent = {}
        self._checked, self._older = set(), {}  # the arrays changed: look up again
