"""Help texts of the commands that are not verbs (each verb's own is in its module's `SPEC`)."""

EMULATOR_EPILOG = """\
examples:
  entra-batch emulator                      serve on http://127.0.0.1:8765 with Graph's real quotas
  entra-batch emulator --tls --port 0       https on a free port, for msal and the Graph SDKs
  entra-batch emulator --write-quota 60/10 --latency-ms 40 --fault-rate 0.05 --seed 7
                                            a bad day: tight quotas, latency, 5% faults, replayable
  entra-batch emulator approve FSDX7M2KV --as admin@contoso.onmicrosoft.com
                                            sign in on the device showing that code (device code flow)
  entra-batch emulator add-admin helpdesk@contoso.onmicrosoft.com --role "Helpdesk Administrator"
                                            another administrator for `approve --as` (--role none: no role)
  entra-batch emulator --tls --app-certificate app.pem
                                            the ready-made app also holds this certificate (never its key)
  entra-batch emulator --tls --approve-device-codes-as admin@contoso.onmicrosoft.com
                                            every device code approved at once (tests, demos)
  entra-batch emulator --trust-issuer https://token.actions.githubusercontent.com=jwks.json --federated-subject repo:contoso/app:ref:refs/heads/main
                                            workload identity federation for the ready-made app

Prints `export` lines (tenant id, client id and secret of a ready-made app with every user
permission, AZURE_AUTHORITY_HOST, the Graph base URL); paste them into a shell to point
entra-batch, msal or the Graph SDKs at the emulator. State is kept in --db (default: the
local emulator database under ENTRA_BATCH_HOME), so it survives restarts.
Every tenant has an administrator, admin@<domain> (User Administrator), for device code and
Azure CLI sign-in, and a managed identity served App Service style: the commented
IDENTITY_ENDPOINT and IDENTITY_HEADER lines select it when uncommented. For device code,
Azure CLI and managed identity sign-in, unset AZURE_CLIENT_ID and AZURE_CLIENT_SECRET first
(the printed comments say which variables each method needs). With --db, give the same --db
to approve, decline and add-admin.
See docs/emulator.md for every endpoint, setting and deliberate difference from Graph.
"""





EXPORT_EPILOG = """\
examples:
  entra-batch export                                    every customer to runs/<UTC time>-export/customers.csv
  entra-batch export --out customers.xlsx --summary     an Excel file, and counts printed
  entra-batch export --blocked --created-after 2026-01-01 --out blocked.csv
  entra-batch export --filter "startswith(displayName,'A')" --select id,displayName,signIn.emailAddress
  entra-batch export --deleted --out deleted.csv        soft-deleted customers, restorable until when
  entra-batch export --since state.json --out changes.csv   what changed since the last run with state.json
  entra-batch export --report customers.html            the counts as a page with charts (no network needed)

Columns: id, userPrincipalName, displayName, givenName, surname, mail, signIn.emailAddress,
signIn.userName, signIn.federated (issuer/name), accountEnabled, usageLocation, createdDateTime,
creationType, and the tenant's custom attributes as ext.<name>. --select a,b,c gives exactly
those columns (and id); --select +jobTitle,+city adds to them. --deleted adds deletedDateTime and
restorableUntil; --since adds change (added, changed, removed) and removal (deleted: soft,
restorable; purged: gone for good).

A CSV export feeds back into the other verbs unchanged: `entra-batch update` (edit cells, blank
ones change nothing), `delete`, `reset-password`, and (an export made with --deleted) `restore`.

Excel safety: in CSV, a cell starting with = + - @ tab or CR gets a leading ' so Excel shows it
as text and never runs it; every entra-batch verb takes that ' off again when it reads the file.
In XLSX such cells are text cells with Excel's quote prefix. --raw writes values as they are.

Order: a sequential export (--sequential) lists customers in Graph's order. The default splits
the listing into one partition per first character of the UPN, fetched --concurrency at a time
(much faster on large tenants), and writes the partitions in order: customers grouped by the
first character of their UPN, so the same directory gives the same file.

Incremental: --since FILE keeps Graph's delta link in FILE. The first run lists every customer
(change: added) and creates FILE; each later run lists what changed since, and FILE is only
replaced once the export is complete, so an interrupted run can simply be run again.

Writes the file as <name>.partial and renames it when complete; summary.json goes to the run
folder. Needs User.Read.All (and User.DeleteRestore.All or User.Read.All for --deleted;
Application.Read.All to list the custom attributes).
Exit status: 0 done, 2 usage or configuration error, 3 Graph refused or failed (permission,
authentication, a page that could not be fetched), 130 interrupted.
"""


DOCTOR_EPILOG = """\
examples:
  entra-batch doctor --profile prod
  entra-batch doctor --target local
  entra-batch doctor --json > doctor.json

Reads only: nothing is written to the tenant. One line per check, under its section (target,
identity, extensions app, service, large runs): ✓ fine, ! worth knowing (a workforce tenant, a
permission only some columns need, a skewed clock, throttling), ✗ would stop a run, with the
remedy on the next line. The identity section asks, for each verb, the same permission check a
run makes before it sends anything, so doctor and a run never disagree. Answers within 10 s,
even from a slow Graph (what has not answered by then is reported as such).

Needs what the verbs need, plus (optional, to check more) Organization.Read.All, Domain.Read.All,
Application.Read.All and EventListener.Read.All.
Exit status: 0 nothing would stop a run (warnings allowed), 1 something the tenant holds would
(no extensions app, a domain that is not the tenant's), 2 usage or configuration error, 3 the
sign-in, a permission or a directory role would (as a run stops with 3), 130 interrupted.
"""
