"""gunicorn entry point: ``gunicorn -c gunicorn.conf.py app:app``."""

from tracesearch.app import create_app

app = create_app()
