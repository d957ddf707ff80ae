"""The peak a run sizes for, measured from the variant's traffic (the settings' ``peak_traffic``).

Without ``peak_traffic`` the peak is the configured ``peak_requests_per_minute``. With it,
Prepare reads the variant's ``Invocations`` over the lookback in ONE GetMetricData query
(:func:`metric_request`), and the peak is the ``percentile`` of the per-minute request rates,
times ``growth``, at least ``at_least``, rounded up to a whole request per minute
(:func:`observed_peak`). Whatever goes wrong (no datapoints, less history than
``min_history``, an idle variant, an error reading CloudWatch) falls back to the configured
number and says why: a measurement never fails a run.

What CloudWatch holds, and how it is read (each from the AWS docs named):

- ``AWS/SageMaker`` ``Invocations``, dimensions ``EndpointName`` and ``VariantName``: the
  ``InvokeEndpoint`` requests sent to the variant; "to get the total number of requests sent
  to a model endpoint, use the Sum statistic", available at a 1-minute frequency (SageMaker
  Developer Guide, "Amazon SageMaker AI metrics in Amazon CloudWatch", endpoint invocation
  metrics). The
  per-minute ``Sum`` is the variant's requests in that minute, the unit of
  ``peak_requests_per_minute`` (and of IR's ``MaxInvocations``).
- Retention: 1-minute datapoints are kept 15 days, 5-minute 63 days, 1-hour 455 days
  (CloudWatch User Guide, "Metrics retention"); GetMetricData returns nothing for a start
  time past 15 days ago unless the period is a multiple of 300 s, past 63 days a multiple of
  3600 s (CloudWatch API Reference, GetMetricData, ``Period`` and ``StartTime``). So the period
  is 60 s up to a 15-day lookback, 300 s up to 63 days, else 3600 s (:func:`period_for`). A
  5-minute or hourly ``Sum`` divided by 5 or 60 is that period's average rate per minute: a
  coarser period smooths the busiest minute away, which ``growth`` must then cover
  (``peak_source.period_seconds`` says which period was read).
- A period without requests may have no datapoint at all (GetMetricData returns values only
  for periods with data). Between the first and the last datapoint a missing period counts
  as zero requests, so a percentile below 100 is one of the whole span's minutes, not of the
  busy ones only; the busiest minute (percentile 100) is the same either way.

No AWS client here: Prepare (``start_job``) hands :func:`resolve_peak` a ``read`` function
that pages through GetMetricData (NextToken) with its own client, so the call is where its
permission is derived from (``tests/test_least_privilege.py``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger(__name__)

#: ``peak_source`` of a run whose settings have no ``peak_traffic``.
CONFIGURED: Mapping[str, Any] = {"kind": "configured"}
#: The only ``peak_traffic.source`` this runtime knows.
OBSERVED = "observed"
NAMESPACE = "AWS/SageMaker"
METRIC = "Invocations"
QUERY_ID = "invocations"
DAY = 86_400
#: How long CloudWatch keeps datapoints of each period (CloudWatch User Guide, "Metrics
#: retention"): the finest period still kept for the whole lookback is read.
RETENTION_BY_PERIOD = ((60, 15 * DAY), (300, 63 * DAY), (3600, 455 * DAY))
#: GetMetricData answers a query with ``StatusCode`` ``Complete``, or ``PartialData`` when the
#: rest comes with NextToken; ``InternalError`` and ``Forbidden`` mean the values cannot be
#: trusted (CloudWatch API Reference, ``MetricDataResult``).
_UNUSABLE_STATUS = ("InternalError", "Forbidden")

#: Reads one GetMetricData request: its response pages (``MetricDataResults`` each).
Reader = Callable[[Mapping[str, Any]], Iterable[Mapping[str, Any]]]


@dataclass(frozen=True, kw_only=True)
class ObservedPeak:
    """The settings' ``peak_traffic`` (``source`` ``observed``), as the runtime uses it."""

    lookback_seconds: int
    #: The per-minute percentile, in (0, 100]; 100 is the busiest minute.
    percentile: Fraction
    growth: Fraction
    at_least: Fraction | None
    min_history_seconds: int


