"""Sampling: head sampling strategies served to clients, and tail sampling in the Kafka ingester (``tail``)."""
