"""`nasbench201.search_net(scan=..., remat=...)`: the supernet of a scanned or
rematerialized NB201 network is still the child of each DNA, with the same
DNASpec, the child's variable shapes, and gradients on every logit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import morphax as mx
from morphax.oneshot import Arch
from morphax.spaces import nasbench201 as nb

X = jax.random.normal(jax.random.key(1), (4, 8, 8, 3))
DNAS = [mx.DNA([3, 0, 1, 2, 4, 3]), mx.DNA([2, 3, 0, 4, 1, 2])]
# Jitted, XLA fuses the supernet and the child differently, which moves the
# last bits (tests/test_oneshot_supernet.py checks bit-exactness eagerly).
TOLERANCE = {"scan": 1e-5, "remat": 1e-5}


def maxdiff(a, b) -> float:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    return max(float(jnp.max(jnp.abs(p - q))) for p, q in zip(la, lb, strict=True))


def shapes(tree):
    return jax.tree.map(lambda a: a.shape, tree)


@pytest.mark.parametrize("layout", [pytest.param("scan", marks=pytest.mark.slow), "remat"])
def test_supernet_equals_child(layout: str) -> None:
    net = nb.search_net(channels=4, cells_per_stage=2, batch_norm="train", **{layout: True})
    sn = mx.oneshot.supernet(net, X)
    assert sn.spec == mx.dna_spec(nb.cell_space()) == mx.trace(net, X).spec
    variables = sn.init(jax.random.key(0), X)
    if layout == "scan":  # one stacked set of parameters per stage
        assert "stage0_cells" in variables["params"]
        stem = jax.tree.leaves(variables["params"]["stage0_cells"])[0]
        assert stem.shape[0] == 2
    tol = TOLERANCE[layout]
    # Jitted once each (a scan compiles even eagerly): arch and variables are inputs.
    sn_eval = jax.jit(lambda v, a: sn.apply(v, X, arch=a))
    sn_train = jax.jit(lambda v, a: sn.apply(v, X, arch=a, train=True, mutable=["batch_stats"]))
    for dna in DNAS:
        child, cv = sn.child(dna), sn.child_variables(variables, dna)
        assert shapes(cv) == shapes(jax.eval_shape(child.init, jax.random.key(0), X))
        yc = jax.jit(lambda v, child=child: child.apply(v, X))(cv)
        yct, updc = jax.jit(
            lambda v, child=child: child.apply(v, X, train=True, mutable=["batch_stats"])
        )(cv)
        for arch in (Arch(weights=jnp.asarray(sn.one_hot(dna))), Arch(index=sn.path(dna))):
            assert maxdiff(sn_eval(variables, arch), yc) <= tol
            y, upd = sn_train(variables, arch)
            assert maxdiff(y, yct) <= tol
            stats = sn.child_variables({**variables, **upd}, dna)["batch_stats"]
            assert maxdiff(stats, updc["batch_stats"]) <= tol


@pytest.mark.parametrize("layout", ["scan", "remat"])
def test_gradients_reach_every_logit(layout: str) -> None:
    net = nb.search_net(channels=4, cells_per_stage=2, **{layout: True})
    sn = mx.oneshot.supernet(net, X)
    variables = sn.init(jax.random.key(0), X)

    def loss(alpha: jax.Array) -> jax.Array:
        weights = jax.nn.softmax(alpha, axis=-1)
        y, _ = sn.apply(
            variables, X, arch=Arch(weights=weights), train=True, mutable=["batch_stats"]
        )
        return jnp.mean(y**2)

    g = np.asarray(jax.grad(loss)(jnp.zeros(sn.mask.shape)))
    assert np.all(np.isfinite(g))
    assert np.all(g[sn.mask] != 0.0)


def test_layout_flags_are_checked() -> None:
    with pytest.raises(TypeError, match=r"search_net needs scan True or False, but got scan=1"):
        nb.search_net(scan=1)  # type: ignore[arg-type]
