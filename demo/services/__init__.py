"""The Python demo services. Each module exposes ``create_app(peers, kafka_bootstrap)``.

They use the OpenTelemetry API only (spans of their own, attributes, events); connecting to
tracesearch is the host's job (demo.servicehost), as it would be a deployment's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Flask

from demo.services import catalog, checkout, frontend, payments

AppFactory = Callable[[Mapping[str, str], str], Flask]

FACTORIES: dict[str, AppFactory] = {
    "frontend": frontend.create_app,
    "checkout": checkout.create_app,
    "catalog": catalog.create_app,
    "payments": payments.create_app,
}
