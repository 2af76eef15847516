"""What ``python -m bench.growth`` loads, and when: one corpus grown in steps (pure, no I/O).

The corpus is one seeded stream of ``bench.synth`` traces: the 1M-span step is the first million spans of
the 10M-span one, so a step adds spans and never replaces any. The 200-span traces that trace-by-id
fetches come first, so they are stored at every size and the same ids are fetched at each.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

NS_PER_S = 1_000_000_000
WINDOW_S = 24 * 3600


@dataclass(frozen=True)
class Step:
    total: int  # spans stored once this step is loaded
    new: int  # spans this step adds
    big_traces: int  # 200-span traces among them (the first step's only)


class PlanError(ValueError):
    pass


def plan(sizes: Sequence[int], big_traces: int, big_trace_spans: int) -> list[Step]:
    """One step per size; sizes strictly increasing, the first big enough for the 200-span traces."""
    if not sizes:
        raise PlanError("no sizes")
    if any(b <= a for a, b in itertools.pairwise(sizes)):
        raise PlanError(f"sizes must increase: {list(sizes)}")
    if sizes[0] < big_traces * big_trace_spans:
        raise PlanError(f"the first size ({sizes[0]:,}) holds fewer spans than the {big_traces} big traces")
    previous = 0
    steps = []
    for index, total in enumerate(sizes):
        steps.append(Step(total, total - previous, big_traces if index == 0 else 0))
        previous = total
    return steps


def window(now_ns: int, seconds: int = WINDOW_S) -> tuple[int, int]:
    """[start, end) of the spans' start times: the last ``seconds`` before ``now_ns``'s minute."""
    end = now_ns // (60 * NS_PER_S) * 60 * NS_PER_S
    return end - seconds * NS_PER_S, end


def parse_sizes(text: str) -> list[int]:
    """``"1M,10M"``, ``"1000000,3000000"`` or ``"500k"`` as span counts."""
    sizes = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        scale = {"k": 1_000, "m": 1_000_000}.get(part[-1], 1)
        digits = part[:-1] if scale > 1 else part
        try:
            sizes.append(int(float(digits) * scale))
        except ValueError:
            raise PlanError(f"{part!r} is not a span count like 1M, 500k or 3000000") from None
    return sizes
