"""`morphax search`: run (or resume) a search with a progress bar."""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ._choices import SPACES, CLIError, make_algorithm
from ._data import load_data
from ._progress import Progress
from ._show import _summary
from ._user_space import is_user_space, load_user_space

#: Defaults of the training flags (None in the parser, so that a flag given for
#: NAS-Bench-201, which trains nothing, is seen and refused).
TRAINING_DEFAULTS = {"epochs": 4, "batch_size": 64, "lr": 3e-3}


@dataclasses.dataclass
class _Context:
    """What each trial of a search needs."""

    args: argparse.Namespace
    evaluate: Callable[[Any], float | None]  # runs and reports one trial; its reward or None


def _best_so_far(trials: Sequence[Any]) -> float | None:
    rewards = [
        t.reward[0] if isinstance(t.reward, tuple) else t.reward  # NSGA-II: the accuracy
        for t in trials
        if t.status == "completed" and t.reward is not None
    ]
    return max(rewards) if rewards else None


def _counted(trials: Sequence[Any]) -> int:
    """Trials that count toward --trials: finished, and not answered as duplicates."""
    return sum(1 for t in trials if t.done and not (t.reason or "").startswith("duplicate of"))


def _run(search: Any, ctx: _Context, out: TextIO) -> int:
    """Iterates the search with a progress bar; 130 on Ctrl-C, else the summary's status."""
    args = ctx.args
    bar: Progress | None = None
    current: Any = None
    try:
        trials = search if args.workers is None else search.map(ctx.evaluate, backend=_ray(args))
        for trial in trials:
            current = trial
            if bar is None:  # the study's earlier trials are known once iteration starts
                bar = Progress(args.trials, done=_counted(search.trials))
            if args.workers is None:
                ctx.evaluate(trial)
            note = f"trial {trial.id} {trial.status}"
            bar.update(_counted(search.trials), _best_so_far(search.trials), note)
    except KeyboardInterrupt:
        _interrupted(args, current, _counted(search.trials), out)
        return 130
    finally:
        if bar is not None:
            bar.close()
        if search.store is not None:
            search.store.close()  # checkpoints the WAL: the study file stands alone
    return _summary(args.store, search.name, out, plot=args.plot)


def _ray(args: argparse.Namespace) -> Any:
    """The backend of --workers N: N trials in flight on Ray."""
    import morphax as mx

    try:
        return mx.backends.Ray(max_in_flight=args.workers)
    except ImportError as e:
        raise CLIError(f"--workers {args.workers}: {e}") from None


def _interrupted(args: argparse.Namespace, trial: Any, done: int, out: TextIO) -> None:
    lost = (
        ""
        if trial is None or trial.done
        else f"; trial #{trial.id} was cut short and will run again"
    )
    command = shlex.join(["morphax", *args.argv])
    print(
        f"\ninterrupted: {done} of {args.trials} trials are saved in {args.store} "
        f"(study {args.study!r}){lost}.\nTo resume, run the same command again:\n  {command}",
        file=out,
    )


def _fit_trial(trial: Any, data: tuple[Any, Any, Any], optimizer: Any, args: Any) -> float | None:
    """Trains one child, with step-wise reports for early stopping; its reward or None."""
    import jax
    import jax.numpy as jnp

    from .. import train as mt

    train, valid, test = data

    def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
        if args.algorithm != "nsga2":  # its step reports would need a parameter count too
            trial.report({"valid_accuracy": metrics["accuracy"]}, step=epoch)
        return trial.done or trial.should_stop()

    try:
        result = mt.fit(
            trial.program["model"],
            optimizer,
            train,
            valid_data=valid,
            epochs=args.epochs,
            batch_size=args.batch_size,
            key=args.seed * 1_000_003 + trial.id,
            compute_dtype=jnp.bfloat16 if args.bf16 else None,
            on_epoch=on_epoch,
        )
    except (mt.TrainingDiverged, ValueError, jax.errors.JaxRuntimeError) as e:
        if not trial.done:
            trial.fail(f"{type(e).__name__}: {e}")
        return None
    if trial.done:  # a step-wise report was rejected
        return None
    m = result.metrics
    keep = ("params", "flops_per_example", "compile_s", "step_time_ms", "epochs", "loss")
    report = {"valid_accuracy": m["accuracy"], "test_accuracy": result.evaluate(test)["accuracy"]}
    report.update({k: m[k] for k in keep if math.isfinite(m[k])})
    trial.report(report)
    return m["accuracy"]


def _search_models(args: argparse.Namespace, algorithm: Any, out: TextIO) -> int:
    import optax

    import morphax as mx

    data = load_data(args.data, seed=args.seed, limit_per_class=args.limit_per_class)
    train, valid, test = data
    if args.batch_size > len(train):
        raise CLIError(f"--batch-size {args.batch_size} exceeds the {len(train)} training examples")
    space = mx.space({"model": _model_space(args, train.num_classes), "train": _training(args)})
    optimizer = mx.symbolic(optax.adam)(learning_rate=args.lr)
    print(
        f"morphax search: space={args.space} ({space.spec.space_size} architectures), "
        f"algorithm={args.algorithm}, trials={args.trials}, data={args.data} (train {len(train)}, "
        f"valid {len(valid)}, test {len(test)}), store={args.store}, study={args.study!r}",
        file=out,
    )
    search = _make_search(space, algorithm, args)
    ctx = _Context(args, lambda trial: _fit_trial(trial, data, optimizer, args))
    return _run(search, ctx, out)


