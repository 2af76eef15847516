"""Alerting: rules (``rules``, ``ruleset``, ``templates``), what the API shows of alerts (``views``), their
evaluation and state, and notifications (``notify``). A pure core: no Flask, Kafka or Elasticsearch here."""
