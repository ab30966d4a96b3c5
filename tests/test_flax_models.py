"""A Flax linen CNN written the way a Flax user writes it, searched with morphax.

The model is an ordinary `nn.Module` with dataclass fields and an
`@nn.compact __call__`. It carries decisions in two ways:

* field hyper-values: `CNN(features=(mx.oneof(...), ...), kernel_size=mx.oneof(...),
  activation=mx.oneof([nn.relu, nn.gelu]))` is a static space (`mx.dna_spec`,
  `mx.materialize`, `mx.encode`, JSON);
* define-by-run: `__call__` calls `mx.intv` (the number of conv blocks) and
  `mx.oneof` (the hidden width of the head); `mx.trace` finds those.

A user can combine them in three ways, all covered here:

1. directly: `mx.trace` of the module with field hyper-values decides the
   fields under their paths and the define-by-run ones by name: one space,
   one DNA per child (`test_trace_of_a_field_space_mixes_both_kinds`);
2. two stages: materialize the field space into a concrete `CNN`, then
   `mx.trace` that module for its define-by-run decisions (two DNAs per child);
3. one stage: a small wrapper module builds the `CNN` inside its own
   `@nn.compact __call__`, where the field `mx.oneof` calls are resolved
   define-by-run too, so one `mx.trace` sees all decisions (one DNA per child).
"""

import functools
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import morphax as mx

NUM_CLASSES = 10
BATCH = 4
X = jnp.zeros((BATCH, 8, 8, 1), jnp.float32)


@mx.register(name="tests.test_flax_models.CNN")
class CNN(nn.Module):
    """A tiny CNN for 8x8 single-channel images: conv blocks, then a dense head."""

    features: Sequence[int] = (4, 8)
    kernel_size: int = 3
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    num_classes: int = NUM_CLASSES

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        depth = mx.intv(1, len(self.features), name="depth")
        k = self.kernel_size
        for i in range(depth):
            x = nn.Conv(self.features[i], (k, k), padding="SAME", name=f"conv{i}")(x)
            x = self.activation(x)
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.Dense(mx.oneof([16, 32], name="hidden"), name="hidden")(x)
        x = self.activation(x)
        return nn.Dense(self.num_classes, name="head")(x)


def field_space() -> CNN:
    """The CNN with hyper-values in its fields (a static space)."""
    return CNN(
        features=(mx.oneof([4, 8]), mx.oneof([8, 16])),
        kernel_size=mx.oneof([3, 5]),
        activation=mx.oneof([nn.relu, nn.gelu]),
    )


