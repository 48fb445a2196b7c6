"""The permission preflight (PRODUCT.md, "Targets"): the application permissions a token
carries, and for what a run needs but lacks, the least privileged permission to grant —
checked before anything is sent."""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Sequence


def token_roles(access_token: str) -> frozenset[str]:
    """The application permissions (`roles`) of an access token, read from its JWT payload
    without verifying it (the preflight only reads what Graph will enforce). A token that is
    not a JWT gives no roles."""
    parts = access_token.split(".")
    if len(parts) < 2:
        return frozenset()
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return frozenset()
    roles = payload.get("roles") if isinstance(payload, dict) else None
    if not isinstance(roles, list):
        return frozenset()
    return frozenset(str(r) for r in roles)


# Broader permissions rank higher; everything unlisted is a narrow, least-privileged one.
_BREADTH = {"User.Read.All": 1, "Directory.Read.All": 2, "User.ReadWrite.All": 3, "Directory.ReadWrite.All": 4}


def missing_permissions(roles: Collection[str], needed: Sequence[Collection[str]]) -> list[str]:
    """For each requirement (a set of acceptable permissions) that `roles` does not meet, the
    least privileged permission that would meet it. A list or tuple is taken as ordered,
    least privileged first; a set is ranked (narrow permissions before `User.ReadWrite.All`
    and `Directory.*`)."""
    have = {r.lower() for r in roles}
    missing: list[str] = []
    for acceptable in needed:
        if any(p.lower() in have for p in acceptable):
            continue
        if isinstance(acceptable, (list, tuple)):
            least = acceptable[0] if acceptable else None
        else:
            least = min(acceptable, key=lambda p: (_BREADTH.get(p, 0), p), default=None)
        if least is not None and least not in missing:
            missing.append(least)
    return missing


__all__ = ["missing_permissions", "token_roles"]
