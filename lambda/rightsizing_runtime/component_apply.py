"""Pure pieces of the Apply path for an inference component (IC): requests, snapshot, outcome.

No AWS calls here: ``apply_steps`` makes them (the ``component_*`` steps). Field names follow
botocore's SageMaker and Application Auto Scaling models (``UpdateInferenceComponent``,
``DescribeInferenceComponent``, ``RegisterScalableTarget``); contract: issue 17, "Apply for an
IC".

AWS facts relied on (each re-checked against the pinned botocore or the page named):

- Application Auto Scaling scales an IC's copies with ``ResourceId``
  ``inference-component/<name>`` and ``ScalableDimension``
  ``sagemaker:inference-component:DesiredCopyCount`` (botocore, application-autoscaling
  ``RegisterScalableTarget`` ResourceId/ScalableDimension documentation; Application Auto
  Scaling User Guide, "Amazon SageMaker AI and Application Auto Scaling").
- The autoscaling is **not** deregistered around ``UpdateInferenceComponent``: the only update
  AWS refuses on an autoscaled target is an ``UpdateEndpoint`` that changes the instance type of
  (or removes) an autoscaled variant (SageMaker Developer Guide, "Update endpoints that use auto
  scaling", https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html). An IC
  update changes neither: the instance type is the endpoint's, and this path refuses a
  recommendation for another type. So the IC keeps its autoscaling throughout (DESIGN.md
  invariant 1 holds at every instant, not only at the end), and afterwards the target is
  registered again with the recommended bounds and policy (or the snapshot's, on failure).
- ``SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution`` needs no period or
  other setting: it is a predefined metric type (``PredefinedMetricSpecification`` has only
  ``PredefinedMetricType`` and ``ResourceLabel`` in botocore) whose CloudWatch metric
  ``ConcurrentRequestsPerCopy`` is emitted every 10 seconds instead of every minute; target
  tracking on it scales out faster and scales in at the standard pace (SageMaker Developer
  Guide, "Define a scaling policy", section "Specify a high-resolution predefined metric",
  https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-add-code-define.html).
- ``UpdateInferenceComponent`` takes ``Specification`` (``InferenceComponentSpecification``) and
  ``RuntimeConfig.CopyCount``; ``DescribeInferenceComponent`` returns the summary shape
  (``Container.DeployedImage.SpecifiedImage`` where the request has ``Container.Image``) and
  ``InferenceComponentStatus`` in InService, Creating, Updating, Failed, Deleting (botocore).
  Whether the update merges or replaces a partial ``Specification`` is not documented: a request
  that changes it carries the current specification whole, with the recommended changes, which is
  right under either reading.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from . import apply
from .aws import service_model
from .component_decision import KIND

SCALABLE_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
CONCURRENCY_METRIC = "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
INVOCATIONS_METRIC = "SageMakerInferenceComponentInvocationsPerCopy"
#: The predefined metrics the recommendation may name (botocore's ``MetricType`` enum has both).
METRICS = (CONCURRENCY_METRIC, INVOCATIONS_METRIC)
#: Name of the target-tracking policy the library creates when the IC had none.
DEFAULT_POLICY_NAME = "rightsizing-copies"
#: IC statuses of a change under way: the workflow polls on, autoscaling waits.
BUSY_STATUSES = frozenset({"Creating", "Updating"})

_SAGEMAKER = service_model("sagemaker")
#: Every member of the request's ``InferenceComponentSpecification``, read from botocore, so a
#: member SageMaker adds later is carried over when the described summary has it too.
_SPECIFICATION_FIELDS = tuple(
    _SAGEMAKER.operation_model("UpdateInferenceComponent")
    .input_shape.members["Specification"]
    .members
)
_CONTAINER_FIELDS = tuple(_SAGEMAKER.shape_for("InferenceComponentContainerSpecification").members)


def is_component(recommendation: Mapping[str, Any]) -> bool:
    """Whether a recommendation event's detail is for an inference component."""
    return recommendation.get("kind") == KIND


