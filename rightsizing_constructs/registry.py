"""The engine's registry: every endpoint's settings in one document, shipped as a Lambda layer.

The runtime reads it (``rightsizing_runtime.registry``, format there); this module writes it.
Endpoints register as they are created; the engine builds the layer when the app synthesizes
(an aspect), after every endpoint was added, so its content always matches the constructs. It
is a plain file asset (no Docker): the template holds one layer version, however many
endpoints there are (docs/fleet.md).

A value only known at deploy time cannot be written into a file: each distinct one (the stack's
partition, a role's ARN, a parameter...) is written as ``${rs:<n>}`` and given to the Route
function in its ``REGISTRY_VALUES`` environment variable, rendered by CloudFormation.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    IResolvable,
    ITokenMapper,
    Stack,
    StringConcat,
    Token,
    Tokenization,
)
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from ._runtime import import_runtime
from .settings import is_token

_RUNTIME = import_runtime("registry")
#: Lambda's limit on a function's environment variables, all together (Lambda quotas).
ENVIRONMENT_LIMIT = 4096
#: Every registry file this process wrote, by its layer asset's hash (the template's
#: ``S3Key`` is ``<hash>.zip``): tests and reviews read what a synthesized template deploys.
REGISTRY_FILES: dict[str, Path] = {}


class Registry:
    """The endpoints an engine rightsizes, rendered into the Route function's layer."""

    def __init__(self, scope: Construct, route_function: lambda_.Function) -> None:
        self._scope = scope
        self._route_function = route_function
        self._entries: list[dict[str, Any]] = []
        #: The registry file, once the app synthesizes (tests read it to run the workflow).
        self.path: Path | None = None

    def add(self, entry: dict[str, Any]) -> None:
        """Register one endpoint variant (``settings``, ``apply_settings``, ``triggers``)."""
        self._entries.append(entry)

    @property
    def size(self) -> int:
        """How many endpoint variants are registered."""
        return len(self._entries)

    def document(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The registry document, and the deploy-time values of its placeholders.

        The values are the tokens (the stack's partition, a role's ARN...), keyed by placeholder
        number; CloudFormation renders them into the Route function's environment.
        """
        values: dict[str, Any] = {}
        stack = Stack.of(self._scope)
        document = {
            "registry_version": _RUNTIME.REGISTRY_VERSION,
            "endpoints": [_placeholders(stack, entry, values) for entry in self._entries],
        }
        return document, values

    def build(self) -> None:
        """Write the document and add the layer and the values to the Route function.

        Called once, when the app synthesizes (the engine's aspect): every endpoint is known.
        """
        document, values = self.document()
        directory = Path(tempfile.mkdtemp(prefix="rightsizing-registry-"))
        target = directory / "rightsizing" / "registry.json"
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(document, sort_keys=True, separators=(",", ":")))
        self.path = target
        layer = lambda_.LayerVersion(
            self._scope,
            "Registry",
            code=lambda_.Code.from_asset(str(directory)),
            description="The endpoints a rightsizing engine rightsizes (rightsizing-constructs)",
        )
        self._route_function.add_layers(layer)
        asset = layer.node.find_child("Code")
        REGISTRY_FILES[str(asset.asset_hash)] = target  # type: ignore[attr-defined]
        stack = Stack.of(self._scope)
        self._route_function.add_environment("REGISTRY_VALUES", stack.to_json_string(values))
        rendered = sum(len(json.dumps(stack.resolve(v))) for v in values.values())
        if rendered > ENVIRONMENT_LIMIT // 2:
            raise ValueError(
                f"the endpoints' settings hold {len(values)} values only known at deploy time "
                f"(about {rendered} characters), too many for the Route function's environment "
                f"({ENVIRONMENT_LIMIT} bytes): give names and ARNs as literal strings"
            )


def _placeholders(stack: Stack, value: Any, values: dict[str, Any]) -> Any:
    """``value`` with its deploy-time values as ``${rs:<n>}`` placeholders, unset ones left out.

    An unset option (``None``) is left out, as CDK left it out of the rule inputs that carried
    the settings before the registry: the runtime reads every optional field with a default.
    """
    if isinstance(value, str):
        if not is_token(value):
            return value
        fragments = Tokenization.reverse_string(value)
        return str(fragments.map_tokens(_Placeholder(stack, values)).join(StringConcat()))
    if isinstance(value, dict):
        return {k: _placeholders(stack, v, values) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_placeholders(stack, v, values) for v in value]
    if isinstance(value, int | float) and Token.is_unresolved(value):
        raise ValueError(f"a number only known at deploy time cannot be registered: {value!r}")
    return value


@jsii.implements(ITokenMapper)
class _Placeholder:
    """Maps each token to its placeholder; the same value gets the same number."""

    def __init__(self, stack: Stack, values: dict[str, Any]) -> None:
        self._stack = stack
        self._values = values

    def map_token(self, token: IResolvable) -> Any:
        rendered = json.dumps(self._stack.resolve(token), sort_keys=True)
        for number, known in self._values.items():
            if json.dumps(self._stack.resolve(known), sort_keys=True) == rendered:
                return f"${{rs:{number}}}"
        number = str(len(self._values))
        self._values[number] = token
        return f"${{rs:{number}}}"
