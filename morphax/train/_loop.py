"""Child programs to jitted JAX training and evaluation.

Pure functions underneath — `init`, `train_step`, `eval_step` — with explicit
PRNG keys; :func:`fit` is the convenient face that trains a child and returns
its metrics. Steps are compiled ahead of time once per distinct (model,
optimizer, loss, batch shape): children with identical structure reuse one
executable, a child with a new structure compiles once, and nothing stale is
reused because the cache key holds the child program's value (and the
optimizer's value, or the optimizer object itself), never an `id`.
"""

from __future__ import annotations

import collections
import inspect
import math
import time
import typing
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..symbolic import Call, build
from ..symbolic._tree import sym_eq, sym_hash
from ._data import Dataset, prefetch_to_device

Loss = Callable[[jax.Array, jax.Array], jax.Array]
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


class TrainingDiverged(FloatingPointError):
    """The training (or held-out) loss became NaN or infinite."""


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
    target = getattr(model, "target", model)  # DynamicChild wraps its module
    try:
        return "train" in inspect.signature(type(target).__call__).parameters
    except (TypeError, ValueError):
        return False


def _apply(
    model: Any,
    variables: Any,
    x: jax.Array,
    *,
    train: bool,
    mutable: bool,
    rngs: dict[str, jax.Array] | None = None,
) -> Any:
    kwargs: dict[str, Any] = {"train": train} if _takes_train(model) else {}
    if rngs is not None:
        kwargs["rngs"] = rngs
    if mutable:
        return model.apply(variables, x, mutable=["batch_stats"], **kwargs)
    return model.apply(variables, x, **kwargs)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy with integer labels (computed in float32)."""
    return optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), labels
    ).mean()


LOSSES: dict[str, Loss] = {"cross_entropy": cross_entropy}


def _init_variables(model: Any, example_x: Any, key: jax.Array) -> tuple[Any, Any]:
    """(params, non-parameter collections) of a model."""
    kwargs = {"train": False} if _takes_train(model) else {}
    variables = dict(model.init(key, jnp.asarray(example_x), **kwargs))
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
    dtype = None if compute_dtype is None else jnp.dtype(compute_dtype)

    def train_step(
        state: TrainState, x: jax.Array, y: jax.Array
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        mutable = "batch_stats" in state.model_state
        rngs = {"dropout": jax.random.fold_in(state.key, state.step)}

        def loss_fn(params: Any) -> tuple[jax.Array, tuple[Any, jax.Array]]:
            p, xin = params, x
            if dtype is not None:
                p, xin = jax.tree.map(lambda a: a.astype(dtype), params), x.astype(dtype)
            variables = {"params": p, **state.model_state}
            out = _apply(model, variables, xin, train=True, mutable=mutable, rngs=rngs)
            logits, new_state = (out[0], out[1]) if mutable else (out, state.model_state)
            return loss(logits, y), (new_state, logits)

        (value, (new_model_state, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        model_state = {**state.model_state, **new_model_state}
        model_state = jax.tree.map(
            lambda new, old: new.astype(old.dtype), model_state, dict(state.model_state)
        )
        accuracy = (jnp.argmax(logits, -1) == y).mean()
        new = TrainState(state.step + 1, params, model_state, opt_state, state.key)
        return new, {"loss": value.astype(jnp.float32), "accuracy": accuracy}

    return train_step


def make_eval_step(model: Any, loss: Loss) -> EvalStep:
    """A pure `eval_step(params, model_state, x, y, weight) -> sums` for jit.

    The sums are `loss` (the per-example loss times `weight`), `correct` and
    `count` (the sum of `weight`); a zero weight masks a padding example.
    """

    def eval_step(
        params: Any, model_state: Any, x: jax.Array, y: jax.Array, weight: jax.Array
    ) -> dict[str, jax.Array]:
        variables = {"params": params, **model_state}
        logits = _apply(model, variables, x, train=False, mutable=False).astype(jnp.float32)
        per_example = jax.vmap(lambda lg, t: loss(lg[None], t[None]))(logits, y)
        correct = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
        return {
            "loss": (per_example * weight).sum(),
            "correct": (correct * weight).sum(),
            "count": weight.sum(),
        }

    return eval_step


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


def _flops(compiled: Any) -> float | None:
    try:
        cost = compiled.cost_analysis()
    except Exception:
        return None
    if isinstance(cost, list):
        cost = cost[0] if cost else {}
    flops = (cost or {}).get("flops")
    return float(flops) if flops and flops > 0 else None


def _lower_specs(batch_size: int, input_shape: tuple[int, ...]) -> tuple[Any, Any, Any]:
    return (
        jax.ShapeDtypeStruct((batch_size, *input_shape), jnp.float32),
        jax.ShapeDtypeStruct((batch_size,), jnp.int32),
        jax.ShapeDtypeStruct((batch_size,), jnp.float32),
    )


def _timed_compile(jitted: Any, *args: Any, once: bool = False) -> tuple[Any, float]:
    """Compiles ahead of time; returns (executable, seconds).

    Random bits are traced with `jax.threefry_partitionable(False)`: on one
    device the values are as good, and XLA compiles parameter initializers
    about three times faster on CPU. Code that runs `once` (initializers) is
    compiled without LLVM optimizations on CPU, which halves the time again.
    """
    options = {"xla_backend_optimization_level": 0} if once and _on_cpu() else None
    t0 = time.perf_counter()
    with jax.threefry_partitionable(False):
        compiled = jitted.lower(*args).compile(options)
    return compiled, time.perf_counter() - t0


def _on_cpu() -> bool:
    return jax.default_backend() == "cpu"


@dataclass
class _Steps:
    init_variables: Any  # (example_x, key) -> (params, model_state)
    init_opt: Any  # params -> opt_state
    train: Any
    eval: Any
    compile_s: float
    flops_per_example: float | None


def _compile(
    model: Any,
    tx: optax.GradientTransformation,
    opt_key: Hashable,
    loss: tuple[Hashable, Loss],
    state: TrainState,
    data: Dataset,
    batch_size: int,
    compute_dtype: Any,
) -> _Steps:
    """The compiled init, train and eval steps for this child (`state` may be
    abstract), from the cache or compiled now.

    Each is keyed by what it depends on: the variables' init and the eval
    step by the model, the optimizer's init by the optimizer, the train step
    by both (so a new learning rate recompiles only the train step)."""
    loss_key, loss_fn = loss
    x, y, w = _lower_specs(batch_size, data.input_shape)
    model_key = _Key(model)
    dtype = None if compute_dtype is None else str(jnp.dtype(compute_dtype))
    shape_key = (batch_size, data.input_shape)
    var_sig = _signature((state.params, state.model_state))

    def init_variables(example_x: jax.Array, key: jax.Array) -> tuple[Any, Any]:
        return _init_variables(model, example_x, key)

    def make_init() -> _Entry:
        return _Entry(*_timed_compile(jax.jit(init_variables), x, state.key, once=True))

    def make_init_opt() -> _Entry:
        return _Entry(*_timed_compile(jax.jit(tx.init), state.params, once=True))

    def make_train() -> _Entry:
        step = make_train_step(model, tx, loss_fn, compute_dtype=compute_dtype)
        return _Entry(*_timed_compile(jax.jit(step, donate_argnums=0), state, x, y))

    def make_eval() -> _Entry:
        step = jax.jit(make_eval_step(model, loss_fn))
        fn, seconds = _timed_compile(step, state.params, state.model_state, x, y, w)
        flops = _flops(fn)
        return _Entry(fn, seconds, None if flops is None else flops / batch_size)

    entries = [
        _cached(_INIT_CACHE, (model_key, *shape_key, var_sig), make_init),
        _cached(_INIT_CACHE, ("opt", opt_key, _signature(state.params)), make_init_opt),
        _cached(
            _TRAIN_CACHE,
            (model_key, opt_key, loss_key, *shape_key, dtype, _signature(state)),
            make_train,
        ),
        _cached(_EVAL_CACHE, (model_key, loss_key, *shape_key, var_sig), make_eval),
    ]
    compile_s = math.fsum(e.compile_s for e, new in entries if new)
    (init_, _), (init_opt, _), (train, _), (eval_, _) = entries
    return _Steps(init_.fn, init_opt.fn, train.fn, eval_.fn, compile_s, eval_.flops_per_example)


# ---------------------------------------------------------------------------
# Evaluation and fit.


@dataclass
class FitResult:
    """What :func:`fit` measured; `metrics` is what a search trial reports."""

    state: TrainState
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    _eval: Any = field(default=None, repr=False)
    _batch_size: int = 0
    _data: Dataset | None = field(default=None, repr=False)

    def evaluate(self, data: Dataset) -> dict[str, float]:
        """`accuracy` and `loss` of the trained child on `data` (e.g. a test set).

        Raises:
            ValueError: if `data` does not match the training data's input
                shape and classes, or is empty.
        """
        if self._data is not None:
            _check_compatible(self._data, data)
        return evaluate(self.state, self._eval, data, self._batch_size)


def evaluate(
    state: TrainState, eval_step: EvalStep, data: Dataset, batch_size: int
) -> dict[str, float]:
    """`loss` and `accuracy` on `data`, with `eval_step` (from
    :func:`make_eval_step`, jitted for `batch_size`); the last batch is padded.
    """
    if len(data) == 0:
        raise ValueError(f"cannot evaluate on {data.name}: it has no examples")
    outs = []
    for i in range(0, len(data), batch_size):
        x, y = data.x[i : i + batch_size], data.y[i : i + batch_size]
        pad = batch_size - len(y)
        weight = np.ones(batch_size, np.float32)
        if pad:
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
            y = np.concatenate([y, np.zeros(pad, y.dtype)])
            weight[-pad:] = 0.0
        outs.append(eval_step(state.params, state.model_state, x, y, weight))
    totals = {k: float(np.sum([o[k] for o in jax.device_get(outs)])) for k in outs[0]}
    count = max(totals["count"], 1.0)
    return {"loss": totals["loss"] / count, "accuracy": totals["correct"] / count}


def _optimizer(optimizer: Any) -> tuple[optax.GradientTransformation, Hashable]:
    """The real optimizer and its cache key (by value for symbolic programs;
    the object itself otherwise, so an equal object never hits another's entry)."""
    if isinstance(optimizer, Call):
        tx = build(optimizer)
        if not isinstance(tx, optax.GradientTransformation):
            raise TypeError(
                f"the optimizer program must build an optax GradientTransformation, "
                f"but {optimizer!r} built {tx!r}"
            )
        return tx, _Key(optimizer)
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer, ("object", optimizer)
    raise TypeError(
        "the optimizer must be an optax GradientTransformation or a symbolic program that "
        f"builds one (e.g. mx.symbolic(optax.adam)(learning_rate=1e-3)), but got {optimizer!r}"
    )


def _loss(loss: str | Loss) -> tuple[Hashable, Loss]:
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; known losses: {sorted(LOSSES)}")
        return loss, LOSSES[loss]
    if callable(loss):
        return ("callable", loss), loss
    raise TypeError(f"the loss must be a name in {sorted(LOSSES)} or a callable, but got {loss!r}")


def _as_key(key: jax.Array | int) -> jax.Array:
    if isinstance(key, int | np.integer):
        return jax.random.key(int(key))
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(key)  # a raw uint32 key (jax.random.PRNGKey)
    return key


def _check_compatible(train: Dataset, other: Dataset) -> None:
    if other.input_shape != train.input_shape or other.num_classes != train.num_classes:
        raise ValueError(
            f"{other.name} has inputs of shape {other.input_shape} and {other.num_classes} "
            f"classes, but the child was trained on {train.name} with {train.input_shape} and "
            f"{train.num_classes}; they must match"
        )
    if len(other) == 0:
        raise ValueError(f"{other.name} has no examples to evaluate on")


def _check_args(train: Dataset, valid: Dataset | None, epochs: int, batch_size: int) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, but got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, but got {batch_size!r}")
    if len(train) < batch_size:
        raise ValueError(
            f"batch_size={batch_size} exceeds the {len(train)} training examples of "
            f"{train.name}; use a batch size of at most {len(train)}"
        )
    if valid is not None:
        _check_compatible(train, valid)


def _abstract_state(
    model: Any,
    tx: optax.GradientTransformation,
    opt_key: Hashable,
    loss: tuple[Hashable, Loss],
    x0: np.ndarray,
    key: jax.Array,
    data: Dataset,
) -> TrainState:
    """The shape-only initial state, traced and checked once per child structure."""

    def make() -> _Entry:
        abstract = jax.eval_shape(lambda x, k: init(model, tx, x, key=k), x0, key)
        _check_output(model, abstract, x0, data, loss)
        return _Entry(abstract, 0.0)

    cache_key = (_Key(model), opt_key, loss[0], x0.shape, data.num_classes)
    entry, _ = _cached(_SHAPE_CACHE, cache_key, make)
    return typing.cast(TrainState, entry.fn)


def _check_output(
    model: Any, state: TrainState, x0: np.ndarray, data: Dataset, loss: tuple[Hashable, Loss]
) -> None:
    """Raises a ValueError naming both shapes when the model's output does not fit the loss."""
    variables = {"params": state.params, **state.model_state}
    out = jax.eval_shape(
        lambda v, x: _apply(model, v, x, train=False, mutable=False), variables, x0
    )
    want = (len(x0), data.num_classes)
    shape = tuple(getattr(out, "shape", ()))
    if loss[0] == "cross_entropy" and shape != want:
        raise ValueError(
            f"the model's output shape {shape} does not fit cross_entropy over "
            f"{data.num_classes} classes: expected {want} (batch, num_classes); check the "
            "model's num_classes"
        )
    y = jax.ShapeDtypeStruct((len(x0),), jnp.int32)
    try:
        value = jax.eval_shape(loss[1], out, y)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"the model's output shape {shape} does not fit the loss {loss[0]!r} with labels "
            f"of shape {y.shape}: {e}"
        ) from None
    if getattr(value, "shape", None) != ():
        raise ValueError(
            f"the loss {loss[0]!r} must return a scalar, but returned shape {value.shape} "
            f"for outputs of shape {shape}"
        )


