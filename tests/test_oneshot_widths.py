"""The supernet on a user module with widths: entangled widths, dispatch, a conditional decision.

The model mixes every kind of decision a supernet takes: a width in a
Flax field (`proj`, a `Dense` whose `features` is a `oneof`), a width
define-by-run (`fc`, and an anonymous one), a convolution's width followed by
a batch norm, a dispatched activation, and a choice of modules one of which
has its own width (a conditional decision). Variables are perturbed away
from their init (batch-norm biases and running statistics non-zero), so a
masked channel that leaks shows.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import morphax as mx
from morphax.oneshot import Arch

X = jax.random.normal(jax.random.key(1), (4, 6, 6, 2))
ACTS = {"relu": nn.relu, "tanh": jnp.tanh, "gelu": nn.gelu}


class Skip(nn.Module):
    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        return h


class Expand(nn.Module):
    """A candidate with its own width: `expand_width` is active only when it is chosen."""

    hidden: Any = mx.oneof([8, 16], name="expand_width")

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        y = nn.relu(nn.Dense(self.hidden, name="up")(h))
        return h + nn.Dense(h.shape[-1], name="down")(y)


class Net(nn.Module):
    proj: nn.Module
    block: Any = mx.oneof([Skip(), Expand()], name="block")

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = nn.Conv(4, (3, 3), name="stem")(x)
        x = nn.BatchNorm(use_running_average=not train, name="bn")(x)
        act = mx.oneof(list(ACTS), name="act")
        x = mx.dispatch(act, lambda a: ACTS[a](x))
        x = self.block(x)
        x = nn.Conv(features=mx.oneof([4, 8], name="conv_width"), kernel_size=(3, 3), name="conv")(
            x
        )
        x = nn.BatchNorm(use_running_average=not train, name="conv_bn")(x)
        x = jnp.mean(nn.relu(x), axis=(1, 2))
        x = nn.relu(self.proj(x))
        x = nn.relu(nn.Dense(features=mx.oneof([8, 16, 32], name="fc_width"), name="fc")(x))
        x = nn.Dense(features=mx.oneof([3, 6]), name="fc2")(x)
        return nn.Dense(3, name="out")(x)


def make_net() -> Net:
    # The Dense is passed, not a field default: the symbolic walk skips default fields.
    return Net(proj=nn.Dense(features=mx.oneof([8, 16, 32], name="proj_width")))


def maxdiff(a: Any, b: Any) -> float:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    return max(float(jnp.max(jnp.abs(p - q))) for p, q in zip(la, lb, strict=True))


def random_variables(sn: Any, x: Any, seed: int = 7) -> Any:
    """Variables of the supernet's shapes away from any init: parameters (biases included)
    and running means N(0, 0.5), running variances in [0.5, 1.5] (an eager init compiles
    each initializer: seconds)."""
    rng = np.random.default_rng(seed)

    def fill(path: Any, s: Any) -> jax.Array:
        var = "var" in jax.tree_util.keystr(path)
        value = rng.uniform(0.5, 1.5, s.shape) if var else rng.normal(0.0, 0.5, s.shape)
        return jnp.asarray(value, s.dtype)

    return jax.tree_util.tree_map_with_path(fill, jax.eval_shape(sn.init, jax.random.key(0), x))


@pytest.fixture(scope="module")
def net():
    model = make_net()
    sn = mx.oneshot.supernet(model, X)
    switch = mx.oneshot.supernet(model, X, path_impl="switch")
    variables = random_variables(sn, X)
    return sn, switch, variables, list(sn.spec.iter_dna())


def test_spec_is_the_models_own(net) -> None:
    sn, switch, _, dnas = net
    assert sn.spec == mx.trace(make_net(), X).spec == switch.spec
    assert [p.id for p in sn.spec.columns] == [
        "proj_width",
        "block",
        "expand_width",
        "act",
        "conv_width",
        "fc_width",
        "oneof#0",
    ]
    assert sn.sizes == (3, 2, 2, 3, 2, 3, 2) and sn.num_candidates == 3
    assert sn.mask.sum() == sum(sn.sizes)
    assert len(dnas) == sn.spec.space_size == 3 * (1 + 2) * 3 * 2 * 3 * 2


def test_fields_only_model_spec_equals_dna_spec() -> None:
    class Fields(nn.Module):
        dense: nn.Module
        act: Any = mx.oneof(["relu", "tanh"], name="act")

        @nn.compact
        def __call__(self, x: jax.Array) -> jax.Array:
            y = self.dense(x)
            return mx.dispatch(self.act, lambda a: nn.relu(y) if a == "relu" else jnp.tanh(y))

    model = Fields(dense=nn.Dense(features=mx.oneof([4, 8], name="w")))
    x = jnp.ones((2, 3))
    sn = mx.oneshot.supernet(model, x)
    assert sn.spec == mx.dna_spec(model)
    variables = sn.init(jax.random.key(0), x)
    assert variables["params"]["dense"]["kernel"].shape == (3, 8)  # the largest width
    for dna in sn.spec.iter_dna():
        want = sn.child(dna).apply(sn.child_variables(variables, dna), x)
        got = sn.apply(variables, x, arch=Arch(weights=jnp.asarray(sn.one_hot(dna))))
        assert got.shape == (2, 8) and maxdiff(got[:, : want.shape[1]], want) <= 1e-6
        assert bool(jnp.all(got[:, want.shape[1] :] == 0))


def check_mode(sn, variables, dna, arch) -> None:
    """Eval and train mode: outputs and updated batch statistics equal the child's."""
    child = sn.child(dna)
    cv = sn.child_variables(variables, dna)
    assert maxdiff(sn.apply(variables, X, arch=arch), child.apply(cv, X)) <= 1e-5
    y, upd = sn.apply(variables, X, arch=arch, train=True, mutable=["batch_stats"])
    yc, updc = child.apply(cv, X, train=True, mutable=["batch_stats"])
    assert maxdiff(y, yc) <= 1e-5
    stats = sn.child_variables({**variables, **upd}, dna)["batch_stats"]
    assert maxdiff(stats, updc["batch_stats"]) <= 1e-5
    # The statistics did move (train mode is not eval mode in disguise).
    assert maxdiff(stats, cv["batch_stats"]) > 1e-3


