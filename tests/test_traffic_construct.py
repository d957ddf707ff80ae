"""``PeakTraffic``: checked at synth, rendered into the settings document, granted if used."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from rightsizing_constructs import PeakTraffic
from rightsizing_constructs.settings import problems_of
from tests.infra import endpoint_input, rightsizing, stack, statements_of

DAY = 86_400


def test_the_settings_document_carries_the_measured_peak() -> None:
    construct = rightsizing(
        peak_traffic=PeakTraffic.observed(
            lookback=cdk.Duration.days(30),
            percentile=99.9,
            growth=1.5,
            at_least=100,
            min_history=cdk.Duration.hours(36),
        )
    )
    settings = endpoint_input(Template.from_stack(cdk.Stack.of(construct)))["settings"]
    assert settings["peak_traffic"] == {
        "source": "observed",
        "lookback_seconds": 30 * DAY,
        "percentile": 99.9,
        "growth": 1.5,
        "at_least": 100,
        "min_history_seconds": 36 * 3600,
    }
    assert settings["peak_requests_per_minute"] == 3240  # the fallback stays


def test_the_defaults_are_the_busiest_minute_of_two_weeks_plus_a_fifth() -> None:
    # (CDK Durations compare by identity, so compare what is rendered.)
    assert PeakTraffic.observed().render() == PeakTraffic().render()
    assert PeakTraffic.observed().render() == {
        "source": "observed",
        "lookback_seconds": 14 * DAY,
        "percentile": 100,
        "growth": 1.2,
        "at_least": None,
        "min_history_seconds": DAY,
    }


def test_without_peak_traffic_the_document_is_unchanged() -> None:
    assert "peak_traffic" not in rightsizing().settings_document


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"lookback": cdk.Duration.hours(12)},
            "lookback must be between 1 day .* and 455 days .*got 12 hours",
        ),
        (
            {"lookback": cdk.Duration.days(456)},
            r"lookback .*\(CloudWatch keeps 1-hour datapoints 455 days",
        ),
        ({"lookback": 14}, "lookback must be a Duration such as Duration.days"),
        ({"percentile": 0}, r"percentile must be in \(0, 100\]"),
        ({"percentile": 100.5}, r"percentile must be in \(0, 100\]"),
        ({"percentile": "p99"}, r"percentile must be in \(0, 100\]"),
        ({"growth": 0.9}, "growth must be at least 1"),
        ({"at_least": -1}, "at_least must be at least 0"),
        (
            {"lookback": cdk.Duration.days(2), "min_history": cdk.Duration.days(3)},
            r"min_history \(3 days\) must be at most lookback \(2 days\)",
        ),
        ({"min_history": cdk.Duration.millis(1500)}, "min_history must be a whole number"),
    ],
)
def test_invalid_peak_traffic_fails_synth(settings: dict[str, Any], message: str) -> None:
    peak = PeakTraffic.observed(**settings)
    assert problems_of(peak)
    with pytest.raises(ValueError, match=rf"  - peak_traffic: {message}"):
        rightsizing(peak_traffic=peak)


def test_the_boundaries_are_valid() -> None:
    for settings in (
        {"lookback": cdk.Duration.days(1), "min_history": cdk.Duration.days(1)},
        {"lookback": cdk.Duration.days(455), "percentile": 0.1, "growth": 1, "at_least": 0},
        {"min_history": cdk.Duration.seconds(0)},
    ):
        assert problems_of(PeakTraffic.observed(**settings)) == (), settings


def test_peak_traffic_must_be_a_peak_traffic() -> None:
    with pytest.raises(ValueError, match="peak_traffic must be a PeakTraffic or None"):
        rightsizing(peak_traffic={"percentile": 99})


def _metric_reads(template: Template) -> list[dict[str, Any]]:
    return [
        s
        for s in statements_of(template, "RightsizingEngineStartJob")
        if "cloudwatch:GetMetricData" in str(s["Action"])
    ]


def test_start_job_reads_metrics_only_when_an_endpoint_measures_its_peak() -> None:
    without = stack()
    rightsizing(without)
    assert _metric_reads(Template.from_stack(without)) == []
    scope = stack()
    rightsizing(scope, peak_traffic=PeakTraffic.observed())
    rightsizing(
        scope,
        construct_id="Other",
        endpoint_name="churn",
        peak_traffic=PeakTraffic.observed(percentile=99),
    )
    # GetMetricData has no resource-level permissions: "*", granted once.
    assert _metric_reads(Template.from_stack(scope)) == [
        {"Action": "cloudwatch:GetMetricData", "Effect": "Allow", "Resource": "*"}
    ]
