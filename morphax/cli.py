"""`morphax`: search architectures from the command line, show and plot studies.

morphax search --space cnn --algorithm evolution --trials 30 --store study.db
morphax show study.db
morphax plot study.db --out curve.png

A search is kept in its study file as it goes: Ctrl-C (or a crash) leaves a
study that the same command resumes, with no reported trial lost.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

#: Command-line algorithm names and the `mx.algorithms` classes they make.
ALGORITHMS: dict[str, str] = {
    "random": "Random",
    "grid": "Grid",
    "evolution": "RegularizedEvolution",
    "reinforce": "Reinforce",
    "ppo": "PPO",
}
SPACES = ("cnn", "mlp", "nasbench201")
DATA_FORMS = (
    "'digits' (embedded), a folder or tarball of [<split>/]<class>/<image> files, a folder "
    "holding train.tar.gz and test.tar.gz, cifar10:FOLDER (python pickles) or "
    "idx:IMAGES,LABELS (MNIST-style IDX files)"
)


class CLIError(Exception):
    """A problem with the command line or its inputs: printed, exit status 2."""


def available_algorithms() -> list[str]:
    """The command-line names of the algorithms this installation has."""
    import morphax as mx

    return [name for name, cls in ALGORITHMS.items() if hasattr(mx.algorithms, cls)]


def make_algorithm(name: str, seed: int, population: int | None = None) -> Any:
    """An algorithm by its command-line name (`population` for evolution).

    Raises:
        CLIError: for a name this installation does not know.
    """
    import morphax as mx

    known = available_algorithms()
    if name not in known:
        raise CLIError(f"unknown algorithm {name!r}; known algorithms: {', '.join(known)}")
    cls = getattr(mx.algorithms, ALGORITHMS[name])
    if name == "grid":
        return cls()
    if name == "evolution" and population is not None:
        return cls(population_size=population, seed=seed)
    return cls(seed=seed)


class Progress:
    """A one-line progress bar with the best result so far and an ETA.

    On a terminal the line is redrawn in place; otherwise one line per update.
    """

    def __init__(
        self, total: int, *, done: int = 0, stream: TextIO | None = None, width: int = 24
    ) -> None:
        self.total, self.width, self.first = total, width, done
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self, done: int, best: float | None, note: str = "") -> str:
        filled = int(self.width * min(done, self.total) / max(self.total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        ran = done - self.first
        eta = (
            f" eta {elapsed / ran * (self.total - done):.0f}s"
            if ran > 0 and done < self.total
            else ""
        )
        best_text = "-" if best is None else f"{best:.4f}"
        return f"[{bar}] {done}/{self.total} best {best_text} {elapsed:.1f}s{eta} {note}".rstrip()

    def update(self, done: int, best: float | None, note: str = "") -> None:
        text = self.line(done, best, note)
        if self.tty:
            self.stream.write("\r" + text[:119].ljust(119))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()


# ---------------------------------------------------------------------------
# Data.


def _tarball(root: str, split: str) -> str | None:
    for ext in (".tar.gz", ".tgz", ".tar"):
        path = os.path.join(root, split + ext)
        if os.path.isfile(path):
            return path
    return None


def _image_splits(root: str, limit: int | None) -> tuple[Any, Any | None]:
    """(train, test or None) from a folder or tarball of images: a folder with
    train/test tarballs or sub-folders gives both splits."""
    from . import train as mt

    train_tar, test_tar = _tarball(root, "train"), _tarball(root, "test")
    if train_tar and test_tar:
        return (
            mt.load_image_folder(train_tar, limit_per_class=limit),
            mt.load_image_folder(test_tar, limit_per_class=limit),
        )
    if all(os.path.isdir(os.path.join(root, s)) for s in ("train", "test")):
        return (
            mt.load_image_folder(root, split="train", limit_per_class=limit),
            mt.load_image_folder(root, split="test", limit_per_class=limit),
        )
    return mt.load_image_folder(root, limit_per_class=limit), None


def load_data(spec: str, *, seed: int, limit_per_class: int | None = None) -> tuple[Any, Any, Any]:
    """(train, valid, test) for a `--data` spec (see :data:`DATA_FORMS`).

    Raises:
        CLIError: if the data is missing or unreadable.
    """
    from . import train as mt

    test = None
    try:
        if spec == "digits":
            train, test = mt.load_digits(seed=seed)
        elif spec.startswith("cifar10:"):
            path = spec.split(":", 1)[1]
            train, test = mt.load_cifar10(path, split="train"), mt.load_cifar10(path, split="test")
        elif spec.startswith("idx:"):
            parts = spec.split(":", 1)[1].split(",")
            if len(parts) != 2:
                raise CLIError(f"IDX data is idx:IMAGES,LABELS, but got {spec!r}")
            train = mt.load_idx(*parts)
        elif os.path.exists(spec):
            train, test = _image_splits(spec, limit_per_class)
        else:
            raise CLIError(f"no data at {spec!r}: --data takes {DATA_FORMS}")
    except ValueError as e:
        raise CLIError(f"cannot load --data {spec!r}: {e}") from None
    if test is None:
        train, test = train.split(0.2, seed=seed)
    train, valid = train.split(0.2, seed=seed + 1)
    return train, valid, test


# ---------------------------------------------------------------------------
# search.


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


@dataclasses.dataclass
class _Context:
    """What each trial of a search needs."""

    args: argparse.Namespace
    evaluate: Callable[[Any], float | None]  # runs and reports one trial; its reward or None


def _best_so_far(trials: Sequence[Any]) -> float | None:
    rewards = [t.reward for t in trials if t.status == "completed" and isinstance(t.reward, float)]
    return max(rewards) if rewards else None


def _run(search: Any, ctx: _Context, out: TextIO) -> int:
    """Iterates the search with a progress bar; 130 on Ctrl-C, else the summary's status."""
    args = ctx.args
    bar: Progress | None = None
    current: Any = None
    try:
        for trial in search:
            current = trial
            if bar is None:  # the study's earlier trials are known once iteration starts
                bar = Progress(args.trials, done=trial.id - 1)
            ctx.evaluate(trial)
            note = f"trial {trial.id} {trial.status}"
            bar.update(trial.id, _best_so_far(search.trials), note)
    except KeyboardInterrupt:
        _interrupted(args, current, out)
        return 130
    finally:
        if bar is not None:
            bar.close()
        if search.store is not None:
            search.store.close()  # checkpoints the WAL: the study file stands alone
    return _summary(args.store, search.name, out, plot=args.plot)


