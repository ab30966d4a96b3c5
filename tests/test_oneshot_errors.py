"""Bad input to a supernet: each error names the decision and the value, and says the fix."""

from __future__ import annotations

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import morphax as mx
from morphax.oneshot import Arch
from morphax.spaces import nasbench201 as nb

X = jnp.ones((2, 6))


def act_fn(x):
    return lambda a: nn.relu(x) if a == "relu" else jnp.tanh(x)


# -- hyper-values a supernet cannot mix ------------------------------------------------


class _Depth(nn.Module):
    fixed: int | None = None

    @nn.compact
    def __call__(self, x):
        for _ in range(mx.intv(1, 3, name="depth", fixed=self.fixed)):
            x = nn.Dense(6)(x)
        return nn.Dense(features=mx.oneof([2, 4], name="width"), name="head")(x)


class _Scale(nn.Module):
    @nn.compact
    def __call__(self, x):
        return x * mx.floatv(0.1, 1.0, name="scale")


class _Many(nn.Module):
    @nn.compact
    def __call__(self, x):
        for op in mx.manyof(2, ["relu", "tanh", "gelu"], name="ops"):
            x = getattr(nn, op)(x) if op != "tanh" else jnp.tanh(x)
        return x


@pytest.mark.parametrize(
    "model, kind, pid",
    [(_Depth(), "intv", "depth"), (_Scale(), "floatv", "scale"), (_Many(), "manyof", "ops")],
)
def test_unpinned_hyper_values_are_refused(model, kind, pid) -> None:
    with pytest.raises(ValueError, match=rf"decision '{pid}' \({kind}\(.*fixed=.*mx\.{kind}\("):
        mx.oneshot.supernet(model, X)


def test_pinned_hyper_value_runs_and_exports_its_pin() -> None:
    sn = mx.oneshot.supernet(_Depth(fixed=2), X)
    assert [p.id for p in sn.spec.columns] == ["depth", "width"] and sn.row_ids == ("width",)
    variables = sn.init(jax.random.key(0), X)
    assert sorted(variables["params"]) == ["Dense_0", "Dense_1", "head"]  # depth 2
    dna = sn.export(np.array([[0.0, 1.0]]))
    assert dna == mx.DNA([2, 1])
    got = sn.apply(variables, X, arch=Arch(weights=jnp.asarray(sn.one_hot(dna))))
    want = sn.child(dna).apply(sn.child_variables(variables, dna), X)
    assert float(jnp.max(jnp.abs(got - want))) <= 1e-6


class _PinnedManyAndFloat(nn.Module):
    @nn.compact
    def __call__(self, x):
        for op in mx.manyof(2, ["relu", "tanh", "gelu"], name="ops", fixed=["gelu", "relu"]):
            x = getattr(nn, op)(x) if op != "tanh" else jnp.tanh(x)
        x = x * mx.floatv(0.1, 1.0, name="scale", fixed=0.5)
        return nn.Dense(features=mx.oneof([2, 4], name="width"))(x)


def test_pinned_manyof_and_floatv_export_their_pins() -> None:
    sn = mx.oneshot.supernet(_PinnedManyAndFloat(), X)
    assert sn.row_ids == ("width",)
    dna = sn.export(np.array([[1.0, 0.0]]))
    assert sn.spec.to_dict(dna) == {"ops": [2, 0], "scale": 0.5, "width": 0}
    variables = sn.init(jax.random.key(0), X)
    got = sn.apply(variables, X, arch=Arch(index=jnp.asarray(sn.path(dna))))
    want = sn.child(dna).apply(sn.child_variables(variables, dna), X)
    assert float(jnp.max(jnp.abs(got[:, :2] - want))) <= 1e-6


# -- candidates neither callable nor dispatched ---------------------------------------


class _Called(nn.Module):
    @nn.compact
    def __call__(self, x):
        return mx.oneof(["relu", "tanh"], name="act")(x)


class _HalfCallable(nn.Module):
    @nn.compact
    def __call__(self, x):
        return mx.oneof([nn.relu, 3], name="op")(x)


class _Compared(nn.Module):
    @nn.compact
    def __call__(self, x):
        act = mx.oneof(["relu", "tanh"], name="act")
        return nn.relu(x) if act == "relu" else jnp.tanh(x)


def test_value_candidates_called() -> None:
    with pytest.raises(TypeError, match=r"decision 'act' .*candidate 0 \('relu'\) is not callable"):
        mx.oneshot.supernet(_Called(), X)
    with pytest.raises(TypeError, match=r"decision 'op' .*candidate 1 \(3\) is not callable"):
        mx.oneshot.supernet(_HalfCallable(), X)
    with pytest.raises(TypeError, match=r"mx\.dispatch\(choice, fn\)"):
        mx.oneshot.supernet(_Called(), X)


