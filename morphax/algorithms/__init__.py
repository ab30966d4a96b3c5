"""Search algorithms over DNA: random, grid, evolution, NSGA-II, RL controllers,
and early-stopping policies."""

from . import mutators as mutators
from ._base import Algorithm as Algorithm
from ._base import History as History
from ._base import Reward as Reward
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
from ._nsga2 import NSGA2 as NSGA2
from ._nsga2 import Individual as Individual
from ._nsga2 import crowding_distance as crowding_distance
from ._nsga2 import non_dominated_sort as non_dominated_sort
from ._nsga2 import pareto_front as pareto_front
