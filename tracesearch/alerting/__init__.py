"""Alerting: rules (``rules``, ``ruleset``, ``templates``), what the API shows of alerts (``views``), and
their evaluation, state and notifications. A pure core: no Flask, Kafka or Elasticsearch here."""
