"""The one way the CLI talks to the administrator on stderr."""

from __future__ import annotations

import sys
from typing import TextIO


def say(message: str, stream: TextIO | None = None) -> None:
    print(f"entra-batch: {message}", file=stream or sys.stderr)
