"""``python -m rightsizing_constructs report``: the decision report, rendered and opened in a
real headless browser (Debian's Chromium, which ``make unit`` installs when it is missing).

The browser tests load the page from a ``file://`` URL with the background-networking flags
(this machine's network is closed), read its DOM after rendering (``--dump-dom``) and every
console message (``--enable-logging=stderr``), and keep a screenshot under ``build/report/``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from rightsizing_constructs import report
from rightsizing_constructs.cli import main
from tests.conftest import EVENTS, load_event

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "build" / "report"
JOB = EVENTS / "ir_job_completed_docs_sample.json"
SETTINGS = ("--peak-requests-per-minute", "3240", "--slo-percentile", "P99", "--slo-ms", "300")
#: type, cost per hour, max invocations per minute, model latency (microseconds, as IR says)
TEN = (
    ("ml.c5.large", 0.102, 300, 180000),
    ("ml.c5.xlarge", 0.204, 648, 263596),
    ("ml.c5.2xlarge", 0.408, 1400, 150000),
    ("ml.c5.4xlarge", 0.816, 2900, 120000),
    ("ml.m5.large", 0.115, 280, 350000),  # over the SLO
    ("ml.m5.xlarge", 0.23, 900, 120000),  # the cheapest that fits: chosen
    ("ml.m5.2xlarge", 0.461, 1500, 110000),
    ("ml.r5.large", 0.151, 250, 420000),  # over the SLO
    ("ml.g4dn.xlarge", 0.736, 5000, 40000),
    ("ml.c6i.xlarge", 0.204, 100, 90000),  # needs more than 10 instances
)


def ten_candidate_job() -> dict[str, Any]:
    job = load_event("ir_job_completed_docs_sample.json")
    [template] = job["InferenceRecommendations"]
    job["InferenceRecommendations"] = []
    for index, (instance_type, cost, invocations, latency) in enumerate(TEN):
        candidate = copy.deepcopy(template)
        candidate["RecommendationId"] = f"r{index}"
        candidate["EndpointConfiguration"]["InstanceType"] = instance_type
        candidate["Metrics"].update(
            CostPerHour=cost, MaxInvocations=invocations, ModelLatency=latency
        )
        job["InferenceRecommendations"].append(candidate)
    return job


def write_json(tmp_path: Path, name: str, document: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def decide(tmp_path: Path, job: Path, *extra: str) -> tuple[dict[str, Any], str]:
    """The detail ``plan`` prints and the page ``report`` writes for the same job and flags."""
    page = tmp_path / "report.html"
    assert (
        main(["report", "--job-description", str(job), *SETTINGS, *extra, "--output", str(page)])
        == 0
    )
    return report.load_detail(_plan(tmp_path, job, *extra)), page.read_text()


def _plan(tmp_path: Path, job: Path, *extra: str) -> Path:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["plan", "--job-description", str(job), *SETTINGS, *extra]) == 0
    path = tmp_path / "detail.json"
    path.write_text(out.getvalue())
    return path


class Elements(HTMLParser):
    """Every start tag with its attributes, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(page)
    return parser.tags


def markers(page: str) -> list[str]:
    return [
        a["id"] or ""
        for t, a in elements(page)
        if t == "g" and (a.get("id") or "").startswith("candidate-")
    ]


def rows(page: str) -> list[dict[str, str | None]]:
    return [a for t, a in elements(page) if t == "tr" and a.get("data-index") is not None]


# -- The page ------------------------------------------------------------------------------------


def test_the_docs_sample_job(tmp_path: Path) -> None:
    detail, page = decide(tmp_path, JOB, "--endpoint-name", "fraud-scoring")
    assert markers(page) == ["candidate-0"]
    assert [r["class"] for r in rows(page)] == ["chosen"]
    assert 'id="slo-line"' in page
    for fact in (
        "ml.c5.xlarge x10",
        "2.04 USD per hour (1,489.20 USD per month)",
        "P99 at most 300 ms",
    ):
        assert fact in page
    assert "SageMakerVariantInvocationsPerInstance target 324, 1 to 10 instances" in page
    assert detail["instance_type"] == "ml.c5.xlarge"


