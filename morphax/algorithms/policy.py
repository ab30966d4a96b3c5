"""The pure JAX core of the RL controllers: a factorized policy over a DNASpec
and the learning rules that update it (importing this module imports JAX).

`Reinforce` and `PPO` are the mutable face over these functions; use them
directly to run a controller inside your own jitted loop.

Examples:
    >>> import jax, morphax as mx
    >>> from morphax.algorithms.policy import PolicyLayout, reinforce
    >>> spec = mx.dna_spec([mx.oneof(["a", "b", "c"]), mx.floatv(0.0, 1.0)])
    >>> ctrl = reinforce(PolicyLayout.from_spec(spec), learning_rate=0.1)
    >>> state, s = ctrl.sample(ctrl.init(jax.random.PRNGKey(0)))
    >>> _ = spec.validate(spec.from_array((s.indices, s.values)))
"""

from ._learning import Batch as Batch
from ._learning import Controller as Controller
from ._learning import ControllerState as ControllerState
from ._learning import ppo as ppo
from ._learning import reinforce as reinforce
from ._policy import Params as Params
from ._policy import PolicyLayout as PolicyLayout
from ._policy import Sample as Sample
from ._policy import draw as draw
from ._policy import evaluate as evaluate
from ._policy import init_params as init_params
from ._policy import num_random_words as num_random_words
from ._policy import sample as sample
