"""Single-path strategies with uniform sampling: SPOS and RSPS.

The supernet trains one uniformly drawn single path per step (a path that
`sn.is_valid` rejects, e.g. an all-`none` NAS-Bench-201 cell, is drawn
again). After training, an `mx.algorithms` algorithm searches the trained
supernet through `mx.search`: each candidate DNA is scored by its validation
accuracy with the inherited weights, through one compiled evaluation (the
path is its input).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from ..algorithms import Algorithm, Random, RegularizedEvolution
from ..symbolic import DNA
from ..tuning import search as mx_search
from ._strategies import Optimizers, Program, SearchState, Strategy, arch_cls, check_int


class _Uniform(Strategy):
    def __init__(
        self,
        *,
        algorithm: Algorithm | None,
        num_trials: int,
        epoch_candidates: int,
        epoch_examples: int | None,
        optimizers: Optimizers | None,
        default: str,
    ) -> None:
        super().__init__(optimizers)
        if algorithm is not None and not isinstance(algorithm, Algorithm):
            raise TypeError(
                f"the architecture search of {type(self).__name__} takes an mx.algorithms "
                f"algorithm (e.g. mx.algorithms.RegularizedEvolution()) or None, but got "
                f"{algorithm!r}"
            )
        self.algorithm = algorithm
        self.num_trials = check_int("num_trials", num_trials)
        self.epoch_candidates = check_int("epoch_candidates", epoch_candidates)
        self.epoch_examples = (
            None if epoch_examples is None else check_int("epoch_examples", epoch_examples)
        )
        self._default = default

    def search_algorithm(self, seed: int) -> Algorithm:
        if self.algorithm is not None:
            return self.algorithm
        if self._default == "random":
            return Random(seed=seed)
        return RegularizedEvolution(population_size=20, tournament_size=5, seed=seed)

    def program(self, sn: Any, *, steps_per_epoch: int, epochs: int) -> Program:
        return UniformProgram(self, sn, steps_per_epoch, epochs)

    def _options(self) -> dict[str, Any]:
        algo = None if self.algorithm is None else self.algorithm.describe()
        return {
            "num_trials": self.num_trials,
            "epoch_candidates": self.epoch_candidates,
            "epoch_examples": self.epoch_examples,
            "algorithm": algo,
        }


class SPOS(_Uniform):
    """Single path one-shot: uniform single paths, then evolution on the supernet.

    Args:
        evolution: the algorithm of the architecture search after training
            (any `mx.algorithms` algorithm); None: regularized evolution
            (population 20, tournament 5, seeded by the search's seed).
        num_trials: candidates the architecture search scores.
        epoch_candidates: each epoch exports the best of this many uniformly
            drawn paths (a fixed set), for the study's per-epoch trials; the
            search's result comes from `evolution` after training.
        epoch_examples: the candidates of each epoch are scored on this many
            validation examples (a fixed random subset; None: all of them);
            the exported path's reported metrics use the whole validation
            set. Scoring every candidate on all 5,000 validation images of
            the reduced NAS-Bench-201 protocol took about 85% of a SPOS
            epoch on a CPU core.
        optimizers: the weight optimizer settings (default: DARTS's).

    Raises:
        ValueError, TypeError: if an option is out of range.

    Examples:
        >>> import morphax as mx
        >>> mx.oneshot.SPOS(num_trials=30)
        SPOS(num_trials=30, epoch_candidates=8, epoch_examples=1024, algorithm=None)

    References:
        Guo, Zhang, Mu, Heng, Liu, Wei & Sun, Single Path One-Shot Neural
        Architecture Search with Uniform Sampling, ECCV 2020.
    """

    def __init__(
        self,
        *,
        evolution: Algorithm | None = None,
        num_trials: int = 100,
        epoch_candidates: int = 8,
        epoch_examples: int | None = 1024,
        optimizers: Optimizers | None = None,
    ) -> None:
        super().__init__(
            algorithm=evolution,
            num_trials=num_trials,
            epoch_candidates=epoch_candidates,
            epoch_examples=epoch_examples,
            optimizers=optimizers,
            default="evolution",
        )

    def config(self) -> dict[str, Any]:
        return self._options()


class RSPS(_Uniform):
    """Random search with parameter sharing: uniform paths, then random search.

    As :class:`SPOS` with `mx.algorithms.Random` as the architecture search.

    Args:
        num_trials: random candidates scored on the trained supernet.
        epoch_candidates, epoch_examples: as for :class:`SPOS`.
        optimizers: the weight optimizer settings (default: DARTS's).

    Examples:
        >>> import morphax as mx
        >>> mx.oneshot.RSPS(num_trials=10).num_trials
        10

    References:
        Li & Talwalkar, Random Search and Reproducibility for Neural
        Architecture Search, UAI 2019.
    """

    def __init__(
        self,
        *,
        num_trials: int = 100,
        epoch_candidates: int = 8,
        epoch_examples: int | None = 1024,
        optimizers: Optimizers | None = None,
    ) -> None:
        super().__init__(
            algorithm=None,
            num_trials=num_trials,
            epoch_candidates=epoch_candidates,
            epoch_examples=epoch_examples,
            optimizers=optimizers,
            default="random",
        )

    def config(self) -> dict[str, Any]:
        out = self._options()
        del out["algorithm"]
        return out


class SinglePathProgram(Program):
    """A weight step on one path (the sample); shared by SPOS, RSPS and ENAS."""

    def __init__(self, strategy: Strategy, sn: Any, steps_per_epoch: int, epochs: int) -> None:
        super().__init__(strategy, sn, steps_per_epoch, epochs)
        Arch = arch_cls()

        def train_step(state: SearchState, batch: Any, valid: Any, path: Any) -> Any:
            del valid
            key, k_w = jax.random.split(state.key)
            state, m = self.weight_step(state, Arch(index=path), batch[0], batch[1], k_w)
            return state._replace(step=state.step + 1, key=key), m

        train_step.__name__ = "oneshot_single_path_step"
        self.train_step = jax.jit(train_step)

    def score(
        self, state: SearchState, dnas: list[DNA], valid: Any, batch_size: int
    ) -> list[float]:
        """Validation accuracy of each DNA with the supernet's weights (one compiled eval)."""
        return [self.accuracy(state, self.path_of(d), "index", valid, batch_size)[0] for d in dnas]


class UniformProgram(SinglePathProgram):
    strategy: _Uniform

    def __init__(self, strategy: _Uniform, sn: Any, steps_per_epoch: int, epochs: int) -> None:
        super().__init__(strategy, sn, steps_per_epoch, epochs)
        rng = np.random.default_rng(0x5350)  # a fixed candidate set, the same every epoch
        self.candidates = [
            self.dna_of(self.uniform_path(rng)) for _ in range(strategy.epoch_candidates)
        ]

    def sample(self, state: SearchState, rng: np.random.Generator) -> tuple[SearchState, Any]:
        return state, self.uniform_path(rng)

    def export(
        self, state: SearchState, valid: Any, batch_size: int
    ) -> tuple[DNA, dict[str, float]]:
        n = self.strategy.epoch_examples
        if n is None or n >= len(valid):
            subset = valid
        else:  # the same subset every epoch, so that epochs compare
            rows = np.random.default_rng(0x5350).permutation(len(valid))[:n]
            subset = valid.take(np.sort(rows))
        scored = [
            self.accuracy(state, self.path_of(d), "index", subset, batch_size)
            for d in self.candidates
        ]
        best = int(np.argmax([acc for acc, _ in scored]))
        dna = self.candidates[best]
        if subset is valid:
            metrics = {"valid_accuracy": scored[best][0], "valid_loss": scored[best][1]}
        else:
            metrics = self.child_metrics(state, dna, valid, batch_size)
        # the candidates' mean on the scoring subset
        return dna, {**metrics, "mean_path_accuracy": float(np.mean([a for a, _ in scored]))}

    def final(
        self,
        state: SearchState,
        valid: Any,
        batch_size: int,
        *,
        space: Any,
        store: Any,
        name: str,
        seed: int,
    ) -> DNA:
        """The architecture search on the trained supernet (a study `<name>.search`)."""
        algorithm = self.strategy.search_algorithm(seed)
        s = mx_search(
            space,
            algorithm,
            num_trials=self.strategy.num_trials,
            store=store,
            name=f"{name}.search",
            objective="valid_accuracy",
            progress=False,
        )
        for trial in s:
            acc, loss = self.accuracy(state, self.path_of(trial.dna), "index", valid, batch_size)
            trial.report({"valid_accuracy": acc, "valid_loss": loss})
        best = s.best()
        assert best is not None and not isinstance(best, list)
        return best.dna
