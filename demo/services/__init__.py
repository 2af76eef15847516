"""The four demo services. Each module exposes ``create_app(peers, tracer)``."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Flask
from opentelemetry.trace import Tracer

from demo.services import checkout, frontend, inventory, payments

AppFactory = Callable[[Mapping[str, str], Tracer], Flask]

FACTORIES: dict[str, AppFactory] = {
    "frontend": frontend.create_app,
    "checkout": checkout.create_app,
    "inventory": inventory.create_app,
    "payments": payments.create_app,
}
