"""Jitted JAX steps of a child program and their compile cache.

Pure functions — `init`, `train_step`, `eval_step` — with explicit PRNG keys.
Steps are compiled ahead of time once per distinct (model, optimizer, loss,
batch shape): children with identical structure reuse one executable, a child
with a new structure compiles once, and nothing stale is reused because the
cache key holds the child program's value (and the optimizer's value, or the
optimizer object itself), never an `id`.
"""

from __future__ import annotations

import collections
import inspect
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..symbolic import eq as sym_eq
from ..symbolic import value_hash as sym_hash
from ._data import Dataset
from ._devices import AXIS, BATCH, NEEDS_AXIS, REPLICATED, Placement, jit
from ._losses import Loss, Task, _argmax_correct
from ._metrics import _flops, _timed_compile
from ._nnx import NNXModel

if TYPE_CHECKING:
    from ._hparams import Optimizer

TrainStep = Callable[..., tuple["TrainState", dict[str, jax.Array]]]
EvalStep = Callable[..., dict[str, jax.Array]]


class TrainState(NamedTuple):
    """The state of training: a pytree you can checkpoint.

    Attributes:
        step: the number of steps taken.
        params: the model's parameters.
        model_state: non-parameter collections, e.g. `{"batch_stats": ...}`.
        opt_state: the optimizer's state.
        key: the PRNG key of the training randomness (dropout); step `i`
            uses `jax.random.fold_in(key, i)`.
    """

    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any
    key: jax.Array


class _Key:
    """A cache key for a program: hashed and compared by value."""

    __slots__ = ("value", "_hash")

    def __init__(self, value: Any) -> None:
        self.value = value
        try:
            self._hash = hash(value)
        except TypeError:
            self._hash = sym_hash(value)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and (
            self.value is other.value or sym_eq(self.value, other.value)
        )


def _takes_train(model: Any) -> bool:
    if getattr(model, "takes_train", False):
        return True
    target = getattr(model, "target", model)  # DynamicChild wraps its module
    try:
        return "train" in inspect.signature(type(target).__call__).parameters
    except (TypeError, ValueError):
        return False


