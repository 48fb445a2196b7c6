"""Facts about deleting, deleted items, restoring and purging (GRAPH.md §6, §15.2).
World: Bob is soft-deleted, Ada and Grace are live."""

from __future__ import annotations

from fact import Fact, length, matches

USER_DELETE = "docs:api-reference/v1.0/api/user-delete.md"
DELETED_LIST = "docs:api-reference/v1.0/api/directory-deleteditems-list.md"
DELETED_GET = "docs:api-reference/v1.0/api/directory-deleteditems-get.md"
RESTORE = "docs:api-reference/v1.0/api/directory-deleteditems-restore.md"
PURGE = "docs:api-reference/v1.0/api/directory-deleteditems-delete.md"
MISSING = "00000000-0000-4000-8000-000000000000"
NOT_FOUND = "Request_ResourceNotFound"

FACTS = [
    Fact("DELETE gives 204 and the user is gone", USER_DELETE, "DELETE", "/v1.0/users/{ada}", 204, text="",
         then="/v1.0/users?$filter=id eq '{ada}'", fields={"value": length(0)}),
    Fact("DELETE of a soft-deleted user", USER_DELETE + " (a second DELETE finds nothing)", "DELETE",
         "/v1.0/users/{bob}", 404, code=NOT_FOUND),
    Fact("DELETE of an unknown id", USER_DELETE, "DELETE", f"/v1.0/users/{MISSING}", 404, code=NOT_FOUND),
    Fact("GET a soft-deleted user by id", "docs:api-reference/v1.0/api/user-get.md", "GET", "/v1.0/users/{bob}", 404,
         code=NOT_FOUND),
    Fact("deleted users are listed under the cast", DELETED_LIST, "GET",
         "/v1.0/directory/deletedItems/microsoft.graph.user", 200,
         fields={"value": length(1), "value.0.id": "{bob}", "value.0.deletedDateTime": matches(r"Z$")}),
    Fact("deleted items without the cast and with a filter", "microsoftgraph/microsoft-graph-docs#10080", "GET",
         "/v1.0/directory/deletedItems?$filter=id eq '{bob}'", 400, code="Request_UnsupportedQuery",
         message="Searches against this resource are not supported. Only specific instances can be queried."),
    Fact("deleted items $top above 999", DELETED_LIST + " ($top up to 999)", "GET",
         "/v1.0/directory/deletedItems/microsoft.graph.user?$top=1000", 400),
    Fact("deleted items ordered by deletedDateTime with advanced queries", DELETED_LIST + " ($orderby)", "GET",
         "/v1.0/directory/deletedItems/microsoft.graph.user?$orderby=deletedDateTime&$count=true", 200,
         headers={"ConsistencyLevel": "eventual"}, fields={"value": length(1)}),
    Fact("GET one deleted item", DELETED_GET, "GET", "/v1.0/directory/deletedItems/{bob}", 200,
         fields={"id": "{bob}", "@odata.type": "#microsoft.graph.user"}),
    Fact("GET a live user as a deleted item", DELETED_GET, "GET", "/v1.0/directory/deletedItems/{ada}", 404,
         code=NOT_FOUND),
    Fact("restore gives 200 with the object", RESTORE, "POST", "/v1.0/directory/deletedItems/{bob}/restore", 200,
         fields={"id": "{bob}", "@odata.type": "#microsoft.graph.user"}),
    Fact("a restored user is live again", RESTORE, "POST", "/v1.0/directory/deletedItems/{bob}/restore", 200,
         then="/v1.0/users/{bob}", fields={"id": "{bob}", "displayName": "Bob Gone"}),
    Fact("restore of an unknown id", RESTORE, "POST", f"/v1.0/directory/deletedItems/{MISSING}/restore", 404,
         code=NOT_FOUND),
    Fact("permanent delete gives 204", PURGE, "DELETE", "/v1.0/directory/deletedItems/{bob}", 204, text="",
         then="/v1.0/directory/deletedItems/microsoft.graph.user", fields={"value": length(0)}),
    Fact("permanent delete twice", PURGE + " (a second call finds nothing)", "DELETE",
         "/v1.0/directory/deletedItems/{bob}", 404, given=("purge_bob",), code=NOT_FOUND),
    Fact("a soft-deleted user's UPN is free again", "GRAPH.md §15.2 (Restore-MsolUser NewUserPrincipalName)", "POST",
         "/v1.0/users", 201, given=("delete_ada",),
         json={"accountEnabled": True, "displayName": "Taker", "mailNickname": "taker", "userPrincipalName": "{ada_upn}",
               "passwordProfile": {"password": "Xy12345678!", "forceChangePasswordNextSignIn": False}}),
]
