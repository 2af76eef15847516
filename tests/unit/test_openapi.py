import re

from tracesearch.api.openapi import build_spec
from tracesearch.app import create_app
from tracesearch.settings import Settings


def test_every_route_is_in_the_openapi_document() -> None:
    app = create_app(Settings())
    documented = set(build_spec()["paths"])
    routes = {
        re.sub(r"<(?:path:)?(\w+)>", r"{\1}", r.rule).replace("{trace_id}", "{traceID}")
        for r in app.url_map.iter_rules()
        if r.endpoint != "static"
    }
    assert routes - {"/openapi.json"} == documented


def test_search_parameters_come_from_the_request_schema() -> None:
    parameters = build_spec()["paths"]["/api/traces"]["get"]["parameters"]
    assert {"service", "tags", "minDuration", "start", "end", "limit"} <= {p["name"] for p in parameters}
