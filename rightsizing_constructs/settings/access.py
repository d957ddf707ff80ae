"""How the engine's roles are granted the endpoints (and models) it rightsizes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._validation import ValidationProblems, is_token

# IAM's tag key and value limits and characters ("Tagging AWS resources", tag naming rules).
_TAG_KEY = re.compile(r"^[\w.:/=+\-@ ]{1,128}$")
_TAG_VALUE = re.compile(r"^[\w.:/=+\-@ ]{0,256}$")


@dataclass(frozen=True, kw_only=True)
class EndpointAccess:
    """Which endpoints the engine's roles may describe and update, and which models IR reads.

    - :meth:`listed` (the default): each endpoint's ARN and each model's, listed in the
      policies. The most precise; the policies grow with the fleet, and ``cdk synth`` fails with
      advice before a role would need more managed policies than IAM attaches by default (10;
      about 200 endpoints with the longest names, 400 with typical ones).
    - :meth:`tagged`: the endpoint actions on every endpoint of the account and Region that
      carries the tag ``key=value`` (``aws:ResourceTag`` condition, which SageMaker's
      ``DescribeEndpoint``, ``UpdateEndpoint`` and ``UpdateEndpointWeightsAndCapacities``
      support: Service Authorization Reference, Amazon SageMaker AI), and IR's reads of models
      and model packages on every one of the account and Region (read-only). The policies stay
      the same size whatever the fleet. Tag each rightsized endpoint (an untagged one fails its
      run with ``AccessDeniedException``).
    """

    #: The tag key an endpoint must carry (None: ARNs are listed).
    tag_key: str | None = None
    #: The tag's value.
    tag_value: str | None = None

    @staticmethod
    def listed() -> EndpointAccess:
        """Grant each endpoint's and model's ARN (the default)."""
        return EndpointAccess()

    @staticmethod
    def tagged(key: str, value: str) -> EndpointAccess:
        """Grant the endpoints that carry the tag ``key=value``, and read every model."""
        problems = ValidationProblems("EndpointAccess.tagged")
        problems.check(
            is_token(key) or (isinstance(key, str) and bool(_TAG_KEY.match(key))),
            f"key must be a tag key (1-128 letters, digits, spaces and _.:/=+-@), got {key!r}",
        )
        problems.check(
            not (isinstance(key, str) and key.lower().startswith("aws:")),
            f"key must not start with aws: (reserved for AWS's own tags), got {key!r}",
        )
        problems.check(
            is_token(value) or (isinstance(value, str) and bool(_TAG_VALUE.match(value))),
            "value must be a tag value (0-256 letters, digits, spaces and _.:/=+-@), got "
            f"{value!r}",
        )
        problems.raise_if_any()
        return EndpointAccess(tag_key=key, tag_value=value)

    @property
    def is_tagged(self) -> bool:
        """Whether endpoints are granted by tag rather than listed."""
        return self.tag_key is not None
