"""Contracts shipped as code: checks for your own algorithms and spaces.

Run them in your test suite:

* :func:`check_algorithm` (and the single checks it runs) on an algorithm:
  valid DNA, determinism under a seed, `recover(history)` (also with
  proposals outstanding), exact `replay(journal)` with trials in flight
  (:func:`check_replay_in_flight`), the `config()` round trip, learning on a
  known objective (also in flight) and pinned proposals.
* :func:`check_space_laws` (and the single laws) on a search space; random
  spaces for hypothesis live in :mod:`morphax.testing.strategies`.
* :func:`check_stopping_policy` on an early-stopping policy.
* :func:`log_compilations` to count JAX traces and XLA compilations.

Importing this package imports neither JAX nor hypothesis.
"""

from ._algorithms import AlgorithmFactory as AlgorithmFactory
from ._algorithms import RewardFn as RewardFn
from ._algorithms import check_deterministic as check_deterministic
from ._algorithms import check_recover as check_recover
from ._algorithms import check_recover_with_outstanding as check_recover_with_outstanding
from ._algorithms import check_valid_dna as check_valid_dna
from ._algorithms import default_reward as default_reward
from ._algorithms import example_spaces as example_spaces
from ._algorithms import run_algorithm as run_algorithm
from ._compiles import CompileLog as CompileLog
from ._compiles import log_compilations as log_compilations
from ._contract import ALGORITHM_CHECKS as ALGORITHM_CHECKS
from ._contract import ONEMAX_TARGET as ONEMAX_TARGET
from ._contract import check_algorithm as check_algorithm
from ._contract import check_config_round_trip as check_config_round_trip
from ._contract import check_improves as check_improves
from ._contract import check_pinned_proposals as check_pinned_proposals
from ._contract import onemax_reward as onemax_reward
from ._contract import record_proposals as record_proposals
from ._in_flight import IN_FLIGHT_WIDTHS as IN_FLIGHT_WIDTHS
from ._in_flight import InFlightRun as InFlightRun
from ._in_flight import check_replay_in_flight as check_replay_in_flight
from ._in_flight import run_in_flight as run_in_flight
from ._spaces import check_deciders_agree as check_deciders_agree
from ._spaces import check_dna_round_trips as check_dna_round_trips
from ._spaces import check_encode_inverts_materialize as check_encode_inverts_materialize
from ._spaces import check_json_round_trip as check_json_round_trip
from ._spaces import check_materialize_inverts_encode as check_materialize_inverts_encode
from ._spaces import check_space_laws as check_space_laws
from ._spaces import check_space_size as check_space_size
from ._stopping import check_incremental_stopping as check_incremental_stopping
from ._stopping import check_stopping_policy as check_stopping_policy
