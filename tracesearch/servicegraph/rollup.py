"""Per-minute latency histograms per service, each written once its minute has gone quiet: the compact
form a latency panel reads (``{resource.service.name="x"} | quantile_over_time(duration, ...)``).

The span metrics are written at every flush (5 s) as partial documents per process, minute and label set,
so a day of one service is tens of thousands of documents or more, whose sparse histograms must be added
up outside Elasticsearch: no cheaper than scanning the spans. Here a (minute, service) entry is held in
memory and written when no span came for it for ``IDLE_NS`` (live traffic: about half a minute after the
minute ends) or once it is ``HOLD_NS`` old, whichever comes first; a span arriving later opens a new entry
(readers add the documents up). So a day of one service is about 1,440 documents per process.

What a reader may assume (``written_within_ns``): a span observed more than ``HOLD_NS`` plus a flush
interval ago is in a written document, unless the process was killed before writing it or storage
refused it for longer than the stage keeps unwritten aggregates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tracesearch.model import Span, StatusCode
from tracesearch.servicegraph.aggregator import Stats

NS_PER_S = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_S
IDLE_NS = 30 * NS_PER_S
HOLD_NS = 10 * 60 * NS_PER_S
MAX_OPEN = 50_000  # entries held at most (a Kafka backlog of hours opens many minutes at once)
RollupKey = tuple[int, str]  # minute start (ns), service


@dataclass(slots=True)
class _Entry:
    stats: Stats
    opened_ns: int
    last_ns: int


@dataclass(slots=True)
class ServiceLatency:
    """Not thread-safe (the stage holds a lock)."""

    idle_ns: int = IDLE_NS
    hold_ns: int = HOLD_NS
    max_open: int = MAX_OPEN
    _open: dict[RollupKey, _Entry] = field(default_factory=dict)

    def add(self, spans: Iterable[Span], now_ns: int) -> None:
        table = self._open
        for span in spans:
            key = (span.start_ns - span.start_ns % NS_PER_MINUTE, span.resource.service_name)
            entry = table.get(key)
            if entry is None:
                entry = table[key] = _Entry(Stats(), now_ns, now_ns)
            entry.last_ns = now_ns
            entry.stats.add(span.end_ns - span.start_ns, span.status_code is StatusCode.ERROR)

    def drain(self, now_ns: int, everything: bool = False) -> dict[RollupKey, Stats]:
        """The entries to write now: quiet for ``idle_ns``, ``hold_ns`` old, the oldest beyond ``max_open``,
        or all of them (``everything``, at shutdown)."""
        if everything:
            done = list(self._open)
        else:
            done = [
                key
                for key, e in self._open.items()
                if now_ns - e.last_ns >= self.idle_ns or now_ns - e.opened_ns >= self.hold_ns
            ]
            over = len(self._open) - len(done) - self.max_open
            if over > 0:
                chosen = set(done)
                rest = sorted((e.opened_ns, key) for key, e in self._open.items() if key not in chosen)
                done += [key for _, key in rest[:over]]
        return {key: self._open.pop(key).stats for key in done}

    def __len__(self) -> int:
        return len(self._open)


def written_within_ns(flush_interval_s: float) -> int:
    """How long after a span was observed its entry is surely written (barring a crash or a long outage)."""
    return HOLD_NS + int(flush_interval_s * NS_PER_S) + 30 * NS_PER_S
