"""Compile behaviour of morphax children under `jax.jit`.

Each jitted entry point below increments a counter in its body. The body runs
only while JAX traces it, so the counter counts traces, and
`morphax.testing.log_compilations()` counts the XLA executables JAX builds
(from its public `jax.monitoring` events). With those we show:

* static spaces: materialized Flax modules with different fields, passed as a
  static argument, compile once each; equal modules (the same DNA
  materialized twice) share one executable;
* define-by-run spaces: `mx.DynamicChild` objects with different DNA compile
  anew and never reuse another child's program (their outputs match a
  non-jitted run of each child, even when the parameter shapes are equal); the
  same DNA materialized twice compiles once;
* the pitfall they avoid: a resolver set *outside* jit is invisible to jit's
  cache, so a second child silently runs the first child's program.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import morphax as mx
from morphax.testing import log_compilations

X = jnp.asarray(np.linspace(-1.0, 1.0, 12).reshape(3, 4), jnp.float32)


def key(seed: int = 0) -> jax.Array:
    # "rbg" keys compile Flax initializers much faster than threefry on CPU.
    return jax.random.key(seed, impl="rbg")


@mx.register(name="tests.test_jit.negate")
def negate(x: jax.Array) -> jax.Array:
    return -x


@mx.register(name="tests.test_jit.MLP")
class MLP(nn.Module):
    """A static-space model: its choices sit in its fields."""

    width: int = 3
    activation: Callable[[jax.Array], jax.Array] = nn.relu

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = nn.Dense(self.width, name="hidden")(x)
        return nn.Dense(2, name="out")(self.activation(h))


class DbrMLP(nn.Module):
    """A define-by-run model: its choices are made while `__call__` runs."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        width = mx.oneof([3, 5], name="width")
        act = mx.oneof([nn.relu, negate], name="act")
        h = nn.Dense(width, name="hidden")(x)
        return nn.Dense(2, name="out")(act(h))


class Stack(nn.Module):
    widths: Sequence[int]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for w in self.widths:
            x = nn.Dense(w)(x)
        return x


def static_space() -> MLP:
    return MLP(width=mx.oneof([3, 5]), activation=mx.oneof([nn.relu, negate]))


@functools.cache
def dbr_space() -> mx.DynamicSpace:
    return mx.trace(DbrMLP(), X)


class EntryPoints:
    """Fresh jitted `init`/`apply` entry points, with trace counters."""

    def __init__(self) -> None:
        self.traces = {"init": 0, "apply": 0}

        @functools.partial(jax.jit, static_argnums=0)
        def init(model: Any, rng: jax.Array, x: jax.Array) -> Any:
            self.traces["init"] += 1
            return model.init(rng, x)

        @functools.partial(jax.jit, static_argnums=0)
        def apply(model: Any, params: Any, x: jax.Array) -> jax.Array:
            self.traces["apply"] += 1
            return model.apply(params, x)

        self.init, self.apply = init, apply


@functools.cache
def params_for(width: int) -> Any:
    """Deterministic parameters for MLP / DbrMLP of `width` (no PRNG, nothing to compile)."""
    rng = np.random.default_rng(width)

    def dense(n_in: int, n_out: int) -> dict[str, jax.Array]:
        return {
            "kernel": jnp.asarray(rng.normal(size=(n_in, n_out)), jnp.float32),
            "bias": jnp.asarray(rng.normal(size=(n_out,)), jnp.float32),
        }

    return {"params": {"hidden": dense(4, width), "out": dense(width, 2)}}


def kernel_shapes(params: Any) -> dict[str, tuple[int, ...]]:
    return {name: tuple(p["kernel"].shape) for name, p in params["params"].items()}


def test_counters_count_traces_not_calls() -> None:
    traces = 0

    @jax.jit
    def f(x: jax.Array) -> jax.Array:
        nonlocal traces
        traces += 1
        return x * 2

    with log_compilations() as log:
        for _ in range(3):
            f(X)
        assert traces == 1 and log.traces["f"] == 1 and log.compiles["f"] == 1
        f(X[:2])  # a new shape traces again
    assert traces == 2 and log.traces["f"] == 2 and log.compiles["f"] == 2


# ---------------------------------------------------------------------------
# Static spaces: materialized Flax modules as static arguments.


