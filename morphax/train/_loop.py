"""Child programs to jitted JAX training and evaluation: :func:`fit`.

:func:`fit` is the convenient face over the pure steps of
:mod:`morphax.train._steps`: it trains a child and returns its metrics. Its
steps are compiled ahead of time once per distinct (model, optimizer, loss,
batch shape) and cached by value, never by `id`.
"""

from __future__ import annotations

import math
import os
import time
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..symbolic import Call, DynamicChild, DynamicSpace, HyperValue, build, format_path, traverse
from ._checkpoint import save_variables
from ._data import Dataset, _take, prefetch_to_device
from ._devices import (
    BATCH,
    NEEDS_AXIS,
    REPLICATED,
    Placement,
    bind,
    one_device,
    placement,
    remember_needs_axis,
    unbound_axis,
)
from ._hparams import Optimizer, prepare
from ._losses import Loss, Metric, Task, check_output, make_task
from ._metrics import _final_metrics
from ._nnx import NNXModel, is_nnx
from ._steps import (
    _SHAPE_CACHE,
    EvalStep,
    TrainState,
    _apply,
    _cached,
    _compile,
    _Entry,
    _Key,
    _Steps,
    init,
)


class TrainingDiverged(FloatingPointError):
    """The training (or held-out) loss became NaN or infinite."""