class SearchableCNN(nn.Module):
    """One-stage flow: the field choices are made define-by-run, inside `__call__`."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cnn = CNN(
            features=(mx.oneof([4, 8], name="features0"), mx.oneof([8, 16], name="features1")),
            kernel_size=mx.oneof([3, 5], name="kernel_size"),
            activation=mx.oneof([nn.relu, nn.gelu], name="activation"),
            name="cnn",
        )
        return cnn(x)


@functools.cache
def fields() -> mx.Space:
    return mx.space(field_space())


@functools.cache
def searchable() -> mx.DynamicSpace:
    return mx.trace(SearchableCNN(), X)


@functools.cache
def dbr_space(model: CNN) -> mx.DynamicSpace:
    """The define-by-run space of a concrete CNN (stage two); cached per model."""
    return mx.trace(model, X)


def two_stage_child(field_dna: mx.DNA, dbr_dna: mx.DNA) -> mx.DynamicChild:
    model = fields().materialize(field_dna)
    return dbr_space(model).materialize(dbr_dna)


def images(seed: int, n: int = BATCH) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).normal(size=(n, 8, 8, 1)), jnp.float32)


def key(seed: int) -> jax.Array:
    """A PRNG key. The "rbg" implementation compiles Flax initializers several times
    faster than the default threefry on CPU, which keeps this file fast."""
    return jax.random.key(seed, impl="rbg")


@functools.partial(jax.jit, static_argnums=0)
def init(child: mx.DynamicChild, rng: jax.Array, x: jax.Array):
    return child.init(rng, x)


@functools.partial(jax.jit, static_argnums=0)
def forward(child: mx.DynamicChild, params, x: jax.Array) -> jax.Array:
    return child.apply(params, x)


def param_shapes(params) -> dict[str, tuple[int, ...]]:
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return {jax.tree_util.keystr(path): tuple(leaf.shape) for path, leaf in flat}


# ---------------------------------------------------------------------------
# The spaces.


def test_field_space_spec() -> None:
    spec = mx.dna_spec(field_space())
    assert [p.id for p in spec.columns] == [
        "features[0]",
        "features[1]",
        "kernel_size",
        "activation",
    ]
    assert spec.space_size == 16


def test_materialize_gives_a_concrete_flax_module() -> None:
    model = mx.materialize(field_space(), mx.DNA([1, 0, 1, 1]))
    assert isinstance(model, CNN)
    assert model.features == (8, 8)
    assert model.kernel_size == 5
    assert model.activation is nn.gelu
    assert model.num_classes == NUM_CLASSES
    # A materialized module is a plain hashable Flax module: it can be a static jit argument.
    assert hash(model) == hash(mx.materialize(field_space(), mx.DNA([1, 0, 1, 1])))


def test_define_by_run_module_needs_a_resolver() -> None:
    """Outside mx.trace / a DynamicChild, `mx.intv` in `__call__` returns an IntV object.

    Plain `model.init` therefore fails deep inside the user's code (with
    "'IntV' object cannot be interpreted as an integer"): a module with
    define-by-run decisions is only usable through mx.trace + mx.materialize.
    """
    model = mx.materialize(field_space(), mx.DNA([0, 0, 0, 0]))
    with pytest.raises(TypeError):
        model.init(jax.random.key(0), X)


def test_trace_of_a_field_space_mixes_both_kinds() -> None:
    """Field hyper-values are decided under their paths, define-by-run ones by name."""
    space = mx.trace(field_space(), X)
    ids = [p.id for p in space.spec.columns]
    assert ids[:4] == ["features[0]", "features[1]", "kernel_size", "activation"]
    assert set(ids[4:]) >= {"depth", "hidden"}
    child = mx.materialize(space, space.spec.random_dna(0))
    assert isinstance(child.program, CNN) and not mx.query(child.program, where=mx.HyperValue)
    params = child.init(key(0), X)
    assert child.apply(params, X).shape == (X.shape[0], NUM_CLASSES)


def test_two_stage_define_by_run_space() -> None:
    model = fields().materialize(mx.DNA([0, 1, 0, 0]))
    space = dbr_space(model)
    assert isinstance(space, mx.DynamicSpace)
    assert [p.id for p in space.spec.columns] == ["depth", "hidden"]
    assert space.spec.space_size == 4  # depth in {1, 2} x hidden in {16, 32}
    # Every field child has the same define-by-run space here.
    other = dbr_space(fields().materialize(mx.DNA([1, 0, 1, 1])))
    assert other.spec == space.spec


def test_one_stage_space_sees_field_and_define_by_run_decisions() -> None:
    spec = searchable().spec
    assert [p.id for p in spec.columns] == [
        "features0",
        "features1",
        "kernel_size",
        "activation",
        "depth",
        "hidden",
    ]
    assert spec.space_size == 16 * 4


# ---------------------------------------------------------------------------
# Children: init, forward under jit, architectures.


def test_sampled_children_run_under_jit() -> None:
    x = images(1)
    shapes = set()
    children = list(mx.random_sample(searchable(), 2, seed=0))
    spec = fields().spec
    rng = np.random.default_rng(0)
    model = fields().materialize(spec.random_dna(rng))
    children.append(dbr_space(model).materialize(dbr_space(model).random_dna(rng)))
    for child in children:
        assert isinstance(child, mx.DynamicChild)
        params = init(child, key(0), x)
        out = forward(child, params, x)
        assert out.shape == (BATCH, NUM_CLASSES)
        assert bool(jnp.all(jnp.isfinite(out)))
        shapes.add(tuple(sorted(param_shapes(params).items())))
    assert len(shapes) > 1


def test_random_sample_is_reproducible() -> None:
    a = [c.dna for c in mx.random_sample(searchable(), 5, seed=3)]
    b = [c.dna for c in mx.random_sample(searchable(), 5, seed=3)]
    assert a == b
    assert list(mx.random_sample(field_space(), 3, seed=3)) == list(
        mx.random_sample(field_space(), 3, seed=3)
    )


def test_parameter_shapes_follow_the_decisions() -> None:
    # Field DNA: features (8, 16), kernel 5, gelu; define-by-run DNA: depth 2, hidden 32.
    big = two_stage_child(mx.DNA([1, 1, 1, 1]), mx.DNA([2, 1]))
    # Field DNA: features (4, 8), kernel 3, relu; define-by-run DNA: depth 1, hidden 16.
    small = two_stage_child(mx.DNA([0, 0, 0, 0]), mx.DNA([1, 0]))
    big_shapes = param_shapes(jax.eval_shape(big.init, key(0), X))
    small_shapes = param_shapes(jax.eval_shape(small.init, key(0), X))
    assert big_shapes == {
        "['params']['conv0']['bias']": (8,),
        "['params']['conv0']['kernel']": (5, 5, 1, 8),
        "['params']['conv1']['bias']": (16,),
        "['params']['conv1']['kernel']": (5, 5, 8, 16),
        "['params']['hidden']['bias']": (32,),
        "['params']['hidden']['kernel']": (2 * 2 * 16, 32),
        "['params']['head']['bias']": (10,),
        "['params']['head']['kernel']": (32, 10),
    }
    assert small_shapes == {
        "['params']['conv0']['bias']": (4,),
        "['params']['conv0']['kernel']": (3, 3, 1, 4),
        "['params']['hidden']['bias']": (16,),
        "['params']['hidden']['kernel']": (4 * 4 * 4, 16),
        "['params']['head']['bias']": (10,),
        "['params']['head']['kernel']": (16, 10),
    }
    # The one-stage flow builds the same network under a `cnn` scope.
    one = mx.materialize(searchable(), mx.DNA([1, 1, 1, 1, 2, 1]))
    one_shapes = param_shapes(jax.eval_shape(one.init, key(0), X))
    assert one_shapes == {
        k.replace("['params']", "['params']['cnn']"): v for k, v in big_shapes.items()
    }


def test_activation_choice_changes_the_function_not_the_params() -> None:
    relu = two_stage_child(mx.DNA([0, 0, 0, 0]), mx.DNA([2, 0]))
    gelu = two_stage_child(mx.DNA([0, 0, 0, 1]), mx.DNA([2, 0]))
    x = images(2)
    params = init(relu, key(0), x)
    assert param_shapes(params) == param_shapes(jax.eval_shape(gelu.init, key(0), x))
    out_relu, out_gelu = forward(relu, params, x), forward(gelu, params, x)
    assert not np.allclose(out_relu, out_gelu)
    np.testing.assert_allclose(out_gelu, gelu.apply(params, x), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# Training one child.


def synthetic_data(n: int = 64) -> tuple[jax.Array, jax.Array]:
    """Random images labelled by a fixed random linear map (learnable, no sklearn)."""
    x = images(42, n)
    w = np.random.default_rng(43).normal(size=(64, NUM_CLASSES))
    return x, jnp.argmax(x.reshape(n, -1) @ jnp.asarray(w, jnp.float32), axis=-1)


def test_sgd_steps_reduce_the_loss() -> None:
    child = mx.materialize(searchable(), mx.DNA([0, 1, 0, 0, 2, 1]))
    x, y = synthetic_data()
    params = init(child, key(0), x)
    tx = optax.sgd(learning_rate=0.1, momentum=0.9)
    opt_state = tx.init(params)

    def loss_fn(params, child):
        logits = child.apply(params, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @functools.partial(jax.jit, static_argnums=0)
    def step(child, params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params, child)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    losses = []
    for _ in range(25):
        params, opt_state, loss = step(child, params, opt_state)
        losses.append(float(loss))
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.7 * losses[0], losses
    assert step._cache_size() == 1


# ---------------------------------------------------------------------------
# encode, JSON.


def test_encode_inverts_materialize_for_every_dna() -> None:
    space = fields()
    for dna in space.spec.iter_dna():
        assert mx.encode(space, space.materialize(dna)) == dna


def test_encode_inverts_materialize_away_from_field_defaults() -> None:
    """The DNAs whose choices all differ from the CNN's field defaults encode fine."""
    space = fields()
    for dna in ([0, 0, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1]):
        child = mx.materialize(field_space(), mx.DNA(dna))
        assert mx.encode(field_space(), child) == mx.DNA(dna)
        assert space.encode(child) == mx.DNA(dna)


