"""The status record every component reports, for ``status`` and ``env``."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class State(enum.Enum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"  # a process runs but its health check fails
    STOPPED = "not running"
    DISABLED = "disabled"  # not part of this configuration


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: State
    endpoint: str = ""
    # Set when the component comes from the environment (not managed by us).
    external: bool = False
    detail: str = ""
    # Runs in this clone although the settings do not describe it (the ES 9
    # node of `make test-es9`): listed, but neither needed nor exported.
    extra: bool = False

    @property
    def healthy(self) -> bool:
        return self.state is State.HEALTHY

    @property
    def needed(self) -> bool:
        return self.state is not State.DISABLED and not self.extra

    def line(self) -> str:
        """One aligned line for ``python -m devstack status``."""
        notes = [n for n in ("external" if self.external else "", self.detail) if n]
        extra = f"({', '.join(notes)})" if notes else ""
        tail = " ".join(part for part in (self.endpoint, extra) if part)
        return f"{self.name:<14} {self.state.value:<12} {tail}".rstrip()