def resource_id(component_name: str) -> str:
    """Application Auto Scaling's ResourceId of an inference component."""
    return f"inference-component/{component_name}"


def ec2_instance_type(instance_type: str) -> str:
    """The EC2 name of a SageMaker instance type (``ml.g5.2xlarge`` -> ``g5.2xlarge``)."""
    return instance_type.removeprefix("ml.")


def gpus_of(description: Mapping[str, Any]) -> int:
    """GPUs per instance from an EC2 ``DescribeInstanceTypes`` ``InstanceTypes[]`` entry."""
    gpus = (description.get("GpuInfo") or {}).get("Gpus") or []
    return sum(int(gpu.get("Count") or 0) for gpu in gpus)


def accelerators_per_copy(gpus_per_instance: int, copies_per_instance: int) -> int | None:
    """Whole accelerators each copy gets: GPUs per instance / copies per instance (rounded down).

    None on an instance without GPUs (the requirement is left out). Raises ``ValueError`` when
    the copies outnumber the GPUs: SageMaker requires at least 1 accelerator device per copy
    (botocore ``NumberOfAcceleratorDevices`` min 1), so that placement cannot be asked for.
    """
    if gpus_per_instance <= 0:
        return None
    if copies_per_instance < 1 or copies_per_instance > gpus_per_instance:
        raise ValueError(
            f"{copies_per_instance} copies per instance cannot share {gpus_per_instance} GPU(s): "
            "each copy needs at least one accelerator device"
        )
    return math.floor(gpus_per_instance / copies_per_instance)


def component_fields(description: Mapping[str, Any]) -> dict[str, Any]:
    """What the snapshot keeps of a ``DescribeInferenceComponent`` response."""
    specification = description.get("Specification") or {}
    container = specification.get("Container") or {}
    runtime = description.get("RuntimeConfig") or {}
    return {
        "inference_component_name": description["InferenceComponentName"],
        "endpoint_name": description["EndpointName"],
        "variant_name": description.get("VariantName"),
        "status": description.get("InferenceComponentStatus"),
        "copy_count": runtime.get("DesiredCopyCount"),
        "compute_resource_requirements": specification.get("ComputeResourceRequirements"),
        "image": (container.get("DeployedImage") or {}).get("SpecifiedImage"),
        "environment": container.get("Environment"),
        "specification": specification_request(specification),
    }


