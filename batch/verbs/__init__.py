"""One module per operation; `build_verb` is the one line of registration per verb."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batch.verbs.base import Verb

VERBS = ("create", "update", "reset-password", "delete", "restore", "purge")


def build_verb(request: Any, *, domain: str | None, extensions_app_id: str | None) -> "Verb":
    if request.verb == "create":
        from batch.verbs.create import CreateOptions, CreateVerb

        return CreateVerb(CreateOptions(domain=domain or "", extensions_app_id=extensions_app_id,
                                        on_existing=request.on_existing,
                                        force_change_generated=request.force_change_generated))
    if request.verb == "delete":
        from batch.verbs.delete import DeleteVerb

        return DeleteVerb(domain or "")
    if request.verb == "restore":
        from batch.verbs.restore import RestoreVerb

        return RestoreVerb(domain or "")
    if request.verb == "update":
        from batch.verbs.update import UpdateVerb

        return UpdateVerb(domain or "", extensions_app_id)
    if request.verb == "reset-password":
        from batch.verbs.reset_password import ResetPasswordVerb

        return ResetPasswordVerb(domain or "", force_change=request.force_change_generated)
    if request.verb == "purge":
        from batch.verbs.purge import PurgeVerb

        return PurgeVerb(domain or "")
    raise ValueError(f"unknown verb {request.verb}")
