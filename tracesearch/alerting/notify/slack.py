"""Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat): ``text`` (the notification line and
the fallback) plus Block Kit ``blocks``, one message per group. The URL is the secret: never logged."""

from __future__ import annotations

from typing import Any

import requests

from tracesearch.alerting.notify.http import HttpNotifier, TraceLink, trace_link_for
from tracesearch.alerting.notify.model import FIRING, Group, Notification, duration_text, number_text

MAX_ALERTS = 10  # Slack takes at most 50 blocks a message; each alert takes two
ICONS = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}


def escape(text: str) -> str:
    """Slack's mrkdwn control characters (its documented three)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    # `|` and `>` end a link in mrkdwn; percent-encoded, the URL means the same.
    safe = url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    return f"<{safe}|{escape(label)}>"


def title(group: Group) -> str:
    names = ", ".join(f"{name}={value}" for name, value in group.labels.items()) or "alerts"
    return f"[{group.status.upper()}:{len(group.alerts)}] {names}"


def summary(n: Notification) -> str:
    """``checkout-p95 firing: 0.8312 > 0.5 over 5m``: the line a phone notification shows."""
    verb = "firing" if n.state == FIRING else "resolved"
    return f"{n.rule} {verb}: {number_text(n.value)} {n.op} {number_text(n.threshold)} over {duration_text(n.window_s)}"


def alert_blocks(n: Notification, trace_link: TraceLink) -> list[dict[str, Any]]:
    labels = " ".join(f"`{escape(k)}={escape(v)}`" for k, v in sorted(n.labels.items()))
    lines = [
        f"{ICONS.get(n.state, '')} *{escape(n.rule)}* {n.state}",
        f"Value *{number_text(n.value)}* {escape(n.op)} threshold *{number_text(n.threshold)}* over "
        f"{duration_text(n.window_s)}",
        labels,
    ]
    lines += [escape(text) for name, text in sorted(n.annotations.items()) if name in ("summary", "description")]
    traces = ", ".join(link(trace_link(n.search_url, t), t[:16]) for t in n.example_trace_ids)
    links = link(n.search_url, "Search the traces") + (f" · Example traces: {traces}" if traces else "")
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(line for line in lines if line)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": links}]},
    ]


def slack_payload(group: Group, trace_link: TraceLink) -> dict[str, Any]:
    shown = group.alerts[:MAX_ALERTS]
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title(group)}}]
    for n in shown:
        blocks += alert_blocks(n, trace_link)
    if len(group.alerts) > len(shown):
        more = f"and {len(group.alerts) - len(shown)} more alert(s) of this group"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    text = summary(group.alerts[0]) if len(group.alerts) == 1 else title(group)
    return {"text": text, "blocks": blocks}


class SlackNotifier(HttpNotifier):
    kind = "slack"

    def __init__(
        self, url: str, timeout_s: float, trace_link: TraceLink | None = None, session: requests.Session | None = None
    ) -> None:
        super().__init__(url, timeout_s, session)
        self._trace_link = trace_link or trace_link_for("")

    def payload(self, group: Group) -> dict[str, Any]:
        return slack_payload(group, self._trace_link)
