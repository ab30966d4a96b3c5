"""`morphax`: search architectures from the command line, show and plot studies.

morphax search --space cnn --algorithm evolution --trials 30 --store study.db
morphax show study.db
morphax plot study.db --out curve.png
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

ALGORITHMS = ("random", "grid", "evolution", "reinforce", "ppo")
SPACES = ("cnn", "mlp", "nasbench201")


def make_algorithm(name: str, seed: int) -> Any:
    """An algorithm by its command-line name."""
    import morphax as mx

    algos: dict[str, Callable[[], Any]] = {
        "random": lambda: mx.algorithms.Random(seed=seed),
        "grid": lambda: mx.algorithms.Grid(),
        "evolution": lambda: mx.algorithms.RegularizedEvolution(seed=seed),
        "reinforce": lambda: mx.algorithms.Reinforce(seed=seed),
        "ppo": lambda: mx.algorithms.PPO(seed=seed),
    }
    if name not in algos:
        raise SystemExit(
            f"morphax: unknown algorithm {name!r}; known algorithms: {', '.join(ALGORITHMS)}"
        )
    return algos[name]()


class Progress:
    """A one-line progress bar with the best result so far (on a terminal)."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, width: int = 24) -> None:
        self.total, self.stream, self.width = total, stream, width
        self.start = time.perf_counter()
        self.tty = stream.isatty()

    def update(self, done: int, best: float | None, note: str = "") -> None:
        filled = int(self.width * done / max(self.total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        best_text = "-" if best is None else f"{best:.4f}"
        line = f"[{bar}] {done}/{self.total} best {best_text} {elapsed:6.1f}s {note}"
        if self.tty:
            self.stream.write("\r" + line[:120].ljust(120))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()


def _load_data(spec: str, seed: int) -> tuple[Any, Any, Any]:
    """(train, valid, test) for a data spec: 'digits', a folder/tarball, or cifar10:PATH."""
    from . import train as mt

    if spec == "digits":
        train, test = mt.load_digits(seed=seed)
    elif spec.startswith("cifar10:"):
        path = spec.split(":", 1)[1]
        train, test = mt.load_cifar10(path, split="train"), mt.load_cifar10(path, split="test")
    elif spec.startswith("idx:"):
        parts = spec.split(":", 1)[1].split(",")
        if len(parts) != 2:
            raise SystemExit("morphax: idx data is idx:IMAGES,LABELS")
        train, test = mt.load_idx(*parts).split(0.2, seed=seed)
    elif os.path.exists(spec):
        data = mt.load_image_folder(spec)
        train, test = data.split(0.2, seed=seed)
    else:
        raise SystemExit(
            f"morphax: no data {spec!r}: use 'digits', a folder or tarball of <class>/<image> files, cifar10:PATH or idx:IMAGES,LABELS"
        )
    train, valid = train.split(0.2, seed=seed + 1)
    return train, valid, test


def cmd_search(args: argparse.Namespace) -> int:
    import morphax as mx

    if args.space not in SPACES:
        raise SystemExit(
            f"morphax: unknown space {args.space!r}; known spaces: {', '.join(SPACES)}"
        )
    algorithm = make_algorithm(args.algorithm, args.seed)
    name = args.name or f"{args.space}-{args.algorithm}-{args.seed}"
    out = sys.stdout
    if args.space == "nasbench201":
        return _search_nasbench201(args, algorithm, name)
    import optax

    from . import train as mt
    from .spaces.cnn import cnn_space, mlp_space

    train, valid, test = _load_data(args.data, args.seed)
    make = cnn_space if args.space == "cnn" else mlp_space
    space = make(num_classes=train.num_classes)
    optimizer = mx.symbolic(optax.adam)(learning_rate=args.lr)
    print(
        f"morphax search: space={args.space} ({mx.dna_spec(space).space_size} architectures), "
        f"algorithm={args.algorithm}, trials={args.trials}, data={args.data} "
        f"(train {len(train)}, valid {len(valid)}, test {len(test)}), store={args.store}, study={name!r}",
        file=out,
    )
    search = mx.search(
        space,
        algorithm,
        num_trials=args.trials,
        store=args.store,
        name=name,
        objective="valid_accuracy",
    )
    bar = Progress(args.trials)
    best: float | None = None
    done = 0
    try:
        for trial in search:
            try:
                result = mt.fit(
                    trial.program,
                    optimizer,
                    train,
                    valid_data=valid,
                    epochs=args.epochs,
                    batch_size=args.batch_size,
                    key=args.seed + trial.id,
                )
            except (mt.TrainingDiverged, ValueError) as e:
                trial.fail(str(e))
            else:
                m = result.metrics
                test_metrics = result.evaluate(test)
                trial.report(
                    {
                        "valid_accuracy": m["accuracy"],
                        "test_accuracy": test_metrics["accuracy"],
                        "params": m["params"],
                        "compile_s": m["compile_s"],
                        "step_time_ms": m["step_time_ms"],
                    }
                )
                best = m["accuracy"] if best is None else max(best, m["accuracy"])
            done = trial.id
            bar.update(done, best, f"trial {trial.id}: {trial.status}")
    except KeyboardInterrupt:
        bar.close()
        print(
            f"\ninterrupted at trial {done}: the study is saved in {args.store}; run the same command to resume",
            file=out,
        )
        return 130
    bar.close()
    return _summary(args.store, name, out, plot=args.plot)


def _search_nasbench201(args: argparse.Namespace, algorithm: Any, name: str) -> int:
    import morphax as mx
    from morphax.spaces import nasbench201 as nb

    bench = nb.NASBench201()
    dataset = args.dataset
    space = nb.cell_space()
    print(
        f"morphax search: NAS-Bench-201 ({dataset}, 12-epoch validation as the signal), algorithm={args.algorithm}, trials={args.trials}",
        file=sys.stdout,
    )
    search = mx.search(
        space,
        algorithm,
        num_trials=args.trials,
        store=args.store,
        name=name,
        objective="valid_accuracy",
    )
    bar = Progress(args.trials)
    best = None
    for trial in search:
        acc = bench.valid_accuracy(trial.program, dataset)
        trial.report(
            {"valid_accuracy": acc, "test_accuracy": bench.test_accuracy(trial.program, dataset)}
        )
        best = acc if best is None else max(best, acc)
        bar.update(trial.id, best)
    bar.close()
    return _summary(args.store, name, sys.stdout, plot=args.plot)


def _summary(store: str, name: str, out: TextIO, plot: str | None) -> int:
    import morphax as mx

    study = mx.load_study(store, name)
    done = study.completed
    if not done:
        print("no completed trials", file=out)
        return 1
    best = study.best(1)[0]
    valid = [t.metrics["valid_accuracy"] for t in done if t.metrics]
    median = statistics.median(valid)
    assert best.metrics is not None
    print(f"\nbest of {len(done)} completed trials: trial #{best.id}", file=out)
    print(f"  architecture: {best.program!r}", file=out)
    print(
        f"  valid accuracy {best.metrics['valid_accuracy']:.4f}; held-out test accuracy {best.metrics.get('test_accuracy', math.nan):.4f}",
        file=out,
    )
    print(
        f"  median trial valid accuracy {median:.4f}: the best beats it by {100 * (best.metrics['valid_accuracy'] - median):.2f} points",
        file=out,
    )
    path = study.plot(plot)
    print(f"study: {store} (study {name!r}); plot: {path}", file=out)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    study = _open(args.store, args.name)
    print(repr(study))
    print(f"algorithm: {study.algorithm}")
    df = study.to_dataframe()
    if len(df):
        cols = [c for c in df.columns if c not in ("dna",)]
        print(df[cols].to_string(max_rows=args.rows, float_format=lambda v: f"{v:.4f}"))
    for i, t in enumerate(study.best(args.top), 1):
        print(f"\n#{i} trial {t.id} reward {t.reward}: {t.program!r}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    study = _open(args.store, args.name)
    print(study.plot(args.out))
    return 0


def _open(store: str, name: str | None) -> Any:
    import morphax as mx

    try:
        return mx.load_study(store, name)
    except ValueError as e:
        raise SystemExit(f"morphax: {e}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="morphax", description="Symbolic AutoML for JAX: search, show and plot studies."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser(
        "search",
        help="run (or resume) an architecture search",
        description="Run, or resume, a search; Ctrl-C leaves a resumable study.",
    )
    s.add_argument(
        "--space", default="cnn", help=f"search space: {', '.join(SPACES)} (default cnn)"
    )
    s.add_argument(
        "--algorithm",
        default="evolution",
        help=f"algorithm: {', '.join(ALGORITHMS)} (default evolution)",
    )
    s.add_argument("--trials", type=int, default=30, help="number of trials (default 30)")
    s.add_argument(
        "--data",
        default="digits",
        help="'digits' (embedded), a folder or tarball of <class>/<image>, cifar10:PATH or idx:IMAGES,LABELS",
    )
    s.add_argument(
        "--dataset",
        default="cifar10",
        help="NAS-Bench-201 dataset: cifar10, cifar100, ImageNet16-120",
    )
    s.add_argument(
        "--store", default="morphax-study.db", help="study file (SQLite; default morphax-study.db)"
    )
    s.add_argument("--name", default=None, help="study name (default SPACE-ALGORITHM-SEED)")
    s.add_argument("--epochs", type=int, default=4, help="training epochs per child (default 4)")
    s.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    s.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    s.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the algorithm, the splits and training (default 0)",
    )
    s.add_argument("--plot", default=None, help="plot file (default next to the study file)")
    s.set_defaults(fn=cmd_search)
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
                "--top", type=int, default=3, help="how many best programs to print (default 3)"
            )
            p.add_argument(
                "--rows", type=int, default=40, help="most rows of the table (default 40)"
            )
        else:
            p.add_argument(
                "--out", default=None, help="the PNG path (default next to the study file)"
            )
        p.set_defaults(fn=fn)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
