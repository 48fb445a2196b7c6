"""Exit statuses of a run (PRODUCT.md, "Contract of a run")."""

OK = 0              # every row succeeded, or was skipped by request
ROWS_FAILED = 1     # some rows invalid or failed
USAGE = 2           # usage or configuration error; nothing sent
ABORTED = 3         # authentication or permission failure; resumable
INTERRUPTED = 130   # Ctrl-C / SIGTERM; resumable