def test_ten_candidates_each_on_the_chart_and_in_the_table(tmp_path: Path) -> None:
    job = write_json(tmp_path, "job.json", ten_candidate_job())
    detail, page = decide(tmp_path, job)
    assert len(detail["candidates"]) == 10
    assert sorted(markers(page)) == sorted(f"candidate-{i}" for i in range(10))
    classes = {r["data-index"]: r["class"] for r in rows(page)}
    chosen = [str(i) for i, c in enumerate(detail["candidates"]) if c["chosen"]]
    assert [i for i, c in classes.items() if c == "chosen"] == chosen
    excluded = [c for c in detail["candidates"] if not c["eligible"]]
    assert sum(c == "excluded" for c in classes.values()) == len(excluded) >= 3
    for candidate in excluded:  # each excluded one with its reason, escaped as the page has it
        assert report.html.escape(candidate["reason"]) in page
    assert len(page.encode()) < 150_000  # an email attachment


def test_the_current_config_and_its_cost(tmp_path: Path) -> None:
    config = {
        "EndpointConfigName": "now",
        "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/now",
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": "m",
                "InitialInstanceCount": 12,
                "InstanceType": "ml.c5.xlarge",
                "InitialVariantWeight": 1.0,
            }
        ],
        "CreationTime": "2026-10-01T10:00:00.000000+00:00",
    }
    path = write_json(tmp_path, "config.json", config)
    _, page = decide(tmp_path, JOB, "--current-endpoint-config", str(path))
    assert "ml.c5.xlarge x12" in page and "2.448 USD per hour (1,787.04 USD per month)" in page


def test_latency_at_peak_is_preferred_and_unplottable_candidates_are_listed() -> None:
    detail = json.loads(json.dumps(DETAIL))
    detail["candidates"][0].update(latency_at_peak_ms=120.5, model_latency_ms=263.6)
    detail["candidates"].append(
        {
            **detail["candidates"][0],
            "chosen": False,
            "eligible": False,
            "cost_at_peak_per_hour": None,
            "reason": "IR reported a CostPerHour of NaN",
        }
    )
    page = report.render(detail)
    assert markers(page) == ["candidate-0"]
    assert "120.5" in page and "at peak (measured curve)" in page
    assert "1 candidate(s) have no cost at peak or no latency" in page
    assert [r["class"] for r in rows(page)] == ["chosen", "excluded"]


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_values_from_the_detail_come_out_inert() -> None:
    detail = json.loads(json.dumps(DETAIL))
    detail["endpoint_name"] = HOSTILE
    detail["reason"] = HOSTILE
    detail["candidates"][0].update(instance_type=HOSTILE, reason='"><script>alert(2)</script>')
    page = report.render(detail)
    tags = elements(page)
    assert not [t for t, _ in tags if t in ("script", "img", "iframe", "object")]
    assert not [n for _, a in tags for n in a if n.startswith("on")]
    assert "&lt;script&gt;" in page


def test_the_detail_from_an_event_or_a_ledger_item(tmp_path: Path) -> None:
    event = {"detail-type": "Rightsizing Recommendation", "detail": DETAIL}
    item = {"Item": {"pk": {"S": "x"}, "record": {"S": json.dumps(DETAIL)}}}
    for name, document in (("detail", DETAIL), ("event", event), ("item", item)):
        path = write_json(tmp_path, f"{name}.json", document)
        assert report.load_detail(path) == DETAIL
    assert main(["report", "--detail", str(path), "--output", str(tmp_path / "r.html")]) == 0
    assert markers((tmp_path / "r.html").read_text()) == ["candidate-0"]