def test_encode_define_by_run_child() -> None:
    child = mx.materialize(searchable(), mx.DNA([1, 0, 1, 0, 1, 1]))
    assert mx.encode(searchable(), child) == mx.DNA([1, 0, 1, 0, 1, 1])


def test_json_round_trip_of_field_space_and_child() -> None:
    space = field_space()
    text = mx.to_json(space)
    assert '"tests.test_flax_models.CNN"' in text
    assert '"flax.linen.gelu"' in text
    loaded = mx.from_json(text)
    assert isinstance(loaded, CNN)
    assert loaded == space
    assert mx.dna_spec(loaded) == mx.dna_spec(space)

    dna = mx.DNA([1, 0, 1, 1])
    child = mx.materialize(space, dna)
    child_back = mx.from_json(mx.to_json(child))
    assert child_back == child and hash(child_back) == hash(child)
    assert child_back.activation is nn.gelu
    assert mx.materialize(loaded, mx.from_json(mx.to_json(dna))) == child

    # A child at the field defaults serializes without them, and comes back equal.
    plain = mx.materialize(space, mx.DNA([0, 0, 0, 0]))
    assert mx.from_json(mx.to_json(plain)) == plain


def test_json_round_trip_of_a_two_stage_child() -> None:
    """A DynamicChild is not JSON itself: store the concrete module and the define-by-run DNA."""
    child = two_stage_child(mx.DNA([1, 0, 1, 1]), mx.DNA([2, 0]))
    with pytest.raises(TypeError):
        mx.to_json(child)
    saved = mx.to_json({"model": child.target, "dna": child.dna})
    record = mx.from_json(saved)
    again = mx.trace(record["model"], X).materialize(record["dna"])
    assert again == child and hash(again) == hash(child)
    params = init(child, key(0), X)
    x = images(3)
    np.testing.assert_array_equal(forward(again, params, x), forward(child, params, x))


def test_spec_literals_of_function_candidates_are_stable() -> None:
    spec = mx.dna_spec(field_space())
    literals = spec["activation"].literals  # type: ignore[attr-defined]
    assert not any(" at 0x" in lit for lit in literals), literals
