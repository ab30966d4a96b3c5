"""The command line's argument parser."""

from __future__ import annotations

import argparse
import math
from typing import Any

from ._choices import ALGORITHMS, DATA_FORMS, SPACES
from ._search_cmd import cmd_search
from ._show import cmd_plot, cmd_show, cmd_studies


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, but got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, but got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, but got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, but got {text!r}")
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
    add(
        "--space",
        default="cnn",
        help=f"search space: {', '.join(SPACES)} (default cnn), or your own: MODULE:FUNCTION or "
        "FILE.py:FUNCTION, a function (given num_classes= if it takes it) returning a program "
        "with hyper-values whose children are Flax modules",
    )
    add(
        "--algorithm",
        default="evolution",
        help=f"algorithm: {', '.join(ALGORITHMS)} (default evolution); nsga2 searches for the "
        "Pareto front of validation accuracy (maximized) and parameter count (minimized)",
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
    # The training flags' defaults are filled in by the search (None: not given).
    add("--epochs", type=_positive_int, default=None, help="training epochs per child (default 4)")
    add("--batch-size", type=_positive_int, default=None, help="batch size (default 64)")
    add("--lr", type=_positive_float, default=None, help="Adam learning rate (default 3e-3)")
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
        help="the population size of evolution (default 20; the tournament is half of it) "
        "or nsga2 (default 20)",
    )
    add("--bf16", action="store_true", help="compute in bfloat16 (for GPUs)")
    add(
        "--duplicates",
        choices=("reuse", "rerun"),
        default="reuse",
        help="an architecture the study already trained: 'reuse' its result without training it "
        "again (default; not counted in --trials), or 'rerun' it",
    )
    add(
        "--seed",
        type=_seed,
        default=0,
        help="seed of the algorithm, the splits and training (default 0)",
    )
    add("--plot", default=None, help="plot file (default next to the study file)")
    add(
        "--workers",
        type=_positive_int,
        default=None,
        help="train N children at once on Ray (mx.backends.Ray, N in flight, a CPU each): "
        "starts a local Ray, or joins the cluster at $RAY_ADDRESS; needs pip install "
        "'morphax[ray]' (default: one at a time, in this process)",
    )
    s.set_defaults(fn=cmd_search)


def _version() -> str:
    import morphax

    return str(morphax.__version__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="morphax", description="Symbolic AutoML for JAX: search, show and plot studies."
    )
    parser.add_argument("--version", action="version", version=f"morphax {_version()}")
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
    help_ = "list the studies of a study file (or delete one)"
    p = sub.add_parser("studies", help=help_, description=help_)
    p.add_argument("store", help="the study file")
    p.add_argument(
        "--delete",
        metavar="NAME",
        default=None,
        help="delete this study: its trials, reports and weights (refused while it is searched)",
    )
    p.set_defaults(fn=cmd_studies)
    return parser
