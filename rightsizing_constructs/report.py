"""The decision report: one self-contained HTML page for one recommendation ``detail``.

``python -m rightsizing_constructs report`` renders it (``cli.py``), from a job description
decided as ``plan`` decides, or from a ``detail`` someone already has (the event's, or a ledger
record's). The page holds every candidate's cost per hour at peak against its latency (the
measured latency at peak where the curve was read, else IR's ``ModelLatency``) as an SVG chart
drawn by matplotlib and inlined, the SLO line, the chosen configuration highlighted, each
excluded candidate with its reason, the autoscaling target and current against recommended
cost. No JavaScript, no fonts, images or styles from elsewhere, and a Content-Security-Policy
that forbids them: it opens from a file, an S3 link or an email attachment. Every value from
the detail is escaped (``html.escape``); the chart draws text as paths.

matplotlib is an optional extra (``pip install 'rightsizing-constructs[report]'``): the rest of
the library, and the Lambda runtime, never import it.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from ._runtime import import_runtime

INSTALL_HINT = "pip install 'rightsizing-constructs[report]'"
#: Nothing may load from anywhere: inline styles and the inline SVG are all the page has.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_CHOSEN, _ELIGIBLE, _EXCLUDED, _SLO = "#d62728", "#1f77b4", "#8c8c8c", "#2ca02c"
_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:72rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}
dd{margin:0}table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .45rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.chosen{background:#fde8e8;font-weight:600}tr.excluded{color:#666}
figure{margin:0}svg{max-width:100%;height:auto}.note{color:#555;font-size:.9rem}
"""


class ReportUnavailable(Exception):
    """The optional plotting library is not installed; the message says how to install it."""


class InvalidDetail(ValueError):
    """A document that is not a recommendation ``detail`` (nor an event or record holding one)."""


def load_detail(path: Path) -> dict[str, Any]:
    """The ``detail`` in a JSON file: the detail itself, the whole event, or a ledger record.

    A ledger record is the ``record`` of an item (its DynamoDB ``{"S": "<json>"}`` or the JSON
    itself), as ``aws dynamodb get-item`` or ``query`` prints one ``Item``.
    """
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidDetail(f"cannot read {path}: {error}") from None
    return detail_from(document, str(path))


def detail_from(document: Any, name: str = "the document") -> dict[str, Any]:
    """The recommendation ``detail`` in ``document``, checked for what the report reads."""
    if isinstance(document, Mapping) and "Item" in document:
        document = document["Item"]
    if isinstance(document, Mapping) and "record" in document:
        document = document["record"]
        if isinstance(document, Mapping) and set(document) == {"S"}:
            document = document["S"]
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except json.JSONDecodeError as error:
                raise InvalidDetail(f"{name}: its record is not JSON: {error}") from None
    if isinstance(document, Mapping) and isinstance(document.get("detail"), Mapping):
        document = document["detail"]
    if not isinstance(document, Mapping):
        raise InvalidDetail(f"{name} is not a recommendation detail (a JSON object)")
    candidates = document.get("candidates")
    slo = (document.get("inputs") or {}).get("slo")
    if not isinstance(candidates, list) or not all(isinstance(c, Mapping) for c in candidates):
        raise InvalidDetail(f"{name} is not a recommendation detail: no candidates list")
    if not isinstance(slo, Mapping) or _finite(slo.get("max_latency_ms")) is None:
        raise InvalidDetail(f"{name} is not a recommendation detail: no inputs.slo")
    return dict(document)


