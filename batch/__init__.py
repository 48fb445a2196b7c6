"""entra-batch: bulk management of Microsoft Entra External ID customer accounts.

The package root is the Python API; `entra-batch` (batch.cli) is a thin command line on top
of it. Every function here is a coroutine for the caller's own event loop, never prints,
prompts, exits or installs signal handlers, and returns a typed, frozen summary:

    start_run(RunRequest, Target, ...) -> RunSummary     create, update, reset-password, delete,
                                                         restore or purge from a file
    resume_run(run_dir, Target, ...)   -> RunSummary     finish an interrupted run exactly once
    run_export(ExportRequest, Target, ...) -> ExportReport

`resolve_target` builds a `Target` from a Graph URL or profile and the AZURE_* environment,
as the command line does. Run-level failures raise `batch.errors.RunError` subclasses, each
with the `exit_code` the command line would end with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batch.version import __version__

# Imported on first use, so that `import batch.emulator` (a server of its own) stays light.
_API = {
    "Target": "batch.config", "resolve_target": "batch.config",
    "RunError": "batch.errors", "ExitCode": "batch.errors",
    "RunRequest": "batch.run.request", "start_run": "batch.run.lifecycle", "resume_run": "batch.run.lifecycle",
    "RunSummary": "batch.run.summary",
    "ExportRequest": "batch.export.run", "ExportReport": "batch.export.run", "run_export": "batch.export.run",
}

if TYPE_CHECKING:
    from batch.config import Target, resolve_target
    from batch.errors import ExitCode, RunError
    from batch.export.run import ExportReport, ExportRequest, run_export
    from batch.run.lifecycle import resume_run, start_run
    from batch.run.request import RunRequest
    from batch.run.summary import RunSummary


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'batch' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = ["ExitCode", "ExportReport", "ExportRequest", "RunError", "RunRequest", "RunSummary", "Target",
           "__version__", "resolve_target", "resume_run", "run_export", "start_run"]
