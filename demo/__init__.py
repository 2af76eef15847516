"""Runnable demo for tracesearch: a small instrumented shop that sends real traces.

``python -m demo run`` starts four services (frontend, checkout, inventory, payments) as
local processes, drives traffic through them and waits until the first trace is
searchable. Integration tests reuse :func:`demo.traffic.run_demo`.
"""

from demo.traffic import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