def _interrupted(args: argparse.Namespace, trial: Any, out: TextIO) -> None:
    done = 0 if trial is None else trial.id - (0 if trial.done else 1)
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

    from . import train as mt

    train, valid, test = data

    def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
        trial.report({"valid_accuracy": metrics["accuracy"]}, step=epoch)
        return trial.done or trial.should_stop()

    try:
        result = mt.fit(
            trial.program,
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

    from .spaces.cnn import cnn_space, mlp_space

    data = load_data(args.data, seed=args.seed, limit_per_class=args.limit_per_class)
    train, valid, test = data
    if args.batch_size > len(train):
        raise CLIError(f"--batch-size {args.batch_size} exceeds the {len(train)} training examples")
    opts: dict[str, Any] = {"num_classes": train.num_classes, "max_depth": args.max_depth}
    if args.widths:
        opts["widths"] = args.widths
    space = mx.space(cnn_space(**opts) if args.space == "cnn" else mlp_space(**opts))
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
    from .spaces import nasbench201 as nb

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
        acc = bench.valid_accuracy(trial.program, args.dataset)
        test = bench.test_accuracy(trial.program, args.dataset)
        trial.report({"valid_accuracy": acc, "test_accuracy": test})
        return acc

    search = _make_search(nb.cell_space(), algorithm, args)
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
        early_stopping=policy,
    )


def cmd_search(args: argparse.Namespace) -> int:
    if args.space not in SPACES:
        raise CLIError(f"unknown space {args.space!r}; known spaces: {', '.join(SPACES)}")
    algorithm = make_algorithm(args.algorithm, args.seed, args.population)
    args.study = args.name or f"{args.space}-{args.algorithm}-{args.seed}"
    if args.space == "nasbench201":
        return _search_nasbench201(args, algorithm, sys.stdout)
    return _search_models(args, algorithm, sys.stdout)


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
    path = study.plot(plot)
    print(f"study: {store} (study {name!r}); plot: {path}", file=out)
    return 0


