"""Deleted users, `/directory/deletedItems` (GRAPH.md §6): list them, read one, restore it,
or delete it for good."""

from __future__ import annotations

from . import odata
from .call import Call
from .directory import project
from .listing import list_users, render
from .messages import GraphResponse
from .permissions import DELETE_RESTORE, LIST_DELETED


def list_deleted(call: Call) -> GraphResponse:
    call.require(LIST_DELETED)
    return list_users(call, state="deleted", context="directory/deletedItems/microsoft.graph.user")


def get_deleted(call: Call, object_id: str) -> GraphResponse:
    call.require(LIST_DELETED)
    select = odata.parse_select(call.request.query.get("$select"))
    row = call.directory.get_deleted(call.tenant, object_id)
    return GraphResponse(200, {"@odata.context": call.context("directoryObjects") + "/$entity",
                               "@odata.type": "#microsoft.graph.user", **render(row, select, deleted=True)})


def purge(call: Call, object_id: str) -> GraphResponse:
    call.require(DELETE_RESTORE)
    call.directory.purge(call.tenant, object_id)
    return GraphResponse(204)


def restore(call: Call, object_id: str) -> GraphResponse:
    call.require(DELETE_RESTORE)
    doc = call.directory.restore(call.tenant, object_id, call.request.body)
    return GraphResponse(200, {"@odata.context": call.context("directoryObjects") + "/$entity",
                               "@odata.type": "#microsoft.graph.user", **project(doc, None)})