def test_value_candidates_used_as_a_value() -> None:
    with pytest.raises(TypeError, match=r"decision 'act' .*cannot be used as one value.*dispatch"):
        mx.oneshot.supernet(_Compared(), X)


# -- one decision mixed twice in one scope --------------------------------------------


class _Twice(nn.Module):
    @nn.compact
    def __call__(self, x):
        act = mx.oneof(["relu", "tanh"], name="act")
        return mx.dispatch(act, act_fn(x)) + mx.dispatch(act, act_fn(x))


class _Block(nn.Module):
    @nn.compact
    def __call__(self, h):
        return mx.dispatch(mx.oneof(["relu", "tanh"], name="act"), act_fn(nn.Dense(6)(h)))


class _Shared(nn.Module):
    """The same decision in two modules: one row, mixed once in each."""

    @nn.compact
    def __call__(self, x):
        return _Block(name="b1")(_Block(name="b0")(x))


def test_one_decision_mixed_twice_in_one_scope() -> None:
    with pytest.raises(ValueError, match=r"decision 'act' .*mixed twice in one call of _Twice"):
        mx.oneshot.supernet(_Twice(), X)
    sn = mx.oneshot.supernet(_Shared(), X)
    assert sn.row_ids == ("act",)
    variables = sn.init(jax.random.key(0), X)
    dna = mx.DNA([1])
    got = sn.apply(variables, X, arch=Arch(index=jnp.asarray(sn.path(dna))))
    want = sn.child(dna).apply(sn.child_variables(variables, dna), X)
    assert float(jnp.max(jnp.abs(got - want))) <= 1e-6


# -- a mixed choice outside a supernet run --------------------------------------------


def test_mixed_choice_outside_its_run_and_dispatch_in_child_mode() -> None:
    kept = []

    class Keep(nn.Module):
        @nn.compact
        def __call__(self, x):
            act = mx.oneof(["relu", "tanh"], name="act")
            kept.append(act)
            return mx.dispatch(act, act_fn(x))

    sn = mx.oneshot.supernet(Keep(), X)
    mixed = kept[-1]
    with pytest.raises(ValueError, match=r"decision 'act' .*used after its supernet run ended"):
        mx.dispatch(mixed, lambda a: a)
    with pytest.raises(TypeError, match=r"decision 'act' .*cannot be used as one value"):
        bool(mixed == "relu")
    # In child mode the same code gets the value: dispatch is fn(value).
    x = jnp.linspace(-1.0, 1.0, 12).reshape(2, 6)
    child = sn.child(mx.DNA([1]))
    assert bool(jnp.all(child.apply({}, x) == jnp.tanh(x)))
    assert kept[-1] == "tanh"
    assert mx.dispatch("relu", lambda a, y: a + y, "!") == "relu!"


# -- architecture arrays ----------------------------------------------------------------