def _program_text(trial: Any) -> str:
    try:
        program = trial.program
    except ValueError as e:  # a row that cannot be decoded (or was never stored) says why
        return f"DNA {list(trial.dna.values)} ({e})"
    if program is None:
        return f"DNA {list(trial.dna.values)} (its classes are not registered in this process)"
    text = _describe(program)
    if type(program).__name__ == "Cell":
        from .spaces import nasbench201 as nb

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
        cols = [c for c in df.columns if c != "dna"]
        print(df[cols].to_string(max_rows=args.rows, float_format=lambda v: f"{v:.4f}"))
    best = study.best(args.top)
    if best:
        print(f"\nbest {len(best)} programs:")
    for i, t in enumerate(best, 1):
        print(f"#{i} trial {t.id} reward {_reward_text(t.reward)}: {_program_text(t)}")
    return 0


def _reward_text(reward: Any) -> str:
    if isinstance(reward, tuple):  # several objectives
        return "(" + ", ".join(f"{v:.4f}" for v in reward) + ")"
    return f"{reward:.4f}"


def cmd_plot(args: argparse.Namespace) -> int:
    study = _open(args.store, args.name)
    print(study.plot(args.out))
    return 0


# ---------------------------------------------------------------------------
# The parser.


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, but got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, but got {value}")
    return value


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers like 16,32, but got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers like 16,32, but got {text!r}")
    return values


def _add_search_parser(sub: Any) -> None:
    s = sub.add_parser(
        "search",
        help="run (or resume) an architecture search",
        description="Run, or resume, a search; Ctrl-C leaves a resumable study.",
    )
    add = s.add_argument
    add("--space", default="cnn", help=f"search space: {', '.join(SPACES)} (default cnn)")
    add(
        "--algorithm",
        default="evolution",
        help=f"algorithm: {', '.join(ALGORITHMS)} (default evolution)",
    )
    add(
        "--trials",
        type=_positive_int,
        default=30,
        help="trials the study should hold in all; a rerun with more adds trials (default 30)",
    )
    add("--data", default="digits", help=DATA_FORMS)
    add(
        "--limit-per-class",
        type=_positive_int,
        default=None,
        help="read at most this many images per class from image data",
    )
    add(
        "--dataset",
        default="cifar10",
        help="NAS-Bench-201 dataset: cifar10, cifar100, ImageNet16-120 (default cifar10)",
    )
    add("--store", default="morphax-study.db", help="study file (SQLite; default morphax-study.db)")
    add("--name", default=None, help="study name (default SPACE-ALGORITHM-SEED)")
    add("--epochs", type=_positive_int, default=4, help="training epochs per child (default 4)")
    add("--batch-size", type=_positive_int, default=64, help="batch size (default 64)")
    add("--lr", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    add(
        "--max-depth",
        type=_positive_int,
        default=3,
        help="most blocks (cnn) or hidden layers (mlp) of a child (default 3)",
    )
    add(
        "--widths",
        type=_int_list,
        default=None,
        help="comma-separated block/layer widths to choose from (default: the space's)",
    )
    add(
        "--early-stopping",
        choices=("none", "median"),
        default="none",
        help="stop children whose per-epoch validation accuracy falls below the median",
    )
    add(
        "--population",
        type=_positive_int,
        default=None,
        help="evolution's population size (default 20; the tournament is half of it)",
    )
    add("--bf16", action="store_true", help="compute in bfloat16 (for GPUs)")
    add(
        "--seed",
        type=int,
        default=0,
        help="seed of the algorithm, the splits and training (default 0)",
    )
    add("--plot", default=None, help="plot file (default next to the study file)")
    s.set_defaults(fn=cmd_search)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="morphax", description="Symbolic AutoML for JAX: search, show and plot studies."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_search_parser(sub)
    for cmd, fn, help_ in (
        ("show", cmd_show, "a table of a study's trials and the best programs"),
        ("plot", cmd_plot, "save a PNG of a study"),
    ):
        p = sub.add_parser(cmd, help=help_, description=help_)
        p.add_argument("store", help="the study file")
        p.add_argument(
            "--name", default=None, help="the study (needed when the file holds several)"
        )
        if cmd == "show":
            p.add_argument(
                "--top",
                type=_positive_int,
                default=3,
                help="how many best programs to print (default 3)",
            )
            p.add_argument(
                "--rows", type=_positive_int, default=40, help="most rows of the table (default 40)"
            )
        else:
            p.add_argument(
                "--out", default=None, help="the PNG path (default next to the study file)"
            )
        p.set_defaults(fn=fn)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (2 for bad input, 130 on Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return int(args.fn(args))
    except CLIError as e:
        print(f"morphax: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # a study made for another space, a bad study file...
        print(f"morphax: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmorphax: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
