"""The command line's argument parser."""

from __future__ import annotations

import argparse
from typing import Any

from ._choices import ALGORITHMS, DATA_FORMS, SPACES
from ._search_cmd import cmd_search
from ._show import cmd_plot, cmd_show


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
        "--duplicates",
        choices=("reuse", "rerun"),
        default="reuse",
        help="an architecture the study already trained: 'reuse' its result without training it "
        "again (default; not counted in --trials), or 'rerun' it",
    )
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
