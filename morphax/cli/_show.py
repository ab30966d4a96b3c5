"""`morphax show` and `morphax plot`, and the summary a search ends with."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import statistics
from typing import Any, TextIO

from ._choices import CLIError


def _describe(program: Any) -> str:
    """A one-line description of a child program (a Flax module, a cell...)."""
    if dataclasses.is_dataclass(program) and not isinstance(program, type):
        fields = [
            f for f in dataclasses.fields(program) if f.init and f.name not in ("parent", "name")
        ]
        args = ", ".join(f"{f.name}={_describe(getattr(program, f.name))}" for f in fields)
        return f"{type(program).__name__}({args})"
    if isinstance(program, list):
        return "[" + ", ".join(_describe(v) for v in program) + "]"
    if isinstance(program, tuple):
        inner = ", ".join(_describe(v) for v in program)
        return f"({inner},)" if len(program) == 1 else f"({inner})"
    if isinstance(program, dict):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in program.items()) + "}"
    if callable(program) and hasattr(program, "__name__"):
        return str(program.__name__)
    return repr(program)


def _summary(store: str, name: str, out: TextIO, plot: str | None) -> int:
    study = _open(store, name)
    done = study.completed
    if not done:
        print(f"\nno completed trials in {store} (study {name!r})", file=out)
        return 1
    best = study.best(1)[0]
    median = statistics.median(t.metrics["valid_accuracy"] for t in done)
    held_out = best.metrics.get("test_accuracy", math.nan)
    print(f"\nbest of {len(done)} completed trials: trial #{best.id}", file=out)
    print(f"  best architecture: {_program_text(best)}", file=out)
    print(
        f"  valid accuracy {best.metrics['valid_accuracy']:.4f}; "
        f"held-out test accuracy {held_out:.4f}",
        file=out,
    )
    print(
        f"  median trial valid accuracy {median:.4f}: the best beats it by "
        f"{best.metrics['valid_accuracy'] - median:.4f}",
        file=out,
    )
    path = _write_plot(study, plot)
    print(f"study: {store} (study {name!r}); plot: {path}", file=out)
    return 0


def _program_text(trial: Any) -> str:
    try:
        program = trial.program
    except ValueError as e:  # a row that cannot be decoded (or was never stored) says why
        return f"DNA {list(trial.dna.values)} ({e})"
    if program is None:
        return f"DNA {list(trial.dna.values)} (its classes are not registered in this process)"
    if isinstance(program, dict) and set(program) == {"model", "train"}:
        program = program["model"]  # the command line's space: the model and its training
    text = _describe(program)
    if type(program).__name__ == "Cell":
        from ..spaces import nasbench201 as nb

        text += f" = {nb.arch_string(program)}"
    return text


# ---------------------------------------------------------------------------
# show and plot.


def _open(store: str, name: str | None) -> Any:
    import morphax as mx

    with contextlib.suppress(ImportError):  # registers the classes stored programs name
        import morphax.spaces.cnn  # noqa: F401
    try:
        return mx.load_study(store, name)
    except ValueError as e:
        raise CLIError(str(e)) from None


def cmd_show(args: argparse.Namespace) -> int:
    study = _open(args.store, args.name)
    print(f"{study!r}\nalgorithm: {study.algorithm}")
    df = study.to_dataframe()
    if len(df):
        # Test accuracy is shown for the best trial only: a column of it invites
        # selecting on the test set.
        cols = [c for c in df.columns if c not in ("dna", "test_accuracy")]
        print(df[cols].to_string(max_rows=args.rows, float_format=lambda v: f"{v:.4f}"))
    best = study.best(args.top)
    if best:
        print(f"\nbest {len(best)} programs:")
    for i, t in enumerate(best, 1):
        print(f"#{i} trial {t.id} reward {_reward_text(t.reward)}: {_program_text(t)}")
    held_out = best[0].metrics.get("test_accuracy") if best and best[0].metrics else None
    if held_out is not None:
        print(
            f"held-out test accuracy of the best trial (#{best[0].id}): {held_out:.4f} "
            "(report it; do not select on it)"
        )
    return 0


def _reward_text(reward: Any) -> str:
    if isinstance(reward, tuple):  # several objectives
        return "(" + ", ".join(f"{v:.4f}" for v in reward) + ")"
    return f"{reward:.4f}"


def _write_plot(study: Any, out: str | None) -> str:
    """Writes the study's plot to `out` (default `<study file>.<name>.png`); its path.

    Raises:
        CLIError: if the folder of `out` does not exist.
    """
    path = out if out is not None else f"{os.path.splitext(study.path)[0]}.{study.name}.png"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"cannot write the plot to {path!r}: the folder {folder!r} does not exist")
    study.plot(path)
    return path


def cmd_plot(args: argparse.Namespace) -> int:
    study = _open(args.store, args.name)
    print(_write_plot(study, args.out))
    return 0


def cmd_studies(args: argparse.Namespace) -> int:
    """`morphax studies FILE [--delete NAME]`: one line per study, trials and best."""
    from ..tuning import delete_study, list_studies, load_study

    if args.delete is not None:
        delete_study(args.store, args.delete)
        print(f"deleted study {args.delete!r} from {args.store}")
        return 0
    names = list_studies(args.store)
    if not names:
        print(f"{args.store} holds no study")
    for name in names:
        study = load_study(args.store, name)
        best = study.best(1) if study.completed else []
        note = (
            f"best reward {_reward_text(best[0].reward)} (trial #{best[0].id})"
            if best
            else "none completed"
        )
        print(f"{name}: {len(study.trials)} trials, {len(study.completed)} completed, {note}")
    return 0