class _Two(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(features=mx.oneof([4, 8], name="width"))(x)
        return mx.dispatch(mx.oneof(["relu", "tanh", "id"], name="act"), lambda a: x)


@pytest.fixture(scope="module")
def two():
    sn = mx.oneshot.supernet(_Two(), X)
    return sn, sn.init(jax.random.key(0), X)


@pytest.mark.parametrize(
    "arch, error, match",
    [
        (
            Arch(weights=jnp.ones((2, 2))),
            ValueError,
            r"shape \[n, K\] = \[2, 3\].*got shape \[2, 2\]",
        ),
        (Arch(weights=jnp.ones((2, 3), jnp.int32)), TypeError, r"weights must be floats.*int32"),
        (
            Arch(weights=jnp.ones((2, 3))),
            ValueError,
            r"decision 'width' \(row 0\) are \[1\.0, 1\.0, 1\.0\].*2 candidates.*padding.*sn\.mask",
        ),
        (
            Arch(index=jnp.array([2, 0])),
            ValueError,
            r"index 2 for decision 'width' \(row 0\).*\[0, 1\]",
        ),
        (
            Arch(index=jnp.array([0, -1])),
            ValueError,
            r"index -1 for decision 'act' \(row 1\).*\[0, 2\]",
        ),
        (Arch(index=jnp.array([0, 0, 0])), ValueError, r"shape \[n\] = \[2\].*got shape \[3\]"),
        (Arch(index=jnp.array([0.0, 1.0])), TypeError, r"index must be ints.*float32"),
        (jnp.ones((2, 3)), TypeError, r"must be a morphax\.oneshot\.Arch"),
    ],
)
def test_bad_architecture_arrays(two, arch, error, match) -> None:
    sn, variables = two
    with pytest.raises(error, match=match):
        sn.apply(variables, X, arch=arch)


def test_bad_architecture_misc(two) -> None:
    sn, variables = two
    with pytest.raises(ValueError, match=r"Arch needs weights=\[n, K\].*got neither"):
        Arch()
    with pytest.raises(ValueError, match=r"\[n, K\] = \[2, 3\].*got shape \[3, 3\]"):
        sn.export(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"non-finite value for decision 'act' \(row 1\)"):
        sn.export(np.array([[0.0, 1.0, 0.0], [0.0, np.nan, 1.0]]))
    with pytest.raises(TypeError, match=r"train=True was given, but _Two\.__call__ takes no"):
        sn.apply(variables, X, arch=Arch(index=jnp.array([0, 0])), train=True)
    with pytest.raises(ValueError, match=r"`path_impl` must be one of .*'scan'"):
        mx.oneshot.supernet(_Two(), X, path_impl="scan")
    # Padding of zeros and in-range indices are accepted (and a mask exists to make them).
    w = jax.nn.softmax(jnp.where(sn.mask, 0.0, -jnp.inf))
    assert sn.apply(variables, X, arch=Arch(weights=w)).shape == (2, 8)


# -- partial channels (PC-DARTS) ------------------------------------------------------


class _Widening(nn.Module):
    @nn.compact
    def __call__(self, x):
        def run(op, h):
            return nn.Dense(8, name="d")(h) if op == "dense" else jnp.zeros((*h.shape[:-1], 8))

        return mx.dispatch(mx.oneof(["dense", "zero"], name="op"), run, x)


class _Keeping(nn.Module):
    @nn.compact
    def __call__(self, x):
        return mx.dispatch(
            mx.oneof(["id", "neg"], name="op"), lambda o, h: h if o == "id" else -h, x
        )


class _NoInput(nn.Module):
    @nn.compact
    def __call__(self, x):
        return mx.dispatch(mx.oneof(["relu", "tanh", "id"], name="act"), lambda a: x)


def test_partial_channels_refusals() -> None:
    with pytest.raises(ValueError, match=r"keep the shape.*decision 'op'.*changes the width"):
        mx.oneshot.supernet(_Widening(), X, partial_channels=2)
    with pytest.raises(
        ValueError, match=r"partial_channels=4 .*decision 'op''s input divisible by 4.*6 channels"
    ):
        mx.oneshot.supernet(_Keeping(), X, partial_channels=4)
    with pytest.raises(
        ValueError,
        match=r"decision 'act' was mixed without an array input.*mx\.dispatch\(choice, fn, x\)",
    ):
        mx.oneshot.supernet(_NoInput(), X, partial_channels=2)
    with pytest.raises(ValueError, match=r"partial_channels=2 .*decision 'width' .*\[4, 8\]"):
        mx.oneshot.supernet(_Two(), X, partial_channels=2)
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match=re.escape(f"partial_channels={bad!r}")):
            mx.oneshot.supernet(_Keeping(), X, partial_channels=bad)
    # Divisible, shape-keeping candidates run: 1/3 of the channels are mixed, then shuffled.
    sn = mx.oneshot.supernet(_Keeping(), X, partial_channels=3)
    x = jnp.arange(12.0).reshape(2, 6)
    y = sn.apply({}, x, arch=Arch(index=jnp.array([1])))
    assert y.shape == (2, 6) and sorted(np.abs(np.asarray(y[1])).tolist()) == list(range(6, 12))
    assert (np.asarray(y[1]) < 0).sum() == 2  # the mixed third went through "neg"


# -- an all-`none` NB201 cell in single-path mode ------------------------------------


