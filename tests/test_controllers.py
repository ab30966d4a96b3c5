"""RL controllers (REINFORCE, PPO): valid DNA, exact probabilities, determinism,
recovery, compile behaviour, checkpoints and learning."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import morphax as mx
from morphax.algorithms import policy

Reinforce = mx.algorithms.Reinforce
PPO = mx.algorithms.PPO
ALGORITHMS = {"reinforce": Reinforce, "ppo": PPO}

SPACES: dict[str, Callable[[], Any]] = {
    # NAS-Bench-201's cell: 6 edges x 5 operations.
    "flat": lambda: [mx.oneof(["none", "skip", "conv1", "conv3", "pool"]) for _ in range(6)],
    "conditional": lambda: {
        "op": mx.oneof(["id", {"k": mx.oneof([3, 5, 7])}, {"depth": mx.intv(1, 3)}]),
        "act": mx.oneof(["relu", "gelu"]),
    },
    "numeric": lambda: {
        "x": mx.floatv(-1.0, 2.0),
        "lr": mx.floatv(1e-5, 1e-1, scale="log"),
        "n": mx.intv(-2, 3),
    },
    "manyof": lambda: {
        "set": mx.manyof(3, ["a", "b", {"z": mx.oneof([1, 2])}, "d"], distinct=True, sorted=True),
        "seq": mx.manyof(2, list("abc"), distinct=True, sorted=False),
        "bag": mx.manyof(3, list("ab"), distinct=False, sorted=True),
    },
}


def _spec(name: str) -> mx.DNASpec:
    return mx.dna_spec(SPACES[name]())


def _reward(dna: mx.DNA) -> float:
    """A cheap deterministic reward that depends on every value."""
    return math.sin(sum((i + 1) * float(v) for i, v in enumerate(dna.values)))


def _run(algo: Any, num: int, reward: Callable[[mx.DNA], Any] = _reward) -> list[tuple]:
    history = []
    for _ in range(num):
        dna = algo.propose()
        r = reward(dna)
        algo.feedback(dna, r)
        history.append((dna, r))
    return history


_COMPILES: list[str] = []


def _on_event(event: str, duration_secs: float, **kwargs: str | int) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _COMPILES.append(event)


jax.monitoring.register_event_duration_secs_listener(_on_event)


@contextmanager
def _count_compiles() -> Iterator[list[str]]:
    start = len(_COMPILES)
    seen: list[str] = []
    yield seen
    seen.extend(_COMPILES[start:])


# -- proposals ---------------------------------------------------------------------


@pytest.mark.parametrize("space", sorted(SPACES))
@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_proposes_valid_dna(algorithm: str, space: str) -> None:
    spec = _spec(space)
    algo = ALGORITHMS[algorithm](seed=3)
    algo.setup(spec)
    seen = set()
    for i in range(40):
        dna = algo.propose()
        spec.validate(dna)
        seen.add(dna)
        algo.feedback(dna, None if i % 7 == 3 else _reward(dna))
    assert len(seen) > 10  # it explores
    first = Counter(dna.values[0] for dna in seen)
    assert len(first) > 1


def _random_params(layout: policy.PolicyLayout) -> policy.Params:
    params = policy.init_params(layout)
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    params["logits"] = jax.random.normal(k1, params["logits"].shape)
    params["mean"] = params["mean"] + 0.2 * jax.random.normal(k2, params["mean"].shape)
    return params


def _depth_model(x: int) -> int:
    """Define-by-run: an int (the depth) enables decisions."""
    for i in range(mx.intv(1, 3, name="depth")):
        c = mx.oneof([1, 2, 3], name=f"op{i}")
        x *= mx.intv(2, 4, name=f"w{i}") if c == 3 else c
    return x


EXACT_SPACES: dict[str, Callable[[], Any]] = {
    "mixed": lambda: {
        "op": mx.oneof(["id", {"k": mx.oneof([3, 5, 7])}, {"d": mx.intv(1, 3)}]),
        "seq": mx.manyof(2, ["a", {"z": mx.oneof([1, 2])}, "c"], distinct=True),
        "bag": mx.manyof(2, list("ab"), distinct=False),
    },
    "define_by_run": lambda: mx.trace(_depth_model, 1),
}


@pytest.mark.parametrize("space", sorted(EXACT_SPACES))
def test_probabilities_are_exact(space: str) -> None:
    """Over a finite space, the probabilities of all DNA sum to 1 and match sampling."""
    spec = mx.dna_spec(EXACT_SPACES[space]())
    layout = policy.PolicyLayout.from_spec(spec)
    params = _random_params(layout)
    log_prob = jax.jit(jax.vmap(lambda a, r: policy.evaluate(layout, params, a, r)[0]))
    everything = list(spec.iter_dna())
    actions, raw = zip(*(layout.to_actions(spec, d) for d in everything), strict=True)
    probs = np.exp(np.asarray(log_prob(np.stack(actions), np.stack(raw)), np.float64))
    assert probs.sum() == pytest.approx(1.0, abs=1e-4)

    num = 20_000
    draw = jax.jit(jax.vmap(lambda k: policy.sample(layout, params, k)))
    s = draw(jax.random.split(jax.random.PRNGKey(0), num))
    dnas = spec.from_array((np.asarray(s.indices), np.asarray(s.values)))
    counts = Counter(dnas)
    freq = np.asarray([counts[d] / num for d in everything])
    assert np.abs(freq - probs).max() < 4 * np.sqrt(probs.max() / num)
    exact = dict(zip(everything, probs, strict=True))
    np.testing.assert_allclose(
        np.exp(np.asarray(s.log_prob[:100])), [exact[d] for d in dnas[:100]], rtol=1e-4
    )


def test_sorted_manyof_is_uniform_over_sets_at_start() -> None:
    spec = mx.dna_spec(mx.manyof(2, list("abcd"), sorted=True))
    layout = policy.PolicyLayout.from_spec(spec)
    draw = jax.jit(jax.vmap(lambda k: policy.sample(layout, policy.init_params(layout), k)))
    s = draw(jax.random.split(jax.random.PRNGKey(0), 12_000))
    counts = Counter(tuple(row) for row in np.asarray(s.indices).tolist())
    assert set(counts) == set(itertools.combinations(range(4), 2))
    assert max(abs(c / 12_000 - 1 / 6) for c in counts.values()) < 0.02


def test_float_bounds_and_log_scale() -> None:
    spec = _spec("numeric")  # x in [-1, 2], lr in [1e-5, 1e-1] (log), n in [-2, 3]
    algo = Reinforce(seed=0)
    algo.setup(spec)
    xs = np.asarray([algo.propose().values for _ in range(300)])
    assert np.all((xs[:, 0] >= -1.0) & (xs[:, 0] <= 2.0))
    assert np.all((xs[:, 1] >= 1e-5) & (xs[:, 1] <= 1e-1))
    assert set(xs[:, 2]) == set(range(-2, 4))
    # centered on the log-scale midpoint (1e-3), spread over decades
    assert -3.5 < np.median(np.log10(xs[:, 1])) < -2.5
    assert np.log10(xs[:, 1]).std() > 0.5


# -- determinism, recovery, checkpoints ------------------------------------------------


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_deterministic_under_seed(algorithm: str) -> None:
    spec = _spec("flat")
    runs = []
    for seed in (5, 5, 6):
        algo = ALGORITHMS[algorithm](seed=seed)
        algo.setup(spec)
        runs.append(_run(algo, 30))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


@pytest.mark.parametrize("space", ["flat", "numeric", "manyof"])
@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_recover_gives_the_same_next_proposal(algorithm: str, space: str) -> None:
    spec = _spec(space)

    def reward(dna: mx.DNA) -> float | None:
        return None if hash(dna) % 5 == 0 else _reward(dna)

    algo = ALGORITHMS[algorithm](seed=11)
    algo.setup(spec)
    history = _run(algo, 29, reward)  # PPO (batch 8) ends with a part-filled batch
    expected = algo.propose()

    fresh = ALGORITHMS[algorithm](seed=11)
    fresh.setup(spec)
    fresh.recover(history)
    assert fresh.propose() == expected
    assert fresh.num_feedback == len(history)


def test_recover_with_foreign_trials_is_deterministic() -> None:
    spec = _spec("flat")
    other = mx.algorithms.Random(seed=0)
    other.setup(spec)
    history = _run(other, 10)
    nexts = []
    for _ in range(2):
        algo = Reinforce(seed=2)
        algo.setup(spec)
        algo.recover(history)
        nexts.append([algo.propose() for _ in range(3)])
    assert nexts[0] == nexts[1]


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_checkpoint_restore(algorithm: str) -> None:
    spec = _spec("flat")
    algo = ALGORITHMS[algorithm](seed=4)
    algo.setup(spec)
    _run(algo, 13)
    leaves, treedef = jax.tree.flatten(algo.state)
    saved = [np.array(leaf) for leaf in leaves]  # e.g. written with np.savez
    expected = [algo.propose() for _ in range(3)]

    restored = ALGORITHMS[algorithm](seed=4)
    restored.setup(spec)
    restored.state = jax.tree.unflatten(treedef, saved)
    with _count_compiles() as compiles:
        assert [restored.propose() for _ in range(3)] == expected
    assert compiles == []


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_no_recompilation_after_the_first_trial(algorithm: str) -> None:
    spec = _spec("flat")
    algo = ALGORITHMS[algorithm](seed=8)
    algo.setup(spec)
    history = _run(algo, 1)
    controller = algo._controller
    assert controller is not None
    jitted = [cast(Any, fn) for fn in (controller.init, controller.draw, controller.observe)]
    cache_sizes = [fn._cache_size() for fn in jitted]
    with _count_compiles() as compiles:
        history += _run(algo, 30)  # several updates (PPO: batches of 8)
        algo.recover(history)  # set up again, same space
        _run(algo, 5)
    assert compiles == []
    assert [fn._cache_size() for fn in jitted] == cache_sizes
    assert algo._controller is controller


def test_skipped_rewards_leave_the_state_unchanged() -> None:
    algo = PPO(seed=0)
    algo.setup(_spec("flat"))
    _run(algo, 3)
    before = jax.tree.leaves(algo.state)
    for reward in (None, math.nan, math.inf):
        algo.feedback(algo.propose(), reward)
    after = jax.tree.leaves(algo.state)
    assert algo.state is not None
    key_index = len(jax.tree.leaves(algo.state[:4]))  # the key advances on proposals
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        if i != key_index:
            np.testing.assert_array_equal(a, b)


# -- pure functions ------------------------------------------------------------------------


def test_pure_functions_under_jit() -> None:
    layout = policy.PolicyLayout.from_spec(_spec("numeric"))
    controller = policy.ppo(layout, epochs=4)
    # cached by the full configuration: the Algorithm's controller is this one
    algo = PPO(seed=0)
    algo.setup(_spec("numeric"))
    assert algo._controller is controller is policy.ppo(layout, batch_size=8)
    state = controller.init(jax.random.PRNGKey(0))
    draws = []
    for _ in range(8):
        state, s = controller.sample(state)
        draws.append(s)
    batch = policy.Batch(
        jnp.stack([s.actions for s in draws]),
        jnp.stack([s.raw for s in draws]),
        jnp.stack([s.log_prob for s in draws]),
        jnp.asarray([0.0, 1.0] * 4, jnp.float32),
    )
    new = controller.update(state, batch)
    assert isinstance(new, mx.algorithms.ControllerState)
    assert isinstance(controller, mx.algorithms.Controller)
    assert mx.algorithms.PolicyLayout is policy.PolicyLayout
    assert not np.allclose(new.params["mean"], state.params["mean"])
    assert int(new.opt_state[0].count) == 4  # one Adam step per epoch
    # the better draws got likelier
    logp = jax.vmap(lambda a, r: controller.log_prob(new.params, a, r))(batch.actions, batch.raw)
    gain = np.asarray(logp) - np.asarray(batch.log_prob)
    assert gain[1::2].sum() > gain[0::2].sum()


# -- learning ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_learns_onemax(algorithm: str, seed: int) -> None:
    """8 choices of 4: reward = fraction equal to a hidden target (random: 0.25)."""
    spec = mx.dna_spec([mx.oneof(range(4)) for _ in range(8)])
    target = np.random.default_rng(seed + 100).integers(0, 4, 8)
    algo = ALGORITHMS[algorithm](seed=seed)
    algo.setup(spec)
    history = _run(algo, 300, lambda d: float(np.mean(np.asarray(d.values) == target)))
    assert np.mean([r for _, r in history[-50:]]) > 0.6


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_float_mean_moves_toward_the_optimum(algorithm: str) -> None:
    spec = mx.dna_spec({"x": mx.floatv(0.0, 1.0)})
    algo = ALGORITHMS[algorithm](seed=0)
    algo.setup(spec)
    assert algo.state is not None
    assert float(algo.state.params["mean"][0]) == 0.5
    history = _run(algo, 300, lambda d: -((d.values[0] - 0.7) ** 2))
    assert abs(float(algo.state.params["mean"][0]) - 0.7) < 0.06
    assert abs(np.mean([d.values[0] for d, _ in history[-50:]]) - 0.7) < 0.06
    assert float(np.exp(algo.state.params["log_std"][0])) < 0.25  # it narrowed


# -- configuration and errors --------------------------------------------------------------


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_config_is_json_and_rebuilds(algorithm: str) -> None:
    cls = ALGORITHMS[algorithm]
    algo = cls(learning_rate=0.2, batch_size=3, seed=9)
    config = json.loads(json.dumps(algo.config()))
    assert cls(**config).config() == config
    assert config["seed"] == 9 and config["learning_rate"] == 0.2
    assert repr(algo).startswith(cls.__name__ + "(")


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (Reinforce, {"learning_rate": 0.0}, r"`learning_rate` must be a number > 0.*=0.0"),
        (Reinforce, {"learning_rate": math.inf}, r"`learning_rate` must be finite"),
        (Reinforce, {"baseline_decay": 1.0}, r"`baseline_decay` must be in \[0, 1\)"),
        (Reinforce, {"batch_size": 2.5}, r"`batch_size` must be an int > 0"),
        (Reinforce, {"entropy_weight": -1.0}, r"`entropy_weight` must be a finite number >= 0"),
        (PPO, {"clip": -0.1}, r"`clip` must be a number > 0"),
        (PPO, {"epochs": 0}, r"`epochs` must be an int > 0"),
        (PPO, {"batch_size": True}, r"`batch_size` must be an int > 0"),
    ],
)
def test_bad_arguments(cls: type, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_errors() -> None:
    with pytest.raises(TypeError, match="`normalize_advantages` must be a bool"):
        PPO(normalize_advantages=1)  # type: ignore[arg-type]
    algo = Reinforce()
    with pytest.raises(RuntimeError, match=r"not set up: call setup\(spec\) first"):
        algo.propose()
    with pytest.raises(RuntimeError, match=r"Reinforce is not set up: .* \(before feedback\(\)\)"):
        algo.feedback(mx.DNA([0]), 1.0)
    algo.setup(_spec("flat"))
    dna = algo.propose()
    with pytest.raises(TypeError, match="single-objective"):
        algo.feedback(dna, (1.0, 2.0))
    with pytest.raises(ValueError, match="too short"):
        algo.feedback(mx.DNA([0, 1]), 1.0)