def test_static_children_with_different_dna_compile_once_each() -> None:
    ep = EntryPoints()
    narrow = mx.materialize(static_space(), mx.DNA([0, 0]))
    wide = mx.materialize(static_space(), mx.DNA([1, 0]))
    with log_compilations() as log:
        p_narrow, p_wide = ep.init(narrow, key(), X), ep.init(wide, key(), X)
        assert kernel_shapes(p_narrow) == {"hidden": (4, 3), "out": (3, 2)}
        assert kernel_shapes(p_wide) == {"hidden": (4, 5), "out": (5, 2)}
        for _ in range(3):
            for model, params in ((narrow, p_narrow), (wide, p_wide)):
                out = ep.apply(model, params, X)
                np.testing.assert_allclose(out, model.apply(params, X), 1e-6)
                ep.init(model, key(), X)
    assert ep.traces == {"init": 2, "apply": 2}
    assert log.compiles["init"] == 2 and log.compiles["apply"] == 2


def test_static_same_dna_materialized_twice_is_a_cache_hit() -> None:
    ep = EntryPoints()
    space = mx.space(static_space())
    first = space.materialize(mx.DNA([1, 1]))
    again = space.materialize([1, 1])
    from_raw = mx.materialize(static_space(), mx.DNA([1, 1]))
    from_json = mx.from_json(mx.to_json(first))
    params = params_for(5)
    ref = first.apply(params, X)
    with log_compilations() as log:
        for model in (first, again, from_raw, from_json):
            assert model == first and hash(model) == hash(first)
            np.testing.assert_allclose(ep.apply(model, params, X), ref, 1e-6)
    assert again is not first and from_raw is not first and from_json is not first
    assert ep.traces["apply"] == 1
    assert log.compiles["apply"] == 1


def test_static_activation_choice_is_never_stale() -> None:
    """Equal parameter shapes, different functions: a stale executable would go unnoticed."""
    ep = EntryPoints()
    relu = mx.materialize(static_space(), mx.DNA([0, 0]))
    neg = mx.materialize(static_space(), mx.DNA([0, 1]))
    params = params_for(3)
    for model in (relu, neg):
        assert kernel_shapes(jax.eval_shape(model.init, key(), X)) == kernel_shapes(params)
    out_relu, out_neg = ep.apply(relu, params, X), ep.apply(neg, params, X)
    assert not np.allclose(out_relu, out_neg)
    np.testing.assert_allclose(out_relu, relu.apply(params, X), 1e-6)
    np.testing.assert_allclose(out_neg, neg.apply(params, X), 1e-6)
    assert ep.traces["apply"] == 2


def test_tuple_of_oneof_field_child_is_a_static_argument() -> None:
    ep = EntryPoints()
    space = Stack(widths=(mx.oneof([2, 3, 4]), mx.oneof([2, 3, 4])))
    child = mx.materialize(space, mx.DNA([0, 2]))
    assert child.widths == (2, 4)
    params = ep.init(child, key(), X)
    assert kernel_shapes(params) == {"Dense_0": (4, 2), "Dense_1": (2, 4)}
    ep.init(mx.materialize(space, mx.DNA([0, 2])), key(), X)
    assert ep.traces["init"] == 1


# ---------------------------------------------------------------------------
# Define-by-run: DynamicChild as a static argument.


def test_dynamic_children_with_different_dna_are_never_stale() -> None:
    """relu vs negate after the same Dense: equal params, different programs."""
    ep = EntryPoints()
    relu = dbr_space().materialize(mx.DNA([0, 0]))
    neg = dbr_space().materialize(mx.DNA([0, 1]))
    params = params_for(3)
    for model in (relu, neg):
        assert kernel_shapes(jax.eval_shape(model.init, key(), X)) == kernel_shapes(params)
    ref_relu, ref_neg = relu.apply(params, X), neg.apply(params, X)  # not jitted
    assert not np.allclose(ref_relu, ref_neg)
    with log_compilations() as log:
        for _ in range(3):  # interleaved calls: each must get its own executable
            np.testing.assert_allclose(ep.apply(relu, params, X), ref_relu, 1e-6)
            np.testing.assert_allclose(ep.apply(neg, params, X), ref_neg, 1e-6)
    assert ep.traces["apply"] == 2
    assert log.compiles["apply"] == 2


def test_dynamic_children_with_different_shapes_compile_once_each() -> None:
    ep = EntryPoints()
    narrow = dbr_space().materialize(mx.DNA([0, 0]))
    wide = dbr_space().materialize(mx.DNA([1, 0]))
    for _ in range(2):
        p_narrow, p_wide = ep.init(narrow, key(), X), ep.init(wide, key(), X)
    assert kernel_shapes(p_narrow) == {"hidden": (4, 3), "out": (3, 2)}
    assert kernel_shapes(p_wide) == {"hidden": (4, 5), "out": (5, 2)}
    assert ep.apply(narrow, p_narrow, X).shape == ep.apply(wide, p_wide, X).shape == (3, 2)
    assert ep.traces == {"init": 2, "apply": 2}