def test_single_paths_never_give_an_all_zero_nb201_cell() -> None:
    """`is_valid` is False exactly where the cell's output is zeros (the logits do not
    depend on the input), and `random_dna` never samples such a cell."""
    x = jax.random.normal(jax.random.key(0), (3, 8, 8, 3))
    sn = mx.oneshot.supernet(nb.search_net(channels=4, cells_per_stage=1), x)
    # Random variables of the supernet's shapes (its init compiles for many seconds on CPU).
    rng = np.random.default_rng(0)
    variables = jax.tree_util.tree_map_with_path(
        lambda path, s: jnp.asarray(
            rng.uniform(0.5, 1.5, s.shape)
            if "var" in jax.tree_util.keystr(path)
            else rng.normal(0.0, 0.5, s.shape),
            s.dtype,
        ),
        jax.eval_shape(sn.init, jax.random.key(0), x),
    )
    run = jax.jit(
        lambda i: sn.apply(variables, x, arch=Arch(index=i), train=True, mutable=["batch_stats"])[0]
    )
    seen = {True: 0, False: 0}
    for _ in range(24):
        ops = np.where(rng.random(6) < 0.6, 0, rng.integers(1, 5, 6))  # many `none` edges
        dna = mx.DNA(ops.tolist())
        logits = run(jnp.asarray(sn.path(dna)))
        constant = bool(jnp.all(jnp.abs(logits - logits[0]) < 1e-6))
        assert sn.is_valid(dna) == (not constant), (dna, logits)
        seen[sn.is_valid(dna)] += 1
    assert seen[True] >= 3 and seen[False] >= 3
    gen = np.random.default_rng(1)
    assert all(sn.is_valid(sn.random_dna(gen)) for _ in range(300))


def test_init_takes_typed_and_raw_keys(two) -> None:
    sn, variables = two  # made with jax.random.key(0)
    raw = sn.init(jax.random.PRNGKey(0), X)
    rngs = sn.init({"params": jax.random.key(0)}, X)
    for other in (raw, rngs):
        assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), variables, other))


def test_gdas_resamples_a_hard_path_that_would_give_an_all_zero_cell() -> None:
    """Logits that favour `none` make most raw Gumbel argmaxes all-zero cells; GDAS's
    sample draws again until the path is valid (never silent zeros), and says so
    when no valid path comes."""
    x = jnp.zeros((2, 8, 8, 3))
    sn = mx.oneshot.supernet(nb.search_net(channels=4, cells_per_stage=1), x)
    prog = mx.oneshot.GDAS().program(sn, steps_per_epoch=1, epochs=1)
    shapes = jax.eval_shape(prog.init, jax.random.key(0), x)  # no compile of the init
    none = nb.OPS.index("none")
    alpha = np.zeros(shapes.alpha.shape, np.float32)
    alpha[:, none] = 3.0
    state = shapes._replace(
        alpha=jnp.asarray(alpha),
        projection=jnp.zeros(shapes.projection.shape, shapes.projection.dtype),
        decided=jnp.zeros(shapes.decided.shape, bool),
    )
    # the raw argmax of these logits plus Gumbel noise: mostly invalid cells
    raw = np.random.default_rng(0)
    noise = -np.log(-np.log(raw.random((200, *alpha.shape))))
    raw_valid = [sn.is_valid(mx.DNA(np.argmax(alpha + n, -1).tolist())) for n in noise]
    assert sum(raw_valid) < 100, sum(raw_valid)  # the constraint binds
    rng = np.random.default_rng(1)
    for _ in range(20):
        state, ((_, i_w), (_, i_a)) = prog.sample(state, rng)
        for index in (i_w, i_a):
            assert sn.is_valid(mx.DNA(np.asarray(index).tolist())), index
    alpha[:, none] = 1e4  # every draw is the all-`none` cell
    state = state._replace(alpha=jnp.asarray(alpha))
    with pytest.raises(RuntimeError, match=r"GDAS drew no valid path in \d+ Gumbel draws"):
        prog.sample(state, rng)


def test_enas_skips_exactly_the_controller_draws_that_give_an_all_zero_cell() -> None:
    """ENAS's path is the controller's next valid draw: replaying the controller's
    raw draws from the same state, the invalid ones (all-`none` cells) are
    skipped and the valid ones returned in order."""
    x = jnp.zeros((2, 8, 8, 3))
    sn = mx.oneshot.supernet(nb.search_net(channels=4, cells_per_stage=1), x)
    prog = mx.oneshot.ENAS().program(sn, steps_per_epoch=1, epochs=1)
    shapes = jax.eval_shape(prog.init, jax.random.key(0), x)  # no compile of the init
    state = shapes._replace(controller=prog.ctrl.init(jax.random.PRNGKey(5)))
    c, raw = state.controller, []
    for _ in range(120):
        key, s = prog.ctrl.draw(c.params, c.key)
        c = c._replace(key=key)
        dna = sn.spec.from_array((np.asarray(s.indices), np.asarray(s.values)))
        raw.append((list(dna), sn.is_valid(dna)))
    valid = [d for d, ok in raw if ok]
    assert len(valid) < len(raw), "no invalid draw to skip: draw more"
    got = []
    while len(got) < len(valid):
        state, (path, _) = prog.draw(state)
        got.append(list(prog.dna_of(path)))
    assert got == valid