def _call_args(x: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A batch's inputs as call arguments: a dict is passed by name."""
    return ((), dict(x)) if isinstance(x, dict) else ((x,), {})


def _apply(
    model: Any,
    variables: Any,
    x: Any,
    *,
    train: bool,
    mutable: bool,
    rngs: dict[str, jax.Array] | None = None,
) -> Any:
    args, kwargs = _call_args(x)
    if _takes_train(model):
        kwargs["train"] = train
    if rngs is not None:
        kwargs["rngs"] = rngs
    if mutable:
        return model.apply(variables, *args, mutable=["batch_stats"], **kwargs)
    return model.apply(variables, *args, **kwargs)


def _init_variables(model: Any, example_x: Any, key: jax.Array) -> tuple[Any, Any]:
    """(params, non-parameter collections) of a model."""
    args, kwargs = _call_args(jax.tree.map(jnp.asarray, example_x))
    if _takes_train(model):
        kwargs["train"] = False
    variables = dict(model.init(key, *args, **kwargs))
    params = variables.pop("params", {})
    return params, variables


def init(
    model: Any, optimizer: optax.GradientTransformation, example_x: Any, *, key: jax.Array
) -> TrainState:
    """Initializes parameters, non-parameter state and the optimizer state.

    Examples:
        >>> import jax, jax.numpy as jnp, optax
        >>> from morphax.spaces.cnn import MLP
        >>> from morphax.train import init
        >>> state = init(MLP(hidden=(4,), num_classes=3), optax.sgd(0.1), jnp.ones((2, 5)),
        ...              key=jax.random.key(0))
        >>> int(state.step), state.params["Dense_0"]["kernel"].shape
        (0, (5, 4))
    """
    init_key, train_key = jax.random.split(key)
    params, model_state = _init_variables(model, example_x, init_key)
    return TrainState(
        jnp.zeros((), jnp.int32), params, model_state, optimizer.init(params), train_key
    )


def _cast_inputs(x: Any, dtype: Any) -> Any:
    return jax.tree.map(
        lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, x
    )


def _train_step(
    model: Any,
    make_tx: Callable[[Any], optax.GradientTransformation],
    task: Task,
    compute_dtype: Any,
    devices: int = 0,
) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """`train_step(state, x, y, hp)`: `hp` holds the optimizer's float values.

    With `devices` (> 0) the step runs per device on its shard of the batch
    (under `shard_map`): gradients, metrics and floating model state are
    averaged over the batch axis, and each device draws its own dropout.
    """
    dtype = None if compute_dtype is None else jnp.dtype(compute_dtype)
    loss = task.loss
    mean = _mean_over_devices if devices else lambda tree: tree

    def train_step(
        state: TrainState, x: Any, y: jax.Array, hp: jax.Array
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        mutable = "batch_stats" in state.model_state or "nnx" in state.model_state
        dropout = jax.random.fold_in(state.key, state.step)
        if devices > 1:
            dropout = jax.random.fold_in(dropout, jax.lax.axis_index(AXIS))
        rngs = {"dropout": dropout}

        def loss_fn(params: Any) -> tuple[jax.Array, tuple[Any, jax.Array]]:
            p, xin = params, x
            if dtype is not None:
                p, xin = jax.tree.map(lambda a: a.astype(dtype), params), _cast_inputs(x, dtype)
            variables = {"params": p, **state.model_state}
            out = _apply(model, variables, xin, train=True, mutable=mutable, rngs=rngs)
            logits, new_state = (out[0], out[1]) if mutable else (out, state.model_state)
            return loss(logits, y), (new_state, logits)

        (value, (new_model_state, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params
        )
        grads = mean(grads)
        updates, opt_state = make_tx(hp).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        model_state = {**state.model_state, **new_model_state}
        model_state = mean(jax.tree.map(_like, model_state, dict(state.model_state)))
        metrics = {"loss": value.astype(jnp.float32)}
        if task.accuracy is not None:
            metrics["accuracy"] = task.accuracy(logits, y).mean()
        metrics = mean(metrics)
        new = TrainState(state.step + 1, params, model_state, opt_state, state.key)
        return new, metrics

    return train_step


def _mean_over_devices(tree: Any) -> Any:
    """The mean over the batch axis of each floating leaf (the rest as is)."""

    def mean(a: jax.Array) -> jax.Array:
        return jax.lax.pmean(a, AXIS) if jnp.issubdtype(a.dtype, jnp.inexact) else a

    return jax.tree.map(mean, tree)


def _like(new: jax.Array, old: jax.Array) -> jax.Array:
    return new.astype(old.dtype) if jnp.issubdtype(old.dtype, jnp.floating) else new


def make_train_step(
    model: Any,
    optimizer: optax.GradientTransformation,
    loss: Loss,
    *,
    compute_dtype: Any = None,
) -> TrainStep:
    """A pure `train_step(state, x, y) -> (state, {"loss", "accuracy"})` for jit.

    With `compute_dtype` (e.g. `jnp.bfloat16`) the forward and backward
    passes run in that dtype; parameters, optimizer and non-parameter state
    stay in their own dtypes.
    """
    task = Task("loss", loss, _argmax_correct, ())
    step = _train_step(model, lambda hp: optimizer, task, compute_dtype)
    none = jnp.zeros((0,), jnp.float32)
    return lambda state, x, y: step(state, x, y, none)


def _eval_step(model: Any, task: Task, *, devices: int = 0) -> EvalStep:
    """`eval_step(params, model_state, x, y, weight) -> sums` of the task's metrics
    (with `devices`, summed over the batch axis)."""
    loss = task.loss
    pairs = (("loss", loss), *task.metrics)

    def eval_step(
        params: Any, model_state: Any, x: Any, y: jax.Array, weight: jax.Array
    ) -> dict[str, jax.Array]:
        variables = {"params": params, **model_state}
        logits = _apply(model, variables, x, train=False, mutable=False).astype(jnp.float32)
        sums = {"count": weight.sum()}
        for name, fn in pairs:
            per_example = jax.vmap(lambda lg, t, f=fn: f(lg[None], t[None]))(logits, y)
            sums[name] = (per_example.astype(jnp.float32) * weight).sum()
        if task.accuracy is not None:
            sums["correct"] = (task.accuracy(logits, y) * weight).sum()
        return jax.lax.psum(sums, AXIS) if devices else sums

    return eval_step


def make_eval_step(model: Any, loss: Loss) -> EvalStep:
    """A pure `eval_step(params, model_state, x, y, weight) -> sums` for jit.

    The sums are `loss` (the per-example loss times `weight`), `correct` and
    `count` (the sum of `weight`); a zero weight masks a padding example.
    """
    return _eval_step(model, Task("loss", loss, _argmax_correct, ()))


# ---------------------------------------------------------------------------
# The compile cache: ahead-of-time compiled steps, keyed by value.

#: How many compiled train (and eval) steps are kept; the oldest go first.
CACHE_SIZE = 64


@dataclass
class _Entry:
    fn: Any
    compile_s: float
    flops_per_example: float | None = None


_INIT_CACHE: collections.OrderedDict[Hashable, _Entry] = collections.OrderedDict()
_TRAIN_CACHE: collections.OrderedDict[Hashable, _Entry] = collections.OrderedDict()
_EVAL_CACHE: collections.OrderedDict[Hashable, _Entry] = collections.OrderedDict()
# The abstract (shape-only) initial state of a child, checked against the loss.
_SHAPE_CACHE: collections.OrderedDict[Hashable, _Entry] = collections.OrderedDict()


def clear_cache() -> None:
    """Forgets every compiled step (for tests and long-running processes)."""
    for cache in (_INIT_CACHE, _TRAIN_CACHE, _EVAL_CACHE, _SHAPE_CACHE):
        cache.clear()
    NEEDS_AXIS.clear()


def _cached(
    cache: collections.OrderedDict[Hashable, _Entry], key: Hashable, make: Callable[[], _Entry]
) -> tuple[_Entry, bool]:
    """The entry for `key` (moved to the back) and whether it was compiled now."""
    hit = cache.get(key)
    if hit is not None:
        cache.move_to_end(key)
        return hit, False
    entry = cache[key] = make()
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return entry, True


def _signature(tree: Any) -> Hashable:
    """The structure, shapes and dtypes of a pytree (part of a cache key)."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((np.shape(a), str(jnp.result_type(a))) for a in leaves)


def _lower_specs(batch_size: int, data: Dataset) -> tuple[Any, Any, Any]:
    x = jax.tree.map(lambda a: jax.ShapeDtypeStruct((batch_size, *a.shape[1:]), a.dtype), data.x)
    return (
        x,
        jax.ShapeDtypeStruct((batch_size, *data.target_shape), data.y.dtype),
        jax.ShapeDtypeStruct((batch_size,), jnp.float32),
    )


@dataclass
class _Steps:
    init_variables: Any  # (example_x, key) -> (params, model_state)
    init_opt: Any  # (params, hp) -> opt_state
    train: Any  # (state, x, y, hp) -> (state, metrics)
    eval: Any
    compile_s: float
    flops_per_example: float | None


def _compile(
    model: Any,
    opt: Optimizer,
    task: Task,
    state: TrainState,
    data: Dataset,
    batch_size: int,
    compute_dtype: Any,
    where: Placement | None = None,
) -> _Steps:
    """The compiled init, train and eval steps for this child (`state` may be
    abstract), from the cache or compiled now.

    Each is keyed by what it depends on: the variables' init and the eval
    step by the model, the optimizer's init by the optimizer, the train step
    by both. An optimizer whose floats are step values is keyed by its
    template, so a new learning rate compiles nothing. Under a placement
    (`where`) the steps run per device with the batch sharded."""
    x, y, w = _lower_specs(batch_size, data)
    hp = jax.ShapeDtypeStruct(opt.values.shape, jnp.float32)
    model_key = _Key(model)
    dtype = None if compute_dtype is None else str(jnp.dtype(compute_dtype))
    shape_key = (batch_size, data.signature(), None if where is None else where.key)
    n = 0 if where is None else where.size
    R, B = REPLICATED, BATCH
    var_sig = _signature((state.params, state.model_state))

    def init_variables(example_x: Any, key: jax.Array) -> tuple[Any, Any]:
        return _init_variables(model, example_x, key)

    def init_opt(params: Any, hp: jax.Array) -> Any:
        return opt.make(hp).init(params)

    def make_init() -> _Entry:
        fn = jit(where, init_variables, (B, R), R)
        return _Entry(*_timed_compile(fn, x, state.key, once=True))

    def make_init_opt() -> _Entry:
        fn = jit(where, init_opt, (R, R), R)
        return _Entry(*_timed_compile(fn, state.params, hp, once=True))

    def make_train() -> _Entry:
        step = _train_step(model, opt.make, task, compute_dtype, n)
        fn = jit(where, step, (R, B, B, R), (R, R), donate_argnums=0)
        return _Entry(*_timed_compile(fn, state, x, y, hp))

    def make_eval() -> _Entry:
        step = jit(where, _eval_step(model, task, devices=n), (R, R, B, B, B), R)
        fn, seconds = _timed_compile(step, state.params, state.model_state, x, y, w)
        flops = _flops(fn)
        return _Entry(fn, seconds, None if flops is None else flops / batch_size)

    if isinstance(model, NNXModel):  # built with its weights: nothing to compile
        make_init = lambda: _Entry(lambda example_x, key: model.variables(), 0.0)  # noqa: E731
    entries = [
        _cached(_INIT_CACHE, (model_key, *shape_key, var_sig), make_init)
        if not isinstance(model, NNXModel)
        else (make_init(), False),
        _cached(
            _INIT_CACHE, ("opt", opt.key, shape_key[2], _signature(state.params)), make_init_opt
        ),
        _cached(
            _TRAIN_CACHE,
            (model_key, opt.key, task.key, *shape_key, dtype, _signature(state)),
            make_train,
        ),
        _cached(_EVAL_CACHE, (model_key, task.key, *shape_key, var_sig), make_eval),
    ]
    compile_s = math.fsum(e.compile_s for e, new in entries if new)
    (init_, _), (init_opt_, _), (train, _), (eval_, _) = entries
    return _Steps(init_.fn, init_opt_.fn, train.fn, eval_.fn, compile_s, eval_.flops_per_example)