@settings(max_examples=4, deadline=None)
@given(st.data())
def test_one_hot_supernet_equals_child(net, data) -> None:
    sn, switch, variables, dnas = net
    dna = dnas[data.draw(st.integers(0, len(dnas) - 1), label="dna index")]
    check_mode(sn, variables, dna, Arch(weights=jnp.asarray(sn.one_hot(dna))))
    check_mode(sn, variables, dna, Arch(index=jnp.asarray(sn.path(dna))))
    check_mode(switch, variables, dna, Arch(index=jnp.asarray(sn.path(dna))))


def test_conditional_decision_both_ways(net) -> None:
    """A DNA with the conditional width active and one without, in all three modes."""
    sn, switch, variables, _ = net
    for dna in (mx.DNA([0, 1, 1, 2, 0, 1, 1]), mx.DNA([2, 0, 0, 1, 0, 0])):
        check_mode(switch, variables, dna, Arch(index=jnp.asarray(sn.path(dna))))
        check_mode(sn, variables, dna, Arch(weights=jnp.asarray(sn.one_hot(dna))))


def test_child_variables_shapes(net) -> None:
    sn, _, variables, _ = net
    for dna in (mx.DNA([0, 1, 0, 2, 0, 1, 1]), mx.DNA([1, 0, 1, 1, 2, 0])):
        child = sn.child(dna)
        want = jax.eval_shape(child.init, jax.random.key(0), X)
        got = sn.child_variables(variables, dna)
        assert jax.tree.map(jnp.shape, got) == jax.tree.map(jnp.shape, want)
        assert "mx~" not in str(jax.tree_util.tree_structure(got))
    # The conditional candidate's variables belong to the child that chooses it only.
    assert "block" in sn.child_variables(variables, mx.DNA([0, 1, 0, 0, 0, 0, 0]))["params"]
    assert "block" not in sn.child_variables(variables, mx.DNA([0, 0, 0, 0, 0, 0]))["params"]


