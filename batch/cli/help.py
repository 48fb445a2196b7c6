"""Help texts of `entra-batch`'s commands (the epilogs of `--help`)."""

EMULATOR_EPILOG = """\
examples:
  entra-batch emulator                      serve on http://127.0.0.1:8765 with Graph's real quotas
  entra-batch emulator --tls --port 0       https on a free port, for msal and the Graph SDKs
  entra-batch emulator --write-quota 60/10 --latency-ms 40 --fault-rate 0.05 --seed 7
                                            a bad day: tight quotas, latency, 5% faults, replayable

Prints `export` lines (tenant id, client id and secret of a ready-made app with every user
permission, AZURE_AUTHORITY_HOST, the Graph base URL); paste them into a shell to point
entra-batch, msal or the Graph SDKs at the emulator. State is kept in --db (default: the
local emulator database under ENTRA_BATCH_HOME), so it survives restarts.
See docs/emulator.md for every endpoint, setting and deliberate difference from Graph.
"""


CREATE_EPILOG = """\
examples:
  entra-batch create customers.csv                      create on the local emulator (no tenant configured)
  entra-batch create customers.csv --dry-run            validate and plan only; results.csv says what would happen
  entra-batch create customers.csv --on-existing skip   a second run creates nothing twice
  entra-batch create legacy.csv --profile prod --priority low --out-dir runs/migration

The file: one customer per row. Columns (headers match case-insensitively, ignoring spaces,
_ and -): signInType (emailAddress/email or userName/username; blank: guessed from the value),
signInName, displayName (required), givenName, surname, blockSignIn (Yes/No), usageLocation
(ISO code), mail, password (blank: a 16-character one is generated), forceChangePasswordNextSignIn,
extension_<appId>_<name> or ext.<name>. The admin center's bulk-create template works as
downloaded. `entra-batch template create` writes an empty one.

Writes a run folder (runs/<UTC time>-create/ or --out-dir): results.csv (one line per row:
row,key,status,object_id,http_status,error_code,error_message,attempts), passwords.csv (mode
0600, generated passwords only), summary.json, and the journal that `entra-batch resume`
uses to finish an interrupted run without creating anyone twice.
Exit status: 0 all rows done, 1 some rows invalid or failed, 2 usage or configuration error
(nothing sent), 3 aborted (authentication, missing permission; resumable), 130 interrupted
(resumable).
"""


DELETE_EPILOG = """\
examples:
  entra-batch delete leavers.csv --dry-run      what would be deleted; nothing is sent
  entra-batch delete leavers.csv --yes          delete (soft: restorable for 30 days)

The file: one customer per row, named by objectId, userPrincipalName or signInName (the first
of these that the row fills). The admin center's bulk-delete template (`User name
[userPrincipalName] Required`) works as downloaded. A customer already deleted is `skipped`;
each deleted row says until when it can be restored. More than 100 rows ask for confirmation
on a terminal, and need --yes otherwise.
Exit status as for create: 0, 1 (some rows invalid or failed), 2, 3, 130.
"""


RESTORE_EPILOG = """\
examples:
  entra-batch restore deleted-by-mistake.csv
  entra-batch restore export-deleted.csv --dry-run

The file: one customer per row, named by objectId (best), userPrincipalName or signInName,
looked up among deleted customers. The admin center's bulk-restore template (`Object ID
[objectId] Required`) works as downloaded. A customer that is live already is `skipped`; one
whose UPN or sign-in name was taken meanwhile fails with the holder's object id.
Exit status as for create: 0, 1, 2, 3, 130.
"""

UPDATE_EPILOG = """\
examples:
  entra-batch update changes.csv
  entra-batch update changes.csv --dry-run      plan.csv: each property that would change, before and after

The file: one customer per row, named by objectId, userPrincipalName or signInName, plus the
columns to change: displayName, givenName, surname, blockSignIn (Yes/No), usageLocation, mail,
jobTitle, department, companyName, city, state, country, streetAddress, postalCode,
officeLocation, mobilePhone, businessPhone, preferredLanguage, employeeId, newSignInName (a new
email or user name to sign in with), extension_<appId>_<name> or ext.<name>. A blank cell
leaves the value as it is; #clear empties it (not displayName, usageLocation or blockSignIn).
A row whose values already match is skipped. Exit status as for create: 0, 1, 2, 3, 130.
"""

RESET_EPILOG = """\
examples:
  entra-batch reset-password forgot.csv           new temporary passwords, changed at next sign-in
  entra-batch reset-password forgot.csv --no-force-change

The file: one customer per row, named by objectId, userPrincipalName or signInName. Each gets
a generated 16-character password, written to passwords.csv (mode 0600) once Graph confirmed
the reset, and nowhere else. The app needs User-PasswordProfile.ReadWrite.All (or
User.ReadWrite.All) and User.Read.All. Exit status as for create: 0, 1, 2, 3, 130.
"""

PURGE_EPILOG = """\
examples:
  entra-batch purge gone-for-good.csv --dry-run   what would be erased; nothing is sent
  entra-batch purge gone-for-good.csv --yes       erase for good (cannot be undone)

The file: one soft-deleted customer per row (objectId, userPrincipalName or signInName).
Purging cannot be undone, so it always needs --yes. A customer already gone is `skipped`; a
live one fails (delete it first). Exit status as for create: 0, 1, 2, 3, 130.
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