def specification_request(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A described ``InferenceComponentSpecificationSummary`` as the request's specification.

    The summary names the image ``Container.DeployedImage.SpecifiedImage`` (the image as
    specified, not the digest SageMaker resolved it to); everything else has the request's names.
    """
    request: dict[str, Any] = {
        k: v for k, v in summary.items() if k in _SPECIFICATION_FIELDS and v not in (None, {})
    }
    container = summary.get("Container")
    if container:
        copied = {k: v for k, v in container.items() if k in _CONTAINER_FIELDS and v is not None}
        image = (container.get("DeployedImage") or {}).get("SpecifiedImage")
        if image:
            copied["Image"] = image
        request["Container"] = copied
    return request


def changes(recommendation: Mapping[str, Any]) -> dict[str, Any]:
    """The event detail's ``inference_component`` block (contract: "Event detail for an IC")."""
    return dict(recommendation.get("inference_component") or {})


def changes_specification(recommendation: Mapping[str, Any]) -> bool:
    """Whether the recommendation changes compute requirements or the container."""
    block = changes(recommendation)
    return bool(block.get("compute_resource_requirements") or block.get("container"))


def desired_specification(
    current: Mapping[str, Any],
    recommendation: Mapping[str, Any],
    accelerators: int | None,
) -> dict[str, Any] | None:
    """The specification to send, or None when the recommendation leaves it as it is.

    ``current`` is :func:`specification_request` of the IC. Compute requirements: the current
    ones with the recommendation's memory and ``accelerators`` per copy
    (:func:`accelerators_per_copy`; left out on an instance without GPUs). Container: the
    recommendation's image and environment, only when it gives them.
    """
    block = changes(recommendation)
    requirements = block.get("compute_resource_requirements")
    container = block.get("container")
    if not requirements and not container:
        return None
    specification = {k: v for k, v in current.items() if k in _SPECIFICATION_FIELDS}
    if requirements:
        merged = {**(current.get("ComputeResourceRequirements") or {}), **requirements}
        merged.pop("NumberOfAcceleratorDevicesRequired", None)
        if accelerators is not None:
            merged["NumberOfAcceleratorDevicesRequired"] = accelerators
        specification["ComputeResourceRequirements"] = merged
    if container:
        merged_container = dict(current.get("Container") or {})
        if container.get("Image"):
            merged_container["Image"] = container["Image"]
        if container.get("Environment") is not None:
            merged_container["Environment"] = dict(container["Environment"])
        specification["Container"] = merged_container
    return specification


def update_request(
    component_name: str, specification: Mapping[str, Any] | None, copy_count: int
) -> dict[str, Any]:
    """UpdateInferenceComponent: the specification only when it changes; the copy count."""
    request: dict[str, Any] = {
        "InferenceComponentName": component_name,
        "RuntimeConfig": {"CopyCount": int(copy_count)},
    }
    if specification is not None:
        request["Specification"] = dict(specification)
    return request


def already_applied(
    snapshot: Mapping[str, Any], specification: Mapping[str, Any] | None, copy_count: int
) -> bool:
    """Whether the IC already runs the recommendation.

    The copy count, and the specification when it changes (the desired one is the current one).
    """
    return snapshot.get("copy_count") == copy_count and (
        specification is None or dict(specification) == dict(snapshot["specification"])
    )


def serves_requested(description: Mapping[str, Any], request: Mapping[str, Any] | None) -> bool:
    """Whether the IC is in service on what ``request`` (UpdateInferenceComponent) asked for.

    In service, with the requested compute requirements and container (when the request changed
    them), and no failure reason unless the copy count is the requested one (a rolled-back
    update shows its reason; a copy count autoscaling moved since is still the new
    configuration).
    """
    if request is None or description.get("InferenceComponentStatus") != "InService":
        return False
    wanted = request.get("Specification")
    if wanted is not None:
        now = specification_request(description.get("Specification") or {})
        for key in ("ComputeResourceRequirements", "Container"):
            if key in wanted and now.get(key) != wanted[key]:
                return False
        return True
    desired = (description.get("RuntimeConfig") or {}).get("DesiredCopyCount")
    return not description.get("FailureReason") or desired == request["RuntimeConfig"]["CopyCount"]


def recommended_autoscaling(
    snapshot: Mapping[str, Any] | None, recommendation: Mapping[str, Any]
) -> dict[str, Any]:
    """The copy autoscaling to register on the updated IC.

    :func:`apply.recommended_autoscaling` with the recommendation's per-copy metric, keeping the
    snapshot's policy names and cooldowns.
    """
    metric = recommendation["autoscaling"].get("metric") or CONCURRENCY_METRIC
    if metric not in METRICS:
        raise ValueError(f"{metric} is not a predefined metric of inference component copies")
    return apply.recommended_autoscaling(
        snapshot,
        recommendation,
        metric=metric,
        tracked=METRICS,
        default_policy_name=DEFAULT_POLICY_NAME,
    )


def register_request(component_name: str, autoscaling: Mapping[str, Any]) -> dict[str, Any]:
    """RegisterScalableTarget of the IC's copies for ``autoscaling``."""
    return apply.register_request_for(resource_id(component_name), SCALABLE_DIMENSION, autoscaling)


def policy_requests(component_name: str, autoscaling: Mapping[str, Any]) -> list[dict[str, Any]]:
    """PutScalingPolicy for each policy of ``autoscaling`` on the IC's copies."""
    return apply.policy_requests_for(resource_id(component_name), SCALABLE_DIMENSION, autoscaling)