@dataclass(frozen=True, kw_only=True)
class Series:
    """What GetMetricData returned for the query: the values and when they span."""

    values: tuple[Fraction, ...]
    first: datetime | None
    last: datetime | None


class UnusableData(Exception):
    """CloudWatch answered, but says its values are incomplete (``InternalError``/``Forbidden``)."""


def parse_peak_traffic(raw: Mapping[str, Any] | None) -> ObservedPeak | None:
    """The settings document's ``peak_traffic`` (None when absent); ``ValueError`` if wrong."""
    if raw is None:
        return None
    if raw.get("source") != OBSERVED:
        raise ValueError(f"peak_traffic.source must be {OBSERVED!r}, got {raw.get('source')!r}")
    at_least = raw.get("at_least")
    return ObservedPeak(
        lookback_seconds=int(raw["lookback_seconds"]),
        percentile=_fraction(raw["percentile"]),
        growth=_fraction(raw["growth"]),
        at_least=None if at_least is None else _fraction(at_least),
        min_history_seconds=int(raw["min_history_seconds"]),
    )


def period_for(lookback_seconds: int) -> int:
    """The finest period CloudWatch still keeps for the whole lookback (module docstring)."""
    for period, kept in RETENTION_BY_PERIOD:
        if lookback_seconds <= kept:
            return period
    return RETENTION_BY_PERIOD[-1][0]


def metric_request(
    endpoint_name: str, variant_name: str, lookback_seconds: int, now: datetime
) -> dict[str, Any]:
    """The one GetMetricData request: the variant's ``Invocations`` ``Sum`` per period.

    The window ends at the last whole period before ``now`` (the current one is still filling)
    and starts ``lookback_seconds`` earlier, both on period boundaries, as GetMetricData
    advises for performance.
    """
    period = period_for(lookback_seconds)
    end_epoch = int(now.timestamp()) // period * period
    start_epoch = (end_epoch - lookback_seconds) // period * period
    return {
        "MetricDataQueries": [
            {
                "Id": QUERY_ID,
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": METRIC,
                        "Dimensions": [
                            {"Name": "EndpointName", "Value": endpoint_name},
                            {"Name": "VariantName", "Value": variant_name},
                        ],
                    },
                    "Period": period,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
        ],
        "StartTime": datetime.fromtimestamp(start_epoch, UTC),
        "EndTime": datetime.fromtimestamp(end_epoch, UTC),
        "ScanBy": "TimestampAscending",
    }


def read_series(pages: Iterable[Mapping[str, Any]]) -> Series:
    """The query's values and first and last timestamps, over every page."""
    values: list[Fraction] = []
    stamps: list[datetime] = []
    for page in pages:
        for result in page.get("MetricDataResults", []):
            if result.get("Id") != QUERY_ID:
                continue
            if result.get("StatusCode") in _UNUSABLE_STATUS:
                raise UnusableData(f"CloudWatch answered {result['StatusCode']} for the query")
            values += (_fraction(v) for v in result.get("Values", []))
            stamps += result.get("Timestamps", [])
    return Series(
        values=tuple(values),
        first=min(stamps) if stamps else None,
        last=max(stamps) if stamps else None,
    )


def nearest_rank(values: list[Fraction], percentile: Fraction) -> Fraction:
    """The nearest-rank percentile: the smallest value with ``percentile`` % at or below it."""
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


