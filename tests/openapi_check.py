"""Check HTTP responses against the shipped OpenAPI document (callswitch/intake/openapi.yaml)."""

from __future__ import annotations

from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from callswitch.intake.app import openapi_document

_URI = "urn:callswitch:openapi"


def _registry() -> Registry:
    doc = openapi_document()
    return Registry().with_resource(_URI, Resource.from_contents(doc, default_specification=DRAFT202012))


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _resolve(obj: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
    """Follow $refs; return the object and its JSON pointer inside the document."""
    doc = openapi_document()
    while "$ref" in obj:
        pointer = obj["$ref"].removeprefix("#")
        node: Any = doc
        for part in pointer.removeprefix("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        obj = node
    return obj, pointer


def check_response(method: str, path_template: str, status: int, headers: Any, body: Any) -> None:
    """Assert that the response is documented and its JSON body matches the schema."""
    doc = openapi_document()
    operation = doc["paths"][path_template][method.lower()]
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {path_template}: status {status} is not documented"
    pointer = f"/paths/{_escape(path_template)}/{method.lower()}/responses/{status}"
    response, pointer = _resolve(responses[str(status)], pointer)
    for name, spec in response.get("headers", {}).items():
        if spec.get("required"):
            assert name in headers, f"{method} {path_template} {status}: header {name} missing"
    content = response.get("content")
    if not content:
        return
    assert "application/json" in content, f"{status} documents no JSON body"
    schema = {"$ref": f"{_URI}#{pointer}/content/application~1json/schema"}
    validator = jsonschema.Draft202012Validator(
        schema, registry=_registry(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{method} {path_template} {status}: body does not match the spec: {errors[0].message}"
