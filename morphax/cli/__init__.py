"""`morphax`: search architectures from the command line, show and plot studies.

morphax search --space cnn --algorithm evolution --trials 30 --store study.db
morphax show study.db
morphax plot study.db --out curve.png

A search is kept in its study file as it goes: Ctrl-C (or a crash) leaves a
study that the same command resumes, with no reported trial lost.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ._choices import ALGORITHMS as ALGORITHMS
from ._choices import DATA_FORMS as DATA_FORMS
from ._choices import SPACES as SPACES
from ._choices import CLIError as CLIError
from ._choices import available_algorithms as available_algorithms
from ._choices import make_algorithm as make_algorithm
from ._data import load_data as load_data
from ._parser import build_parser as build_parser
from ._progress import Progress as Progress
from ._search_cmd import cmd_search as cmd_search
from ._show import cmd_plot as cmd_plot
from ._show import cmd_show as cmd_show


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
