"""The one error every codec raises for a request it cannot decode at all."""

from __future__ import annotations


class DecodeError(ValueError):
    """The whole request body is unusable (not a span-level problem, those become ``Rejection``s).

    ``field`` is the path of the offending element, e.g.
    ``resourceSpans[0].scopeSpans[1].spans[3].traceId``, or ``""`` when the body as a whole is bad.
    Receivers put it in a ``google.rpc.BadRequest`` field violation, so keep it machine-readable and
    keep the human explanation in ``reason``.
    """

    def __init__(self, reason: str, field: str = "") -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {reason}" if field else reason)
