"""Judge synthesized templates as the industry's checkers do; print the counts, fail on findings.

Usage: ``python -m tools.compliance --checkov <checkov executable> <cloud assembly dir>...``
(``make compliance`` synthesizes both apps with the real ``cdk synth`` first). Per app:

- cdk-nag: the packs ran as policy-validation plugins during ``cdk synth``, which fails on any
  unacknowledged finding; this counts the acknowledgments each pack got, from the assembly's
  metadata;
- cfn-lint (this environment's): every error and warning is a finding, except ``W3005`` (below);
- checkov (``--framework cloudformation``, from its own virtual environment: it pins
  dependencies that conflict with pytest's): failed checks are findings; skips come from the
  library's waivers (``Metadata.checkov.skip``, each with its reason).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tools.cfn import templates

#: cfn-lint rules ignored, with the reason. W3005 flags a DependsOn that a Ref or GetAtt already
#: implies; CDK writes those itself (a Lambda function DependsOn its role's default policy,
#: whose Ref it also holds), so it is in CDK's output, not in the library's choices.
CFN_LINT_IGNORED = {"W3005": "redundant DependsOn written by CDK itself"}
NAG_PACKS = ("AwsSolutions", "Serverless", "NIST.800.53.R5", "HIPAA.Security", "PCI.DSS.321")


def nag_acknowledgments(assembly: Path) -> Counter[str]:
    """How many acknowledgments each cdk-nag pack got, from the stacks' metadata files."""
    counts: Counter[str] = Counter()
    for metadata_file in assembly.glob("*.metadata.json"):
        for entries in json.loads(metadata_file.read_text()).values():
            for entry in entries:
                if entry["type"] != "aws:cdk:acknowledged-rules":
                    continue
                for rule_id in entry["data"]:
                    # "<pack>-<rule>", or with its plugin's prefix ("NIST.800.53.R5::...",
                    # "Annotation::..."); CDK's own (CloudFormation-Validate::W3010) are not nag's.
                    head, separator, tail = rule_id.partition("::")
                    rule = tail if separator and "[" not in head else rule_id
                    pack = next((p for p in NAG_PACKS if rule.startswith(p + "-")), None)
                    if pack is not None:
                        counts[pack] += 1
    return counts


def cfn_lint(template: Path) -> tuple[list[str], int]:
    """cfn-lint's findings (not ignored) and how many ignored matches it reported."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json", str(template)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 2, 4, 6, 8, 10, 12, 14) or not result.stdout.strip():
        raise RuntimeError(f"cfn-lint failed on {template}: {result.stderr}")
    matches = json.loads(result.stdout)
    ignored = [m for m in matches if m["Rule"]["Id"] in CFN_LINT_IGNORED]
    findings = [
        f"{m['Rule']['Id']} {m['Message']} ({m['Location']['Path']})"
        for m in matches
        if m["Rule"]["Id"] not in CFN_LINT_IGNORED
    ]
    return findings, len(ignored)


def checkov(executable: str, template: Path) -> tuple[list[str], int, int]:
    """Checkov's failed checks, and how many checks passed and were skipped (waivers)."""
    result = subprocess.run(
        [
            *(executable, "--file", str(template), "--framework", "cloudformation"),
            *("--output", "json", "--quiet", "--compact"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    # With no check that applies to any resource (the hub's template: an event bus, its
    # policy and its archive), checkov prints the bare summary, without "summary" or "results".
    summary = report.get("summary", report)
    failed = [
        f"{c['check_id']} {c['check_name']} ({c['resource']})"
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    if summary["failed"] != len(failed) or summary["parsing_errors"]:
        raise RuntimeError(f"checkov could not judge {template}: {summary}")
    return failed, summary["passed"], summary["skipped"]


def main() -> int:
    """Judge every template of the assemblies given; 1 if any checker found something."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkov", required=True, help="the checkov executable")
    parser.add_argument("assemblies", nargs="+", type=Path)
    args = parser.parse_args()
    problems: list[str] = []
    for assembly in args.assemblies:
        acknowledged = nag_acknowledgments(assembly)
        print(f"\n{assembly} (cdk-nag: 0 findings, synth would have failed otherwise)")
        for pack in NAG_PACKS:
            print(f"  cdk-nag {pack}: 0 findings, {acknowledged[pack]} acknowledgments")
        for template in templates(assembly):
            lint_findings, ignored = cfn_lint(template)
            failed, passed, skipped = checkov(args.checkov, template)
            print(
                f"  {template.name}: cfn-lint {len(lint_findings)} findings "
                f"({ignored} W3005 ignored); checkov {len(failed)} failed, {passed} passed, "
                f"{skipped} skipped by waivers"
            )
            problems += [f"{template}: cfn-lint {f}" for f in lint_findings]
            problems += [f"{template}: checkov {f}" for f in failed]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
