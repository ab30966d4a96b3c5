"""The one-shot search loop: :func:`search`."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from ..symbolic import DNA
from ._checkpoints import Checkpoint, enable_compilation_cache
from ._pt import order as pt_order
from ._pt import project
from ._result import SearchResult
from ._strategies import Program, SearchState, Strategy, check_int
from ._studies import record_unit


def _check(strategy: Any, train: Any, valid: Any, epochs: Any, batch_size: Any) -> None:
    from ..train import Dataset

    if not isinstance(strategy, Strategy):
        raise TypeError(
            "`strategy` must be an mx.oneshot strategy (DARTS(), GDAS(), SPOS(), ENAS(), "
            f"RSPS()), but got strategy={strategy!r}"
        )
    for what, data in (("train", train), ("valid", valid)):
        if not isinstance(data, Dataset):
            raise TypeError(
                f"`{what}` must be a morphax.train.Dataset, but got {type(data).__name__}; wrap "
                "arrays with morphax.train.from_arrays(x, y)"
            )
        if data.num_classes is None or isinstance(data.x, dict):
            raise ValueError(
                f"`{what}` must hold class labels and one input array (the one-shot loss is "
                f"cross-entropy), but {data.name} has num_classes={data.num_classes}"
            )
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"`epochs` must be an int >= 1, but got epochs={epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1, but got batch_size={batch_size!r}")
    if len(train) < batch_size:
        raise ValueError(
            f"batch_size={batch_size} exceeds the {len(train)} examples of `train`; pass "
            f"batch_size <= {len(train)}"
        )
    if len(valid) == 0:
        raise ValueError("`valid` has no examples; the strategies score architectures on it")


def _is_supernet(model: Any) -> bool:
    return all(hasattr(model, a) for a in ("spec", "mask", "export", "child_variables", "apply"))


def _supernet(model: Any, strategy: Strategy, x: Any) -> Any:
    pc = strategy.partial_channels
    if _is_supernet(model):
        have = getattr(model, "partial_channels", None)
        if pc is not None and have != pc:
            raise ValueError(
                f"{type(strategy).__name__}(partial_channels={pc}) but the supernet was built "
                f"with partial_channels={have}; build it with "
                f"mx.oneshot.supernet(model, x, partial_channels={pc}) or pass the model"
            )
        return model
    from . import supernet

    return supernet(model, x) if pc is None else supernet(model, x, partial_channels=pc)


def _batches(data: Any, batch_size: int, seed: int) -> Iterator[tuple[Any, Any]]:
    return data.batches(batch_size, seed=seed)


def _valid_batches(data: Any, batch_size: int, seed: int) -> Iterator[tuple[Any, Any]]:
    size = min(batch_size, len(data))
    for r in itertools.count():
        yield from data.batches(size, seed=seed + 7919 * r)


def _calibration(train: Any, batch_size: int, batches: int, seed: int) -> Any:
    """`[K, B, ...]`: K = min(`batches`, full batches of `train`) fixed batches of
    `train` (seeded) to recompute single paths' batch statistics; None if K = 0."""
    k = min(batches, len(train) // batch_size)
    if k == 0:
        return None
    rows = np.random.default_rng([seed, 0xCA1B]).permutation(len(train))[: k * batch_size]
    x = np.asarray(train.x[np.sort(rows)])
    return jax.device_put(x.reshape(k, batch_size, *x.shape[1:]))


class _Runner:
    """One search run: the program, the data and the progress bar."""

    def __init__(self, prog: Program, train: Any, valid: Any, batch_size: int, seed: int, bar: Any):
        self.prog, self.train, self.valid = prog, train, valid
        self.batch_size, self.seed, self.bar = batch_size, seed, bar

    def epoch(self, state: SearchState, unit: int, sub: int = 0) -> tuple[SearchState, dict]:
        prog, bs = self.prog, self.batch_size
        rng = np.random.default_rng([self.seed, unit, sub])
        data_seed = (self.seed * 1_000_003 + unit * 101 + sub) % (2**31)
        valid_it = (
            _valid_batches(self.valid, bs, data_seed) if prog.strategy.uses_valid_batches else None
        )
        outs = []
        for x, y in _batches(self.train, bs, data_seed):
            state, sample = prog.sample(state, rng)
            v = next(valid_it) if valid_it is not None else ()
            state, m = prog.train_step(state, (x, y), v, sample)
            outs.append(m)
            if self.bar is not None:
                self.bar.update(1)
        host = jax.device_get(outs)
        metrics = {f"train_{k}": float(np.mean([m[k] for m in host])) for k in host[0]}
        if not np.isfinite(metrics["train_loss"]):
            from ..train import TrainingDiverged

            raise TrainingDiverged(
                f"the one-shot training loss became {metrics['train_loss']} in unit {unit}; "
                "lower the learning rate or check the model and data"
            )
        return state, metrics


def search(
    model: Any,
    strategy: Strategy,
    train: Any,
    valid: Any,
    *,
    epochs: int,
    batch_size: int = 64,
    seed: int = 0,
    checkpoint: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    name: str | None = None,
    progress: bool = True,
    compilation_cache: str | os.PathLike[str] | bool | None = None,
    recalibrate: int = 16,
) -> SearchResult:
    """Searches a model's decisions by weight sharing (one-shot NAS).

    The model runs as a supernet (:func:`morphax.oneshot.supernet`); the
    strategy trains its shared weights (and its architecture logits or
    controller) for `epochs` on `train`, scoring architectures on `valid`,
    and exports a DNA of the model's own DNASpec. DARTS-PT's selection
    (`selection="pt"`) then fixes one decision at a time, with fine-tuning;
    SPOS and RSPS then search the trained supernet with an `mx.algorithms`
    algorithm (a study `<name>.search`).

    One jitted train step and one jitted evaluation per kind of architecture
    input serve the whole run: no new path, sample, epoch or perturbation
    compiles again; JAX's persistent compilation cache (see
    `compilation_cache`) spares a rerun or a resumed search the compile.

    Args:
        model: the search space (a model with `mx.oneof` decisions) or a
            supernet built with `mx.oneshot.supernet`.
        strategy: `DARTS(...)`, `GDAS(...)`, `SPOS(...)`, `ENAS(...)` or `RSPS(...)`.
        train: the training set (a `morphax.train.Dataset` of class labels).
        valid: the held-out set that scores architectures (DARTS's
            architecture steps take its batches).
        epochs: supernet training epochs.
        batch_size: examples per step (of each set).
        seed: the seed of initialization, sampling and data order.
        checkpoint: a directory: after each epoch (and each projection) the
            whole state, the epoch and the history are saved there
            atomically (orbax); running the same search again with it
            resumes, bit-identically on one device, and a finished run
            returns at once.
        store: a study file: each epoch's exported DNA and metrics are a
            trial of the study `name` (so `mx.load_study`, `morphax show` and
            the plots work), reward `valid_accuracy`.
        name: the study's name (default `"oneshot-<strategy>"`).
        progress: a tqdm progress bar over the training steps.
        compilation_cache: the directory of JAX's persistent compilation
            cache; None: `$MORPHAX_COMPILATION_CACHE`, else
            `~/.cache/morphax/jax` (unless JAX already has one set); False:
            leave JAX's setting alone.
        recalibrate: a single path (an exported or scored architecture, and
            :attr:`SearchResult.child_variables`) gets its `batch_stats`
            recomputed over this many fixed batches of `train` before it is
            scored, as SPOS does; the supernet's running averages are those
            of the mixture or of other paths. 0: scored with them as they are.

    Returns:
        A :class:`SearchResult`: `.dna`, `.child`, `.child_variables`,
        `.history`, `.score(dnas, data)`.

    Raises:
        TypeError, ValueError: if an argument is of the wrong kind or out of
            range, or a checkpoint is of another search.

    Examples:
        >>> import morphax as mx
        >>> from morphax.spaces import nasbench201 as nb
        >>> from morphax.train import load_digits
        >>> train, valid = load_digits()
        >>> net = nb.search_net(channels=4, cells_per_stage=1)
        >>> result = mx.oneshot.search(net, mx.oneshot.DARTS(), train[:128], valid[:64],
        ...                            epochs=1, batch_size=32, progress=False)
        >>> mx.dna_spec(nb.cell_space()).validate(result.dna) == result.dna
        True
        >>> 0.0 < nb.load().test_accuracy(result.dna, "cifar10") < 100.0
        True
    """
    _check(strategy, train, valid, epochs, batch_size)
    recalibrate = check_int("recalibrate", recalibrate, low=0)
    seed = check_int("seed", seed, low=0)
    if compilation_cache is not False:
        enable_compilation_cache(
            None if compilation_cache is None or compilation_cache is True else compilation_cache
        )
    x0 = train.x[:batch_size]
    sn = _supernet(model, strategy, x0)
    steps = len(train) // batch_size
    prog = strategy.program(sn, steps_per_epoch=steps, epochs=epochs)
    prog.calibration = _calibration(train, batch_size, recalibrate, seed)
    name = name or f"oneshot-{type(strategy).__name__.lower()}"
    rows = pt_order(prog, seed) if getattr(strategy, "selection", None) == "pt" else []
    units = epochs + len(rows)
    pt_epochs = getattr(strategy, "pt_epochs", 0)

    key = jax.random.PRNGKey(seed)
    state = prog.init(key, x0)
    ckpt = None
    history: list[dict[str, float]] = []
    dnas: list[DNA] = []
    if checkpoint is not None:
        ckpt = Checkpoint(
            checkpoint,
            {
                "strategy": repr(strategy),
                "spec": sn.spec.fingerprint if hasattr(sn.spec, "fingerprint") else repr(sn.spec),
                "epochs": epochs,
                "batch_size": batch_size,
                "seed": seed,
                "recalibrate": recalibrate,
                "train": [train.name, len(train)],
                "valid": [valid.name, len(valid)],
            },
        )
        restored = ckpt.restore(state)
        if restored is not None:
            state, history, dnas = restored
    bar = None
    total = steps * (epochs + len(rows) * pt_epochs)
    if progress:
        from tqdm.auto import tqdm

        done = steps * (min(len(history), epochs) + max(len(history) - epochs, 0) * pt_epochs)
        bar = tqdm(total=total, initial=done, desc=f"{name}", unit="step", leave=False)
    run = _Runner(prog, train, valid, batch_size, seed, bar)
    space = sn.space()
    try:
        for unit in range(len(history), units):
            started = time.time()
            if unit < epochs:
                state, metrics = run.epoch(state, unit)
                state = prog.end_epoch(state, valid, batch_size, unit)
                metrics = {"phase_select": 0.0, **metrics}
            else:
                state, metrics = project(prog, state, rows[unit - epochs], valid, batch_size)
                for sub in range(pt_epochs):
                    state, tuned = run.epoch(state, unit, sub + 1)
                    metrics.update(tuned)
                metrics = {"phase_select": 1.0, **metrics}
            dna, scored = prog.export(state, valid, batch_size)
            history.append({"epoch": float(unit + 1), **metrics, **scored})
            dnas.append(dna)
            if store is not None:
                record_unit(space, store, name, seed, dnas, history, started)
            if ckpt is not None:
                ckpt.save(state, history, dnas)
            if bar is not None:
                bar.set_postfix(valid_accuracy=f"{history[-1]['valid_accuracy']:.4f}")
    finally:
        if bar is not None:
            bar.close()
    final = getattr(prog, "final", None)
    if final is not None:
        dna = final(state, valid, batch_size, space=space, store=store, name=name, seed=seed)
    else:
        dna = dnas[-1]
    return SearchResult(dna, history, dnas, state, sn, strategy, prog, batch_size)
