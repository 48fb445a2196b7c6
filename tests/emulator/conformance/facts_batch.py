"""Facts about JSON batching (GRAPH.md §8, §15.4). Answers may come in any order, so inner
answers are found by id (`responses#2.status`), never by position."""

from __future__ import annotations

from typing import Any

from emulator.helpers import customer
from fact import PRESENT, Check, Fact, at, length

BATCHING = "docs:concepts/json-batching.md"
WRITE = {"Content-Type": "application/json"}


def get(item_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "method": "GET", "url": url, **extra}


def batch(name: str, source: str, requests: list[dict[str, Any]], status: int = 200, **expect: Any) -> Fact:
    return Fact(name, source, "POST", "/v1.0/$batch", status, json={"requests": requests}, **expect)


def _refused(body: Any) -> bool:
    """The whole batch refused (an error), or its only item answered 400."""
    return isinstance(body, dict) and ("error" in body or at(body, "responses#1.status") == 400)


REFUSED_SOMEWHERE = Check("the batch or its item refused with 400", _refused)
MISSING_USER = "/users/00000000-0000-4000-8000-000000000000"

FACTS = [
    batch("a response per id, errors inside a 200", BATCHING, [get("1", "/users/{ada}"), get("2", MISSING_USER)],
          fields={"responses": length(2), "responses#1.status": 200, "responses#1.body.id": "{ada}",
                  "responses#2.status": 404, "responses#2.body.error.code": "Request_ResourceNotFound",
                  "responses#1.headers": PRESENT}),
    batch("inner answers carry OData-Version", BATCHING + " (response example headers)", [get("1", "/users/{ada}")],
          fields={"responses#1.headers.OData-Version": "4.0"}),
    batch("a relative url without a leading slash", BATCHING + " (url is relative, e.g. users?$select=)",
          [get("1", "users/{ada}?$select=id")], fields={"responses#1.status": 200}),
    batch("20 requests is the limit", BATCHING, [get(str(i), "/users/{ada}") for i in range(1, 21)],
          fields={"responses": length(20)}),
    batch("21 requests refused", BATCHING + " (at most 20)", [get(str(i), "/users/{ada}") for i in range(1, 22)], 400),
    batch("duplicate ids refuse the whole batch", BATCHING + " (ids unique)", [get("1", "/users/{ada}")] * 2, 400),
    batch("ids differing in case are duplicates", BATCHING + " (ids are not case-sensitive)",
          [get("a", "/users/{ada}"), get("A", "/users/{grace}")], 400),
    batch("a write with a body but no Content-Type", BATCHING + " (headers required with a body)",
          [{"id": "1", "method": "POST", "url": "/users", "body": customer("b1@example.com")}], 400,
          message="Write request id : 1 does not contain Content-Type header or body."),
    batch("dependsOn after a failure gives 424", BATCHING + " (dependsOn)",
          [get("1", MISSING_USER), get("2", "/users/{ada}", dependsOn=["1"])],
          fields={"responses#1.status": 404, "responses#2.status": 424}),
    batch("dependsOn after a success runs in order", BATCHING + " (sequencing with dependsOn)",
          [{"id": "1", "method": "PATCH", "url": "/users/{ada}", "headers": WRITE, "body": {"jobTitle": "Pilot"}},
           get("2", "/users/{ada}?$select=jobTitle", dependsOn=["1"])],
          fields={"responses#1.status": 204, "responses#2.body.jobTitle": "Pilot"}),
    batch("depends_on is not a batch key and is ignored", "microsoftgraph/msgraph-sdk-python-core PR #996",
          [get("1", MISSING_USER), get("2", "/users/{ada}", depends_on=["1"])],
          fields={"responses#1.status": 404, "responses#2.status": 200}),
    batch("an item url with /v1.0/", "microsoftgraph/msgraph-sdk-javascript#1178, microsoftgraph/msgraph-sdk-python#1015",
          [get("1", "/v1.0/users/{ada}")], Check("200 or 400", lambda s: s in (200, 400)),
          fields={"": REFUSED_SOMEWHERE}),
    batch("an absolute item url", "microsoftgraph/microsoft-graph-docs-contrib#8576 ('Invalid batch payload format.')",
          [get("1", "https://graph.microsoft.com/v1.0/users/{ada}")], Check("200 or 400", lambda s: s in (200, 400)),
          fields={"": REFUSED_SOMEWHERE}),
    batch("a dependency listed after its dependant", "microsoftgraph/msgraph-sdk-dotnet-core#891, msgraph-sdk-java-core#71",
          [get("1", "/users/{ada}", dependsOn=["2"]), get("2", "/users/{grace}")], 400),
    batch("sequential and parallel items mixed", "microsoftgraph/microsoft-graph-docs-contrib#2339",
          [get("1", "/users/{ada}"), get("2", "/users/{grace}", dependsOn=["1"]), get("3", "/users/{ada}")], 400,
          message="Batch should be either fully sequential or fully parallel."),
    Fact("a batch needs a token", BATCHING + " + docs:concepts/errors.md (401)", "POST", "/v1.0/$batch", 401,
         json={"requests": [get("1", "/users/{ada}")]}, auth="none", code="InvalidAuthenticationToken"),
    Fact("inner requests are authorised one by one", BATCHING + " (example: 403 inside a 200)", "POST",
         "/v1.0/$batch", 200, auth="readonly",
         json={"requests": [get("1", "/users/{ada}"),
                            {"id": "2", "method": "POST", "url": "/users", "headers": WRITE,
                             "body": customer("b2@example.com")}]},
         fields={"responses#1.status": 200, "responses#2.status": 403,
                 "responses#2.body.error.code": "Authorization_RequestDenied"}),
]