def _train_epoch(
    train_step: Any,
    state: TrainState,
    data: Dataset,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    prefetch: int,
) -> tuple[TrainState, dict[str, float], float]:
    """One pass over `data`: (state, train metrics, seconds per step)."""
    outs = []
    t0 = time.perf_counter()
    batches: Iterable[tuple[Any, Any]] = data.batches(batch_size, seed=seed)
    if prefetch:
        batches = prefetch_to_device(batches, size=prefetch)
    for x, y in batches:
        state, m = train_step(state, x, y)
        outs.append(m)
    host = jax.device_get(outs)  # waits for the epoch's steps
    seconds = (time.perf_counter() - t0) / len(outs)
    losses = np.array([m["loss"] for m in host])
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        raise TrainingDiverged(
            f"the training loss became {losses[bad[0]]} at step {bad[0] + 1} of epoch {epoch}; "
            "lower the learning rate or check the model and data"
        )
    accuracy = float(np.mean([m["accuracy"] for m in host]))
    return state, {"train_loss": float(losses.mean()), "train_accuracy": accuracy}, seconds


def _prefetch_size(prefetch: int | None) -> int:
    if prefetch is None:
        return 0 if jax.default_backend() == "cpu" else 2
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
        raise ValueError(f"prefetch must be an int >= 0 or None, but got {prefetch!r}")
    return prefetch


