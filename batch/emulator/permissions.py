"""Which permissions each kind of Graph call accepts (GRAPH.md §10), least privileged first,
which ones a PATCH of a user needs for the properties it changes, and, for a delegated token
(an administrator signed in through an app), which directory roles the signed-in user needs.

Graph checks a delegated call twice: the app's delegated permission must be in the token's
`scp`, AND the signed-in user must be allowed the operation in the directory. Delegated
permissions use the same names as the application ones (permissions-reference), and
Directory.AccessAsUser.All ("access the directory as the signed-in user") stands for all of
them. Reading users, the organization and applications needs no role for a member user (its
default user permissions, "What are the default user permissions in Microsoft Entra ID?");
writing users does ("In delegated scenarios with work or school accounts, the signed-in user
must be assigned a supported Microsoft Entra role ... User Administrator is the least
privileged role supported for this operation": user-post-users.md, user-update.md,
user-delete.md, directory-deleteditems-restore.md, directory-deleteditems-delete.md), and a
password reset, an account's block or its phones and other mails are allowed to the roles
of "Who can reset passwords" / "Who can perform sensitive actions" (users-overview,
privileged-roles-permissions: Helpdesk, Authentication, User, Privileged Authentication and
Global Administrator, for non-administrator users such as customers; a password reset also to
the Password Administrator, authenticationmethod-resetpassword.md: "Admins with User
Administrator, Helpdesk Administrator, or Password Administrator roles can..."). Anything else: 403
Authorization_RequestDenied "Insufficient privileges to complete the operation."."""

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
# Delegated only: the signed-in user's own profile (user-get.md, "/me": User.Read least
# privileged) and their memberships (user-list-memberof.md).
ME = frozenset({"User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All",
                "Directory.Read.All", "Directory.ReadWrite.All"})
MEMBER_OF = frozenset({"User.Read", "GroupMember.Read.All", "RoleManagement.Read.Directory", "Directory.Read.All",
                       "Directory.ReadWrite.All"})

# Directory roles a signed-in administrator needs for each kind of call (None: a member user
# needs none). Keyed by the permission sets above, which every handler passes to
# `Call.require`.
WRITERS = frozenset({"User Administrator", "Global Administrator"})
RESETTERS = frozenset({"Password Administrator", "Helpdesk Administrator", "Authentication Administrator", "User Administrator",
                       "Privileged Authentication Administrator", "Global Administrator"})
SENSITIVE = frozenset({"Authentication Administrator", "User Administrator", "Privileged Authentication Administrator",
                       "Global Administrator"})
BLOCKERS = frozenset({"User Administrator", "Privileged Authentication Administrator", "Global Administrator"})
DELEGATED_ROLES: dict[frozenset[str], frozenset[str] | None] = {
    READ: None,
    LIST_DELETED: None,
    APPLICATIONS: None,
    ORGANIZATION: None,
    DOMAINS: None,
    EVENT_LISTENERS: None,  # reading listeners asks no role of its own here (the app's scope decides)
    ME: None,
    MEMBER_OF: None,
    CREATE: WRITERS,
    UPDATE: WRITERS,
    IDENTITIES: WRITERS,
    DELETE_RESTORE: WRITERS,
    ENABLE: BLOCKERS,
    PASSWORD: RESETTERS,
    MAIL: SENSITIVE,
    PHONE: SENSITIVE,
}
# The delegated permission that stands for every other one of the signed-in user's.
AS_USER = "Directory.AccessAsUser.All"
# Delegated permission sets that only AS_USER meets. user.md, passwordProfile: "To update this
# property: In delegated access, the calling app must be assigned the Directory.AccessAsUser.All
# delegated permission on behalf of the signed-in user" (and user-update.md's note: "When updating
# the passwordProfile property, the following permission is required: Directory.AccessAsUser.All").
AS_USER_ONLY = frozenset({PASSWORD})


def delegated_allows(permissions: frozenset[str], scopes: frozenset[str], user_roles: frozenset[str]) -> bool:
    """Whether a delegated token with `scopes`, of a user holding `user_roles`, may make a call
    that needs one of `permissions`."""
    accepted = frozenset({AS_USER}) if permissions in AS_USER_ONLY else permissions | {AS_USER}
    if scopes.isdisjoint(accepted):
        return False
    needed = DELEGATED_ROLES[permissions] if permissions in DELEGATED_ROLES else _default_roles(permissions)
    return needed is None or not needed.isdisjoint(user_roles)


def _default_roles(permissions: frozenset[str]) -> frozenset[str] | None:
    """A permission set without its own row: a read (one of its permissions is a `.Read.` one,
    such as Domain.Read.All) needs no role of a member user; anything else a user-writing role."""
    return None if any(".Read." in p for p in permissions) else WRITERS


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
