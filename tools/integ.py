"""Run the deployable integration test (``make integ``), or only synthesize it (``integ-synth``).

``synth`` needs no AWS account, credentials or network beyond ``make synth``'s: it synthesizes
``tests/integ/integ_rightsizing.py`` with the pinned ``cdk`` CLI (the five cdk-nag packs are
plugins of the app: a finding fails it), checks the integ manifest integ-runner reads, and that
the pinned integ-runner discovers the test.

``run`` deploys the test to the account and region of your AWS credentials, runs its
assertions, checks IR's latency unit against CloudWatch, and destroys everything, the way
integ-runner runs a test: the test stacks, then the assertion stack without rollback and with
its outputs saved, then the ``AssertionResults*`` outputs, then ``cdk destroy --all --force``.
It drives the pinned ``cdk`` CLI directly because the newest integ-runner on npm (2.197.10)
cannot read this aws-cdk-lib's cloud assembly (schema 55; it reads up to 53): once a newer
integ-runner is pinned, ``integ-runner --directory tests/integ --language python --app
".venv/bin/python {filePath}" --force --no-update-workflow`` runs the same test
(docs/integ.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEST_DIR = ROOT / "tests" / "integ"
TEST_FILE = TEST_DIR / "integ_rightsizing.py"
OUT_DIR = ROOT / "cdk.out.integ"
RESULTS_FILE = OUT_DIR / "assertion-results.json"
#: What the run costs and takes (docs/integ.md, "What it costs" and "How long it takes").
ESTIMATE = (
    "about 1.5 hours (3 at most) and about US$1 at us-east-1 on-demand prices (docs/integ.md)"
)

sys.path.insert(0, str(TEST_DIR))


class Refused(Exception):
    """``make integ`` cannot run here; the message says why and what to do."""


def _cdk(*args: str) -> None:
    command = ["cdk", *args, "--no-notices", "--ci"]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def synth() -> dict[str, Any]:
    """Synthesize the integ app into ``cdk.out.integ``; return its test case from integ.json."""
    app = f"{sys.executable} {TEST_FILE.relative_to(ROOT)}"
    _cdk("synth", "--quiet", "--app", app, "--output", str(OUT_DIR.relative_to(ROOT)))
    manifest = json.loads((OUT_DIR / "integ.json").read_text())
    (name, case), *others = manifest["testCases"].items()
    if others or not case.get("assertionStack") or not case.get("stacks"):
        raise SystemExit(f"integ.json must hold one test case with an assertion stack: {manifest}")
    stacks = json.loads((OUT_DIR / "manifest.json").read_text())["artifacts"]
    for stack in [*case["stacks"], case["assertionStackName"]]:
        template = OUT_DIR / stacks[stack]["properties"]["templateFile"]
        resources = json.loads(template.read_text())["Resources"]
        print(f"  {stack}: {len(resources)} resources (limit 500)")
    print(f"Test case {name}: stacks {case['stacks']}, assertions in {case['assertionStackName']}")
    return {"name": name, **case}


def discover() -> None:
    """The pinned integ-runner finds the test (file naming and language preset)."""
    listed = subprocess.run(
        [
            "integ-runner",
            "--list",
            "--directory",
            str(TEST_DIR.relative_to(ROOT)),
            "--language",
            "python",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    if TEST_FILE.name not in listed:
        raise SystemExit(f"integ-runner does not discover {TEST_FILE.name}: it lists {listed}")
    print(f"integ-runner discovers {', '.join(listed)}")


def aws_session() -> tuple[Any, str, str]:
    """A boto3 session with credentials and a region the test supports, or :class:`Refused`."""
    import boto3
    import botocore.exceptions
    import fixture

    try:
        # AWS_REGION as the CDK CLI reads it, then botocore's own (AWS_DEFAULT_REGION, profile).
        session = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as error:
        raise Refused(f"AWS configuration error: {error}") from error
    if credentials is None:
        raise Refused(
            "no AWS credentials. make integ deploys to a real account (it costs money): set "
            "AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and AWS_REGION. Without an "
            "account, `make integ-synth` checks the test offline."
        )
    region = session.region_name
    if region not in fixture.SKLEARN_IMAGE_ACCOUNTS:
        raise Refused(
            f"region {region!r}: set AWS_REGION to one where SageMaker's scikit-learn image is "
            f"published: {', '.join(sorted(fixture.SKLEARN_IMAGE_ACCOUNTS))}"
        )
    # The CDK CLI deploys where the checks above looked.
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = region
    try:
        account = session.client("sts").get_caller_identity()["Account"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise Refused(f"the AWS credentials do not work: {error}") from error
    try:
        session.client("ssm").get_parameter(Name="/cdk-bootstrap/hnb659fds/version")
    except botocore.exceptions.ClientError as error:
        raise Refused(
            f"aws://{account}/{region} is not bootstrapped for the CDK "
            f"({error.response['Error']['Code']}): run `cdk bootstrap aws://{account}/{region}`"
        ) from error
    return session, account, region


def stack_outputs(session: Any, stack_name: str) -> list[dict[str, str]]:
    """The test stack's outputs (none if it is not deployed)."""
    import botocore.exceptions

    try:
        stack = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    except botocore.exceptions.ClientError:
        return []
    return list(stack.get("Outputs", []))


