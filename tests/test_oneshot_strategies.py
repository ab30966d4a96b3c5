"""The one-shot strategies and the search loop (issue 10): end to end on a small
NAS-Bench-201 supernet, compile counts, DARTS's second-order gradient, the
study store, SPOS's ranking and evolution, and bad input.

The NAS-Bench-201 runs use `channels=4, cells_per_stage=1` on 320 digits
(10 steps of 32 an epoch); each strategy runs once per module (a fixture)
inside a compile log, and several tests read that run. The cheaper tests
use `Tiny`, a two-decision MLP whose rows have 3 and 2 candidates (so its
architecture logits have a padding column).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import re
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import morphax as mx
from morphax import cli
from morphax.spaces import nasbench201 as nb
from morphax.testing import log_compilations
from morphax.train import fit, from_arrays, load_digits

TRAIN, VALID = load_digits()
TR, VA = TRAIN[:320], VALID[:64]
NB_SPEC = mx.dna_spec(nb.cell_space())
ACTS = {"relu": nn.relu, "tanh": jnp.tanh, "gelu": nn.gelu}


class Tiny(nn.Module):
    """Two decisions (3 and 2 candidates), a batch norm (model state), dispatch and modules."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = x.reshape((x.shape[0], -1))
        x = nn.Dense(12, name="fc1")(x)
        x = nn.BatchNorm(use_running_average=not train, name="bn")(x)
        act = mx.oneof(list(ACTS), name="act")
        x = mx.dispatch(act, lambda a: ACTS[a](x))
        block = mx.oneof([nn.Dense(12, name="dense"), _Identity()], name="block")
        x = block(x)
        return nn.Dense(10, name="out")(x)


