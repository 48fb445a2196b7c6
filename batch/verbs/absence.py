"""The directory's keys as compact digests: what lets a create dry run answer "no customer has
this key" without asking Graph (issue 16).

A create dry run looks up each row's UPN, sign-in name and federated identities, one Graph
call each, paced under the read quota: a million rows take 20-45 minutes whatever our CPU
does. Listing the whole directory costs one resource unit per page of 999 customers instead
(batch/run/directory_keys.py reads it while the dry run goes on). Each key it finds is kept
here as a 64-bit digest of its normalised spelling, in one sorted numpy array (8 bytes a
key). Measured for ten million customers with a UPN and a sign-in name each (20 million
keys): 153 MB once complete, a peak RSS of 486 MB while the pages' digests are joined,
sorted and deduplicated (1.1 s).

The index only ever says "absent". A key whose digest is present (its customer exists, or a
collision, or a spelling that only the normalisation merges) is looked up as before, so an
index can cost a lookup but never change a plan. Hence `normalised` must merge at least
what Graph's comparison merges: the emulator compares UPNs and identities with SQLite's
NOCASE (ASCII letters), Graph case-insensitively; upper-casing then case-folding merges both
and more (`ß`/`ss`, dotless `ı`/`i`, the Kelvin sign/`k`). UPNs and identities share one
array: a sign-in name that is someone's UPN costs a lookup, nothing more, and a customer's
userPrincipalName identity (which mirrors its UPN) adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Past this many keys (UPNs and identities) the index stops growing and the dry run looks
# every key up, as without it: 20 million digests are 160 MB while the directory is read.
MAX_KEYS = 20_000_000


def normalised(value: str) -> str:
    """The spelling the index keeps of a key: every spelling Graph (or the emulator) would
    match to `value` has the same one."""
    return value.upper().casefold()


def key_digests(values: Sequence[str]) -> np.ndarray:
    """The digests of `values` (int64), at C speed. Python's string hash (SipHash, keyed per
    process): the index lives no longer than the process that reads the directory."""
    return np.fromiter(map(hash, map(str.casefold, map(str.upper, values))), dtype=np.int64, count=len(values))


class DirectoryKeys:
    """The keys of the customers a listing found, as digests; `ready` once the listing is
    complete (until then every key is looked up). Counts what it spared, for the run's notes."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._parts: list[np.ndarray] = []
        self._held = 0
        self._digests = np.empty(0, dtype=np.int64)
        self.ready = False
        self.customers = 0
        self.seconds = 0.0
        # Why the index was not used ("" while it is being read, or once ready).
        self.unused = ""
        self.rows_planned = 0  # rows a dry run planned while the index was there
        self.rows_spared = 0  # of which none of whose keys needed a lookup

    def add(self, customers: int, keys: Sequence[str]) -> bool:
        """Keep a page's keys; False (and nothing kept) once the index would pass `max_keys`."""
        if self._held + len(keys) > self.max_keys:
            self.abandon(f"the directory holds more than {self.max_keys:,} sign-in names and UPNs, more than this "
                         "dry run keeps in memory")
            return False
        if keys:
            self._parts.append(key_digests(keys))
            self._held += len(keys)
        self.customers += customers
        return True

    def complete(self, seconds: float) -> None:
        """The listing is complete: sort once, and from now on answer."""
        digests = np.concatenate(self._parts) if self._parts else np.empty(0, dtype=np.int64)
        self._parts = []
        digests.sort()  # in place; then the repeats (a UPN also a sign-in name, ...) are dropped
        if digests.size:
            keep = np.empty(digests.size, dtype=bool)
            keep[0] = True
            np.not_equal(digests[1:], digests[:-1], out=keep[1:])
            digests = digests[keep]
        self._digests = digests
        self.seconds = seconds
        self.ready = True

    def abandon(self, why: str) -> None:
        """No index for this run: every key is looked up."""
        self._parts, self._digests, self._held = [], np.empty(0, dtype=np.int64), 0
        self.ready = False
        self.unused = why

    def absent(self, keys: Sequence[str]) -> list[bool]:
        """For each key, whether no customer of the directory can hold it (False for all
        while the index is not ready)."""
        if not self.ready or not keys:
            return [False] * len(keys)
        if not self._digests.size:
            return [True] * len(keys)
        asked = key_digests(keys)
        at = np.minimum(np.searchsorted(self._digests, asked), self._digests.size - 1)
        return (self._digests[at] != asked).tolist()  # type: ignore[no-any-return]

    @property
    def size(self) -> int:
        return int(self._digests.size) if self.ready else self._held

    def note(self) -> str:
        """What the index did, for the run's notes (an administrator's wording)."""
        if self.unused:
            return f"the directory could not be read ahead ({self.unused}); every row was looked up one by one"
        if not self.ready:
            return ""
        spared = f"{self.rows_spared:,} of {self.rows_planned:,} rows needed no lookup"
        if not self.customers:
            return f"the directory holds no customer yet: {spared}"
        many = self.customers != 1
        return f"read the directory's {self.customers:,} customer{'s' if many else ''} in {self.seconds:.1f} s; {spared}"



__all__ = ["MAX_KEYS", "DirectoryKeys", "key_digests", "normalised"]