def _print_guarded(lines: Callable[[], list[str]]) -> None:
    """Print diagnostics; an error reading them must not hide the test's own result."""
    import botocore.exceptions

    try:
        for line in lines():
            print(line)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        print(f"(diagnostics unavailable: {error})")


def _by_description(outputs: list[dict[str, str]], key_part: str) -> dict[str, str]:
    """Outputs whose key contains ``key_part``, by description (an endpoint or alarm name)."""
    return {o["Description"]: o["OutputValue"] for o in outputs if key_part in o["OutputKey"]}


def assertion_failures() -> list[str]:
    """Failed ``AssertionResults*`` outputs of the assertion stack, as integ-runner reads them."""
    if not RESULTS_FILE.exists():
        return ["no assertion results were written (the assertion stack did not deploy)"]
    failures = []
    for outputs in json.loads(RESULTS_FILE.read_text()).values():
        for key, value in outputs.items():
            if key.startswith("AssertionResults"):
                result = json.loads(value.replace("\n", "\\n"))
                if result.get("status") == "fail":
                    failures.append(f"{key}: {result.get('message')}")
    return failures


def cleanup(session: Any) -> None:
    """Delete what the test's Apply run created outside CloudFormation (its endpoint configs)."""
    import fixture

    sagemaker = session.client("sagemaker")
    for endpoint_name in fixture.ENDPOINT_NAMES:
        prefix = f"{endpoint_name}-rs-"
        configs = sagemaker.list_endpoint_configs(NameContains=prefix)["EndpointConfigs"]
        for config in configs:
            if config["EndpointConfigName"].startswith(prefix):
                print(f"  deleting endpoint config {config['EndpointConfigName']}")
                sagemaker.delete_endpoint_config(EndpointConfigName=config["EndpointConfigName"])


def run(keep: bool) -> int:
    """Deploy, assert, check, destroy. Returns the exit code."""
    import fixture
    import post_deploy

    session, account, region = aws_session()
    print(f"make integ: deploying to aws://{account}/{region}; {ESTIMATE}.", flush=True)
    case = synth()
    app = str(OUT_DIR.relative_to(ROOT))
    started, failures = time.monotonic(), []
    try:
        _cdk("deploy", *case["stacks"], "--app", app, "--require-approval", "never")
        try:
            _cdk(
                "deploy",
                case["assertionStack"],
                "--app",
                app,
                "--require-approval",
                "never",
                "--no-rollback",
                "--outputs-file",
                str(RESULTS_FILE.relative_to(ROOT)),
            )
        except subprocess.CalledProcessError:
            failures.append("the assertion stack failed: a step timed out or failed (see above)")
        failures.extend(assertion_failures())
        outputs = stack_outputs(session, fixture.TEST_STACK)
        table = next(
            (o["OutputValue"] for o in outputs if o["OutputKey"] == "LedgerTableName"), None
        )
        if not failures and table:
            print("Assertions passed. Post-deploy checks:", flush=True)
            try:
                for line in post_deploy.run_checks(session, table, fixture.ENDPOINT_NAMES):
                    print(line)
            except post_deploy.CheckFailed as error:
                failures.append(str(error))
        if failures:
            _print_guarded(
                lambda: post_deploy.diagnose(
                    session,
                    table,
                    _by_description(outputs, "ModelName"),
                    _by_description(outputs, "NotificationQueue"),
                )
            )
        _print_guarded(
            lambda: [
                f"stopped IR job {job} (still running)"
                for job in post_deploy.stop_running_jobs(
                    session, _by_description(outputs, "ModelName").values()
                )
            ]
        )
    except subprocess.CalledProcessError as error:
        failures.append(f"deploying the test stack failed ({error})")
    finally:
        if keep:
            print(f"--keep: not destroying; run `{sys.executable} tools/integ.py destroy` later.")
        else:
            destroy(session)
    minutes = (time.monotonic() - started) / 60
    if failures:
        print(f"\nmake integ FAILED after {minutes:.0f} minutes:", *failures, sep="\n  ")
        return 1
    print(f"\nmake integ passed in {minutes:.0f} minutes.")
    return 0


def destroy(session: Any) -> None:
    """``cdk destroy --all --force`` of the synthesized test, then the Apply run's leftovers."""
    try:
        _cdk("destroy", "--all", "--force", "--app", str(OUT_DIR.relative_to(ROOT)))
    finally:
        cleanup(session)


def main() -> int:
    """Entry point: ``synth``, ``run [--keep]`` or ``destroy``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("synth", help="synthesize and check the test offline (no AWS)")
    run_parser = commands.add_parser("run", help="deploy, assert, check and destroy")
    run_parser.add_argument("--keep", action="store_true", help="do not destroy (debugging)")
    commands.add_parser("destroy", help="destroy a test deployed with --keep")
    args = parser.parse_args()
    os.chdir(ROOT)
    # As the Makefile does: the pinned CLI and Node.js first, no telemetry or version nags.
    os.environ["PATH"] = f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"
    os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
    os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    try:
        if args.command == "synth":
            synth()
            discover()
            return 0
        if args.command == "destroy":
            session, _, _ = aws_session()
            if not OUT_DIR.exists():
                synth()
            destroy(session)
            return 0
        return run(keep=args.keep)
    except Refused as refusal:
        print(f"make integ refused: {refusal}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