class _Identity(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return x


def search(model: Any, strategy: Any, *, train: Any = TR, valid: Any = VA, **kw: Any) -> Any:
    kw = {"epochs": 2, "batch_size": 32, "progress": False, **kw}
    return mx.oneshot.search(model, strategy, train, valid, **kw)


def shapes(tree: Any) -> Any:
    return jax.tree.map(lambda a: (tuple(a.shape), jnp.dtype(a.dtype).name), tree)


# -- end to end on NAS-Bench-201, one run per strategy ---------------------------------

STRATEGIES = {
    "darts1": lambda: mx.oneshot.DARTS(order=1),
    "darts2": lambda: mx.oneshot.DARTS(order=2),
    "gdas": lambda: mx.oneshot.GDAS(),
    "spos": lambda: mx.oneshot.SPOS(num_trials=30, epoch_candidates=4),
    "rsps": lambda: mx.oneshot.RSPS(num_trials=10, epoch_candidates=4),
    "enas": lambda: mx.oneshot.ENAS(controller_steps=4),
    "darts_pt": lambda: mx.oneshot.DARTS(selection="pt", fixed_alpha=True, pt_epochs=1),
}
SLOW = pytest.mark.slow
PARAMS = [pytest.param(k, marks=() if k == "darts1" else SLOW) for k in STRATEGIES]


@pytest.fixture(scope="module")
def nb_runs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cache = str(tmp_path_factory.mktemp("jax-cache"))
    runs: dict[str, Any] = {}

    def get(name: str) -> tuple[Any, Any]:
        if name not in runs:
            net = nb.search_net(channels=4, cells_per_stage=1)
            with log_compilations() as log:
                result = search(net, STRATEGIES[name](), compilation_cache=cache)
            runs[name] = (result, log)
        return runs[name]

    return get


@pytest.mark.parametrize("name", PARAMS)
def test_end_to_end(nb_runs: Any, name: str) -> None:
    result, _ = nb_runs(name)
    dna = result.dna
    assert NB_SPEC.validate(dna) == dna
    space = mx.trace(nb.search_net(channels=4, cells_per_stage=1), TR.x[:32])  # define-by-run
    assert result.child == mx.materialize(space, dna)
    units = 2 + (6 if name == "darts_pt" else 0)  # DARTS-PT: one unit per projected edge
    assert len(result.history) == len(result.dnas) == units
    assert [h["epoch"] for h in result.history] == [float(u + 1) for u in range(units)]
    for h in result.history:
        assert math.isfinite(h["train_loss"]) and 0.0 <= h["valid_accuracy"] <= 1.0
    acc = nb.load().test_accuracy(dna, "cifar10")
    assert 0.0 < acc < 100.0
    x = TR.x[:2]
    want = jax.eval_shape(result.child.init, jax.random.PRNGKey(0), x)
    assert shapes(result.child_variables) == shapes(want)
    if name in ("darts1", "darts2", "gdas", "darts_pt"):  # the last export is the result
        assert dna == result.dnas[-1]
    if name == "darts_pt":
        assert [h["phase_select"] for h in result.history] == [0.0] * 2 + [1.0] * 6
        several = result._program.mask.sum(axis=1) > 1
        assert bool(np.all(np.asarray(result.state.decided)[several]))  # every edge fixed


def test_inherited_weights_are_the_single_path_and_fine_tune(nb_runs: Any) -> None:
    """The child with inherited weights scores what the search's export scored
    (same batches), and `fit(..., variables=)` trains from them."""
    result, _ = nb_runs("darts1")
    child, variables = result.child, result.child_variables
    acc = child_accuracy(child, variables, VA, 32)  # search-mode batch norm: the same batches
    assert acc == pytest.approx(result.history[-1]["valid_accuracy"], abs=1e-9)
    fitted = fit(
        child, optax.sgd(0.01), TR, valid_data=VA, epochs=1, batch_size=32, variables=variables
    )
    assert all(math.isfinite(v) for v in fitted.metrics.values())
    # (fit donates the buffers it was given: `variables` is spent; take a fresh copy)
    inherited = result.child_variables
    moved = jax.tree.map(
        lambda a, b: float(jnp.max(jnp.abs(a - b))), fitted.state.params, inherited["params"]
    )
    assert max(jax.tree.leaves(moved)) > 0.0  # it trained, from the inherited weights
    # training the inherited copies left the search's state alive and unchanged
    assert child_accuracy(child, inherited, VA, 32) == acc


def child_metrics(child: Any, variables: Any, data: Any, batch_size: int) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of a child on `data` in batches of `batch_size`."""
    correct, loss = 0, 0.0
    for i in range(0, len(data), batch_size):
        x, y = data.x[i : i + batch_size], data.y[i : i + batch_size]
        logits = child.apply(variables, x, train=False)
        correct += int(np.sum(np.argmax(np.asarray(logits), -1) == y))
        loss += float(jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, y)))
    return correct / len(data), loss / len(data)


def child_accuracy(child: Any, variables: Any, data: Any, batch_size: int) -> float:
    return child_metrics(child, variables, data, batch_size)[0]


def test_a_last_partial_batch_is_scored_alone(nb_runs: Any) -> None:
    """The search-mode batch norm normalizes with batch statistics, so padding the
    last batch with zeros would change the real examples' outputs: 40 examples in
    batches of 32 score as the child on batches of 32 and 8."""
    result, _ = nb_runs("darts1")
    data = VA[:40]
    acc, loss = child_metrics(result.child, result.child_variables, data, 32)
    assert result.score([result.dna], data, batch_size=32) == [pytest.approx(acc, abs=1e-9)]
    prog = result._program
    got = prog.accuracy(result.state, prog.path_of(result.dna), "index", data, 32)
    assert got == (pytest.approx(acc, abs=1e-9), pytest.approx(loss, rel=1e-5))


def test_spos_scores_its_epoch_candidates_on_a_fixed_validation_subset() -> None:
    """`epoch_examples`: the epoch's candidates are ranked on a fixed random subset
    of the validation set (the same every epoch); the exported path's metrics are
    on the whole set."""
    sn = mx.oneshot.supernet(Tiny(), TR.x[:32])
    prog = mx.oneshot.SPOS(epoch_candidates=6, epoch_examples=24).program(
        sn, steps_per_epoch=10, epochs=1
    )
    state = prog.init(jax.random.PRNGKey(0), TR.x[:32])
    dna, metrics = prog.export(state, VA, 8)
    assert prog.export(state, VA, 8) == (dna, metrics)  # the same subset each time
    rows = np.sort(np.random.default_rng(0x5350).permutation(len(VA))[:24])
    subset = [
        prog.accuracy(state, prog.path_of(d), "index", VA[rows], 8)[0] for d in prog.candidates
    ]
    assert dna == prog.candidates[int(np.argmax(subset))]
    assert metrics["mean_path_accuracy"] == pytest.approx(np.mean(subset), abs=1e-12)
    whole = prog.accuracy(state, prog.path_of(dna), "index", VA, 8)
    assert (metrics["valid_accuracy"], metrics["valid_loss"]) == whole
    # all of the validation set: the best candidate is not evaluated twice
    prog_all = mx.oneshot.SPOS(epoch_candidates=6, epoch_examples=None).program(
        sn, steps_per_epoch=10, epochs=1
    )
    dna_all, m_all = prog_all.export(state, VA, 8)
    full = [prog.accuracy(state, prog.path_of(d), "index", VA, 8) for d in prog.candidates]
    assert dna_all == prog.candidates[int(np.argmax([a for a, _ in full]))]
    assert (m_all["valid_accuracy"], m_all["valid_loss"]) == full[prog.candidates.index(dna_all)]


# -- no recompilation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, step",
    [
        pytest.param("darts1", "oneshot_darts_step"),
        pytest.param("darts2", "oneshot_darts_step", marks=SLOW),
        pytest.param("gdas", "oneshot_gdas_step", marks=SLOW),  # 20 Gumbel samples
        pytest.param("spos", "oneshot_single_path_step", marks=SLOW),  # 20 paths
        pytest.param("enas", "oneshot_single_path_step", marks=SLOW),
    ],
)
def test_train_step_compiles_once(nb_runs: Any, name: str, step: str) -> None:
    result, log = nb_runs(name)
    assert result._program.steps_per_epoch * 2 == 20  # 20 steps: 20 paths / samples
    assert log.traces[step] == 1 and log.compiles[step] == 1, log


@SLOW
def test_perturbations_compile_the_evaluation_once(nb_runs: Any) -> None:
    result, log = nb_runs("darts_pt")
    rows = int(np.sum(result._program.mask.sum(axis=1) > 1))
    assert rows == 6  # 6 edges x up to 5 candidates: ~30 perturbations
    assert log.compiles["oneshot_eval_weights"] == 1, log
    assert log.compiles["oneshot_darts_step"] == 1, log  # fine-tuning reuses the step
    # the perturbations of every row again, on the final state: still no compile
    from morphax.oneshot._pt import perturbations

    prog, state = result._program, result.state._replace(decided=jnp.zeros(6, bool))
    with log_compilations() as again:
        accs = [perturbations(prog, state, row, VA, 32) for row in range(rows)]
    assert sum(len(a) for a in accs) >= 25, accs  # the all-`none` completions are left out
    assert again.compiles["oneshot_eval_weights"] == 0, again


@SLOW
def test_spos_ranks_30_dnas_with_one_compiled_evaluation(nb_runs: Any) -> None:
    result, log = nb_runs("spos")
    # the whole run (epoch candidates, 30 trials of evolution) compiled one evaluation
    assert log.compiles["oneshot_eval_index"] == 1, log
    rng = np.random.default_rng(3)
    dnas = [result.supernet.random_dna(rng) for _ in range(30)]
    with log_compilations() as again:
        scores = result.score(dnas, VA)
    assert again.compiles["oneshot_eval_index"] == 0, again
    assert len(scores) == 30 and all(0.0 <= s <= 1.0 for s in scores)
    # ranking is by the supernet's single path: the same DNA scores the same
    assert result.score(dnas[:1], VA) == scores[:1]
    # the evolution phase through mx.search returned a valid DNA of the space
    assert NB_SPEC.validate(result.dna) == result.dna
    assert result.supernet.is_valid(result.dna)


# -- gradients --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_program() -> Any:
    sn = mx.oneshot.supernet(Tiny(), TR.x[:32])
    prog = mx.oneshot.DARTS(order=2).program(sn, steps_per_epoch=10, epochs=2)
    state = prog.init(jax.random.PRNGKey(0), TR.x[:32])
    # away from the init: logits not ~0, a non-zero momentum trace
    alpha = jnp.where(prog.mask, jax.random.normal(jax.random.PRNGKey(1), prog.mask.shape), 0.0)
    state = state._replace(alpha=alpha)
    return prog, state


def test_tiny_has_a_padding_column(tiny_program: Any) -> None:
    prog, _ = tiny_program
    assert prog.mask.tolist() == [[True, True, True], [True, True, False]]


def test_a_typed_key_initializes_like_its_raw_key(tiny_program: Any) -> None:
    prog, _ = tiny_program
    typed = prog.init(jax.random.key(0), TR.x[:32])
    raw = prog.init(jax.random.PRNGKey(0), TR.x[:32])
    assert jax.tree.all(jax.tree.map(np.array_equal, typed, raw))


def test_second_order_is_the_gradient_of_the_unrolled_objective(tiny_program: Any) -> None:
    prog, state = tiny_program
    batch = (jnp.asarray(TR.x[:32]), jnp.asarray(TR.y[:32]))
    valid = (jnp.asarray(VA.x[:32]), jnp.asarray(VA.y[:32]))
    key = jax.random.PRNGKey(5)
    mask, opt = prog.mask, prog.strategy.optimizers

    def unrolled(alpha: jax.Array) -> jax.Array:
        """L_val(w - lr * (clip(g) + wd * w), alpha), written out (step 0: lr 0.025)."""
        k_train, k_valid = jax.random.split(key)
        arch = mx.oneshot.Arch(weights=jax.nn.softmax(jnp.where(mask, alpha, -jnp.inf), -1))

        def train_loss(p: Any) -> jax.Array:
            return prog.loss(p, state.model_state, arch, *batch, k_train)[0]

        g = jax.grad(train_loss)(state.params)
        norm = jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(g)))
        scale = jnp.minimum(1.0, opt.grad_clip / norm)
        params = jax.tree.map(
            lambda w, d: w - opt.learning_rate * (scale * d + opt.weight_decay * w),
            state.params,
            g,
        )
        return prog.loss(params, state.model_state, arch, *valid, k_valid)[0]

    def strategy_objective(alpha: jax.Array) -> jax.Array:
        return prog.arch_objective(alpha, state, batch, valid, key)

    alpha = state.alpha
    unrolled = jax.jit(unrolled)  # one compile each, not one per eager op
    got = jax.jit(strategy_objective)(alpha)
    assert float(got) == pytest.approx(float(unrolled(alpha)), rel=1e-6)
    g = jax.jit(jax.grad(strategy_objective))(alpha)
    want = jax.jit(jax.grad(unrolled))(alpha)
    assert bool(jnp.all(jnp.isfinite(g)))
    assert float(jnp.max(jnp.abs(g - want))) < 1e-5
    assert np.all(np.asarray(g)[mask] != 0.0)  # every real logit gets a gradient
    assert np.all(np.asarray(g)[~mask] == 0.0)  # padding exactly none
    # the first-order gradient differs (the unrolled step matters)
    first = jax.jit(
        jax.grad(
            lambda a: prog.loss(
                state.params,
                state.model_state,
                mx.oneshot.Arch(weights=jax.nn.softmax(jnp.where(mask, a, -jnp.inf), -1)),
                *valid,
                jax.random.split(key)[1],
            )[0]
        )
    )(alpha)
    assert float(jnp.max(jnp.abs(first - g))) > 1e-6
    # a central finite difference along the gradient's direction (the real logits)
    v = g / jnp.linalg.norm(g)
    eps = 1e-2
    fd = float((unrolled(alpha + eps * v) - unrolled(alpha - eps * v)) / (2 * eps))
    slope = float(jnp.sum(g * v))
    assert abs(fd - slope) < 1e-3 and abs(fd - slope) < 0.02 * abs(slope), (fd, slope)


@SLOW
def test_train_steps_keep_padding_logits_at_zero() -> None:
    result = search(Tiny(), mx.oneshot.DARTS(order=2), epochs=1)
    mask = result._program.mask
    alpha = np.asarray(result.state.alpha)
    assert np.all(alpha[~mask] == 0.0) and np.all(alpha[mask] != 0.0)
    assert result.supernet.spec.validate(result.dna) == result.dna


# -- the study store ---------------------------------------------------------------------


def test_each_epoch_is_a_completed_trial(tmp_path: Any) -> None:
    store = tmp_path / "s.db"
    begin = time.time()
    result = search(Tiny(), mx.oneshot.DARTS(), store=store, name="tiny", epochs=3)
    end = time.time()
    study = mx.load_study(store, "tiny")
    trials = study.trials
    assert [t.status for t in trials] == ["completed"] * 3
    # each trial spans its epoch: the first compiles, so it takes longer than
    # the bookkeeping alone; the epochs follow each other inside the search
    times = [(t.created, t.finished) for t in trials]
    assert begin <= times[0][0] and times[-1][1] <= end
    assert all(a < b for a, b in times)
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(times))
    durations = study.to_dataframe()["duration_s"]
    assert durations.iloc[0] > 0.05 and (durations > 0).all()
    assert [t.dna for t in trials] == result.dnas
    for t, h in zip(trials, result.history, strict=True):
        assert t.metrics["valid_accuracy"] == pytest.approx(h["valid_accuracy"])
    # the same search again (no checkpoint) writes nothing new
    again = search(Tiny(), mx.oneshot.DARTS(), store=store, name="tiny", epochs=3)
    assert again.dnas == result.dnas
    assert len(mx.load_study(store, "tiny").trials) == 3
    # the CLI reads a one-shot study like any other: a table of its epochs, a plot
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        assert cli.main(["show", str(store), "--name", "tiny"]) == 0
        assert (
            cli.main(["plot", str(store), "--name", "tiny", "--out", str(tmp_path / "t.png")]) == 0
        )
    assert sum(1 for line in out.getvalue().splitlines() if " completed " in line) == 3
    assert "valid_accuracy" in out.getvalue() and "best 3 programs:" in out.getvalue()
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_another_search_under_the_same_name_is_refused(tmp_path: Any) -> None:
    store = tmp_path / "s.db"
    search(Tiny(), mx.oneshot.DARTS(), store=store, name="tiny", epochs=2)
    with pytest.raises(ValueError, match=r"study 'tiny' .* holds another search.*another `name`"):
        search(Tiny(), mx.oneshot.GDAS(), store=store, name="tiny", epochs=2)
    with pytest.raises(
        ValueError, match=r"study 'tiny' .*'seed': 0\}, but this search uses .*'seed': 1\}"
    ):
        search(Tiny(), mx.oneshot.DARTS(), store=store, name="tiny", epochs=2, seed=1)
    # the same search again is not refused
    assert len(search(Tiny(), mx.oneshot.DARTS(), store=store, name="tiny", epochs=2).dnas) == 2


def test_a_checkpoint_of_another_search_is_refused(tmp_path: Any) -> None:
    ckpt = tmp_path / "ckpt"
    search(Tiny(), mx.oneshot.DARTS(), checkpoint=ckpt, epochs=1)
    another = r"is of another search \(strategy: saved \"DARTS\(order=1.*now \"GDAS\("
    with pytest.raises(ValueError, match=another):
        search(Tiny(), mx.oneshot.GDAS(), checkpoint=ckpt, epochs=1)
    with pytest.raises(ValueError, match=r"is of another search \(epochs: saved 1, now 2"):
        search(Tiny(), mx.oneshot.DARTS(), checkpoint=ckpt, epochs=2)


# -- bad input -------------------------------------------------------------------------


def test_bad_search_arguments_name_the_argument_and_value() -> None:
    darts = mx.oneshot.DARTS()
    with pytest.raises(TypeError, match=r"`strategy` must be .*strategy='darts'"):
        search(Tiny(), "darts")
    with pytest.raises(TypeError, match=r"`strategy` must be .*strategy=Reinforce\("):
        search(Tiny(), mx.algorithms.Reinforce())
    with pytest.raises(
        TypeError, match=r"`train` must be a morphax.train.Dataset, but got ndarray"
    ):
        search(Tiny(), darts, train=TR.x)
    with pytest.raises(TypeError, match=r"`valid` must be a morphax.train.Dataset, but got tuple"):
        search(Tiny(), darts, valid=(VA.x, VA.y))
    regression = from_arrays(TR.x, TR.x.reshape(len(TR), -1)[:, :3])
    with pytest.raises(ValueError, match=r"`train` must hold class labels"):
        search(Tiny(), darts, train=regression)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=re.escape(f"epochs={bad!r}")):
            search(Tiny(), darts, epochs=bad)
    with pytest.raises(ValueError, match=r"batch_size=321 exceeds the 320 examples of `train`"):
        search(Tiny(), darts, batch_size=321)
    with pytest.raises(ValueError, match=re.escape("batch_size=0")):
        search(Tiny(), darts, batch_size=0)
    for bad in (-1, 1.5, True, "0"):
        with pytest.raises(ValueError, match=re.escape(f"seed={bad!r}")):
            search(Tiny(), darts, seed=bad)
    with pytest.raises(ValueError, match=r"`valid` has no examples"):
        search(Tiny(), darts, valid=VA[:0])


def test_a_numpy_integer_seed_runs_the_search_of_the_same_int() -> None:
    # `for seed in np.arange(3)` is how seeds often arrive; the other integer
    # arguments of the one-shot API accept numpy integers too.
    a = search(Tiny(), mx.oneshot.DARTS(), seed=3, epochs=1)
    b = search(Tiny(), mx.oneshot.DARTS(), seed=np.int64(3), epochs=1)
    assert a.dna == b.dna
    assert a.history == b.history


def test_bad_strategy_options_name_the_option_and_value() -> None:
    with pytest.raises(ValueError, match=r"`order` must be 1 or 2, but got order=3"):
        mx.oneshot.DARTS(order=3)
    with pytest.raises(ValueError, match=r"order=True"):
        mx.oneshot.DARTS(order=True)
    with pytest.raises(ValueError, match=r"`tau` must be a pair .* tau=\(10,\)"):
        mx.oneshot.GDAS(tau=(10,))
    with pytest.raises(ValueError, match=r"tau\[1\]=0"):
        mx.oneshot.GDAS(tau=(10, 0))
    with pytest.raises(ValueError, match=r"tau\[0\]=nan"):
        mx.oneshot.GDAS(tau=(float("nan"), 0.1))
    with pytest.raises(ValueError, match=r"selection='best'"):
        mx.oneshot.DARTS(selection="best")
    with pytest.raises(ValueError, match=r"pt_epochs=-1"):
        mx.oneshot.DARTS(selection="pt", pt_epochs=-1)
    with pytest.raises(ValueError, match=r"fixed_alpha=True .* pass selection='pt'"):
        mx.oneshot.DARTS(fixed_alpha=True)
    with pytest.raises(ValueError, match=r"partial_channels=0"):
        mx.oneshot.GDAS(partial_channels=0)
    with pytest.raises(TypeError, match=r"takes an mx.algorithms algorithm .* 'evolve'"):
        mx.oneshot.SPOS(evolution="evolve")
    with pytest.raises(ValueError, match=r"num_trials=0"):
        mx.oneshot.RSPS(num_trials=0)
    with pytest.raises(ValueError, match=r"epoch_examples=0"):
        mx.oneshot.SPOS(epoch_examples=0)
    with pytest.raises(TypeError, match=r"`controller` must be .* controller=RegularizedEvolution"):
        mx.oneshot.ENAS(controller=mx.algorithms.RegularizedEvolution())
    with pytest.raises(ValueError, match=r"learning_rate=-0.1"):
        mx.oneshot.Optimizers(learning_rate=-0.1)
    with pytest.raises(TypeError, match=r"`optimizers` must be"):
        mx.oneshot.DARTS(optimizers={"learning_rate": 0.1})


class _Widening(nn.Module):
    """A dispatched op whose candidates change the width (64 -> 8)."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        def run(op: str, h: jax.Array) -> jax.Array:
            return nn.Dense(8, name="d")(h) if op == "dense" else jnp.zeros((*h.shape[:-1], 8))

        x = mx.dispatch(mx.oneof(["dense", "zero"], name="op"), run, x.reshape((x.shape[0], -1)))
        return nn.Dense(10, name="out")(nn.relu(x))


def test_partial_channels_refusals_through_search() -> None:
    net = nb.search_net(channels=4, cells_per_stage=1)
    with pytest.raises(ValueError, match=r"partial_channels=3 .*divisible by 3"):
        search(net, mx.oneshot.DARTS(partial_channels=3))
    with pytest.raises(ValueError, match=r"decision 'op'.*changes the width"):
        search(_Widening(), mx.oneshot.GDAS(partial_channels=2))
    sn = mx.oneshot.supernet(net, TR.x[:32])
    with pytest.raises(ValueError, match=r"DARTS\(partial_channels=2\) but the supernet was built"):
        search(sn, mx.oneshot.DARTS(partial_channels=2))