def _finite(value: Any) -> float | None:
    """A JSON number as a float, or None (null, NaN, not a number, a boolean)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def latency_ms(candidate: Mapping[str, Any]) -> tuple[float | None, str]:
    """The candidate's latency and where it comes from: measured at peak, else IR's scalar."""
    measured = _finite(candidate.get("latency_at_peak_ms"))
    if measured is not None:
        return measured, "at peak (measured curve)"
    return _finite(candidate.get("model_latency_ms")), "IR ModelLatency"


def plotted(detail: Mapping[str, Any]) -> list[int]:
    """The indexes of the candidates the chart can place (a cost at peak and a latency)."""
    return [
        index
        for index, candidate in enumerate(detail["candidates"])
        if _finite(candidate.get("cost_at_peak_per_hour")) is not None
        and latency_ms(candidate)[0] is not None
    ]


def _matplotlib() -> Any:
    try:
        # The optional extra: imported only to draw.
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportUnavailable(
            f"the decision report needs matplotlib, an optional extra: {INSTALL_HINT}"
        ) from None
    return matplotlib, Figure


def _figure(detail: Mapping[str, Any], figure_class: Any) -> Any:
    """Cost at peak (x) against latency (y) per candidate; one artist (``gid``) per marker."""
    figure = figure_class(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    slo = detail["inputs"]["slo"]
    limit = float(slo["max_latency_ms"])
    percentile = str(slo.get("percentile", ""))
    for index in plotted(detail):
        candidate = detail["candidates"][index]
        x = float(candidate["cost_at_peak_per_hour"])
        y, _ = latency_ms(candidate)
        if candidate.get("chosen"):
            style = {"marker": "*", "markersize": 18, "color": _CHOSEN, "label": "chosen"}
        elif candidate.get("eligible"):
            style = {"marker": "o", "markersize": 9, "color": _ELIGIBLE, "label": "eligible"}
        else:
            style = {"marker": "X", "markersize": 9, "color": _EXCLUDED, "label": "excluded"}
        axes.plot([x], [y], linestyle="none", gid=f"candidate-{index}", **style)
        count = candidate.get("instance_count")
        label = f"{candidate.get('instance_type')}" + ("" if count is None else f" x{count}")
        axes.annotate(label, (x, y), textcoords="offset points", xytext=(7, 5), fontsize=8)
    axes.axhline(
        limit, linestyle="--", color=_SLO, gid="slo-line", label=f"{percentile} SLO {limit:g} ms"
    )
    axes.set_xlabel("cost per hour at peak (USD)")
    axes.set_ylabel("latency (ms): measured at peak, else IR's ModelLatency")
    # From zero, with room above the SLO line and the highest marker, and right of the costliest.
    points = [
        (_finite(c.get("cost_at_peak_per_hour")), latency_ms(c)[0]) for c in detail["candidates"]
    ]
    xs = [x for x, y in points if x is not None and y is not None]
    ys = [y for x, y in points if x is not None and y is not None]
    axes.set_ylim(0, max([limit, *ys]) * 1.15)
    axes.set_xlim(0, max([*xs, 0.01]) * 1.2)
    axes.grid(True, alpha=0.3)
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axes.legend(
        unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8
    )
    _spread_labels(figure, axes)
    return figure


#: Where a candidate's label may go (points from its marker), in order of preference.
_LABEL_PLACES = (
    ((7, 5), "left"),
    ((7, -11), "left"),
    ((-7, 5), "right"),
    ((-7, -11), "right"),
    ((7, 16), "left"),
    ((7, -22), "left"),
)


def _spread_labels(figure: Any, axes: Any) -> None:
    """Move each label to the first place where it covers no marker and no label before it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(figure).get_renderer()  # type: ignore[no-untyped-call]
    figure.draw_without_rendering()  # the constrained layout: where the axes end up
    markers = [line for line in axes.lines if str(line.get_gid()).startswith("candidate-")]
    placed = [line.get_window_extent(renderer) for line in markers]
    labels = axes.texts
    for label in labels:
        for offset, alignment in _LABEL_PLACES:
            label.xyann = offset
            label.set_horizontalalignment(alignment)
            box = label.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
        placed.append(box)


def chart(detail: Mapping[str, Any], image_format: str = "svg") -> bytes:
    """The chart as SVG or PNG bytes; the same detail always gives the same bytes."""
    matplotlib, figure_class = _matplotlib()
    # Text as paths (no font needed to read it) and fixed ids: a page that diffs cleanly.
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "rightsizing"}):
        figure = _figure(detail, figure_class)
        buffer = io.BytesIO()
        metadata = {"Date": None} if image_format == "svg" else {"Software": None}
        figure.savefig(buffer, format=image_format, metadata=metadata, dpi=110)
    return buffer.getvalue()


def write_png(detail: Mapping[str, Any], path: Path) -> None:
    """Write the chart alone as a PNG (for a ticket or a chat)."""
    path.write_bytes(chart(detail, "png"))


def _e(value: Any) -> str:
    return "—" if value is None else html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    number = _finite(value)
    if number is None:
        return "—"
    return f"{number:,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{number:,.0f}"


def _usd(per_hour: Any) -> str:
    number = _finite(per_hour)
    if number is None:
        return "unknown"
    month = Decimal(repr(number)) * import_runtime("decision").HOURS_PER_MONTH
    return f"{_num(number)} USD per hour ({float(month):,.2f} USD per month)"


