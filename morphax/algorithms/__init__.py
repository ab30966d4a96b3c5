"""Search algorithms over DNA: random, grid, evolution, RL controllers."""

from ._base import Algorithm as Algorithm
from ._base import History as History
from ._base import Reward as Reward
from ._basic import Grid as Grid
from ._basic import Random as Random
from ._early_stopping import MedianStopping as MedianStopping
from ._early_stopping import SuccessiveHalving as SuccessiveHalving
