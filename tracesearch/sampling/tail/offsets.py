"""Which offset of each partition may be committed: the oldest record not yet done.

A record is read, then held by whatever still needs it (a trace that is not decided, a kept trace
not yet stored, a message not yet dead-lettered); once nothing holds it, it is done. The commit point
of a partition is its oldest record not done (or one past the last record read), so a crash replays
exactly what was still undecided or unstored, and possibly some records done after it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field

Position = tuple[Hashable, int]  # (partition, offset)


@dataclass(slots=True)
class _Partition:
    order: deque[int] = field(default_factory=deque)  # offsets read, oldest first, not yet known done
    holds: dict[int, int] = field(default_factory=dict)
    next_offset: int = -1  # one past the last offset read

    def point(self) -> int:
        while self.order and self.order[0] not in self.holds:
            self.order.popleft()
        return self.order[0] if self.order else self.next_offset


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[Hashable, _Partition] = {}

    def read(self, position: Position, holds: int = 1) -> None:
        """A record was read; ``holds`` things must release it before it is done (0: done now)."""
        partition, offset = position
        part = self._partitions.setdefault(partition, _Partition())
        part.next_offset = max(part.next_offset, offset + 1)
        if holds > 0:
            part.order.append(offset)
            part.holds[offset] = holds

    def hold(self, position: Position) -> None:
        """One more holder of a record not done yet."""
        partition, offset = position
        holds = self._partitions[partition].holds
        holds[offset] = holds.get(offset, 0) + 1

    def release(self, position: Position) -> None:
        partition, offset = position
        part = self._partitions.get(partition)
        if part is None or offset not in part.holds:
            return  # forgotten by a rebalance meanwhile
        left = part.holds[offset] - 1
        if left > 0:
            part.holds[offset] = left
        else:
            del part.holds[offset]

    def commit_points(self) -> dict[Hashable, int]:
        """Per partition read, the offset to commit (Kafka's "next offset to read")."""
        return {p: part.point() for p, part in self._partitions.items() if part.next_offset >= 0}

    def pending(self) -> int:
        return sum(len(part.holds) for part in self._partitions.values())

    def clear(self) -> None:
        """Forget everything (a rebalance: every partition is read again from its committed offset)."""
        self._partitions.clear()