def test_html_on_stdout_and_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_json(tmp_path, "detail.json", DETAIL)
    png = tmp_path / "chart.png"
    assert main(["report", "--detail", str(path), "--png", str(png)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("<!DOCTYPE html>") and err == ""
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert report.chart(DETAIL) == report.chart(DETAIL)  # the same page for the same detail


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["--detail", "DETAIL", "--slo-ms", "300"], "--detail takes no settings"),
        (["--job-description", str(JOB), "--slo-ms", "300"], "required: --slo-percentile"),
        (["--detail", "NOT_JSON"], "cannot read"),
        (["--detail", "NOT_DETAIL"], "no candidates list"),
        ([*("--job-description", str(JOB)), *SETTINGS, "--slo-ms", "300.5"], "--slo-ms"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], fragment: str
) -> None:
    files = {
        "DETAIL": write_json(tmp_path, "d.json", DETAIL),
        "NOT_JSON": tmp_path / "bad.json",
        "NOT_DETAIL": write_json(tmp_path, "n.json", {"action": "apply"}),
    }
    files["NOT_JSON"].write_text("{")
    status = main(["report", *(str(files.get(a, a)) for a in arguments)])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err


def test_without_the_extra_it_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    path = write_json(tmp_path, "detail.json", DETAIL)
    assert main(["report", "--detail", str(path)]) == 2
    _, err = capsys.readouterr()
    assert err == (
        "error: the decision report needs matplotlib, an optional extra: "
        "pip install 'rightsizing-constructs[report]'\n"
    )


# -- In a real browser ---------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} is missing: `make unit` installs it (apt-get install chromium)",
)