def fit(
    model: Any,
    optimizer: Any,
    train_data: Dataset,
    *,
    valid_data: Dataset | None = None,
    epochs: int = 5,
    batch_size: int = 64,
    key: jax.Array | int = 0,
    loss: str | Loss = "cross_entropy",
    compute_dtype: Any = None,
    on_epoch: Callable[[int, dict[str, float]], bool | None] | None = None,
    prefetch: int | None = None,
) -> FitResult:
    """Trains a child program and evaluates it.

    Args:
        model: a Flax linen module (a materialized child, or a DynamicChild).
        optimizer: an optax optimizer, or a symbolic program building one (so
            its learning rate and kind can be searched). Symbolic programs
            are cached by value; a plain optax object by identity, so pass
            the same object to reuse compiled steps.
        train_data: the training set.
        valid_data: the held-out set for `accuracy`/`loss` (default: train);
            it may be smaller than a batch.
        epochs: passes over the training data.
        batch_size: the batch size (the last partial training batch is dropped).
        key: a JAX PRNG key or an int seed (init, dropout and shuffling).
        loss: "cross_entropy", or a callable `loss(logits, labels) -> scalar`
            (a mean over the batch).
        compute_dtype: e.g. `jnp.bfloat16` to compute in bf16 (master weights
            stay float32); for GPUs.
        on_epoch: called after each epoch with (epoch, metrics); returning
            True stops training (early stopping).
        prefetch: how many batches to copy to the device ahead of the step
            (:func:`prefetch_to_device`); None: 2 on accelerators, 0 on CPU
            (where the extra copy costs more than it hides).

    Returns:
        A FitResult whose `metrics` hold `accuracy` and `loss` (held-out),
        `train_loss`, `train_accuracy`, `params` (the parameter count),
        `flops_per_example` (forward pass, XLA's estimate), `step_time_ms`
        (wall time per training step, input feeding included, median over the
        epochs after the first), `compile_s` (0 when the steps were cached),
        `steps` and `epochs`.

    Raises:
        ValueError: if the model's output does not fit the loss, or the
            arguments or data do not fit together.
        TrainingDiverged: if the loss becomes NaN or infinite.

    Examples:
        >>> import optax
        >>> from morphax.spaces.cnn import MLP
        >>> from morphax.train import fit, load_digits
        >>> train, test = load_digits()
        >>> result = fit(MLP(hidden=(32,)), optax.adam(1e-2), train, valid_data=test, epochs=2)
        >>> result.metrics["accuracy"] > 0.5
        True
    """
    loss_pair = _loss(loss)
    _check_args(train_data, valid_data, epochs, batch_size)
    ahead = _prefetch_size(prefetch)
    tx, opt_key = _optimizer(optimizer)
    init_key, shuffle_key = jax.random.split(_as_key(key))
    seed = int(jax.random.randint(shuffle_key, (), 0, 2**31 - 1))
    x0 = train_data.x[:batch_size]
    abstract = _abstract_state(model, tx, opt_key, loss_pair, x0, init_key, train_data)
    steps = _compile(model, tx, opt_key, loss_pair, abstract, train_data, batch_size, compute_dtype)
    var_key, train_key = jax.random.split(init_key)  # as init() does
    params, model_state = steps.init_variables(x0, var_key)
    state = TrainState(
        jnp.zeros((), jnp.int32), params, model_state, steps.init_opt(params), train_key
    )
    valid = valid_data if valid_data is not None else train_data
    history: list[dict[str, float]] = []
    step_times: list[float] = []
    for epoch in range(1, epochs + 1):
        state, train_metrics, seconds = _train_epoch(
            steps.train,
            state,
            train_data,
            batch_size,
            seed=seed + epoch,
            epoch=epoch,
            prefetch=ahead,
        )
        step_times.append(seconds)
        metrics = evaluate(state, steps.eval, valid, batch_size)
        if not math.isfinite(metrics["loss"]):
            raise TrainingDiverged(
                f"the held-out loss on {valid.name} became {metrics['loss']} after epoch {epoch}; "
                "lower the learning rate or check the model and data"
            )
        history.append({**metrics, **train_metrics})
        if on_epoch is not None and on_epoch(epoch, dict(history[-1])):
            break
    final = _final_metrics(state, history, steps, step_times)
    return FitResult(state, final, history, steps.eval, batch_size, train_data)


def _final_metrics(
    state: TrainState, history: list[dict[str, float]], steps: _Steps, step_times: list[float]
) -> dict[str, float]:
    return {
        **history[-1],
        "params": float(sum(np.size(p) for p in jax.tree.leaves(state.params))),
        "flops_per_example": steps.flops_per_example or math.nan,
        "step_time_ms": float(np.median(step_times[1:] or step_times) * 1e3),
        "compile_s": steps.compile_s,
        "steps": float(int(state.step)),
        "epochs": float(len(history)),
    }
