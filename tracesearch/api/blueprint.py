"""The blueprint every HTTP surface is built on: flask-smorest's, so that the OpenAPI document is derived
from the views (their docstrings, the marshmallow schemas of their query parameters, the responses they
declare), with two changes of ours:

- a query parameter that does not load is a 400 ``BadRequest`` naming it, rendered by the surface's own
  error renderer (webargs would abort with its 422 and smorest would answer in its own JSON shape);
- each blueprint carries its error format (renderer and the schema that documents it), so the error
  responses a view declares are documented in the shape that view really answers.

flask-smorest ships no type information: the typed methods here are the only way views use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar, cast

import flask_smorest
from flask import Request, Response
from marshmallow import Schema, ValidationError, fields
from marshmallow.exceptions import SCHEMA
from webargs.flaskparser import FlaskParser

from tracesearch.api import errors
from tracesearch.api.http_errors import BadRequest

View = TypeVar("View", bound=Callable[..., Response])
ParsedView = Callable[..., Response]

# marshmallow's text for a missing required field; said as "parameter 'x' is required", as before.
REQUIRED = str(fields.Field.default_error_messages["required"])


class Whole(str):
    """A problem already phrased as the whole message (it names its parameter): shown as it is, not
    after ``parameter 'x': ``. Raise it in a ``ValidationError`` as it is (marshmallow's ``make_error``
    formats its messages into plain strings)."""


def _problem(messages: Any) -> str:
    """The first problem in marshmallow's nested messages (a list field nests them by index)."""
    while isinstance(messages, Mapping):
        messages = next(iter(messages.values()))
    if isinstance(messages, list):
        if len(messages) == 1:
            return messages[0] if isinstance(messages[0], str) else str(messages[0])
        return " ".join(map(str, messages))
    return str(messages)


def bad_parameter(messages: Mapping[str, Any]) -> BadRequest:
    """The 400 for a schema's error messages: the first parameter that failed, by name."""
    field, problems = next(iter(messages.items()), ("", "invalid parameters"))
    field = "" if field == SCHEMA else str(field)
    problem = _problem(problems)
    if isinstance(problem, Whole):
        return BadRequest(str(problem), field=field)
    if problem == REQUIRED:
        return BadRequest(f"parameter {field!r} is required", field=field)
    return BadRequest(f"parameter {field!r}: {problem}", field=field)


class QueryParser(FlaskParser):
    """webargs' Flask parser, failing with our 400 instead of aborting with its 422."""

    DEFAULT_VALIDATION_STATUS = 400

    def handle_error(
        self,
        error: ValidationError,
        req: Request,
        schema: Schema,
        *,
        error_status_code: int | None,
        error_headers: Mapping[str, str] | None,
    ) -> NoReturn:
        # webargs files the problems under the location they came from: {"query": {"limit": [...]}}
        messages = error.messages
        located = next(iter(messages.values()), {}) if isinstance(messages, dict) else {"": messages}
        raise bad_parameter(located) from error


PARSER = QueryParser()


def parse_query(schema: Schema) -> Any:
    """Load the query string with ``schema`` outside a decorator (a view that serves two APIs)."""
    return PARSER.parse(schema, location="query")


BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}},
}
CONTENT_ENCODING = {
    "in": "header",
    "name": "Content-Encoding",
    "description": "gzip or deflate; the size limit applies after decompression too",
    "schema": {"type": "string", "enum": ["gzip", "deflate", "identity"]},
}
ERROR_DESCRIPTIONS = {
    400: "a parameter or the body is invalid; the message names it",
    404: "not found",
    409: "the request conflicts with the service's configuration; the message says which setting",
    413: "the body is larger than the limit (after decompression too)",
    415: "Content-Type or Content-Encoding not supported",
    429: "too much in flight; retry after Retry-After seconds",
    503: "storage (or the broker) is unavailable; retry after Retry-After seconds",
}


