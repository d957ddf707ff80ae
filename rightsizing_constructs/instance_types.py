"""SageMaker instance types as botocore's service model knows them.

Validation reads the ``ProductionVariantInstanceType`` enum of the botocore that is installed
with the library (pinned through boto3), so a typo such as ``ml.c5.xlarg`` fails ``cdk synth``
instead of a deployed workflow.
"""

from __future__ import annotations

from functools import cache

from ._runtime import import_runtime


@cache
def production_variant_instance_types() -> frozenset[str]:
    """Every real-time instance type of botocore's SageMaker model (``ml.c5.xlarge``...)."""
    # Read without an AWS session: synthesis needs no AWS configuration (AWS_PROFILE...).
    model = import_runtime("aws").service_model("sagemaker")
    return frozenset(model.shape_for("ProductionVariantInstanceType").enum)


@cache
def instance_families() -> frozenset[str]:
    """The families of those types: ``ml.c5`` for ``ml.c5.xlarge``."""
    return frozenset(t.rsplit(".", 1)[0] for t in production_variant_instance_types())


def is_instance_type(name: str) -> bool:
    """Whether ``name`` is a real-time instance type (``ml.c5.xlarge``)."""
    return name in production_variant_instance_types()


def is_instance_type_or_family(name: str) -> bool:
    """Whether ``name`` is an instance type or a family of them (``ml.c5``)."""
    return is_instance_type(name) or name in instance_families()