@dataclass
class FitResult:
    """What :func:`fit` measured; `metrics` is what a search trial reports.

    `checkpoint` is the absolute directory of the saved variables (with
    `fit(..., checkpoint_dir=...)`; :func:`load_variables` reads it), else None.
    """

    state: TrainState
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoint: str | None = None
    _eval: Any = field(default=None, repr=False)
    _batch_size: int = 0
    _data: Dataset | None = field(default=None, repr=False)

    def evaluate(self, data: Dataset) -> dict[str, float]:
        """The held-out metrics of the trained child on `data` (e.g. a test set).

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
    """`loss`, `accuracy` (where the task has one) and the user metrics on
    `data`, with `eval_step` (jitted for `batch_size`); the last batch is padded.
    """
    if len(data) == 0:
        raise ValueError(f"cannot evaluate on {data.name}: it has no examples")
    outs = []
    for i in range(0, len(data), batch_size):
        x, y = _take(data.x, slice(i, i + batch_size)), data.y[i : i + batch_size]
        pad = batch_size - len(y)
        weight = np.ones(batch_size, np.float32)
        if pad:
            x = jax.tree.map(lambda a, p=pad: _pad(a, p), x)
            y = _pad(y, pad)
            weight[-pad:] = 0.0
        outs.append(eval_step(state.params, state.model_state, x, y, weight))
    totals = {k: float(np.sum([o[k] for o in jax.device_get(outs)])) for k in outs[0]}
    count = max(totals.pop("count"), 1.0)
    result = {"loss": totals.pop("loss") / count}
    if "correct" in totals:
        result["accuracy"] = totals.pop("correct") / count
    return {**result, **{k: v / count for k, v in totals.items()}}


def _pad(a: np.ndarray, pad: int) -> np.ndarray:
    return np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)])


def _model(model: Any) -> Any:
    """The trainable model, with a clear error for a space or a symbolic call."""
    if isinstance(model, DynamicSpace):
        raise TypeError(
            f"fit needs a child, but got a define-by-run search space {model!r}: materialize "
            "a child first, e.g. fit(mx.materialize(space, space.spec.random_dna(0)), ...), "
            "or train trial.program inside mx.search(space, ...)"
        )
    where = next((k for k, v in traverse(model) if isinstance(v, HyperValue)), None)
    if where is not None:
        path = format_path(where) or "<root>"
        raise TypeError(
            f"fit needs a child, but the model is a search space: it has a hyper-value at "
            f"{path!r}; materialize a child first, e.g. "
            "fit(mx.materialize(space, mx.dna_spec(space).random_dna(0)), ...), or train "
            "trial.program inside mx.search(space, ...)"
        )
    program = None
    if isinstance(model, Call | DynamicChild):
        program, model = model, build(model)  # a symbolic model or NNX child: its module
    if is_nnx(model):
        return NNXModel(model, None if program is None else _Key(program))
    return model


def _as_key(key: jax.Array | int) -> jax.Array:
    if isinstance(key, int | np.integer):
        return jax.random.key(int(key))
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(key)  # a raw uint32 key (jax.random.PRNGKey)
    return key


def _check_compatible(train: Dataset, other: Dataset) -> None:
    if (other.input_shape, other.num_classes, other.target_shape) != (
        train.input_shape,
        train.num_classes,
        train.target_shape,
    ):
        what = "classes" if train.num_classes is not None else "as target shape"
        mine = other.num_classes if train.num_classes is not None else other.target_shape
        theirs = train.num_classes if train.num_classes is not None else train.target_shape
        raise ValueError(
            f"{other.name} has inputs of shape {other.input_shape} and {mine} {what}, but the "
            f"child was trained on {train.name} with {train.input_shape} and {theirs}; they "
            "must match"
        )
    if len(other) == 0:
        raise ValueError(f"{other.name} has no examples to evaluate on")


def _check_args(train: Dataset, valid: Dataset | None, epochs: int, batch_size: int) -> None:
    if not isinstance(train, Dataset):
        raise TypeError(
            f"train_data must be a morphax.train.Dataset, but got {type(train).__name__}; "
            "wrap arrays with morphax.train.from_arrays(x, y) (x may be a dict of inputs)"
        )
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
    opt: Optimizer,
    task: Task,
    x0: Any,
    key: jax.Array,
    data: Dataset,
    where: Placement | None = None,
) -> TrainState:
    """The shape-only initial state, traced and checked once per child structure."""
    R, B = REPLICATED, BATCH

    def make() -> _Entry:
        def init_all(x: Any, k: jax.Array, hp: jax.Array) -> TrainState:
            return init(model, opt.make(hp), x, key=k)

        def forward(v: Any, x: Any) -> Any:
            return _apply(model, v, x, train=False, mutable=False)

        abstract = jax.eval_shape(bind(where, init_all, (B, R, R), R), x0, key, opt.values)
        variables = {"params": abstract.params, **abstract.model_state}
        out = jax.eval_shape(bind(where, forward, (R, B), B), variables, x0)
        return _Entry((abstract, out), 0.0)

    where_key = None if where is None else where.key
    cache_key = (_Key(model), opt.key, task.key, len(_leaf(x0)), data.signature(), where_key)
    entry, _ = _cached(_SHAPE_CACHE, cache_key, make)
    abstract, out = entry.fn
    check_output(task, out, data, len(_leaf(x0)))  # labels too: not cached
    return typing.cast(TrainState, abstract)


def _leaf(x: Any) -> Any:
    return next(iter(x.values())) if isinstance(x, dict) else x


def _train_epoch(
    train_step: Any,
    state: TrainState,
    data: Dataset,
    batch_size: int,
    hp: Any,
    *,
    seed: int,
    epoch: int,
    prefetch: int,
    where: Placement | None = None,
) -> tuple[TrainState, dict[str, float], float]:
    """One pass over `data`: (state, train metrics, seconds per step)."""
    outs = []
    t0 = time.perf_counter()
    batches: Iterable[tuple[Any, Any]] = data.batches(batch_size, seed=seed)
    if prefetch:
        sharding = None if where is None else where.data
        batches = prefetch_to_device(batches, size=prefetch, sharding=sharding)
    for x, y in batches:
        state, m = train_step(state, x, y, hp)
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
    metrics = {"train_loss": float(losses.mean())}
    if "accuracy" in host[0]:
        metrics["train_accuracy"] = float(np.mean([m["accuracy"] for m in host]))
    return state, metrics, seconds


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
    loss: str | Loss | None = None,
    metrics: Mapping[str, Metric] | Sequence[Metric] | None = None,
    compute_dtype: Any = None,
    on_epoch: Callable[[int, dict[str, float]], bool | None] | None = None,
    prefetch: int | None = None,
    optimizer_values: bool = True,
    devices: Sequence[jax.Device] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    variables: Mapping[str, Any] | None = None,
) -> FitResult:
    """Trains a child program and evaluates it.

    Args:
        model: a Flax linen module (a materialized child, or a DynamicChild),
            or a symbolic call that builds one.
        optimizer: an optax optimizer, or a symbolic program building one (so
            its learning rate and kind can be searched). A symbolic
            program's float arguments (learning rate, weight decay, momentum,
            schedule constants) are values of the compiled step, so programs
            that differ only there share one executable; a plain optax
            object is keyed by identity (pass the same object to reuse
            compiled steps).
        train_data: the training set; its inputs may be a dict of arrays,
            passed to the model by name.
        valid_data: the held-out set for the metrics (default: train); it
            may be smaller than a batch.
        epochs: passes over the training data.
        batch_size: the batch size (the last partial training batch is dropped).
        key: a JAX PRNG key or an int seed (init, dropout and shuffling).
        loss: "cross_entropy" (softmax, integer labels), "mse",
            "binary_cross_entropy" (logits, targets in [0, 1]), or a
            function `loss(outputs, targets) -> scalar` (a mean over the
            batch); None: cross_entropy for class labels, mse otherwise.
        metrics: held-out metrics, as `{name: fn}` or a list of functions
            (named by `__name__`), each `fn(outputs, targets) -> scalar` (a
            mean over the batch).
        compute_dtype: e.g. `jnp.bfloat16` to compute in bf16 (master weights
            stay float32); for GPUs.
        on_epoch: called after each epoch with (epoch, metrics); returning
            True stops training (early stopping).
        prefetch: how many batches to copy to the device ahead of the step
            (:func:`prefetch_to_device`); None: 2 on accelerators, 0 on CPU
            (where the extra copy costs more than it hides).
        optimizer_values: False compiles a symbolic optimizer's floats in as
            constants (one compile per learning rate).
        devices: data parallelism, e.g. `jax.devices()`: each batch is
            sharded over these devices (a mesh axis named "batch"), the
            parameters and optimizer state are replicated, and the gradients
            averaged, so the run follows the one-device run. `batch_size`
            must be a multiple of their number. A model that names the batch
            axis (`nn.BatchNorm(axis_name="batch")`) finds it bound, here or
            on one device (None: the default device).
        checkpoint_dir: a directory to save the trained variables in (orbax;
            Linen: the variables dict, NNX: the module's state), replacing a
            checkpoint saved there before; `FitResult.checkpoint` says
            where, :func:`load_variables` and :func:`load_module` restore.
        variables: start from these variables instead of a fresh init
            (fine-tuning): a Linen variables dict (`{"params": ..., "batch_stats":
            ...}`), e.g. a one-shot search's `result.child_variables`; its
            structure and shapes must be the model's.

    Returns:
        A FitResult whose `metrics` hold `loss` (held-out), `accuracy` and
        `train_accuracy` (for classification losses), the user metrics,
        `train_loss`, `params` (the parameter count), `flops_per_example`
        (forward pass, XLA's estimate), `step_time_ms` (wall time per
        training step, input feeding included, median over the epochs after
        the first), `compile_s` (0 when the steps were cached), `steps` and
        `epochs`.

    Raises:
        TypeError: if the model is a search space (materialize a child first).
        ValueError: if the model's output does not fit the loss, labels are
            out of range, the arguments or data do not fit together, or
            `batch_size` is not a multiple of the number of `devices`.
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
    model = _model(model)
    _check_args(train_data, valid_data, epochs, batch_size)
    task = make_task(loss, metrics, train_data)
    ahead = _prefetch_size(prefetch)
    opt = prepare(optimizer, as_values=optimizer_values)
    init_key, shuffle_key = jax.random.split(_as_key(key))
    seed = int(jax.random.randint(shuffle_key, (), 0, 2**31 - 1))
    x0 = _take(train_data.x, slice(0, batch_size))
    where = placement(devices, batch_size)
    if where is None and _Key(model) in NEEDS_AXIS:
        where = one_device()

    def prepare_steps(where: Placement | None) -> tuple[TrainState, _Steps]:
        abstract = _abstract_state(model, opt, task, x0, init_key, train_data, where)
        steps = _compile(model, opt, task, abstract, train_data, batch_size, compute_dtype, where)
        return abstract, steps

    try:
        abstract, steps = prepare_steps(where)
    except NameError as e:  # the model names the batch axis: bind it on one device
        if where is not None or not unbound_axis(e):
            raise
        remember_needs_axis(_Key(model))
        where = one_device()
        abstract, steps = prepare_steps(where)
    var_key, train_key = jax.random.split(init_key)  # as init() does
    params, model_state = steps.init_variables(x0, var_key)
    if variables is not None:
        params, model_state = _given_variables(variables, params, model_state)
    if where is not None:  # NNX variables come from the module, on one device
        params, model_state = jax.device_put((params, model_state), where.replicated)
    hp = jnp.asarray(opt.values)
    opt_state = steps.init_opt(params, hp)
    state = TrainState(jnp.zeros((), jnp.int32), params, model_state, opt_state, train_key)
    if where is not None:
        state = jax.device_put(state, where.replicated)
    valid = valid_data if valid_data is not None else train_data
    history: list[dict[str, float]] = []
    step_times: list[float] = []
    for epoch in range(1, epochs + 1):
        state, train_metrics, seconds = _train_epoch(
            steps.train,
            state,
            train_data,
            batch_size,
            hp,
            seed=seed + epoch,
            epoch=epoch,
            prefetch=ahead,
            where=where,
        )
        step_times.append(seconds)
        held = evaluate(state, steps.eval, valid, batch_size)
        if not math.isfinite(held["loss"]):
            raise TrainingDiverged(
                f"the held-out loss on {valid.name} became {held['loss']} after epoch {epoch}; "
                "lower the learning rate or check the model and data"
            )
        history.append({**held, **train_metrics})
        if on_epoch is not None and on_epoch(epoch, dict(history[-1])):
            break
    final = _final_metrics(state, history, steps, step_times)
    saved = None if checkpoint_dir is None else _save(checkpoint_dir, model, state, final)
    return FitResult(
        state,
        final,
        history,
        checkpoint=saved,
        _eval=steps.eval,
        _batch_size=batch_size,
        _data=train_data,
    )


def _given_variables(variables: Any, params: Any, model_state: Any) -> tuple[Any, Any]:
    """`variables` split as (params, model state), checked against a fresh init's."""
    if not isinstance(variables, Mapping) or "params" not in variables:
        raise TypeError(
            "fit(variables=...) takes a Linen variables dict with a 'params' entry (as "
            f"model.init returns), but got {type(variables).__name__}"
        )
    given = {k: v for k, v in variables.items() if k != "params"}
    ours = jax.tree_util.tree_flatten_with_path({"params": params, **model_state})[0]
    theirs = jax.tree_util.tree_flatten_with_path({"params": variables["params"], **given})[0]
    mine = {jax.tree_util.keystr(k): np.shape(v) for k, v in ours}
    got = {jax.tree_util.keystr(k): np.shape(v) for k, v in theirs}
    for where in sorted(set(mine) | set(got)):
        if mine.get(where) != got.get(where):
            raise ValueError(
                f"fit(variables=...) does not fit the model at {where}: the model has "
                f"{mine.get(where, 'nothing')} there, the variables {got.get(where, 'nothing')}; "
                "pass the variables of this child (e.g. result.child_variables of its search)"
            )
    # Copies: the train step donates its state, never the caller's arrays.
    cast = jax.tree.map(lambda a, b: jnp.array(b, a.dtype), params, variables["params"])
    state = jax.tree.map(lambda a, b: jnp.array(b, a.dtype), model_state, given)
    return cast, state


def _save(
    path: str | os.PathLike[str], model: Any, state: TrainState, metrics: dict[str, float]
) -> str:
    """Saves the trained variables (Linen) or module state (NNX) under `path`."""
    variables = {"params": state.params, **state.model_state}
    if isinstance(model, NNXModel):
        from flax import nnx

        pure = nnx.state(model.merge(variables)).to_pure_dict()
        return save_variables(path, pure, kind="nnx", metrics=metrics)
    return save_variables(path, variables, kind="linen", metrics=metrics)
