"""Local development stack for tracesearch: Elasticsearch, Kafka and the service.

Everything comes from package registries (Maven Central, PyPI); nothing needs
Docker. Entry points:

* ``python -m devstack <command>`` for people (see ``devstack.cli``);
* ``devstack.elasticsearch`` and ``devstack.kafka`` ``ensure_running()`` /
  ``start()`` / ``stop()`` for pytest fixtures;
* ``devstack.stack`` for the whole stack (``up``, ``down``, ``status``).
"""
