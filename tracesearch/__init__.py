"""tracesearch: distributed tracing on Elasticsearch.

A namespace shared with the tracesearch-instrument distribution (tracesearch.instrument): in a
virtualenv holding both from source, its folder is found on sys.path and joined here.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
