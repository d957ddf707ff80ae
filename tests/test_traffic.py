"""The measured peak (``rightsizing_runtime.traffic``): the request, the arithmetic, the fallbacks.

The GetMetricData calls go through a real CloudWatch client with ``Stubber``: each request is
checked against botocore's model and against the exact parameters expected (``expected_params``),
pages included (NextToken).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from rightsizing_runtime import traffic
from rightsizing_runtime.traffic import ObservedPeak, Series

NOW = datetime(2026, 11, 1, 10, 0, 42, tzinfo=UTC)
END = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)  # the last whole minute before NOW
DAY = 86_400


def peak(**overrides: Any) -> ObservedPeak:
    values: dict[str, Any] = {
        "lookback_seconds": 14 * DAY,
        "percentile": Fraction(100),
        "growth": Fraction(6, 5),
        "at_least": None,
        "min_history_seconds": DAY,
    }
    values.update(overrides)
    return ObservedPeak(**values)


def query(period: int) -> list[dict[str, Any]]:
    return [
        {
            "Id": "invocations",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SageMaker",
                    "MetricName": "Invocations",
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": "fraud-scoring"},
                        {"Name": "VariantName", "Value": "AllTraffic"},
                    ],
                },
                "Period": period,
                "Stat": "Sum",
            },
            "ReturnData": True,
        }
    ]


def page(values: list[float], start: datetime, period: int = 60, **extra: Any) -> dict[str, Any]:
    return {
        "MetricDataResults": [
            {
                "Id": "invocations",
                "Label": "Invocations",
                "Timestamps": [start + timedelta(seconds=period * i) for i in range(len(values))],
                "Values": values,
                "StatusCode": extra.pop("status", "Complete"),
            }
        ],
        "Messages": [],
        **extra,
    }


@pytest.fixture
def cloudwatch() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("cloudwatch", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def resolve(client: Any, settings: ObservedPeak, configured: int = 3000) -> dict[str, Any]:
    return traffic.resolve_peak(
        settings,
        configured=Fraction(configured),
        endpoint_name="fraud-scoring",
        variant_name="AllTraffic",
        read=lambda request: client.get_paginator("get_metric_data").paginate(**request),
        now=NOW,
    )


# -- The request -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "period"),
    [(1, 60), (14, 60), (15, 60), (16, 300), (63, 300), (64, 3600), (455, 3600)],
)
def test_the_period_is_the_finest_still_kept_for_the_whole_lookback(days: int, period: int) -> None:
    assert traffic.period_for(days * DAY) == period


def test_the_request_reads_invocations_sum_per_minute_over_whole_minutes() -> None:
    request = traffic.metric_request("fraud-scoring", "AllTraffic", 14 * DAY, NOW)
    assert request == {
        "MetricDataQueries": query(60),
        "StartTime": END - timedelta(days=14),
        "EndTime": END,
        "ScanBy": "TimestampAscending",
    }


def test_a_longer_lookback_aligns_the_window_to_its_period() -> None:
    request = traffic.metric_request("fraud-scoring", "AllTraffic", 100 * DAY, NOW)
    assert request["MetricDataQueries"][0]["MetricStat"]["Period"] == 3600
    assert request["EndTime"] == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert request["StartTime"] == request["EndTime"] - timedelta(days=100)


def test_pages_are_followed_with_next_token(cloudwatch: tuple[Any, Stubber]) -> None:
    client, stubber = cloudwatch
    start = END - timedelta(days=14)
    request = {
        "MetricDataQueries": query(60),
        "StartTime": start,
        "EndTime": END,
        "ScanBy": "TimestampAscending",
    }
    first = [100.0] * 720
    second = [100.0] * 719 + [500.0]
    stubber.add_response("get_metric_data", page(first, start, NextToken="page-2"), request)
    stubber.add_response(
        "get_metric_data",
        page(second, start + timedelta(hours=12)),
        {**request, "NextToken": "page-2"},
    )
    result = resolve(client, peak())
    # The busiest minute (500, on the second page) x 1.2; one day of history.
    assert result["peak_requests_per_minute"] == 600
    source = result["peak_source"]
    assert source["kind"] == "observed"
    assert source["datapoints"] == 1440
    assert source["observed_per_minute"] == 500
    assert source["period_seconds"] == 60
    assert source == {
        "kind": "observed",
        "lookback_days": 14,
        "percentile": 100,
        "growth": 1.2,
        "at_least": None,
        "period_seconds": 60,
        "datapoints": 1440,
        "observed_per_minute": 500,
        "reason": "p100 of 1440 60-second periods over the last 14 days: 500 requests per "
        "minute, x1.2 growth = 600; sized for 600 (rounded up)",
    }


# -- The arithmetic --------------------------------------------------------------------------


def series(values: list[int | float], period: int = 60) -> Series:
    start = END - timedelta(days=2)
    stamps = [start + timedelta(seconds=period * i) for i in range(len(values))]
    return Series(
        values=tuple(Fraction(str(v)) for v in values),
        first=stamps[0] if stamps else None,
        last=stamps[-1] if stamps else None,
    )


def test_nearest_rank() -> None:
    values = [Fraction(v) for v in (15, 20, 35, 40, 50)]
    assert traffic.nearest_rank(values, Fraction(30)) == 20  # rank ceil(1.5) = 2
    assert traffic.nearest_rank(values, Fraction(40)) == 20  # rank 2 exactly
    assert traffic.nearest_rank(values, Fraction(100)) == 50
    assert traffic.nearest_rank(values, Fraction(1, 10)) == 15


def test_a_percentile_below_100_counts_missing_minutes_as_no_requests() -> None:
    # 2 days of minutes with data only in 10 of them: the 99th percentile minute is idle...
    values: list[int | float] = [0] * 2880
    for minute in range(0, 2880, 288):
        values[minute] = 1000
    sparse = series(values)
    busy = Series(values=tuple(v for v in sparse.values if v), first=sparse.first, last=sparse.last)
    p99 = peak(percentile=Fraction(99))
    assert traffic.observed_peak(sparse, p99, 60)[:2] == (0, 2880)
    # ...whether CloudWatch returned the idle minutes as zeros or not at all.
    assert traffic.observed_peak(busy, p99, 60)[:2] == (0, 2880)
    assert traffic.observed_peak(busy, peak(), 60)[:2] == (Fraction(1000), 2880)
    # The busiest 0.35 % of minutes is where p99.7 starts.
    assert traffic.observed_peak(busy, peak(percentile=Fraction(997, 10)), 60)[0] == 1000


def test_five_minute_sums_become_per_minute_rates() -> None:
    # 12 days of 5-minute data: 5,001 requests in the busiest 5 minutes is 1,000.2 a minute.
    values: list[int | float] = [1000.0] * (12 * 288)
    values[7] = 5001.0
    value, periods, _ = traffic.observed_peak(series(values, 300), peak(), 300)
    assert (value, periods) == (Fraction(5001, 5), 12 * 288)


def test_growth_and_rounding_up(cloudwatch: tuple[Any, Stubber]) -> None:
    client, stubber = cloudwatch
    start = END - timedelta(days=30)
    request = {
        "MetricDataQueries": query(300),
        "StartTime": start,
        "EndTime": END,
        "ScanBy": "TimestampAscending",
    }
    values = [1000.0] * (2 * 288)
    values[3] = 5001.0  # 1,000.2 a minute, x1.5 = 1,500.3 -> 1,501
    stubber.add_response("get_metric_data", page(values, start, 300), request)
    result = resolve(client, peak(lookback_seconds=30 * DAY, growth=Fraction(3, 2)))
    assert result["peak_requests_per_minute"] == 1501
    assert result["peak_source"]["observed_per_minute"] == 1000.2
    assert result["peak_source"]["period_seconds"] == 300
    assert result["peak_source"]["lookback_days"] == 30


@pytest.mark.parametrize(
    ("at_least", "expected", "raised"), [(Fraction(900), 900, True), (Fraction(100), 600, False)]
)
def test_at_least_is_a_floor_of_the_observed_peak(
    cloudwatch: tuple[Any, Stubber], at_least: Fraction, expected: int, raised: bool
) -> None:
    client, stubber = cloudwatch
    start = END - timedelta(days=14)
    stubber.add_response("get_metric_data", page([500.0] * 1440, start))
    result = resolve(client, peak(at_least=at_least))
    assert result["peak_requests_per_minute"] == expected
    assert ("raised to at_least" in result["peak_source"]["reason"]) is raised
    assert result["peak_source"]["at_least"] == int(at_least)


# -- The fallbacks ---------------------------------------------------------------------------


def test_no_datapoints_falls_back_to_the_configured_peak(
    cloudwatch: tuple[Any, Stubber],
) -> None:
    client, stubber = cloudwatch
    stubber.add_response("get_metric_data", page([], END))
    result = resolve(client, peak())
    assert "peak_requests_per_minute" not in result  # the configured number stays
    source = result["peak_source"]
    assert (source["kind"], source["datapoints"], source["observed_per_minute"]) == (
        "fallback",
        0,
        None,
    )
    assert source["reason"] == (
        "no Invocations datapoints in the last 14 days; using peak_requests_per_minute (3000)"
    )


def test_less_history_than_min_history_falls_back(cloudwatch: tuple[Any, Stubber]) -> None:
    client, stubber = cloudwatch
    stubber.add_response("get_metric_data", page([800.0] * 360, END - timedelta(hours=6)))
    result = resolve(client, peak())
    assert "peak_requests_per_minute" not in result
    assert result["peak_source"]["kind"] == "fallback"
    assert result["peak_source"]["datapoints"] == 360
    assert result["peak_source"]["reason"].startswith(
        "only 6 hours of Invocations history (first to last datapoint), less than min_history "
        "(1 day)"
    )


def test_exactly_min_history_is_enough(cloudwatch: tuple[Any, Stubber]) -> None:
    client, stubber = cloudwatch
    stubber.add_response("get_metric_data", page([800.0] * 1440, END - timedelta(days=1)))
    assert resolve(client, peak())["peak_requests_per_minute"] == 960


def test_a_percentile_minute_without_requests_falls_back_unless_at_least(
    cloudwatch: tuple[Any, Stubber],
) -> None:
    client, stubber = cloudwatch
    values = [0.0] * 1440
    values[5] = 700.0
    for floor in (None, Fraction(50)):
        stubber.add_response("get_metric_data", page(values, END - timedelta(days=1)))
        result = resolve(client, peak(percentile=Fraction(50), at_least=floor))
        if floor is None:
            assert "peak_requests_per_minute" not in result
            assert result["peak_source"]["reason"].startswith(
                "the p50 minute of 1440 had no requests"
            )
        else:
            assert result["peak_requests_per_minute"] == 50


def test_an_idle_variant_falls_back(cloudwatch: tuple[Any, Stubber]) -> None:
    client, stubber = cloudwatch
    stubber.add_response("get_metric_data", page([0.0] * 1440, END - timedelta(days=1)))
    result = resolve(client, peak(at_least=Fraction(50)))
    assert "peak_requests_per_minute" not in result
    assert result["peak_source"]["reason"].startswith("the variant served no requests in 1 day")


@pytest.mark.parametrize("code", ["AccessDenied", "Throttling", "InternalServiceError"])
def test_an_error_reading_cloudwatch_falls_back(cloudwatch: tuple[Any, Stubber], code: str) -> None:
    client, stubber = cloudwatch
    stubber.add_client_error(
        "get_metric_data",
        service_error_code=code,
        service_message="not this time",
        http_status_code=400,
    )
    result = resolve(client, peak())
    assert "peak_requests_per_minute" not in result
    source = result["peak_source"]
    assert (source["kind"], source["datapoints"]) == ("fallback", None)
    assert source["reason"].startswith(f"could not read CloudWatch ({code}: ")
    assert source["reason"].endswith("; using peak_requests_per_minute (3000)")


def test_an_unusable_answer_falls_back(cloudwatch: tuple[Any, Stubber]) -> None:
    client, stubber = cloudwatch
    stubber.add_response(
        "get_metric_data", page([900.0] * 1440, END - timedelta(days=1), status="Forbidden")
    )
    result = resolve(client, peak())
    assert "peak_requests_per_minute" not in result
    assert "CloudWatch answered Forbidden" in result["peak_source"]["reason"]


# -- The settings ----------------------------------------------------------------------------


def test_the_settings_documents_peak_traffic_is_read_exactly() -> None:
    parsed = traffic.parse_peak_traffic(
        {
            "source": "observed",
            "lookback_seconds": 30 * DAY,
            "percentile": 99.9,
            "growth": 1.2,
            "at_least": 100,
            "min_history_seconds": DAY,
        }
    )
    assert parsed == ObservedPeak(
        lookback_seconds=30 * DAY,
        percentile=Fraction(999, 10),
        growth=Fraction(6, 5),
        at_least=Fraction(100),
        min_history_seconds=DAY,
    )
    assert traffic.parse_peak_traffic(None) is None
    with pytest.raises(ValueError, match="source must be 'observed'"):
        traffic.parse_peak_traffic({"source": "forecast"})