def chromium(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with a fresh profile and nothing in the background (closed network)."""
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                CHROMIUM,
                *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic"),
                *("--no-first-run", "--disable-background-networking"),
                *("--disable-component-update", "--disable-sync", f"--user-data-dir={profile}"),
                *("--enable-logging=stderr", "--v=0", "--window-size=1200,1500"),
                *arguments,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def console(stderr: str) -> list[str]:
    """The page's console messages (Chromium logs them as ``INFO:CONSOLE`` lines)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def open_in_browser(page: Path, screenshot: Path) -> str:
    """The page's DOM after rendering; fails on any console message; keeps a screenshot."""
    dom = chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr
    assert console(dom.stderr) == []
    shot = chromium(f"--screenshot={screenshot}", page.as_uri())
    assert shot.returncode == 0, shot.stderr
    assert console(shot.stderr) == []
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(screenshot, SCREENSHOTS / screenshot.name)
    return dom.stdout


@needs_chromium
def test_the_console_check_can_fail(tmp_path: Path) -> None:
    """A script error and a blocked load are seen: the empty console above means something."""
    page = tmp_path / "canary.html"
    page.write_text(
        '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="img-src \'none\'">'
        '<img src="https://example.com/x.png"><script>console.error("canary")</script>'
    )
    messages = console(chromium("--dump-dom", page.as_uri()).stderr)
    assert any('"canary"' in m for m in messages)
    assert any("Content Security Policy" in m for m in messages)


@needs_chromium
@pytest.mark.parametrize("job", ["docs-sample", "ten-candidates"])
def test_the_page_in_chromium(tmp_path: Path, job: str) -> None:
    path = JOB if job == "docs-sample" else write_json(tmp_path, "job.json", ten_candidate_job())
    detail, _ = decide(tmp_path, path, "--endpoint-name", "fraud-scoring")
    dom = open_in_browser(tmp_path / "report.html", tmp_path / f"report-{job}.png")
    count = len(detail["candidates"])
    assert sorted(markers(dom)) == sorted(f"candidate-{i}" for i in range(count))
    assert len(rows(dom)) == count
    assert [r["class"] for r in rows(dom)].count("chosen") == 1
    # The chosen marker is the red star: its path is filled with the chosen colour.
    chosen = next(i for i, c in enumerate(detail["candidates"]) if c["chosen"])
    star = dom[dom.index(f'id="candidate-{chosen}"') :].split("</g>", 1)[0]
    assert "#d62728" in star


@needs_chromium
def test_hostile_values_stay_inert_in_chromium(tmp_path: Path) -> None:
    detail = json.loads(json.dumps(DETAIL))
    detail["endpoint_name"] = HOSTILE
    detail["candidates"][0]["reason"] = HOSTILE
    page = tmp_path / "hostile.html"
    page.write_text(report.render(detail))
    dom = open_in_browser(page, tmp_path / "report-hostile.png")
    assert not [t for t, _ in elements(dom) if t in ("script", "img")]
    assert "<h1>Rightsizing decision: &lt;script&gt;" in dom


# -- The fleet (--ledger) ------------------------------------------------------------------------


def decided(
    endpoint: str, at: str, now: float | None, then: float, **changes: Any
) -> dict[str, Any]:
    """A ledger item of a decided run, as the Recommend workflow writes it."""
    detail = {**json.loads(json.dumps(DETAIL)), "endpoint_name": endpoint, **changes}
    detail["estimated_cost_per_hour"] = then
    if now is not None:
        detail["current"] = {
            "endpoint_config_name": "c",
            "instance_type": "ml.c5.xlarge",
            "instance_count": 12,
            "estimated_cost_per_hour": now,
        }
    return {
        "pk": {"S": f"endpoint#{endpoint}"},
        "sk": {"S": f"recommendation#{at}#exec"},
        "recorded_at": {"S": at},
        "outcome": {"S": detail["action"]},
        "reason": {"S": detail["reason"]},
        "record": {"S": json.dumps(detail)},
    }


def ledger() -> dict[str, Any]:
    pending = json.loads(json.dumps(DETAIL))
    pending.update(
        endpoint_name="ranker",
        action="pending",
        pending={
            "model_package_version_arn": "arn:aws:sagemaker:us-east-1:1:model-package/ranker/7",
            "expires_at": "2026-12-13T00:00:00Z",
            "decision": "apply",
            "parameter_name": "/rightsizing/pending/ranker/AllTraffic/ranker/7",
        },
    )
    return {
        "Items": [
            decided("fraud-scoring", "2026-11-01T00:00:00Z", 2.448, 3.0),  # superseded below
            decided("fraud-scoring", "2026-11-20T00:00:00Z", 2.448, 2.04),  # saves 297.84
            decided("ranker", "2026-11-21T00:00:00Z", 1.0, 1.5),  # costs 365 more
            decided(HOSTILE, "2026-11-22T00:00:00Z", None, 2.04, reason=HOSTILE),  # unknown
            {
                "pk": {"S": "endpoint#ranker"},
                "sk": {"S": "pending#AllTraffic"},
                "record": {"S": json.dumps(pending)},
            },
            {"pk": {"S": "endpoint#ranker"}, "sk": {"S": "lock"}},
        ],
        "Count": 6,
        "ScannedCount": 6,
    }


def test_the_fleet_from_the_ledger(tmp_path: Path) -> None:
    path = write_json(tmp_path, "ledger.json", ledger())
    page_path = tmp_path / "fleet.html"
    png = tmp_path / "fleet.png"
    assert (
        main(["report", "--ledger", str(path), "--output", str(page_path), "--png", str(png)]) == 0
    )
    page = page_path.read_text()
    tags = elements(page)
    bars = [a["id"] for t, a in tags if t == "g" and (a.get("id") or "").startswith("saving-")]
    assert len(bars) == 2  # the hostile endpoint's current cost is unknown: no bar
    decisions = [a for t, a in tags if t == "tr" and a.get("data-index") is not None]
    assert len(decisions) == 3
    assert "297.84" in page and "-365" in page and "2026-11-20T00:00:00Z" in page
    assert "2026-11-01T00:00:00Z" not in page  # only the last decision per endpoint
    assert "model-package/ranker/7" in page and 'id="pending"' in page
    assert not [t for t, _ in tags if t in ("script", "img")]
    assert png.read_bytes().startswith(b"\x89PNG")


def test_a_ledger_file_without_items_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_json(tmp_path, "ledger.json", {"Count": 0})
    assert main(["report", "--ledger", str(path), "--slo-ms", "3"]) == 2
    assert main(["report", "--ledger", str(path)]) == 2
    _, err = capsys.readouterr()
    assert err.splitlines() == [
        "error: --ledger takes no settings (it holds the decisions): --slo-ms",
        f"error: {path} is not the output of aws dynamodb query or scan (no Items list)",
    ]


@needs_chromium
def test_the_fleet_page_in_chromium(tmp_path: Path) -> None:
    page = tmp_path / "fleet.html"
    assert (
        main(
            [
                "report",
                "--ledger",
                str(write_json(tmp_path, "l.json", ledger())),
                "--output",
                str(page),
            ]
        )
        == 0
    )
    dom = open_in_browser(page, tmp_path / "report-fleet.png")
    assert (
        len([a for t, a in elements(dom) if t == "g" and (a.get("id") or "").startswith("saving-")])
        == 2
    )


#: The docs sample's detail, as ``plan`` prints it (a fixture the tests above change).
DETAIL: dict[str, Any] = {
    "schema_version": "1",
    "endpoint_name": "fraud-scoring",
    "variant_name": "AllTraffic",
    "job_name": "rightsizing-0123456789abcdef01234567",
    "trigger": None,
    "model_fingerprint": None,
    "job_reused": False,
    "pending": None,
    "action": "apply",
    "reason": "ml.c5.xlarge x10 is the cheapest configuration that meets the SLO",
    "evidence": "ir-summary",
    "evidence_reason": "the job does not name every benchmark's endpoint and window",
    "instance_type": "ml.c5.xlarge",
    "instance_count": 10,
    "autoscaling": {
        "metric": "SageMakerVariantInvocationsPerInstance",
        "target_value": 324.0,
        "min_capacity": 1,
        "max_capacity": 10,
    },
    "autoscaling_cross_check": None,
    "estimated_cost_per_hour": 2.04,
    "current": None,
    "inputs": {
        "peak_requests_per_minute": 3240,
        "peak_source": {"kind": "configured"},
        "target_utilization": 0.5,
        "slo": {"percentile": "P99", "max_latency_ms": 300},
        "guardrails": {
            "min_instances": 1,
            "max_instances": 10,
            "allowed_instance_types": [],
            "max_cost_per_hour": None,
            "min_saving_percent": 0,
            "min_saving_per_month": 0,
        },
    },
    "candidates": [
        {
            "recommendation_id": "rightsizing-0123456789abcdef01234567/a1b2c3d4",
            "instance_type": "ml.c5.xlarge",
            "serverless": False,
            "cost_per_hour": 0.204,
            "cost_per_inference": 5.2e-06,
            "max_invocations_per_instance_per_minute": 648,
            "model_latency_ms": 263.596,
            "instance_count": 10,
            "cost_at_peak_per_hour": 2.04,
            "eligible": True,
            "chosen": True,
            "reason": "chosen",
            "capacity_at_slo": None,
            "latency_at_peak_ms": None,
            "unit_check": None,
        }
    ],
}


def test_the_readme_shows_the_committed_screenshot() -> None:
    readme = (ROOT / "README.md").read_text()
    assert (
        "](docs/report.png)" in readme and "pip install 'rightsizing-constructs[report]'" in readme
    )
    assert (ROOT / "docs" / "report.png").read_bytes().startswith(b"\x89PNG")


def test_only_the_report_loads_matplotlib() -> None:
    """plan never pays for the extra, and the Lambda asset never names it."""
    code = (
        "import sys\n"
        "from rightsizing_constructs.cli import main\n"
        f"main(['plan', '--job-description', {str(JOB)!r}, *{list(SETTINGS)!r}])\n"
        "assert 'matplotlib' not in sys.modules, 'plan loaded matplotlib'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    runtime = ROOT / "lambda" / "rightsizing_runtime"
    assert not [p for p in runtime.rglob("*.py") if "matplotlib" in p.read_text()]
