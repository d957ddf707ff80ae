"""The rightsizing engines of one stack: how a construct without ``engine=`` finds its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Stack
from constructs import Construct

if TYPE_CHECKING:
    # For annotations only: engine.py imports this module, not the other way round.
    from .engine import RightsizingEngine


class StackEngines(Construct):
    """The rightsizing engines of one stack, so that a construct without ``engine=`` finds its.

    A construct of the stack's own tree (``RightsizingEngines``; it adds nothing to the
    template), found in one lookup however many endpoints there are.
    """

    _ID = "RightsizingEngines"

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack, self._ID)
        self.engines: list[RightsizingEngine] = []
        #: The engine ``RightsizingEngine.of`` created with the defaults, if it did.
        self.default: RightsizingEngine | None = None

    @classmethod
    def of(cls, stack: Stack) -> StackEngines:
        """The stack's list (made the first time)."""
        existing = stack.node.try_find_child(cls._ID)
        return existing if isinstance(existing, StackEngines) else cls(stack)

    def add(self, engine: RightsizingEngine) -> None:
        """Count ``engine``; refuse one created after the stack's default engine."""
        if self.default is not None:
            raise ValueError(
                f"{engine.node.path}: this stack already has the default rightsizing engine "
                f"({self.default.node.path}), created for a construct without engine=; create "
                "your RightsizingEngine before the endpoints and audits, or pass it to them"
            )
        self.engines.append(engine)
