"""The fleet report: one HTML page from the ledger's items, for every endpoint in them.

``python -m rightsizing_constructs report --ledger FILE`` renders it from what
``aws dynamodb query`` or ``scan`` prints for the ledger table (``{"Items": [...]}``): per
endpoint and variant, the last decision (its time, outcome and reason), the monthly saving it
recommends (current cost less recommended cost, where IR priced both), and the pending
recommendations waiting for a version to be served. The chart is a bar per endpoint and
variant of that saving, drawn by matplotlib (the ``[report]`` extra) and inlined as SVG; the
page has the same rules as the decision report (``report.py``): no JavaScript, nothing loaded,
every value escaped.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import report
from ._runtime import import_runtime

_SAVING, _COST = "#2ca02c", "#d62728"


@dataclass(frozen=True)
class Decision:
    """The last decision recorded for one endpoint's variant."""

    endpoint: str
    variant: str
    recorded_at: str
    outcome: str
    reason: str
    detail: Mapping[str, Any] | None

    def saving_per_month(self) -> float | None:
        """Current cost less recommended cost, a month (730 hours); None unless both known."""
        if self.detail is None or self.detail.get("action") not in ("apply", "pending"):
            return None
        now = report._finite((self.detail.get("current") or {}).get("estimated_cost_per_hour"))
        then = report._finite(self.detail.get("estimated_cost_per_hour"))
        if now is None or then is None:
            return None
        saving: float | None = import_runtime("apply").monthly_savings(now, then)
        return saving


def _string(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    return str(value.get("S", "")) if isinstance(value, Mapping) else ""


def _record(item: Mapping[str, Any]) -> Mapping[str, Any] | None:
    try:
        record = json.loads(_string(item, "record") or "null")
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, Mapping) and "candidates" in record else None


def load_items(path: Path) -> list[Mapping[str, Any]]:
    """The items of a ``query`` or ``scan`` output (or a JSON list of items)."""
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise report.InvalidDetail(f"cannot read {path}: {error}") from None
    items = document.get("Items") if isinstance(document, Mapping) else document
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise report.InvalidDetail(
            f"{path} is not the output of aws dynamodb query or scan (no Items list)"
        )
    return items


def fleet(items: list[Mapping[str, Any]]) -> tuple[list[Decision], list[Mapping[str, Any]]]:
    """The last decision per endpoint and variant (by time), and the pending details."""
    last: dict[tuple[str, str], Decision] = {}
    pending = []
    for item in items:
        endpoint = _string(item, "pk").removeprefix("endpoint#")
        sort_key = _string(item, "sk")
        detail = _record(item)
        if sort_key.startswith("pending#") and detail is not None:
            pending.append(detail)
        if not sort_key.startswith("recommendation#"):
            continue
        variant = str((detail or {}).get("variant_name") or sort_key.rsplit("#", 1)[-1])
        decision = Decision(
            endpoint=endpoint,
            variant=variant if detail is not None else "",
            recorded_at=_string(item, "recorded_at") or sort_key.split("#")[1],
            outcome=_string(item, "outcome"),
            reason=_string(item, "reason"),
            detail=detail,
        )
        key = (endpoint, decision.variant)
        if key not in last or last[key].recorded_at <= decision.recorded_at:
            last[key] = decision
    return sorted(last.values(), key=lambda d: (d.endpoint, d.variant)), pending


def chart(decisions: list[Decision], image_format: str = "svg") -> bytes:
    """A bar of monthly saving per endpoint and variant (``gid`` ``saving-<i>``)."""
    matplotlib, figure_class = report._matplotlib()
    known = [(i, d) for i, d in enumerate(decisions) if d.saving_per_month() is not None]
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "rightsizing"}):
        figure = figure_class(figsize=(8, 1.2 + 0.4 * max(len(known), 1)), layout="constrained")
        axes = figure.add_subplot()
        for row, (index, decision) in enumerate(known):
            saving = decision.saving_per_month() or 0.0
            colour = _SAVING if saving >= 0 else _COST
            axes.barh([row], [saving], color=colour, gid=f"saving-{index}")
        axes.set_yticks(range(len(known)), [f"{d.endpoint}/{d.variant}" for _, d in known])
        axes.invert_yaxis()
        axes.axvline(0, color="#444", linewidth=0.8)
        axes.set_xlabel("saving per month of the last decision (USD; negative: it costs more)")
        axes.grid(True, axis="x", alpha=0.3)
        buffer = io.BytesIO()
        metadata = {"Date": None} if image_format == "svg" else {"Software": None}
        figure.savefig(buffer, format=image_format, metadata=metadata, dpi=110)
    return buffer.getvalue()


def render(items: list[Mapping[str, Any]]) -> str:
    """The fleet page for the ledger's items."""
    decisions, pending = fleet(items)
    svg = chart(decisions).decode()
    svg = svg[svg.index("<svg") :]
    e, num = report._e, report._num
    rows = []
    for index, d in enumerate(decisions):
        detail = d.detail or {}
        current = detail.get("current") or {}
        rows.append(
            f'<tr data-index="{index}"><td>{e(d.endpoint)}</td><td>{e(d.variant)}</td>'
            f"<td>{e(d.recorded_at)}</td><td>{e(detail.get('action') or d.outcome)}</td>"
            f"<td>{e(_size(detail))}</td><td>{e(_size(current))}</td>"
            f'<td class="n">{num(d.saving_per_month(), 2)}</td><td>{e(d.reason)}</td></tr>'
        )
    waiting = [
        f"<tr><td>{e(p.get('endpoint_name'))}</td><td>{e(p.get('variant_name'))}</td>"
        f"<td>{e((p.get('pending') or {}).get('model_package_version_arn'))}</td>"
        f"<td>{e(_size(p))}</td><td>{e((p.get('pending') or {}).get('expires_at'))}</td></tr>"
        for p in pending
    ]
    total = sum(d.saving_per_month() or 0.0 for d in decisions)
    return _page(svg, rows, waiting, total, len(decisions))


def _size(config: Mapping[str, Any]) -> str | None:
    if not config.get("instance_type"):
        return None
    return f"{config['instance_type']} x{config.get('instance_count')}"


def write_png(items: list[Mapping[str, Any]], path: Path) -> None:
    """Write the fleet chart alone as a PNG."""
    path.write_bytes(chart(fleet(items)[0], "png"))


def _page(svg: str, rows: list[str], waiting: list[str], total: float, count: int) -> str:
    headings = ("endpoint", "variant", "decided at", "outcome", "recommended", "current")
    head = "".join(f"<th>{h}</th>" for h in (*headings, "saving per month (USD)", "reason"))
    pending = (
        '<table id="pending"><thead><tr><th>endpoint</th><th>variant</th><th>waits for</th>'
        f"<th>recommended</th><th>expires at</th></tr></thead><tbody>{''.join(waiting)}"
        "</tbody></table>"
        if waiting
        else '<p class="note">No recommendation is pending.</p>'
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{report.CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rightsizing fleet report</title>
<style>{report._STYLE}</style>
</head>
<body>
<h1>Rightsizing fleet report</h1>
<p>{count} endpoint variant(s). Net saving per month of their last decisions:
{report._num(total, 2)} USD (where IR priced both configurations; negative: they cost more).</p>
<h2>Saving by endpoint</h2>
<figure id="chart">{svg}</figure>
<h2>Last decisions</h2>
<table id="decisions"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>
<h2>Pending changes</h2>
{pending}
</body>
</html>
"""
