"""gunicorn settings; every value can be overridden on the command line or with GUNICORN_CMD_ARGS."""

import os

bind = f"127.0.0.1:{os.environ.get('TRACESEARCH_PORT', '4318')}"
# Threads overlap the waits on Elasticsearch/Kafka; processes use the cores.
worker_class = "gthread"
workers = int(os.environ.get("TRACESEARCH_WORKERS", "2"))
threads = int(os.environ.get("TRACESEARCH_THREADS", "8"))
timeout = 120
graceful_timeout = 30
keepalive = 30
accesslog = None
errorlog = "-"
loglevel = "info"
