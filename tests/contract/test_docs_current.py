"""docs/ holds the contract, and the generated part of it is what the code produces now: the
OpenAPI documents each service's app builds, and the AsyncAPI document of the topics, whose
every reference resolves and which names every topic and message schema the services use."""

from __future__ import annotations

import json

import yaml
from cohort_shared import schemas, topics

from tools.contract.asyncapi import asyncapi_document
from tools.contract.render import DOCS, rendered


def test_generated_documents_are_committed_as_the_code_produces_them() -> None:
    stale = [path for path, text in rendered().items()
             if not (DOCS / path).exists() or (DOCS / path).read_text() != text]
    assert stale == [], f"out of date: {stale}; run `make docs` and commit"


def _refs(node, found: list[str]) -> list[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            found.append(value) if key == "$ref" else _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)
    return found


def _resolve(document: dict, ref: str):
    node = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_reference_of_every_document_resolves() -> None:
    documents = [json.loads(p.read_text()) for p in sorted((DOCS / "api").glob("*.openapi.json"))]
    documents.append(yaml.safe_load((DOCS / "asyncapi.yaml").read_text()))
    assert len(documents) == 5
    for document in documents:
        for ref in _refs(document, []):
            assert ref.startswith("#/"), ref
            _resolve(document, ref)  # KeyError names the dangling reference


def test_the_asyncapi_document_covers_every_topic_and_message() -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {*topics.ALL_TOPICS, topics.dlq_name("{topic}")}
    public = next(c for c in document["channels"].values() if c["address"] == topics.MEMBERSHIP_CHANGES)
    event = document["components"]["schemas"]["MembershipChanged"]
    assert set(public["messages"]) == {"MembershipChanged"}
    assert set(event["required"]) == set(schemas.MembershipChanged.model_fields)
    for operation in document["operations"].values():
        assert operation["action"] in ("send", "receive")
        channel = _resolve(document, operation["channel"]["$ref"])
        for message in operation["messages"]:
            assert message["$ref"].startswith(operation["channel"]["$ref"] + "/messages/")
            assert _resolve(document, message["$ref"]) in channel["messages"].values()


def test_the_generated_files_name_nothing_outside_the_repository() -> None:
    for path in rendered():
        text = (DOCS / path).read_text()
        assert "../" not in text and "§" not in text, path