def test_export_sets_only_active_decisions(net) -> None:
    sn, _, _, _ = net
    logits = np.zeros((sn.rows, sn.num_candidates), np.float32)
    best = [2, 0, 1, 1, 1, 0, 1]  # block 0 (Skip): expand_width is inactive
    logits[np.arange(sn.rows), best] = 1.0
    logits[~sn.mask] = 100.0  # padding never wins
    dna = sn.export(logits)
    assert dna == mx.DNA([2, 0, 1, 1, 0, 1]) and sn.spec.validate(dna) == dna
    assert "expand_width" not in sn.spec.to_dict(dna)
    logits[1] = [0.0, 1.0, 100.0]
    dna = sn.export(logits)
    assert dna == mx.DNA([2, 1, 1, 1, 1, 0, 1])
    assert sn.spec.to_dict(dna)["expand_width"] == 1  # the index of 16
    assert sn.export(jnp.asarray(sn.one_hot(dna))) == dna


def test_soft_architecture_gradients(net) -> None:
    """Softmax weights (DARTS): gradients are finite, non-zero on every valid logit (widths
    included), exactly zero on padding."""
    sn, _, variables, _ = net

    def out(logits):
        w = jax.nn.softmax(jnp.where(sn.mask, logits, -jnp.inf))
        return sn.apply(variables, X, arch=Arch(weights=w))

    logits = jax.random.normal(jax.random.key(3), (sn.rows, sn.num_candidates))
    g = jax.grad(lambda a: jnp.sum(out(a) ** 2))(logits)
    assert bool(jnp.all(jnp.isfinite(g)))
    assert bool(jnp.all((g != 0) == sn.mask))


def test_verify_finds_nothing_on_a_decomposing_model(net) -> None:
    sn, _, variables, _ = net
    result = sn.verify(variables, X, num=8)
    assert result.ok and result.max_diff < 1e-5, result
    assert result.decision is None and result.module is None
    assert len(result.dnas) == 8 and result.train_diff > 0.0


class _NormAfterWidth(nn.Module):
    norm: str

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = nn.Dense(8, name="stem")(x)
        act = mx.oneof(["relu", "tanh"], name="act")
        x = mx.dispatch(act, lambda a: nn.relu(x) if a == "relu" else jnp.tanh(x))
        x = nn.Dense(features=mx.oneof([4, 8, 16], name="width"), name="wide")(x)
        if self.norm == "layer":
            x = nn.LayerNorm(name="norm")(x)
        elif self.norm == "batch":
            x = nn.BatchNorm(use_running_average=not train, name="norm")(x)
        else:  # an activation between the width and the batch norm: not masked
            x = nn.BatchNorm(use_running_average=not train, name="norm")(jnp.tanh(x))
        return nn.Dense(3, name="out")(x)


