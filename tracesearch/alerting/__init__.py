"""Alerting: rules evaluated on a schedule by one process, per-label-set state, notifications (pure core)."""
