"""The library as another team gets it: a wheel, pip-installed into a fresh virtual environment,
used by a CDK app in another directory. The Lambda code must ship inside the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

APP = """
import aws_cdk as cdk
from rightsizing_constructs import EndpointRightsizing, Guardrails, LatencySlo

app = cdk.App()
stack = cdk.Stack(app, "OtherTeam")
EndpointRightsizing(
    stack,
    "Checkout",
    endpoint_name="checkout-ranker",
    model_package_version_arn="arn:aws:sagemaker:eu-west-1:111122223333:model-package/ranker/7",
    slo=LatencySlo.p99(cdk.Duration.millis(250)),
    peak_requests_per_minute=1200,
    # Checked against botocore's instance types at synth time.
    guardrails=Guardrails(allowed_instance_types=["ml.c5", "ml.m5.xlarge"]),
)
app.synth()
"""


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_wheel_installs_and_synthesizes_from_another_directory(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", wheels, ROOT, cwd=ROOT)
    [wheel] = wheels.glob("rightsizing_constructs-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for module in ("start_job", "select_recommendation", "stop_job", "apply_steps"):
        assert f"rightsizing_constructs/_lambda/rightsizing_runtime/{module}.py" in names
    assert not any(name.startswith(("lambda/", "tests/")) for name in names)

    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    # The library's own dependency ranges pull aws-cdk-lib, constructs, cdk-nag and boto3.
    run(python, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)

    elsewhere = tmp_path / "team-app"
    elsewhere.mkdir()
    (elsewhere / "app.py").write_text(APP)
    out = elsewhere / "cdk.out"
    # A pipeline's AWS_PROFILE may name a profile this machine lacks: synth must not care.
    env = {**os.environ, "CDK_OUTDIR": str(out), "AWS_PROFILE": "no-such-profile"}
    env.pop("PYTHONPATH", None)  # nothing from this checkout may leak in
    run(python, "app.py", cwd=elsewhere, env=env)

    template = json.loads((out / "OtherTeam.template.json").read_text())
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 6  # route, start job, job slots, select, stop job, apply step
    # The staged Lambda asset holds the runtime package from the installed wheel.
    assets = json.loads((out / "OtherTeam.assets.json").read_text())["files"]
    staged = [
        out / a["source"]["path"] for a in assets.values() if a["source"]["packaging"] == "zip"
    ]
    # Two zip assets: the functions' code and the Route function's registry layer.
    [code] = [a for a in staged if (a / "rightsizing_runtime").is_dir()]
    assert (code / "rightsizing_runtime" / "start_job.py").is_file()
    assert not list(code.rglob("__pycache__"))
    [layer] = [a for a in staged if a != code]
    registered = json.loads((layer / "rightsizing" / "registry.json").read_text())
    assert [e["settings"]["endpoint_name"] for e in registered["endpoints"]] == ["checkout-ranker"]


def test_synth_time_code_reads_no_aws_configuration(tmp_path: Path) -> None:
    """Validation reads botocore's models without a session: a missing profile is no error."""
    code = (
        "from rightsizing_constructs import Guardrails, RecommenderJob\n"
        "Guardrails(allowed_instance_types=['ml.c5', 'ml.g5.xlarge'])\n"
        "RecommenderJob.advanced(instance_types=['ml.c5.xlarge'])\n"
        "import rightsizing_constructs.engine, rightsizing_constructs.endpoint\n"
        "print('synth-time imports ok')\n"
    )
    config = tmp_path / "config"
    config.write_text("[profile someone-else]\nregion = eu-west-1\n")
    env = {**os.environ, "AWS_PROFILE": "no-such-profile", "AWS_CONFIG_FILE": str(config)}
    assert "synth-time imports ok" in run(sys.executable, "-c", code, cwd=ROOT, env=env)