@dataclass(frozen=True)
class ErrorFormat:
    """How a surface answers errors: its renderer, and the schema and content type that document it."""

    render: errors.Render
    schema: type[Schema]
    content_type: str = "application/json"
    # Also answered as this binary type (OTLP's google.rpc.Status in the request's encoding).
    binary_content_type: str = ""
    # Tempo's queries come from ``q``: a query the store refuses is that parameter's fault.
    query_field: str = ""


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]  # untyped base: flask-smorest has no stubs
    ARGUMENTS_PARSER = PARSER

    def __init__(self, name: str, import_name: str, *, description: str, errors: ErrorFormat | None = None):
        super().__init__(name, import_name, description=description)
        self.error_format = errors
        if errors is not None:
            _register_renderer(self, errors)

    def get(self, rule: str, **options: Any) -> Callable[[View], View]:
        return cast(Callable[[View], View], super().get(rule, **options))

    def post(self, rule: str, **options: Any) -> Callable[[View], View]:
        return cast(Callable[[View], View], super().post(rule, **options))

    def put(self, rule: str, **options: Any) -> Callable[[View], View]:
        return cast(Callable[[View], View], super().put(rule, **options))

    def after_request(self, f: View) -> View:
        return cast(View, super().after_request(f))

    def query(self, schema: type[Schema]) -> Callable[[ParsedView], ParsedView]:
        """Load the query string with ``schema`` and pass the result to the view as its first argument;
        the schema's fields are the operation's documented query parameters. One instance per view: given
        a class, webargs instantiates it for every request, which cost ~1 ms of CPU per request (measured
        on trace by id, make bench; marshmallow copies every declared field per instance)."""
        return cast(Callable[[ParsedView], ParsedView], self.arguments(schema(), location="query"))

    def answers(
        self,
        description: str,
        schema: type[Schema] | Schema | dict[str, Any] | None = None,
        *,
        status: int = 200,
        content_type: str = "application/json",
        headers: dict[str, Any] | None = None,
    ) -> Callable[[View], View]:
        """Document an answer the view gives itself (it returns the ``Response``: nothing is dumped)."""
        return cast(
            Callable[[View], View],
            self.alt_response(
                status,
                schema=schema,
                description=description,
                content_type=content_type,
                headers=headers,
                success=status < 400,
            ),
        )

    def fails(self, *statuses: int) -> Callable[[View], View]:
        """Document the error statuses a view can answer, in this blueprint's error format."""
        error_format = self.error_format
        if error_format is None:
            raise TypeError(f"blueprint {self.name!r} renders no errors of its own")

        shapes: list[tuple[type[Schema] | dict[str, Any], str]] = [(error_format.schema, error_format.content_type)]
        if error_format.binary_content_type:
            shapes.append((BINARY, error_format.binary_content_type))

        def decorate(view: View) -> View:
            for status in statuses:
                for schema, content_type in shapes:
                    view = self.alt_response(
                        status,
                        schema=schema,
                        content_type=content_type,
                        description=ERROR_DESCRIPTIONS[status],
                        headers=RETRY_AFTER if status in (429, 503) else None,
                    )(view)
            return view

        return decorate

    def json_body(self, description: str, schema: type[Schema]) -> Callable[[View], View]:
        """Document a JSON request body the view reads and validates itself (its errors name the field,
        which marshmallow's nested messages would not)."""
        content = {"application/json": {"schema": schema}}
        return cast(
            Callable[[View], View],
            self.doc(requestBody={"required": True, "description": description, "content": content}),
        )

    def body(self, description: str, content_types: Iterable[str]) -> Callable[[View], View]:
        """Document a request body the view reads itself (protobuf or JSON, maybe compressed): its types
        and the Content-Encoding header. No schema: the codecs, not marshmallow, decode it."""
        return cast(
            Callable[[View], View],
            self.doc(
                requestBody={
                    "required": True,
                    "description": description,
                    "content": {content_type: {"schema": BINARY} for content_type in content_types},
                },
                parameters=[CONTENT_ENCODING],
            ),
        )


def _register_renderer(bp: Blueprint, error_format: ErrorFormat) -> None:
    errors.handle(bp, error_format.render, query_field=error_format.query_field)
