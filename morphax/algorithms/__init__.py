"""Search algorithms over DNA: random, grid, evolution, NSGA-II, RL controllers,
and early-stopping policies.

The pure JAX core of the RL controllers (`Controller`, `ControllerState`,
`PolicyLayout`, and the rest in :mod:`morphax.algorithms.policy`) is imported
on first use, so that importing morphax does not import JAX.
"""

from typing import TYPE_CHECKING, Any

from .._typing import History as History
from .._typing import Reward as Reward
from . import mutators as mutators
from ._base import Algorithm as Algorithm
from ._base import Configurable as Configurable
from ._basic import Grid as Grid
from ._basic import Random as Random
from ._controller import PPO as PPO
from ._controller import Reinforce as Reinforce
from ._early_stopping import MedianStopping as MedianStopping
from ._early_stopping import SuccessiveHalving as SuccessiveHalving
from ._evolution import Evolution as Evolution
from ._evolution import Member as Member
from ._evolution import RegularizedEvolution as RegularizedEvolution
from ._evolution import Selector as Selector
from ._evolution import TournamentSelector as TournamentSelector
from ._evolution import operator_from_description as operator_from_description
from ._evolution import operator_from_json_value as operator_from_json_value
from ._nsga2 import NSGA2 as NSGA2
from ._nsga2 import Individual as Individual
from ._nsga2 import crowding_distance as crowding_distance
from ._nsga2 import non_dominated_sort as non_dominated_sort
from ._nsga2 import pareto_front as pareto_front

if TYPE_CHECKING:
    from . import policy as policy
    from .policy import Controller as Controller
    from .policy import ControllerState as ControllerState
    from .policy import PolicyLayout as PolicyLayout

_LAZY = {"Controller", "ControllerState", "PolicyLayout"}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "policy":
        return importlib.import_module(f"{__name__}.policy")
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.policy"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