def _search_nasbench201(args: argparse.Namespace, algorithm: Any, out: TextIO) -> int:
    from ..spaces import nasbench201 as nb

    if args.dataset not in nb.DATASETS:
        raise CLIError(
            f"unknown NAS-Bench-201 dataset {args.dataset!r}; known datasets: "
            f"{', '.join(nb.DATASETS)}"
        )
    bench = nb.load()
    print(
        f"morphax search: NAS-Bench-201 ({args.dataset}; 12-epoch validation accuracy as the "
        f"signal, 200-epoch test accuracy held out), algorithm={args.algorithm}, "
        f"trials={args.trials}, store={args.store}, study={args.study!r}",
        file=out,
    )

    def evaluate(trial: Any) -> float:
        acc = bench.valid_accuracy(trial.program["model"], args.dataset)
        test = bench.test_accuracy(trial.program["model"], args.dataset)
        trial.report({"valid_accuracy": acc, "test_accuracy": test})
        return acc

    # The dataset is stored with the space: resuming on another one is refused.
    space = {"model": nb.cell_space(), "train": {"dataset": args.dataset}}
    search = _make_search(space, algorithm, args)
    return _run(search, _Context(args, evaluate), out)


def _make_search(space: Any, algorithm: Any, args: argparse.Namespace) -> Any:
    import morphax as mx

    policy = (
        mx.algorithms.MedianStopping(min_steps=1, min_trials=3)
        if args.early_stopping == "median"
        else None
    )
    return mx.search(
        space,
        algorithm,
        num_trials=args.trials,
        store=args.store,
        name=args.study,
        objective="valid_accuracy",
        direction=("maximize", "minimize") if args.algorithm == "nsga2" else "maximize",
        early_stopping=policy,
        duplicates=args.duplicates,
        progress=False,  # the command's own bar
    )


def _model_space(args: argparse.Namespace, num_classes: int) -> Any:
    """The program of the models searched: a built-in space or the user's."""
    if is_user_space(args.space):
        return load_user_space(args.space, num_classes=num_classes)
    from ..spaces.cnn import cnn_space, mlp_space

    opts: dict[str, Any] = {"num_classes": num_classes, "max_depth": args.max_depth}
    if args.widths:
        opts["widths"] = args.widths
    return cnn_space(**opts) if args.space == "cnn" else mlp_space(**opts)


def _training(args: argparse.Namespace) -> dict[str, Any]:
    """The training configuration, stored with the study's space as fixed values,
    so that resuming with another one is refused, naming what changed."""
    return {
        "data": args.data,
        "limit_per_class": args.limit_per_class,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "bf16": bool(args.bf16),
    }


def _check_training_flags(args: argparse.Namespace) -> None:
    """Refuses training flags for NAS-Bench-201 (it trains nothing); fills the defaults."""
    given = [k for k in TRAINING_DEFAULTS if getattr(args, k) is not None]
    if args.space == "nasbench201" and given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise CLIError(
            f"{flags} cannot apply to --space nasbench201: it trains nothing, its accuracies "
            "are NAS-Bench-201's recorded ones (12-epoch validation, 200-epoch test); drop "
            f"{flags}"
        )
    for k, v in TRAINING_DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.algorithm == "nsga2" and args.early_stopping != "none":
        raise CLIError(
            "--early-stopping compares per-epoch validation accuracy, a single objective; "
            "--algorithm nsga2 searches two (accuracy and parameter count): drop one of them"
        )
    if args.algorithm == "nsga2" and args.space == "nasbench201":
        raise CLIError(
            "--algorithm nsga2 searches accuracy and parameter count, but NAS-Bench-201's "
            "table holds no parameter counts; use --space cnn, mlp or MODULE:FUNCTION"
        )


def cmd_search(args: argparse.Namespace) -> int:
    if args.space not in SPACES and not is_user_space(args.space):
        raise CLIError(
            f"unknown space {args.space!r}; known spaces: {', '.join(SPACES)}, or a function "
            "returning your own space: MODULE:FUNCTION or FILE.py:FUNCTION"
        )
    _check_training_flags(args)
    algorithm = make_algorithm(args.algorithm, args.seed, args.population)
    default_name = args.space.rpartition(":")[2] if is_user_space(args.space) else args.space
    args.study = args.name or f"{default_name}-{args.algorithm}-{args.seed}"
    if args.space == "nasbench201":
        return _search_nasbench201(args, algorithm, sys.stdout)
    return _search_models(args, algorithm, sys.stdout)
