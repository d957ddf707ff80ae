"""The names of the library's own metrics, from the runtime that writes them (README, "Metrics").

Shared by the ``metric_*`` helpers (:mod:`.observability`) and the dashboards
(:mod:`.dashboard`), so neither names a metric, outcome or classification the runtime does not
write.
"""

from __future__ import annotations

from ._runtime import import_runtime

_metrics = import_runtime("metrics")

#: The namespace of every metric the library emits.
NAMESPACE: str = _metrics.NAMESPACE
#: Every metric name the runtime writes.
METRIC_NAMES: frozenset[str] = frozenset(m.name for m in _metrics.METRICS)
#: A run's outcomes, the ``Outcome`` dimension of ``Runs`` (the recommendation's ``action``).
OUTCOMES = ("apply", "no-change", "reject", "pending")
#: The audit's own classifications (``AuditFindings``' ``Classification``); Compute
#: Optimizer's findings add their own names.
CLASSIFICATIONS: tuple[str, ...] = tuple(import_runtime("utilization").CLASSIFICATIONS)