def observed_peak(
    series: Series, peak: ObservedPeak, period: int
) -> tuple[Fraction | None, int, str]:
    """``(per-minute percentile or None, periods counted, why)``; None means: fall back.

    The per-minute rate of a period is its ``Sum`` divided by its minutes; missing periods
    between the first and last datapoint count as zero (module docstring).
    """
    if not series.values or series.first is None or series.last is None:
        return None, 0, f"no {METRIC} datapoints in the last {_days(peak.lookback_seconds)}"
    history = int((series.last - series.first).total_seconds()) + period
    if history < peak.min_history_seconds:
        return (
            None,
            len(series.values),
            f"only {_days(history)} of {METRIC} history (first to last datapoint), less than "
            f"min_history ({_days(peak.min_history_seconds)})",
        )
    periods = max(history // period, len(series.values))
    if max(series.values) <= 0:
        return None, periods, f"the variant served no requests in {_days(history)}"
    rates = [v * 60 / period for v in series.values]
    rates += [Fraction(0)] * (periods - len(rates))
    return nearest_rank(rates, peak.percentile), periods, ""


def resolve_peak(
    peak: ObservedPeak,
    *,
    configured: Fraction,
    endpoint_name: str,
    variant_name: str,
    read: Reader,
    now: datetime,
) -> dict[str, Any]:
    """What Prepare puts into the run: ``peak_source``, and the observed peak if there is one.

    ``{"peak_requests_per_minute": N, "peak_source": {...}}`` when measured; only
    ``{"peak_source": {...}}`` (``kind`` ``fallback``) when the configured number stays. The
    source's keys are in the README ("The recommendation event", ``inputs.peak_source``).
    """
    period = period_for(peak.lookback_seconds)
    source: dict[str, Any] = {
        "kind": "fallback",
        "lookback_days": _number(Fraction(peak.lookback_seconds, DAY)),
        "percentile": _number(peak.percentile),
        "growth": _number(peak.growth),
        "at_least": None if peak.at_least is None else _number(peak.at_least),
        "period_seconds": period,
        "datapoints": None,
        "observed_per_minute": None,
        "reason": "",
    }
    request = metric_request(endpoint_name, variant_name, peak.lookback_seconds, now)
    try:
        series = read_series(read(request))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        return _fallback(source, configured, f"could not read CloudWatch ({code}: {error})")
    except (BotoCoreError, UnusableData) as error:
        return _fallback(source, configured, f"could not read CloudWatch ({error})")
    source["datapoints"] = len(series.values)
    value, periods, why = observed_peak(series, peak, period)
    if value is None:
        return _fallback(source, configured, why)
    planned = value * peak.growth
    if planned <= 0 and not peak.at_least:
        why = f"the p{_number(peak.percentile)} minute of {periods} had no requests"
        return _fallback(source, configured, why)
    reason = (
        f"p{_number(peak.percentile)} of {periods} {period}-second periods over the last "
        f"{_days(peak.lookback_seconds)}: {_number(value, 3)} requests per minute, "
        f"x{_number(peak.growth)} growth = {_number(planned, 3)}"
    )
    if peak.at_least is not None and planned < peak.at_least:
        planned = peak.at_least
        reason += f", raised to at_least {_number(peak.at_least)}"
    used = math.ceil(planned)
    source.update(kind="observed", observed_per_minute=_number(value, 3))
    source["reason"] = f"{reason}; sized for {used} (rounded up)"
    logger.info("peak of %s/%s: %s", endpoint_name, variant_name, source["reason"])
    return {"peak_requests_per_minute": used, "peak_source": source}


def _fallback(source: dict[str, Any], configured: Fraction, why: str) -> dict[str, Any]:
    source["reason"] = f"{why}; using peak_requests_per_minute ({_number(configured)})"
    logger.warning("peak not measured: %s", source["reason"])
    return {"peak_source": source}


def _fraction(value: Any) -> Fraction:
    """The exact rational of a JSON number as written (0.1 is 1/10, not the binary float)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"expected a number, got {value!r}")
    return Fraction(Decimal(str(value)))


def _number(value: Fraction, places: int | None = None) -> int | float:
    """A JSON number: an integer stays one; the rest the nearest float (rounded if asked)."""
    if value.denominator == 1:
        return int(value)
    return float(value) if places is None else round(float(value), places)


def _days(seconds: int) -> str:
    """``14 days``, ``1 day``, ``6 hours`` or ``90 minutes``, for reasons."""
    span = timedelta(seconds=seconds)
    if span.total_seconds() % DAY == 0:
        days = span.days
        return f"{days} day" + ("" if days == 1 else "s")
    if span.total_seconds() % 3600 == 0:
        hours = int(span.total_seconds()) // 3600
        return f"{hours} hour" + ("" if hours == 1 else "s")
    minutes = math.ceil(span.total_seconds() / 60)
    return f"{minutes} minute" + ("" if minutes == 1 else "s")
