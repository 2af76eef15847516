"""Progress lines on stderr, with the time since the run began (the report goes to a file)."""

from __future__ import annotations

import sys
import time

_BEGAN = time.monotonic()


def say(message: str) -> None:
    print(f"[bench {time.monotonic() - _BEGAN:6.0f}s] {message}", file=sys.stderr, flush=True)