@pytest.mark.parametrize("norm", ["layer", "tanh_batch"])
def test_verify_names_where_a_model_does_not_decompose(norm) -> None:
    """A LayerNorm averages over all 16 channels, the child's over its 4 or 8; a batch norm
    after an activation fills the masked channels with its bias (the supernet masks only a
    batch norm right after the masked module)."""
    x = jax.random.normal(jax.random.key(1), (6, 5))
    sn = mx.oneshot.supernet(_NormAfterWidth(norm), x)
    variables = random_variables(sn, x)
    result = sn.verify(variables, x, num=4)
    assert not result.ok and result.max_diff > 1e-2
    assert result.decision == "width" and result.module == "norm"
    assert sn.spec.to_dict(result.worst_dna)["width"] != 2  # 16: nothing masked
    # the reported eval difference is the outputs' own, computed here directly
    direct = 0.0
    for dna in result.dnas:
        got = sn.apply(variables, x, arch=Arch(weights=jnp.asarray(sn.one_hot(dna))))
        want = sn.child(dna).apply(sn.child_variables(variables, dna), x)
        direct = max(direct, float(jnp.max(jnp.abs(got - want))))
    assert direct > 1e-2 and result.eval_diff == pytest.approx(direct, rel=1e-5)
    assert result.max_diff >= result.eval_diff


def test_batch_norm_after_a_width_decomposes() -> None:
    """Its bias and running mean would fill the masked channels; the supernet masks them."""
    x = jax.random.normal(jax.random.key(1), (6, 5))
    sn = mx.oneshot.supernet(_NormAfterWidth("batch"), x)
    variables = random_variables(sn, x)
    result = sn.verify(variables, x, num=4)
    assert result.ok and result.decision is None, result
    dna = mx.DNA([0, 0])  # width 4 of 16
    _, state = sn.apply(
        variables,
        x,
        arch=Arch(weights=jnp.asarray(sn.one_hot(dna))),
        train=True,
        mutable=["batch_stats", "intermediates"],
        capture_intermediates=lambda m, _: m.name == "norm",
    )
    (norm,) = state["intermediates"]["norm"]["__call__"]
    assert norm.shape == (6, 16) and bool(jnp.all(norm[:, 4:] == 0))
    assert bool(jnp.all(jnp.any(norm[:, :4] != 0, axis=0)))


class _WideCell(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array, _: None) -> tuple[jax.Array, None]:
        h = nn.Dense(features=mx.oneof([4, 8, 16], name="hidden"), name="up")(x)
        h = nn.relu(nn.BatchNorm(use_running_average=False, name="bn")(h))
        y = nn.Dense(x.shape[-1], name="down")(h)
        act = mx.oneof(["relu", "tanh"], name="act")
        return x + mx.dispatch(act, lambda a: nn.relu(y) if a == "relu" else jnp.tanh(y)), None


class _ScannedWidths(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cells = nn.scan(
            _WideCell,
            variable_axes={"params": 0, "batch_stats": 0},
            split_rngs={"params": True},
            length=3,
        )
        return cells(name="cells")(x, None)[0]


@pytest.mark.parametrize("path_impl", ["onehot", "switch"])
def test_widths_under_scan(path_impl) -> None:
    """Three scanned cells share one width decision: stacked kernels at the largest width."""
    x = jax.random.normal(jax.random.key(0), (5, 6))
    sn = mx.oneshot.supernet(_ScannedWidths(), x, path_impl=path_impl)
    assert sn.row_ids == ("hidden", "act")
    variables = random_variables(sn, x)
    assert variables["params"]["cells"]["up"]["kernel"].shape == (3, 6, 16)
    for dna in (mx.DNA([0, 1]), mx.DNA([1, 0])):  # widths 4 and 8 of 16
        child, cv = sn.child(dna), sn.child_variables(variables, dna)
        assert jax.tree.map(jnp.shape, cv) == jax.tree.map(
            jnp.shape, jax.eval_shape(child.init, jax.random.key(0), x)
        )
        yc, updc = child.apply(cv, x, mutable=["batch_stats"])
        for arch in (
            Arch(weights=jnp.asarray(sn.one_hot(dna))),
            Arch(index=jnp.asarray(sn.path(dna))),
        ):
            y, upd = sn.apply(variables, x, arch=arch, mutable=["batch_stats"])
            assert maxdiff(y, yc) <= 1e-5
            stats = sn.child_variables({**variables, **upd}, dna)["batch_stats"]
            assert maxdiff(stats, updc["batch_stats"]) <= 1e-5
