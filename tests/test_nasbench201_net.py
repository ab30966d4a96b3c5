"""The NAS-Bench-201 network: shapes, parameters, cell semantics, the shared
DNA space with the tabular benchmark, training, JSON and errors.

Shapes and parameter counts come from `jax.eval_shape` (no compilation); the
runs use "rbg" keys, which compile Flax initializers much faster than
threefry on CPU.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import morphax as mx
from morphax.spaces import nasbench201 as nb
from morphax.spaces.nasbench201_net import NB201Cell, NB201Net, net_space, to_net
from morphax.train import fit, load_digits

CONV3 = ("nor_conv_3x3",) * 6
NONE = ("none",) * 6
SKIP = ("skip_connect",) * 6
BEST_CIFAR10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def _key(seed: int = 0) -> jax.Array:
    return jax.random.key(seed, impl="rbg")


def _shapes(net: nn.Module, shape: tuple[int, ...]) -> tuple[Any, Any]:
    """The variables and output of `net` on inputs of `shape`, as shapes only."""
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    variables = jax.eval_shape(net.init, _key(), x)
    return variables, jax.eval_shape(net.apply, variables, x)


def _num_params(net: nn.Module, shape: tuple[int, ...] = (1, 32, 32, 3)) -> int:
    variables, _ = _shapes(net, shape)
    return sum(math.prod(p.shape) for p in jax.tree.leaves(variables["params"]))


@pytest.mark.parametrize(
    ("shape", "num_classes"), [((2, 32, 32, 3), 10), ((3, 8, 8, 1), 7), ((1, 16, 12, 2), 100)]
)
def test_output_shapes(shape: tuple[int, ...], num_classes: int) -> None:
    net = to_net(BEST_CIFAR10, channels=4, cells_per_stage=1, num_classes=num_classes)
    variables, out = _shapes(net, shape)
    assert out.shape == (shape[0], num_classes)
    assert set(variables) == {"params", "batch_stats"}
    params = variables["params"]
    assert params["classifier"]["kernel"].shape == (16, num_classes)  # 4C features
    assert params["reduce2"]["shortcut"]["kernel"].shape == (1, 1, 8, 16)


def test_param_counts_follow_the_ops() -> None:
    c, n = 4, 2
    skeleton = _num_params(NB201Net(cell=NONE, channels=c, cells_per_stage=n))
    # Ops without parameters add none: `none`, `skip_connect`, `avg_pool_3x3`.
    ops: tuple[str, ...]
    for ops in (SKIP, ("avg_pool_3x3",) * 6, ("none", "skip_connect", "avg_pool_3x3") * 2):
        assert _num_params(NB201Net(cell=ops, channels=c, cells_per_stage=n)) == skeleton
    # A ReLU-Conv-BN edge of width w adds k*k*w*w kernel weights and 2*w BN ones.
    per_edge = {
        "nor_conv_3x3": lambda w: 9 * w * w + 2 * w,
        "nor_conv_1x1": lambda w: w * w + 2 * w,
    }
    for ops in (CONV3, nb.parse_arch_string(BEST_CIFAR10), ("nor_conv_1x1",) + ("none",) * 5):
        extra = sum(n * per_edge[op](w) for w in (c, 2 * c, 4 * c) for op in ops if op in per_edge)
        assert _num_params(NB201Net(cell=ops, channels=c, cells_per_stage=n)) == skeleton + extra


def test_param_counts_of_the_nasbench201_setting() -> None:
    # C=16, N=5 on CIFAR-10 images. The paper's cells range from about 0.07M
    # parameters (no convolutions) to 1.53M (all 3x3 convolutions).
    skeleton = _num_params(to_net(NONE, cells_per_stage=1))  # `none` cells add nothing
    assert skeleton == 73_306
    conv3_cell = sum(9 * w * w + 2 * w for w in (16, 32, 64)) * 6
    assert skeleton + 5 * conv3_cell == 1_531_546
    assert _num_params(to_net(BEST_CIFAR10)) == 1_073_466


def test_cell_wiring_follows_the_edge_order() -> None:
    x = jax.random.normal(_key(), (2, 4, 4, 3))

    def run(ops: tuple[str, ...]) -> jax.Array:
        cell = NB201Cell(ops=ops)
        variables = cell.init(_key(), x)
        assert "params" not in variables  # parameter-free ops
        return jnp.asarray(cell.apply(variables, x))

    np.testing.assert_array_equal(run(NONE), np.zeros(x.shape))
    np.testing.assert_allclose(run(SKIP), 4 * x)  # node1 = x, node2 = 2x, node3 = 4x
    chain = ("skip_connect", "none", "skip_connect", "none", "none", "skip_connect")
    np.testing.assert_allclose(run(chain), x)  # 0->1->2->3
    broken = ("none", "none", "skip_connect", "none", "none", "skip_connect")
    np.testing.assert_array_equal(run(broken), np.zeros(x.shape))  # node 1 is zeros
    direct = ("none",) * 3 + ("skip_connect", "none", "none")
    np.testing.assert_allclose(run(direct), x)  # only edge 0->3
    # 3x3 average pooling, stride 1; the padding is not counted (as in the reference).
    pooled = run(("none",) * 3 + ("avg_pool_3x3", "none", "none"))
    np.testing.assert_allclose(pooled[:, 1, 2], x[:, 0:3, 1:4].mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(pooled[:, 0, 0], x[:, 0:2, 0:2].mean(axis=(1, 2)), rtol=1e-5)


def test_all_none_cells_give_a_constant_output() -> None:
    net = NB201Net(cell=NONE, channels=2, cells_per_stage=1)

    @jax.jit  # one compilation instead of one per op
    def run(x: jax.Array) -> tuple[jax.Array, Any]:
        return net.apply(
            net.init(_key(), x),
            x,
            capture_intermediates=lambda module, _: isinstance(module, NB201Cell),
            mutable=["intermediates"],
        )

    logits, state = run(jax.random.normal(_key(1), (4, 8, 8, 1)))
    cells = state["intermediates"]
    assert sorted(cells) == ["stage0_cell0", "stage1_cell0", "stage2_cell0"]
    for name, out in cells.items():
        np.testing.assert_array_equal(out["__call__"][0], 0.0, err_msg=name)
    # Every example gets the same logits: nothing of the input reaches the classifier.
    np.testing.assert_allclose(logits, np.broadcast_to(logits[:1], logits.shape), rtol=1e-6)


def test_same_dna_space_as_the_tabular_benchmark() -> None:
    space, tabular = mx.dna_spec(net_space()), mx.dna_spec(nb.cell_space())
    assert space == tabular
    assert space.fingerprint == tabular.fingerprint
    assert [p.id for p in space.columns] == [f"edge_{s}_{d}" for s, d in nb.EDGES]
    assert space.space_size == nb.NUM_ARCHS
    dna = mx.DNA([1, 0, 0, 2, 3, 4])
    net = mx.materialize(net_space(channels=8, cells_per_stage=2), dna)
    assert isinstance(net, NB201Net) and (net.channels, net.cells_per_stage) == (8, 2)
    assert net.cell == mx.materialize(nb.cell_space(), dna)
    assert mx.encode(net_space(channels=8, cells_per_stage=2), net) == dna
    assert nb.load().arch_index(net.cell) == nb.load().dna_to_index(dna)
    # A DNA made by the tabular space's spec is accepted by the network's space.
    tabular_dna = tabular.random_dna(3)
    child = mx.space(net_space(channels=4)).materialize(tabular_dna)
    assert child.cell == mx.materialize(nb.cell_space(), tabular_dna)


def test_to_net_takes_every_form_of_an_architecture() -> None:
    bench = nb.load()
    best = bench.best("cifar10")
    dna = mx.DNA([int(v) for v in bench.ops[best.index]])
    want = to_net(best.arch, channels=4)
    for arch in (
        best.index,
        dna,
        nb.parse_arch_string(best.arch),
        list(dna.values),
        nb.Cell(edges=nb.parse_arch_string(best.arch)),
    ):
        assert to_net(arch, channels=4) == want
    assert mx.materialize(net_space(channels=4), dna) == want


@pytest.mark.slow
def test_best_tabular_architecture_trains_on_digits() -> None:
    bench = nb.load()
    dna = mx.DNA([int(v) for v in bench.ops[bench.best("cifar10").index]])
    net = mx.materialize(net_space(channels=4, cells_per_stage=1), dna)
    assert nb.arch_string(net.cell) == BEST_CIFAR10
    train, test = load_digits()
    result = fit(net, optax.adam(1e-2), train, valid_data=test, epochs=1, key=_key())
    metrics = result.metrics
    assert metrics["steps"] == len(train) // 64
    for name in ("loss", "accuracy", "train_loss"):
        assert math.isfinite(metrics[name]), name
    assert metrics["accuracy"] > 0.2  # well above chance (0.1) after one epoch
    assert metrics["params"] == _num_params(net, (1, 8, 8, 1))
    assert "batch_stats" in result.state.model_state


def test_json_round_trip_of_space_and_child() -> None:
    space = net_space(channels=8, cells_per_stage=3, num_classes=100)
    back = mx.from_json(mx.to_json(space))
    assert isinstance(back, NB201Net)
    assert mx.dna_spec(back) == mx.dna_spec(space)
    assert (back.channels, back.cells_per_stage, back.num_classes) == (8, 3, 100)
    child = mx.materialize(space, mx.DNA([3, 3, 3, 1, 3, 2]))
    assert '"morphax.spaces.NB201Net"' in mx.to_json(child)
    assert mx.from_json(mx.to_json(child)) == child


def test_errors() -> None:
    ops_list = r"\('none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3'\)"
    with pytest.raises(ValueError, match=rf"edge 2 \(1->2\) has op 'conv_3x3'.*{ops_list}"):
        NB201Net(cell=("none", "none", "conv_3x3", "none", "none", "none"))
    with pytest.raises(ValueError, match=r"needs 6 op names, one per edge .* but got 2"):
        NB201Net(cell=["none", "none"])
    with pytest.raises(TypeError, match="takes 6 op names"):
        NB201Net(cell="nor_conv_3x3")
    with pytest.raises(
        ValueError, match=rf"NB201Cell: edge 0 \(0->1\) has op 'max_pool_3x3'.*{ops_list}"
    ):
        NB201Cell(ops=("max_pool_3x3",) + NONE[1:]).init(_key(), jnp.ones((1, 4, 4, 1)))
    with pytest.raises(ValueError, match="needs channels >= 1 .* but got channels=0"):
        NB201Net(cell=SKIP, channels=0)
    with pytest.raises(ValueError, match="needs cells_per_stage >= 1"):
        net_space(cells_per_stage=0)
    with pytest.raises(ValueError, match="H and W divisible by 4 .* got shape \\(1, 6, 6, 1\\)"):
        _shapes(NB201Net(cell=SKIP, channels=2, cells_per_stage=1), (1, 6, 6, 1))
    with pytest.raises(ValueError, match=r"still holds hyper-values: .* materialize it with a DNA"):
        _shapes(net_space(channels=2, cells_per_stage=1), (1, 8, 8, 1))
    with pytest.raises(ValueError, match="malformed NAS-Bench-201 arch string"):
        to_net("|conv~0|")


@pytest.mark.parametrize("kind", ["net", "search_net"])
def test_a_dead_node_is_not_constant_folded(kind: str) -> None:
    """Node 1 is all `none`, and an avg-pool reads it. Its zeros are hidden from
    XLA, which would otherwise constant-fold that pool at every compile (tens of
    seconds for a CIFAR-sized child on CPU): the compiled step keeps that pool, the
    cell's only 3x3 one, as a reduce-window in each of the 3 cells."""
    ops = ("none", "nor_conv_1x1", "none", "nor_conv_1x1", "avg_pool_3x3", "skip_connect")
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
    if kind == "net":
        model: Any = NB201Net(cell=ops, channels=4, cells_per_stage=1)
    else:
        net = nb.search_net(channels=4, cells_per_stage=1)
        model = mx.materialize(mx.trace(net, x), mx.DNA([nb.OPS.index(o) for o in ops]))
    variables = model.init(jax.random.PRNGKey(1), x)
    hlo = jax.jit(model.apply).lower(variables, x).compile().as_text()
    pools = [ln for ln in hlo.splitlines() if "reduce-window(" in ln and "size=1x3x3x1" in ln]
    assert len(pools) >= 3, hlo  # folded, there are none
    y = model.apply(variables, x)
    assert y.shape == (2, 10) and bool(jnp.all(jnp.isfinite(y)))
