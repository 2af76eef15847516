"""Sampling: head-sampling strategies served to remote samplers (Jaeger's API), adaptive and tail sampling.

Pure: no Flask, Kafka or Elasticsearch here (the layer rules in pyproject.toml say so).
"""
