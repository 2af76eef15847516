"""Service graph and RED (rate, errors, duration) metrics, computed as spans are stored.

Pure processing: no Flask, Elasticsearch or Kafka here. The storage side (looking a parent up,
writing aggregates) comes in through the small protocols of ``stage``.

Counting rule, which makes every call count exactly once across any number of processes (gunicorn
workers in direct mode, ingesters in Kafka mode), given that each span is *newly stored* by exactly
one process (a 409 duplicate is never fed in):

* a parent/child call (two services, or a client/producer and its server/consumer child in one
  service: a service calling itself) is counted by the process that stored the **child** span. The
  child knows its parent's id: it pairs with a parent seen locally within the wait window, or, when
  the window expires, with the parent found in Elasticsearch by (trace id, parent span id);
* a ``user`` → root-SERVER call is counted by the process that stored the root span, at once;
* a virtual-peer call (a CLIENT/PRODUCER span with ``peer.service``, ``db.*``, ``messaging.system``
  or ``server.address`` and no child it makes a call with) is counted by the process that stored the
  **client** span, when its window expires and neither it nor Elasticsearch has such a child.
  A child stored after that window makes both counts (the child is "late"): the window bounds it.
  Database clients (``db.system``/``db.name``) are not looked up: databases emit no spans of their
  own, so the lookup (one ``terms`` query per flush, a fifth of the stage's cost under load) would
  find nothing; an instrumented database in another process would be counted twice.
"""