def _facts(detail: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The decision's facts, each value already escaped."""
    inputs = detail.get("inputs") or {}
    slo = inputs.get("slo") or {}
    current = detail.get("current") or {}
    count = detail.get("instance_count")
    recommended = (
        "none" if detail.get("instance_type") is None else f"{detail['instance_type']} x{count}"
    )
    facts = [
        ("Action", _e(detail.get("action"))),
        ("Reason", _e(detail.get("reason"))),
        ("Recommended", _e(recommended)),
        ("Recommended cost", _e(_usd(detail.get("estimated_cost_per_hour")))),
        (
            "Current",
            _e(
                "not read"
                if not current
                else f"{current.get('instance_type')} x{current.get('instance_count')}"
            ),
        ),
        ("Current cost", _e(_usd(current.get("estimated_cost_per_hour")) if current else "—")),
        ("SLO", _e(f"{slo.get('percentile')} at most {_num(slo.get('max_latency_ms'))} ms")),
        (
            "Peak",
            _e(
                f"{_num(inputs.get('peak_requests_per_minute'))} requests per minute "
                f"({(inputs.get('peak_source') or {}).get('kind', 'unknown')}), planned at "
                f"{_num(inputs.get('target_utilization'))} of capacity"
            ),
        ),
        ("Autoscaling", _e(_autoscaling(detail.get("autoscaling")))),
        ("Evidence", _e(f"{detail.get('evidence')}: {detail.get('evidence_reason')}")),
        (
            "Job",
            _e(f"{detail.get('job_name')}" + (" (reused)" if detail.get("job_reused") else "")),
        ),
    ]
    pending = detail.get("pending")
    if isinstance(pending, Mapping):
        waits = f"{pending.get('model_package_version_arn')} ({pending.get('parameter_name')})"
        facts.append(("Pending until served", _e(waits)))
    return facts


def _autoscaling(autoscaling: Any) -> str:
    if not isinstance(autoscaling, Mapping):
        return "none"
    return (
        f"{autoscaling.get('metric')} target {_num(autoscaling.get('target_value'))}, "
        f"{autoscaling.get('min_capacity')} to {autoscaling.get('max_capacity')} instances"
    )


def _rows(detail: Mapping[str, Any]) -> list[str]:
    on_chart = set(plotted(detail))
    rows = []
    for index, candidate in enumerate(detail["candidates"]):
        latency, source = latency_ms(candidate)
        status = "chosen" if candidate.get("chosen") else None
        status = status or ("eligible" if candidate.get("eligible") else "excluded")
        cells = [
            f"<td>{_e(candidate.get('instance_type'))}</td>",
            f'<td class="n">{_e(candidate.get("instance_count"))}</td>',
            f'<td class="n">{_num(candidate.get("cost_per_hour"))}</td>',
            f'<td class="n">{_num(candidate.get("cost_at_peak_per_hour"))}</td>',
            f'<td class="n">{_num(latency, 1)}</td>',
            f"<td>{_e(source)}</td>",
            f'<td class="n">{_num(candidate.get("capacity_at_slo"), 1)}</td>',
            f"<td>{_e(status)}{'' if index in on_chart else ' (not on the chart)'}</td>",
            f"<td>{_e(candidate.get('reason'))}</td>",
        ]
        rows.append(f'<tr class="{status}" data-index="{index}">{"".join(cells)}</tr>')
    return rows


def render(detail: Mapping[str, Any]) -> str:
    """The HTML page for ``detail`` (checked with :func:`detail_from`)."""
    detail = detail_from(detail)
    svg = chart(detail).decode()
    svg = svg[svg.index("<svg") :]  # inline: no XML declaration or DOCTYPE inside HTML
    title = f"Rightsizing decision: {detail.get('endpoint_name')} / {detail.get('variant_name')}"
    facts = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in _facts(detail))
    headings = (
        "instance type",
        "instances at peak",
        "USD per hour (one)",
        "USD per hour at peak",
        "latency (ms)",
        "latency from",
        "capacity at SLO (per minute)",
        "status",
        "reason",
    )
    head = "".join(f"<th>{h}</th>" for h in headings)
    missing = len(detail["candidates"]) - len(plotted(detail))
    note = (
        f'<p class="note">{missing} candidate(s) have no cost at peak or no latency and are in '
        "the table only.</p>"
        if missing
        else ""
    )
    return _page(title, facts, svg, note, head, _rows(detail), detail)


def _page(
    title: str,
    facts: str,
    svg: str,
    note: str,
    head: str,
    rows: Sequence[str],
    detail: Mapping[str, Any],
) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{_e(title)}</h1>
<dl id="facts">{facts}</dl>
<h2>Cost at peak against latency</h2>
<figure id="chart">{svg}<figcaption class="note">Each marker is a candidate at the instance
count it needs at peak; the dashed line is the SLO. A star is the chosen configuration, a cross
an excluded one (its reason is in the table).</figcaption></figure>
{note}
<h2>Candidates</h2>
<table id="candidates"><thead><tr>{head}</tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<p class="note">Recommendation event detail, schema version {_e(detail.get("schema_version"))}.
Costs are IR's, in US dollars.</p>
</body>
</html>
"""
