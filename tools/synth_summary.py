"""Say where `cdk synth` wrote the templates and what they hold (stacks, resources by type)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def main(out_dir: str) -> int:
    """Print one block per stack template in the cloud assembly ``out_dir``."""
    manifest = json.loads((Path(out_dir) / "manifest.json").read_text())
    stacks = [
        (name, artifact)
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    ]
    print(f"Synthesized {len(stacks)} stack(s) into {Path(out_dir).resolve()}:")
    for name, artifact in stacks:
        template_file = Path(out_dir) / artifact["properties"]["templateFile"]
        resources = json.loads(template_file.read_text()).get("Resources", {})
        kinds = Counter(resource["Type"] for resource in resources.values())
        print(f"\n  {name}: {template_file} ({len(resources)} resources, limit 500)")
        for kind, count in sorted(kinds.items()):
            print(f"    {count:4d}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "cdk.out"))
