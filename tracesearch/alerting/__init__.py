"""Alerting: rules, their evaluation and state, and notifications (``notify``). A pure core: no Flask, Kafka or
Elasticsearch here."""
