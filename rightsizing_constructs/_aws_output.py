"""The files ``plan`` reads: what the AWS CLI printed, checked against botocore's model.

In AWS, the Select function gets IR's answer through botocore, which parses it by the service
model: ``ModelLatency`` is an integer, ``CostPerHour`` a number. ``plan`` gets a file that a
person saved, trimmed or copied from the documentation, whose samples use names the API does
not have (``MaximumInvocations`` for ``MaxInvocations``). Before deciding on it, ``plan`` holds
the file to what botocore would have given the function: the values the model describes have
its types, the instance types are ones SageMaker has, and a value the decision reads is not
hidden under a name the API does not use. Members the model does not know are otherwise
ignored: an AWS CLI newer than this library's botocore prints fields it does not know yet.

What botocore cannot rule out (a negative price, a NaN) is the decision's to handle, in AWS and
in ``plan`` alike (``rightsizing_runtime.decision.evaluate``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from botocore.model import Shape, StructureShape

from ._runtime import import_runtime
from .instance_types import is_instance_type

#: Members the decision reads, per structure of the model: absent while the structure holds
#: names the model does not have, they were most likely given under a wrong name.
_READ = {
    "RecommendationMetrics": ("CostPerHour", "MaxInvocations", "ModelLatency"),
    "EndpointOutputConfiguration": ("InstanceType",),
    "ProductionVariant": ("VariantName", "InstanceType", "InitialInstanceCount"),
}
#: A JSON value of each of the model's scalar types, as the AWS CLI prints it.
_KINDS: dict[str, tuple[str, tuple[type, ...]]] = {
    "string": ("a string", (str,)),
    "integer": ("an integer", (int,)),
    "long": ("an integer", (int,)),
    "float": ("a number", (int, float)),
    "double": ("a number", (int, float)),
    "boolean": ("true or false", (bool,)),
    # --cli-timestamp-format iso8601 (the default) prints strings; wire prints numbers.
    "timestamp": ("a timestamp", (str, int, float)),
    "blob": ("base64 text", (str,)),
}
#: Problems shown on the one line of an error, at most.
_SHOWN = 3


class InvalidFile(ValueError):
    """A file ``plan`` cannot decide on; the message is one line."""


def read_json(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; :class:`InvalidFile` if it is missing or not one."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidFile(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidFile(f"cannot read {what} file {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise InvalidFile(f"{what} file {path} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise InvalidFile(f"{what} file {path} must hold a JSON object")
    return document


def read_output(
    path: Path, what: str, operation: str, service: str = "sagemaker"
) -> dict[str, Any]:
    """Read ``path`` and check it against the output of ``service``'s ``operation``."""
    document = read_json(path, what)
    problems = _problems(document, _output_shape(operation, service), "")
    if problems:
        more = len(problems) - _SHOWN
        shown = "; ".join(problems[:_SHOWN]) + (f"; and {more} more" if more > 0 else "")
        raise InvalidFile(
            f"malformed {what} {path} (not what aws {service} {_cli_name(operation)} prints): "
            f"{shown}"
        )
    return document


@cache
def _output_shape(operation: str, service: str) -> StructureShape:
    shape = import_runtime("aws").service_model(service).operation_model(operation)
    output: StructureShape = shape.output_shape
    return output


def _cli_name(operation: str) -> str:
    """``describe-endpoint-config`` for ``DescribeEndpointConfig``."""
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in operation).lstrip("-")


def _problems(value: Any, shape: Shape, path: str) -> list[str]:
    """What in ``value`` contradicts ``shape``: wrong types, unknown instance types."""
    where = path or "the document"
    if shape.type_name == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, Mapping):
            return [f"{where} must be an object ({shape.name}), got {value!r}"]
        return _structure_problems(value, shape, path)
    if shape.type_name == "list":
        if not isinstance(value, list):
            return [f"{where} must be a list, got {value!r}"]
        member = shape.member
        return [p for i, item in enumerate(value) for p in _problems(item, member, f"{path}[{i}]")]
    if shape.type_name == "map":
        if not isinstance(value, Mapping):
            return [f"{where} must be an object, got {value!r}"]
        inner = shape.value
        return [p for k, v in value.items() for p in _problems(v, inner, f"{path}.{k}".lstrip("."))]
    kind, types = _KINDS.get(shape.type_name, ("", (object,)))
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        return [f"{where} must be {kind}, got {value!r}"]
    if shape.name == "ProductionVariantInstanceType" and not is_instance_type(str(value)):
        return [
            f"{where} {value!r} is not a SageMaker real-time instance type (botocore's "
            "ProductionVariantInstanceType)"
        ]
    return []


def _structure_problems(value: Mapping[str, Any], shape: StructureShape, path: str) -> list[str]:
    problems = [
        problem
        for name, member in shape.members.items()
        if value.get(name) is not None
        for problem in _problems(value[name], member, f"{path}.{name}".lstrip("."))
    ]
    unknown = [name for name in value if name not in shape.members]
    missing = [name for name in _READ.get(shape.name, ()) if name not in value]
    if "ServerlessConfig" in value:
        missing = []  # a serverless candidate or variant has no instance type or count
    if unknown and missing:
        problems.append(
            f"{path or 'the document'} has no {', '.join(missing)} but has "
            f"{', '.join(unknown)}, which the API does not have (botocore's {shape.name}: "
            f"{', '.join(shape.members)})"
        )
    return problems