def test_dynamic_same_dna_twice_compiles_once() -> None:
    ep = EntryPoints()
    first = dbr_space().materialize(mx.DNA([1, 1]))
    again = dbr_space().materialize([1, 1])
    retraced = mx.trace(dbr_space().target, X).materialize(mx.DNA([1, 1]))
    sampled = next(c for c in mx.random_sample(dbr_space(), 50, seed=0) if c.dna == first.dna)
    with log_compilations() as log:
        params = ep.init(first, key(), X)
        ref = first.apply(params, X)
        for child in (first, again, retraced, sampled):
            assert child == first and hash(child) == hash(first)
            ep.init(child, key(), X)
            np.testing.assert_allclose(ep.apply(child, params, X), ref, 1e-6)
    assert again is not first and retraced is not first and sampled is not first
    assert ep.traces == {"init": 1, "apply": 1}
    assert log.compiles["init"] == 1 and log.compiles["apply"] == 1


def test_jit_of_a_child_method_is_not_stale() -> None:
    """`jax.jit(child.apply)`: the resolver is set inside the wrapped method, during tracing."""
    relu = dbr_space().materialize(mx.DNA([0, 0]))
    neg = dbr_space().materialize(mx.DNA([0, 1]))
    params = params_for(3)
    jit_relu, jit_neg = jax.jit(relu.apply), jax.jit(neg.apply)
    np.testing.assert_allclose(jit_relu(params, X), relu.apply(params, X), 1e-6)
    np.testing.assert_allclose(jit_neg(params, X), neg.apply(params, X), 1e-6)
    assert not np.allclose(jit_relu(params, X), jit_neg(params, X))


# ---------------------------------------------------------------------------
# The pitfall: a resolver set outside jit.


def test_naive_resolver_outside_jit_is_stale() -> None:
    """Negative control. DON'T set the resolver outside a jitted function.

    `with mx.resolving(resolver): jitted(params, x)` runs the define-by-run
    choices only while jit *traces*. The resolver lives in a context variable
    that is not part of jit's cache key (the function, the shapes and dtypes
    of the arguments, the static arguments), so the second call, made under
    another child's resolver, hits the cache and silently runs the first
    child's program. Here both children have equal parameter shapes, so
    nothing fails: only the trace counter (1 trace for 2 architectures) and
    a comparison with a non-jitted run reveal it.

    Passing the `mx.DynamicChild` itself as a static argument (and calling
    `child.apply` inside the jitted body) puts the child's DNA into the cache
    key, which is what the second half of this test checks with the same
    inputs.
    """
    space = dbr_space()
    module = space.target
    relu = space.materialize(mx.DNA([0, 0]))
    neg = space.materialize(mx.DNA([0, 1]))
    params = params_for(3)
    ref_relu, ref_neg = relu.apply(params, X), neg.apply(params, X)
    assert not np.allclose(ref_relu, ref_neg)

    naive_traces = 0

    @jax.jit
    def naive_apply(params: Any, x: jax.Array) -> jax.Array:
        nonlocal naive_traces
        naive_traces += 1
        return module.apply(params, x)

    with log_compilations() as log:
        with mx.resolving(mx.ChildResolver(relu.values, space.spec)):
            out_relu = naive_apply(params, X)
        with mx.resolving(mx.ChildResolver(neg.values, space.spec)):
            out_neg = naive_apply(params, X)
    np.testing.assert_allclose(out_relu, ref_relu, 1e-6)
    assert log.compiles["naive_apply"] == 1  # one executable for two architectures
    assert naive_traces == 1  # the counter detects the missing retrace ...
    np.testing.assert_allclose(out_neg, ref_relu, 1e-6)  # ... and the result is stale
    assert not np.allclose(out_neg, ref_neg)

    # The DynamicChild path, same inputs: one trace per architecture, right answers.
    ep = EntryPoints()
    np.testing.assert_allclose(ep.apply(relu, params, X), ref_relu, 1e-6)
    np.testing.assert_allclose(ep.apply(neg, params, X), ref_neg, 1e-6)
    assert ep.traces["apply"] == 2


def test_log_compilations_nests_and_stops_listening_on_exit() -> None:
    @jax.jit
    def triple(x: jax.Array) -> jax.Array:
        return x * 3

    with log_compilations() as outer:
        triple(X)
        with log_compilations() as inner:
            triple(X[:1])
            triple(X[:1])
    try:
        with log_compilations() as failed:
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    triple(X[:2])  # after the blocks: counted by none of them
    assert outer.compiles["triple"] == 2 and inner.compiles["triple"] == 1
    assert not failed.compiles and "triple" in repr(outer)
