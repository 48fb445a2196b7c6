"""Device code's token cache on disk: one file per tenant and client in the person's cache
directory (`batch.config.token_cache_dir`: ENTRA_BATCH_CACHE, else the platform's per-user
cache directory), with the run folders' rules (`batch.run.private`): the folder 0700 and
ours, the file 0600 and ours, read without following a link, written whole to a fresh
O_EXCL temporary then renamed into place. It holds msal's serialized cache of a public
client (access, refresh and ID tokens, the account): never a client secret."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO

from batch.run.private import open_existing, private_dir, write_replacing

CACHE_MAX_BYTES = 4 << 20  # a cache of a few accounts is a few KB


class TokenCacheFile:
    """msal's cache text for one tenant and client, in `folder`."""

    def __init__(self, folder: Path, tenant_id: str, client_id: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{tenant_id}-{client_id}")
        self.folder = folder
        self.path = folder / f"device-code-{safe}.json"

    def describe(self) -> str:
        return f"token cache {self.path}"

    def load(self) -> str | None:
        if not self.folder.exists():
            return None
        try:
            fd = open_existing(self.path, os.O_RDONLY, tighten=False,
                               advice=f"delete it (rm {self.path}) and sign in again")
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(CACHE_MAX_BYTES + 1)
        if len(data) > CACHE_MAX_BYTES:
            return None
        return data.decode("utf-8", errors="replace")

    def save(self, text: str) -> None:
        private_dir(self.folder, what="the token cache folder")
        data = text.encode("utf-8")

        def fill(handle: BinaryIO) -> None:
            handle.write(data)

        write_replacing(self.path, fill)


__all__ = ["CACHE_MAX_BYTES", "TokenCacheFile"]
