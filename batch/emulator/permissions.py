"""Which application permissions each kind of Graph call accepts (GRAPH.md §10), least
privileged first, and which ones a PATCH of a user needs for the properties it changes."""

from __future__ import annotations

from typing import Any

READ = frozenset({"User.Read.All", "User.ReadWrite.All", "User.ReadUpdate.All", "Directory.Read.All", "Directory.ReadWrite.All"})
CREATE = frozenset({"User.Create", "User.ReadWrite.All", "Directory.ReadWrite.All"})
UPDATE = frozenset({"User.ReadUpdate.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
ENABLE = frozenset({"User.EnableDisableAccount.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
PASSWORD = frozenset({"User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
IDENTITIES = frozenset({"User.ManageIdentities.All"})
MAIL = frozenset({"User-Mail.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
PHONE = frozenset({"User-Phone.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
DELETE_RESTORE = frozenset({"User.DeleteRestore.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
LIST_DELETED = DELETE_RESTORE | {"User.Read.All", "Directory.Read.All"}
APPLICATIONS = frozenset({"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All",
                          "Directory.ReadWrite.All"})
ORGANIZATION = frozenset({"Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})
# domain-list.md: Domain.Read.All least privileged.
DOMAINS = frozenset({"Domain.Read.All", "Domain.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})
# identitycontainer-list-authenticationeventlisteners.md: EventListener.Read.All least privileged.
EVENT_LISTENERS = frozenset({"EventListener.Read.All", "EventListener.ReadWrite.All"})

# user-update.md, passwordProfile: app-only, the app needs "at least the User Administrator Microsoft
# Entra role"; the roles above it that may reset a non-admin's password are Privileged
# Authentication Administrator and Global Administrator (users-overview "Who can reset passwords",
# GRAPH.md §4.1). Checked only when EmulatorSettings.password_reset_needs_role is on.
PASSWORD_RESET_ROLES = frozenset({"User Administrator", "Privileged Authentication Administrator", "Global Administrator"})


def changes_password(body: Any) -> bool:
    return isinstance(body, dict) and any(k.lower() == "passwordprofile" for k in body)


# Properties that a narrower permission than UPDATE may change, with that permission.
_NARROW = (
    ({"passwordprofile"}, PASSWORD),
    ({"identities"}, IDENTITIES),
    ({"othermails"}, MAIL),
    ({"businessphones", "mobilephone"}, PHONE),
)
_NARROW_NAMES = {"accountenabled"}.union(*(names for names, _ in _NARROW))


def update_needs(body: Any) -> list[frozenset[str]]:
    """The permission sets a PATCH of `body` needs, each satisfied by any one of its members."""
    if not isinstance(body, dict):
        return []
    names = {k.lower() for k in body if not k.startswith("@odata.")}
    needed: list[frozenset[str]] = []
    if "accountenabled" in names:
        # Blocking sign-in needs User.EnableDisableAccount.All plus a read permission (GRAPH.md §5).
        needed += [ENABLE, READ]
    needed += [roles for props, roles in _NARROW if names & props]
    if names - _NARROW_NAMES:
        needed.append(UPDATE)
    return needed or [UPDATE]
