"""Retention: daily indices whose whole day is older than the retention period are deleted.

Span and aggregate indices are named after their UTC day, so expiry is deleting whole indices, the way
Jaeger's index cleaner does, with no index lifecycle management (an x-pack feature some clusters lack)
and no delete-by-query. A day is deleted once all of it is older than the retention, so data is kept
at least the retention and at most a day more; receivers refuse spans of days already deleted
(``oldest_start_ns``), so nothing is written only to disappear at the next sweep.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, cast

from elasticsearch import Elasticsearch, NotFoundError

from tracesearch import tenancy
from tracesearch.storage.es.aggregate_writer import SERVICEGRAPH, SERVICELATENCY, SPANMETRICS
from tracesearch.storage.es.indices import NS_PER_S, SPAN_INDEX_INFIX

log = logging.getLogger(__name__)

FAMILIES = (SPAN_INDEX_INFIX.strip("-"), SERVICEGRAPH, SPANMETRICS, SERVICELATENCY)
# The first sweep of a process waits this long at most, so that a restart loop does not hammer the cluster.
FIRST_SWEEP_DELAY_S = 60.0


def oldest_kept_day(now_s: float, retention_s: float) -> date:
    """The first UTC day the retention keeps: the day that was current ``retention_s`` ago."""
    return datetime.fromtimestamp(now_s - retention_s, tz=UTC).date()


def oldest_start_ns(now_s: float, retention_s: float) -> int:
    """The earliest span start a receiver accepts (0: no bound): midnight UTC of the oldest kept day."""
    if retention_s <= 0:
        return 0
    midnight = datetime.combine(oldest_kept_day(now_s, retention_s), datetime.min.time(), tzinfo=UTC)
    return int(midnight.timestamp()) * NS_PER_S


def expired_indices(names: Iterable[str], prefix: str, oldest_kept: date) -> list[str]:
    """Our daily indices (exactly ``<prefix>-<family>-YYYY-MM-DD``) of days before ``oldest_kept``.

    Anything else matching ``<prefix>-*`` (another deployment's longer prefix, a user's own index)
    is never touched.
    """
    families = "|".join(FAMILIES)
    pattern = re.compile(rf"{re.escape(prefix)}-(?:{families})-(\d{{4}}-\d{{2}}-\d{{2}})")
    expired = []
    for name in names:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        try:
            day = date.fromisoformat(match.group(1))
        except ValueError:
            continue  # shaped like a date but is not one (2026-13-40): not ours
        if day < oldest_kept:
            expired.append(name)
    return sorted(expired)


def expired_of_every_tenant(
    names: Iterable[str], prefix: str, now_s: float, retention_s: float, tenants: Mapping[str, float] | None
) -> list[str]:
    """The expired indices among ``names``: the default tenant's (``<prefix>-…``) after ``retention_s``;
    with ``tenants``, each tenant's (``<prefix>.<tenant>.-…``) after its retention there, else after
    ``retention_s`` (0: never)."""
    names = list(names)
    found = expired_indices(names, prefix, oldest_kept_day(now_s, retention_s)) if retention_s > 0 else []
    if tenants is None:
        return found
    grouped: dict[str, list[str]] = defaultdict(list)
    for name in names:
        tenant = tenancy.tenant_of_index(prefix, name)
        if tenant is not None:
            grouped[tenant].append(name)
    for tenant, its in grouped.items():
        kept_s = tenants.get(tenant, retention_s)
        if kept_s > 0:
            found += expired_indices(its, tenancy.index_prefix(prefix, tenant), oldest_kept_day(now_s, kept_s))
    return sorted(found)


class RetentionSweeper:
    """Deletes the expired indices of one prefix; ``sweep`` once, or ``start`` a background thread.

    With ``tenants`` (the root's sweeper, the CLI's), the indices of every tenant under the prefix go too
    (``<prefix>.<tenant>.-span-…``), those of tenants this process never served included: each tenant's
    with its retention in ``tenants``, else ``retention_s``.
    """

    def __init__(
        self,
        client: Elasticsearch,
        prefix: str,
        retention_s: float,
        on_deleted: Callable[[int], None] = lambda count: None,
        clock: Callable[[], float] = time.time,
        tenants: Mapping[str, float] | None = None,
    ):
        self._client = client
        self._prefix = prefix
        self._retention_s = retention_s
        self._on_deleted = on_deleted
        self._clock = clock
        self._tenants = tenants
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """Whether anything can expire (some retention is not 0)."""
        return self._retention_s > 0 or (self._tenants is not None and any(r > 0 for r in self._tenants.values()))

    def expired(self) -> list[str]:
        patterns = f"{self._prefix}-*" + (f",{self._prefix}.*" if self._tenants is not None else "")
        response = self._client.cat.indices(index=patterns, h="index", format="json", expand_wildcards="open,closed")
        names = [str(row["index"]) for row in cast(list[dict[str, Any]], response.body)]
        return expired_of_every_tenant(names, self._prefix, self._clock(), self._retention_s, self._tenants)

    def sweep(self) -> list[str]:
        """Delete every expired index now; returns those this call deleted. One request per index (a
        few expire per day): one another worker deleted first is not counted, though two deletes of
        the same index at the same moment can both be acknowledged."""
        deleted = []
        for name in self.expired():
            try:
                self._client.indices.delete(index=name)
            except NotFoundError:
                continue
            deleted.append(name)
            self._on_deleted(1)
        if deleted:
            log.info("retention: deleted %d expired indices: %s", len(deleted), deleted)
        return deleted

    def start(self, interval_s: float) -> None:
        """Sweep every ``interval_s`` in a daemon thread; an unreachable cluster is retried next time."""
        if not self.active or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, args=(interval_s,), name="retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self, interval_s: float) -> None:
        delay = min(interval_s, FIRST_SWEEP_DELAY_S)
        while not self._stop.wait(delay):
            try:
                self.sweep()
            except Exception as exc:  # the next sweep retries; the service goes on
                log.warning("retention: sweep failed, retrying in %.0fs: %s", interval_s, exc)
            delay = interval_s
