"""The gateway's OpenAPI document, made to say what the API does: a request that fails validation
is a 400 with the one error body (FastAPI documents a 422 that the gateway never answers)."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

# Every router documents its failures with ErrorOut (gateway.schemas.error_responses).
_ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_BODY_LIMITS = {
    "408": "The body did not arrive within HTTP_BODY_READ_TIMEOUT_SECONDS (`request_timeout`)",
    "413": "The body is larger than GATEWAY_MAX_BODY_BYTES (`payload_too_large`)",
}


def truthful_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with each operation's 422 replaced by a 400 in the one error body, and
    the answers of RequestContextMiddleware (413, 408) on every operation that takes a body."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault(
                    "400",
                    {
                        "description": "The request is invalid (400 `invalid_request` or "
                        "`invalid_json`)",
                        "content": {"application/json": {"schema": _ERROR_REF}},
                    },
                )
            if "requestBody" in operation:
                for status, what in _BODY_LIMITS.items():
                    responses.setdefault(
                        status,
                        {
                            "description": what,
                            "content": {"application/json": {"schema": _ERROR_REF}},
                        },
                    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)
    app.openapi_schema = schema
    return schema
