"""Runnable demo for tracesearch: a shop in Python, Java and Node.js that sends real traces.

``python -m demo run`` builds the Java and Node.js services once, starts six services as local
processes (see demo.config), sends orders through a load generator on a Jaeger client, ships the
services' ECS log lines into Elasticsearch, and checks that the first order came back as one whole
trace with its logs. Integration tests reuse :func:`demo.traffic.run_demo`.
"""

from demo.traffic import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
