"""The supernet decider on NAS-Bench-201: one-hot supernet == child, gradients, export, compiles."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import morphax as mx
from morphax.oneshot import Arch
from morphax.spaces import nasbench201 as nb
from morphax.testing import log_compilations

X = jax.random.normal(jax.random.key(1), (4, 8, 8, 3))


def maxdiff(a, b) -> float:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    return max(float(jnp.max(jnp.abs(p - q))) for p, q in zip(la, lb, strict=True))


@pytest.fixture(scope="module")
def nb201():
    net = nb.search_net(channels=4, cells_per_stage=1)
    sn = mx.oneshot.supernet(net, X)
    variables = jax.jit(sn.init)(jax.random.key(0), X)
    return sn, variables


def check_equal(sn, variables, dna, arch, *, exact: bool) -> None:
    """Eval and train mode: outputs and updated batch statistics of supernet and child.

    Exact (bit for bit) runs both eagerly; otherwise both run jitted (XLA
    fuses the two programs differently, which moves the last bits).
    """
    child = sn.child(dna)
    cv = sn.child_variables(variables, dna)
    tol = 0.0 if exact else 1e-5

    def run(f):
        return f if exact else jax.jit(f)

    got = run(lambda v, a: sn.apply(v, X, arch=a))(variables, arch)
    assert maxdiff(got, run(lambda v: child.apply(v, X))(cv)) <= tol
    y, upd = run(lambda v, a: sn.apply(v, X, arch=a, train=True, mutable=["batch_stats"]))(
        variables, arch
    )
    yc, updc = run(lambda v: child.apply(v, X, train=True, mutable=["batch_stats"]))(cv)
    assert maxdiff(y, yc) <= tol
    stats = sn.child_variables({**variables, **upd}, dna)["batch_stats"]
    assert maxdiff(stats, updc["batch_stats"]) <= tol


def test_spec_rows_and_mask(nb201) -> None:
    sn, _ = nb201
    spec = mx.dna_spec(nb.cell_space())
    assert sn.spec == spec
    assert mx.trace(nb.search_net(channels=4, cells_per_stage=1), X).spec == spec
    assert sn.rows == 6 and sn.num_candidates == 5
    assert sn.row_ids == tuple(f"edge_{s}_{d}" for s, d in nb.EDGES)
    assert sn.mask.shape == (6, 5) and sn.mask.all()


@settings(max_examples=3, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=6, max_size=6))
def test_one_hot_supernet_equals_child(nb201, ops) -> None:
    sn, variables = nb201
    dna = mx.DNA(ops)
    check_equal(sn, variables, dna, Arch(weights=jnp.asarray(sn.one_hot(dna))), exact=True)
    check_equal(sn, variables, dna, Arch(index=jnp.asarray(sn.path(dna))), exact=False)


def test_switch_and_straight_through_single_paths(nb201) -> None:
    sn, variables = nb201
    switch = mx.oneshot.supernet(sn.model, X, path_impl="switch")
    dna = mx.DNA([3, 1, 2, 4, 0, 3])
    check_equal(switch, variables, dna, Arch(index=jnp.asarray(sn.path(dna))), exact=False)
    weights = jax.nn.softmax(jax.random.normal(jax.random.key(2), (6, 5)))
    want = sn.child(dna).apply(sn.child_variables(variables, dna), X)
    for net in (sn, switch):  # GDAS: the forward pass is the hard sample
        arch = Arch(weights=weights, index=jnp.asarray(sn.path(dna)))
        got = jax.jit(lambda v, a, net=net: net.apply(v, X, arch=a))(variables, arch)
        assert maxdiff(got, want) <= 1e-5


def test_hard_sample_gradient_is_the_chosen_candidates_in_both_path_impls(nb201) -> None:
    # GDAS (Dong & Yang 2019, Sec. 3.2): only the sampled candidate's weight gets a
    # gradient; "onehot" runs every candidate, so it must mask the others' out.
    sn, variables = nb201
    switch = mx.oneshot.supernet(sn.model, X, path_impl="switch")
    dna = mx.DNA([3, 1, 2, 4, 1, 3])  # no `none` (its zeros give a zero gradient)
    index = jnp.asarray(sn.path(dna))
    weights = jax.nn.softmax(jax.random.normal(jax.random.key(4), (6, 5)))

    def grad(net):
        def loss(w):
            return jnp.sum(net.apply(variables, X, arch=Arch(weights=w, index=index)) ** 2)

        return np.asarray(jax.jit(jax.grad(loss))(weights))

    g_onehot, g_switch = grad(sn), grad(switch)
    chosen = np.asarray(jax.nn.one_hot(index, 5, dtype=bool))
    assert np.all(g_onehot[~chosen] == 0.0) and np.all(g_switch[~chosen] == 0.0)
    assert np.all(g_onehot[chosen] != 0.0)
    np.testing.assert_allclose(g_onehot, g_switch, rtol=1e-4, atol=1e-6)


def test_child_is_a_trainable_model_with_the_variables(nb201) -> None:
    sn, variables = nb201
    dna = mx.DNA([1, 3, 0, 2, 3, 4])
    child = sn.child(dna)
    assert child == mx.materialize(mx.trace(sn.model, X), dna)
    shapes = jax.eval_shape(child.init, jax.random.key(0), X)
    cv = sn.child_variables(variables, dna)
    assert jax.tree.map(jnp.shape, cv) == jax.tree.map(jnp.shape, shapes)
    assert "mx~" not in str(jax.tree_util.tree_structure(cv))


def test_gradients_reach_every_valid_logit(nb201) -> None:
    sn, variables = nb201

    def loss(logits):
        w = jax.nn.softmax(jnp.where(sn.mask, logits, -jnp.inf))
        return jnp.sum(sn.apply(variables, X, arch=Arch(weights=w)) ** 2)

    g = jax.jit(jax.grad(loss))(jax.random.normal(jax.random.key(3), (6, 5)))
    assert bool(jnp.all(jnp.isfinite(g))) and bool(jnp.all(g != 0))


def test_export_is_a_dna_of_the_spec(nb201) -> None:
    sn, _ = nb201
    logits = np.zeros((6, 5))
    logits[np.arange(6), [3, 3, 1, 0, 2, 4]] = 1.0
    dna = sn.export(logits)
    assert dna == mx.DNA([3, 3, 1, 0, 2, 4]) and sn.spec.validate(dna) == dna
    assert nb.load().test_accuracy(dna, "cifar10") > 0


def test_validity_hook() -> None:
    net = nb.search_net(channels=4, cells_per_stage=1)
    sn = mx.oneshot.supernet(net, X)
    assert not sn.is_valid(mx.DNA([3, 3, 3, 0, 0, 0]))  # nothing reaches node 3
    assert not sn.is_valid(mx.DNA([0, 0, 3, 0, 1, 1]))  # nodes 1 and 2 are zero
    assert sn.is_valid(mx.DNA([0, 0, 3, 1, 1, 0]))
    assert sn.is_valid(mx.DNA([0, 0, 0, 1, 0, 0]))
    assert all(sn.is_valid(sn.random_dna(s)) for s in range(20))


def test_new_paths_and_weights_never_recompile(nb201) -> None:
    sn, variables = nb201

    @jax.jit
    def step(variables, arch):
        return sn.apply(variables, X, arch=arch, train=True, mutable=["batch_stats"])[0].sum()

    rng = np.random.default_rng(0)
    with log_compilations() as log:
        for _ in range(20):
            step(variables, Arch(index=jnp.asarray(sn.path(sn.random_dna(rng)))))
        for _ in range(20):
            step(variables, Arch(weights=jnp.asarray(rng.random((6, 5)), jnp.float32)))
    assert log.compiles["step"] == 2  # one per kind of Arch
    assert log.traces["step"] == 2


def test_partial_channels_runs_and_keeps_shapes() -> None:
    net = nb.search_net(channels=4, cells_per_stage=1)
    sn = mx.oneshot.supernet(net, X, partial_channels=2)
    variables = sn.init(jax.random.key(0), X)
    y = sn.apply(variables, X, arch=Arch(weights=jnp.full((6, 5), 0.2)))
    assert y.shape == (4, 10) and bool(jnp.all(jnp.isfinite(y)))
    conv = variables["params"]["stage0_cell0"]["mx~0~3"]["edge_0_1"]["conv"]["kernel"]
    assert conv.shape == (3, 3, 2, 2)  # half of the 4 channels go through the ops


@pytest.mark.slow
def test_verify_nb201_search_and_train_batch_norm() -> None:
    for bn in ("search", "train"):
        net = nb.search_net(channels=4, cells_per_stage=1, batch_norm=bn)
        sn = mx.oneshot.supernet(net, X)
        result = sn.verify(sn.init(jax.random.key(0), X), X, num=3)
        assert result.ok and result.decision is None, result


class _Cell(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        op = mx.oneof(["dense", "skip", "neg"], name="op")

        def run(o, h):
            if o == "dense":
                return nn.Dense(h.shape[-1], name="lin")(h)
            return h if o == "skip" else -h

        y = nn.BatchNorm(use_running_average=False, name="bn")(mx.dispatch(op, run, x))
        return y, None


class _Scanned(nn.Module):
    @nn.compact
    def __call__(self, x):
        cells = nn.scan(
            _Cell,
            variable_axes={"params": 0, "batch_stats": 0},
            split_rngs={"params": True},
            length=3,
        )
        return cells(name="cells")(x, None)[0]


@pytest.mark.parametrize("path_impl", ["onehot", "switch"])
def test_scanned_model(path_impl) -> None:
    x = jax.random.normal(jax.random.key(0), (4, 3))
    sn = mx.oneshot.supernet(_Scanned(), x, path_impl=path_impl)
    assert [p.id for p in sn.spec.columns] == ["op"]
    variables = sn.init(jax.random.key(0), x)
    for dna in sn.spec.iter_dna():
        child, cv = sn.child(dna), sn.child_variables(variables, dna)
        yc, updc = child.apply(cv, x, mutable=["batch_stats"])
        for arch, tol in (
            (Arch(weights=jnp.asarray(sn.one_hot(dna))), 0.0),
            (Arch(index=jnp.asarray(sn.path(dna))), 1e-5),
        ):
            y, upd = sn.apply(variables, x, arch=arch, mutable=["batch_stats"])
            assert maxdiff(y, yc) <= tol
            stats = sn.child_variables({**variables, **upd}, dna)["batch_stats"]
            assert maxdiff(stats, updc["batch_stats"]) <= tol
