"""One-shot search quality on a reduced NAS-Bench-201 protocol that runs on 2 cores.

Protocol (issue 10): 10,000 CIFAR-10 training images (1,000 per class, the
first by file name) from `../shared/data/cifar10-jpeg/train.tar.gz`, shuffled
once (data seed 0) and split in half: 5,000 search-train, 5,000 search-val.
Inputs scaled to [0, 1] and normalized with CIFAR-10's channel mean and std;
no augmentation. The search network is `nasbench201.search_net(channels=8,
cells_per_stage=1, batch_norm="search")`; each strategy searches it with
`mx.oneshot.search(..., epochs=40, batch_size=64, seed=s)` for 3 seeds, and
each searched cell is scored with the shipped NAS-Bench-201 table (the
200-epoch CIFAR-10 test accuracy of the full network, C=16, N=5).

Strategies: `darts` (DARTS first order, argmax), `darts-pt` (the same search,
perturbation selection, DARTS-PT), `darts-pt-fixed` (fixed-alpha DARTS-PT),
`gdas`, `spos` (uniform single paths, then regularized evolution on the
supernet). For `darts-pt` the argmax cell of the same supernet before the
projections is scored too (perturbation selection should beat it); that
cell is DARTS's (the two train the same supernet bit for bit), so with both
`darts` and `darts-pt` asked for the search runs once.
`--batch-norm train` searches with affine batch norms on running averages
instead (the search net's other option): its runs get rows and goal checks
of their own, `darts (batch_norm=train)` say, never mixed with the protocol's.

Ranking: after each SPOS search, 100 valid cells drawn uniformly (seed
`--rank-seed`) are scored as single paths of the trained supernet on the
search-val set (`result.score`); Kendall's tau (tau-b) of those scores
against the table's CIFAR-10 test accuracy, beside the tau of the
parameter-count proxy (the parameters of each cell's full C=16, N=5 network)
on the same cells, which a supernet ranking must beat to mean anything.
`children` (not a search, asked for by name) trains the first `--children`
cells of the same draw alone at the search's budget (the search net's
child, the strategies' weight optimizer, `--epochs` epochs, batch
`--batch-size`) and scores each on search-val; with a SPOS run of the same
draw (in this run or merged), the table gives Kendall's tau of the supernet
scores against these children, beside the parameter proxy's.

Goals (issue 10, 3 seeds): fixed-alpha DARTS-PT mean >= 92.5; perturbation
selection beats argmax on the same DARTS supernet; DARTS-PT >= 88 (paper
88.11); GDAS reported (goal 90); plain DARTS collapses (<= 60 in 2 of 3
seeds); SPOS's tau above 0, against the table and against 20 children
trained alone.

Prints JSON (and writes it to `--out` if given, after each run too, with
`"complete": false` until the last). `--merge` takes outputs of separate
runs (one strategy and seed each, say, to spread them over processes).

Usage:
    python benchmarks/oneshot_quality.py [--seeds 3] [--first-seed 0] [--epochs 40]
        [--strategies darts,darts-pt,darts-pt-fixed,gdas,spos] [--images 10000]
        [--channels 8] [--cells 1] [--batch-size 64] [--rank-cells 100] [--out FILE]
        [--children 20] [--batch-norm search|train] [--data FOLDER|digits] [--merge FILE ...]
    # one table from runs split over processes:
    python benchmarks/oneshot_quality.py --strategies '' --merge out/a.json out/b.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
#: The shared data folder, relative to the repository root.
DEFAULT_DATA = os.path.join(os.path.dirname(HERE), "..", "shared", "data", "cifar10-jpeg")
STRATEGIES = ("darts", "darts-pt", "darts-pt-fixed", "gdas", "spos")
#: Not a search: the first `--children` ranked cells, each trained alone (asked for by name).
CHILDREN = "children"
CIFAR10_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
CIFAR10_STD = np.array([0.2470, 0.2435, 0.2616], np.float32)
#: The NAS-Bench-201 network the table was trained with (for the parameter proxy).
TABLE_CHANNELS, TABLE_CELLS = 16, 5


def simd_flags() -> list[str]:
    """The host's SSE4/AVX/FMA flags (from /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            line = next((x for x in f if x.startswith("flags")), "")
    except OSError:
        return []
    return sorted(x for x in line.split(":")[-1].split() if x.startswith(("sse4", "avx", "fma")))


def make_strategy(name: str) -> Any:
    import morphax as mx

    if name == "darts":
        return mx.oneshot.DARTS(order=1)
    if name == "darts-pt":
        return mx.oneshot.DARTS(order=1, selection="pt")
    if name == "darts-pt-fixed":
        return mx.oneshot.DARTS(order=1, selection="pt", fixed_alpha=True)
    if name == "gdas":
        return mx.oneshot.GDAS()
    if name == "spos":
        return mx.oneshot.SPOS()
    raise ValueError(f"unknown strategy {name!r}; the strategies are {STRATEGIES}")


def batch_norm(run: dict[str, Any]) -> str:
    """The search net's batch norm of a run (outputs before the option: "search")."""
    return str(run.get("batch_norm", "search"))


def label(run: dict[str, Any]) -> str:
    """A run's row in the table: its strategy, with the batch norm when not the
    protocol's ("search"), so runs of another batch norm never join its means."""
    bn = batch_norm(run)
    return run["strategy"] if bn == "search" else f"{run['strategy']} (batch_norm={bn})"


def search_model(args: argparse.Namespace) -> Any:
    """The search net of the protocol (`--channels`, `--cells`, `--batch-norm`)."""
    from morphax.spaces import nasbench201 as nb

    return nb.search_net(
        channels=args.channels,
        cells_per_stage=args.cells,
        num_classes=10,
        batch_norm=args.batch_norm,
    )


def spos_vs_children(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Kendall's tau of SPOS's supernet scores against the accuracies of the same
    cells trained alone, over each (SPOS seed, children seed) pair; the
    parameter proxy's tau against the children beside it."""
    from morphax.spaces.nasbench201 import parse_arch_string

    # children runs of one draw and seed (e.g. two processes over halves of it) pool
    pooled: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in runs:
        if r["strategy"] == CHILDREN and r.get("accuracy"):
            key = (r["seed"], r["rank_seed"], r["epochs"], batch_norm(r))
            run = pooled.setdefault(key, {**r, "accuracy": {}})
            run["accuracy"] = {**run["accuracy"], **r["accuracy"]}
    children = list(pooled.values())
    spos = [
        r for r in runs if r["strategy"] == "spos" and "supernet_accuracy" in r.get("ranking", {})
    ]
    pairs = []
    for c in children:
        for r in spos:
            if r["ranking"]["seed"] != c["rank_seed"] or batch_norm(r) != batch_norm(c):
                continue  # another draw of cells, or another batch norm
            cells = [a for a in c["accuracy"] if a in r["ranking"]["supernet_accuracy"]]
            if len(cells) < 3:
                continue
            alone = [c["accuracy"][a] for a in cells]
            # the supernet's scores, and (runs since recalibrate) its running averages'
            taus = {
                f"kendall_tau_{name}_vs_children": round(
                    kendall_tau([r["ranking"][f"{name}_accuracy"][a] for a in cells], alone), 4
                )
                for name in ("supernet", "running_averages")
                if f"{name}_accuracy" in r["ranking"]
            }
            pairs.append(
                {
                    "spos_seed": r["seed"],
                    "children_seed": c["seed"],
                    "cells": len(cells),
                    **taus,
                    "kendall_tau_params_vs_children": round(
                        kendall_tau(
                            [float(child_params(parse_arch_string(a))) for a in cells], alone
                        ),
                        4,
                    ),
                }
            )
    if not pairs:
        return None
    return {
        "pairs": pairs,
        "kendall_tau_supernet_vs_children_mean": round(
            statistics.mean(p["kendall_tau_supernet_vs_children"] for p in pairs), 4
        ),
        "kendall_tau_params_vs_children_mean": round(
            statistics.mean(p["kendall_tau_params_vs_children"] for p in pairs), 4
        ),
    }


def load_data(path: str, images: int) -> tuple[Any, Any]:
    """(search-train, search-val): `images` CIFAR-10 training images, half each;
    for `path="digits"`, the embedded 8x8 digits' train and valid splits (a
    CI-sized check, `images` ignored)."""
    from morphax.train import Dataset, load_digits, load_image_folder

    if path == "digits":
        return load_digits()

    tarball = os.path.join(path, "train.tar.gz")
    if not os.path.exists(tarball):
        raise SystemExit(
            f"no CIFAR-10 tarball at {tarball!r}: this benchmark reads "
            "../shared/data/cifar10-jpeg/train.tar.gz (see its README), or give --data FOLDER"
        )
    data = load_image_folder(tarball, split="train", limit_per_class=images // 10)
    x = (data.x - CIFAR10_MEAN) / CIFAR10_STD
    order = np.random.default_rng(0).permutation(len(data))
    half = len(order) // 2
    a, b = order[:half], order[half:]
    return (
        Dataset(x[a], data.y[a], 10, "cifar10/search-train"),
        Dataset(x[b], data.y[b], 10, "cifar10/search-val"),
    )


def child_params(
    ops: tuple[str, ...], *, channels: int = TABLE_CHANNELS, cells: int = TABLE_CELLS
) -> int:
    """Parameters of the NAS-Bench-201 network of one cell (the trained one:
    affine batch norms). Checked against Flax's count in :func:`check_child_params`."""
    total = 3 * 3 * 3 * channels + 2 * channels  # stem and its batch norm
    for stage in range(3):
        c = channels * 2**stage
        if stage:
            total += 9 * (c // 2) * c + 2 * c + 9 * c * c + 2 * c + (c // 2) * c  # reduction
        per_cell = sum(
            {"nor_conv_1x1": c * c + 2 * c, "nor_conv_3x3": 9 * c * c + 2 * c}.get(op, 0)
            for op in ops
        )
        total += cells * per_cell
    c = 4 * channels
    return total + 2 * c + c * 10 + 10  # last batch norm and classifier


def check_child_params(archs: list[tuple[str, ...]]) -> None:
    import jax
    import jax.numpy as jnp

    from morphax.spaces.nasbench201_net import to_net

    for ops in archs:
        net = to_net(list(ops), channels=TABLE_CHANNELS, cells_per_stage=TABLE_CELLS)
        shapes = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
        flax_count = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(shapes["params"]))
        assert flax_count == child_params(ops), (ops, flax_count, child_params(ops))


def kendall_tau(a: list[float], b: list[float]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def ranked_cells(num: int, seed: int, sn: Any) -> list[Any]:
    """The `num` distinct valid cells SPOS ranks, drawn uniformly (seed `seed`); the
    children trained alone are the first of the same draw."""
    import morphax as mx
    from morphax.spaces import nasbench201 as nb

    rng = np.random.default_rng(seed)
    dnas: list[Any] = []
    seen: set[tuple[int, ...]] = set()
    while len(dnas) < num:
        ops = tuple(int(v) for v in rng.integers(0, len(nb.OPS), len(nb.EDGES)))
        dna = mx.DNA(list(ops))
        if ops not in seen and sn.is_valid(dna):
            seen.add(ops)
            dnas.append(dna)
    return dnas


def rank_cells(result: Any, valid: Any, num: int, seed: int, bench: Any) -> dict[str, Any]:
    """SPOS's ranking of `num` valid cells against the table, beside the parameter proxy."""
    from morphax.spaces import nasbench201 as nb

    dnas = ranked_cells(num, seed, result.supernet)
    start = time.perf_counter()
    scores = result.score(dnas, valid)
    score_s = time.perf_counter() - start
    # the same supernet without recomputed batch statistics (its running averages)
    plain = result.score(dnas, valid, recalibrate=False)
    table = [bench.test_accuracy(d, "cifar10") for d in dnas]

    def by_arch(accs: list[float]) -> dict[str, float]:
        return {nb.arch_string(d): round(a, 4) for d, a in zip(dnas, accs, strict=True)}

    archs = [tuple(nb.OPS[v] for v in d) for d in dnas]
    check_child_params(archs[:2])
    params = [float(child_params(a)) for a in archs]
    return {
        "cells": num,
        "seed": seed,
        "kendall_tau_supernet_vs_table": round(kendall_tau(scores, table), 4),
        "kendall_tau_params_vs_table": round(kendall_tau(params, table), 4),
        "kendall_tau_running_averages_vs_table": round(kendall_tau(plain, table), 4),
        "score_s": round(score_s, 2),
        "mean_supernet_accuracy": round(float(np.mean(scores)), 4),
        # each cell's supernet score, to rank against children trained alone
        "supernet_accuracy": by_arch(scores),
        "running_averages_accuracy": by_arch(plain),
    }


def train_children(
    seed: int,
    args: argparse.Namespace,
    data: tuple[Any, Any],
    bench: Any,
    on_child: Callable[[dict[str, Any]], None] = lambda run: None,
) -> dict[str, Any]:
    """`--children` cells of the ranked draw from `--children-start` on, each
    trained alone at the search's budget: the search net's child
    (batch_norm="search"), the weight optimizer of the one-shot strategies,
    `--epochs` epochs at `--batch-size`; its accuracy on search-val.
    `on_child` gets the run so far after each child."""
    import morphax as mx
    from morphax.spaces import nasbench201 as nb

    train, valid = data
    model = search_model(args)
    sn = mx.oneshot.supernet(model, train.x[:2])
    steps = args.epochs * (len(train) // args.batch_size)
    accuracy: dict[str, float] = {}
    start = time.perf_counter()
    first = args.children_start
    cells = ranked_cells(args.rank_cells, args.rank_seed, sn)[first : first + args.children]

    def run() -> dict[str, Any]:
        table = [bench.test_accuracy(a, "cifar10") for a in accuracy]
        return {
            "strategy": "children",
            "batch_norm": args.batch_norm,
            "seed": seed,
            "rank_seed": args.rank_seed,
            "first": first,
            "epochs": args.epochs,
            "accuracy": dict(accuracy),
            "kendall_tau_vs_table": (
                round(kendall_tau(list(accuracy.values()), table), 4) if len(table) > 1 else None
            ),
            "search_s": round(time.perf_counter() - start, 1),
        }

    for i, dna in enumerate(cells):
        fit = mx.train.fit(
            sn.child(dna),
            mx.oneshot.Optimizers().weights(steps),
            train,
            valid_data=valid,
            epochs=args.epochs,
            batch_size=args.batch_size,
            key=seed,
        )
        arch = nb.arch_string(dna)
        accuracy[arch] = round(float(fit.metrics["accuracy"]), 4)
        print(
            f"# child {first + i + 1} ({i + 1}/{len(cells)}) {arch}: {accuracy[arch]} "
            f"(table {bench.test_accuracy(dna, 'cifar10'):.2f}, {time.perf_counter() - start:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        on_child(run() | {"partial": i + 1 < len(cells)})
    return run()


def run_one(
    name: str, seed: int, args: argparse.Namespace, data: tuple[Any, Any], bench: Any
) -> dict[str, Any]:
    import morphax as mx
    from morphax.spaces import nasbench201 as nb

    train, valid = data
    model = search_model(args)
    start = time.perf_counter()
    result = mx.oneshot.search(
        model,
        make_strategy(name),
        train,
        valid,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=seed,
        progress=args.progress,
    )
    wall = time.perf_counter() - start
    out: dict[str, Any] = {
        "strategy": name,
        "batch_norm": args.batch_norm,
        "seed": seed,
        "dna": list(result.dna),
        "arch": nb.arch_string(result.dna),
        "test_accuracy": round(bench.test_accuracy(result.dna, "cifar10"), 4),
        "table_valid_accuracy_12ep": round(bench.valid_accuracy(result.dna, "cifar10"), 4),
        # DARTS's known failure: a cell of skips and pools (CI's collapse test)
        "skip_or_pool_edges": skip_or_pool_edges(result.dna),
        "search_s": round(wall, 1),
        "last_history": result.history[-1] if result.history else None,
    }
    trained = [
        d
        for h, d in zip(result.history, result.dnas, strict=True)
        if not h.get("phase_select", 0.0)  # the history's training epochs
    ]
    # the argmax export of the same supernet, before the projections (not for
    # fixed alpha, whose architecture logits never train: its argmax means nothing)
    if name == "darts-pt" and trained:
        before = trained[-1]
        out["argmax_before_selection"] = {
            "dna": list(before),
            "arch": nb.arch_string(before),
            "test_accuracy": round(bench.test_accuracy(before, "cifar10"), 4),
        }
    if name == "spos" and args.rank_cells:
        out["ranking"] = rank_cells(result, valid, args.rank_cells, args.rank_seed, bench)
    return out


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for name in dict.fromkeys(label(r) for r in runs):
        accs = [r["test_accuracy"] for r in runs if label(r) == name and "test_accuracy" in r]
        if not accs:
            continue
        row: dict[str, Any] = {
            "seeds": len(accs),
            "mean": round(statistics.mean(accs), 2),
            "std": round(statistics.stdev(accs), 2) if len(accs) > 1 else 0.0,
            "min": min(accs),
            "max": max(accs),
        }
        before = [
            r["argmax_before_selection"]["test_accuracy"]
            for r in runs
            if label(r) == name and r["strategy"] == "darts-pt" and "argmax_before_selection" in r
        ]  # older outputs of darts-pt-fixed hold one too
        if before:
            row["argmax_same_supernet_mean"] = round(statistics.mean(before), 2)
        taus = [r["ranking"] for r in runs if label(r) == name and "ranking" in r]
        if taus:
            row["kendall_tau_supernet_mean"] = round(
                statistics.mean(t["kendall_tau_supernet_vs_table"] for t in taus), 4
            )
            row["kendall_tau_params_mean"] = round(
                statistics.mean(t["kendall_tau_params_vs_table"] for t in taus), 4
            )
        table[name] = row
    versus = spos_vs_children(runs)
    if versus is not None:
        table.setdefault("spos", {}).update(versus)
    return table


def all_cells() -> list[tuple[int, ...]]:
    """Every one of the 15,625 cells, as operation indices per edge."""
    import itertools

    from morphax.spaces import nasbench201 as nb

    return list(itertools.product(range(len(nb.OPS)), repeat=len(nb.EDGES)))


def share_at_most(bench: Any, line: float) -> float:
    """The share of all 15,625 cells whose table accuracy is at most `line`: how
    often a cell drawn at random would pass the collapse check by chance."""
    import morphax as mx

    accs = [bench.test_accuracy(mx.DNA(list(ops)), "cifar10") for ops in all_cells()]
    return round(float(np.mean(np.asarray(accs) <= line)), 4)


def skip_or_pool_edges(ops: Sequence[int]) -> int:
    """How many of a cell's edges are `skip_connect` or `avg_pool_3x3`."""
    from morphax.spaces import nasbench201 as nb

    free = {nb.OPS.index("skip_connect"), nb.OPS.index("avg_pool_3x3")}
    return sum(int(op) in free for op in ops)


def share_skip_or_pool(at_least: int) -> float:
    """The share of all 15,625 cells with at least `at_least` skip or pool edges:
    how often a cell drawn at random would pass CI's collapse test by chance."""
    cells = all_cells()
    return round(sum(skip_or_pool_edges(c) >= at_least for c in cells) / len(cells), 4)


def goals(table: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's goals, for the protocol's runs; runs of another batch norm
    get the same checks under keys of their own (`... (batch_norm=train)`)."""
    out: dict[str, Any] = {}
    for bn in dict.fromkeys(batch_norm(r) for r in runs):
        tag = "" if bn == "search" else f" (batch_norm={bn})"
        rows = {name: table[name + tag] for name in STRATEGIES if name + tag in table}
        if "darts-pt-fixed" in rows:
            mean = rows["darts-pt-fixed"]["mean"]
            out["fixed_alpha_darts_pt_mean_at_least_92.5" + tag] = mean >= 92.5
        if "darts-pt" in rows:
            row = rows["darts-pt"]
            out["darts_pt_at_least_88" + tag] = row["mean"] >= 88.0
            if "argmax_same_supernet_mean" in row:
                beats = row["mean"] > row["argmax_same_supernet_mean"]
                out["pt_beats_argmax_same_supernet" + tag] = beats
        if "gdas" in rows:
            out["gdas_at_least_90" + tag] = rows["gdas"]["mean"] >= 90.0
        if "darts" in rows:
            accs = [r["test_accuracy"] for r in runs if label(r) == "darts" + tag]
            collapsed = sum(a <= 60.0 for a in accs)
            out["darts_collapses_at_most_60_in_2_of_3" + tag] = collapsed * 3 >= 2 * len(accs)
        spos = rows.get("spos", {})
        if "kendall_tau_supernet_mean" in spos:
            out["spos_tau_above_0" + tag] = spos["kendall_tau_supernet_mean"] > 0.0
        if "kendall_tau_supernet_vs_children_mean" in spos:
            above = spos["kendall_tau_supernet_vs_children_mean"] > 0.0
            out["spos_tau_vs_children_trained_alone_above_0" + tag] = above
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3, help="S seeds per strategy (3)")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="the seeds are K..K+S-1 (K=0), to split runs"
    )
    parser.add_argument("--epochs", type=int, default=40, help="supernet training epochs (40)")
    parser.add_argument(
        "--strategies",
        default=",".join(STRATEGIES),
        help=f"(all five); also {CHILDREN!r}: --children ranked cells trained alone",
    )
    parser.add_argument(
        "--children", type=int, default=20, help="ranked cells trained alone by 'children' (20)"
    )
    parser.add_argument(
        "--children-start",
        type=int,
        default=0,
        help="the first ranked cell 'children' trains (0); runs over parts of one draw pool",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        default=[],
        metavar="FILE",
        help="earlier outputs whose runs join this one's table (with --strategies '': only merge)",
    )
    parser.add_argument(
        "--images", type=int, default=10000, help="CIFAR-10 images, half each (10000)"
    )
    parser.add_argument("--channels", type=int, default=8, help="C of the search net (8)")
    parser.add_argument("--cells", type=int, default=1, help="N, cells per stage (1)")
    parser.add_argument("--batch-size", type=int, default=64, help="(64)")
    parser.add_argument(
        "--batch-norm",
        choices=("search", "train"),
        default="search",
        help="the search net's batch norm: 'search' (the protocol: no affine, batch "
        "statistics) or 'train' (affine, running averages); runs of 'train' get rows "
        "and goal checks of their own",
    )
    parser.add_argument(
        "--rank-cells", type=int, default=100, help="cells SPOS ranks (100; 0: off)"
    )
    parser.add_argument("--rank-seed", type=int, default=0, help="seed of the ranked cells (0)")
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA,
        help="the cifar10-jpeg folder, or 'digits': the embedded digits (1,438 search-train, "
        "359 search-val; --images ignored)",
    )
    parser.add_argument("--out", help="also write the JSON to this file")
    parser.add_argument(
        "--progress", action="store_true", help="each search's progress bar on stderr"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="pin this process to its first N CPUs before JAX starts (default: leave the "
        "affinity alone). XLA sizes its CPU thread pool from the affinity, and a search's "
        "result differs bit for bit between thread counts (most of the README's rows ran "
        "pinned to one core)",
    )
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    bad = [s for s in names if s not in (*STRATEGIES, CHILDREN)]
    if bad or not (names or args.merge):
        parser.error(
            f"--strategies takes a comma-separated list of {(*STRATEGIES, CHILDREN)}, "
            f"but got {bad or names}"
        )
    merged = []
    for path in args.merge:
        try:
            with open(path) as f:
                merged += json.load(f)["runs"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            parser.error(
                f"--merge {path}: not an output of this benchmark ({type(e).__name__}: {e})"
            )
    keys = [(label(r), r.get("seed"), r.get("first")) for r in merged]
    twice = sorted({k for k in keys if keys.count(k) > 1}, key=str)
    if twice:  # a run counted twice would weigh twice in the means
        parser.error(
            f"--merge: the files hold these (strategy, seed, children start) runs twice: {twice}"
        )
    if CHILDREN in names and not (
        args.children >= 1
        and args.children_start >= 0
        and args.children_start + args.children <= args.rank_cells
    ):
        parser.error(
            f"--children-start + --children must be in [1, --rank-cells={args.rank_cells}], "
            f"but got {args.children_start} + {args.children}"
        )
    for flag in ("seeds", "epochs", "images", "channels", "cells", "batch_size"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1, but got {getattr(args, flag)}")
    if args.first_seed < 0:
        parser.error(f"--first-seed must be >= 0, but got {args.first_seed}")
    if args.images < 20:
        parser.error(f"--images must be >= 20 (2 per class), but got {args.images}")
    if args.threads is not None:
        cpus = sorted(os.sched_getaffinity(0))
        if not 1 <= args.threads <= len(cpus):
            parser.error(f"--threads must be in [1, {len(cpus)}] here, but got {args.threads}")
        os.sched_setaffinity(0, cpus[: args.threads])

    import jax

    import morphax as mx
    from morphax.spaces import nasbench201 as nb

    start = time.perf_counter()
    machine = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        # XLA's CPU thread pool and the vector units its code uses: results differ
        # bit for bit between thread counts (and, we believe, between CPUs)
        "xla_threads": len(os.sched_getaffinity(0)),
        "cpu_simd": simd_flags(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "morphax": mx.__version__,
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }
    data = load_data(args.data, args.images) if names else None
    load_s = time.perf_counter() - start
    bench = nb.load()
    chance_60 = share_at_most(bench, 60.0)
    chance_skip_or_pool = share_skip_or_pool(5)
    runs: list[dict[str, Any]] = []
    # DARTS and DARTS-PT train the same supernet bit for bit (only the selection
    # differs), so with both asked for, DARTS's cell is DARTS-PT's argmax before
    # its projections and the search runs once.
    derive_darts = "darts" in names and "darts-pt" in names

    def report(complete: bool, extra: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        derived = [
            {
                "strategy": "darts",
                "batch_norm": batch_norm(r),
                "seed": r["seed"],
                **r["argmax_before_selection"],
                "derived_from": "darts-pt: its supernet's argmax before the projections",
            }
            for r in runs
            if derive_darts and r["strategy"] == "darts-pt" and "argmax_before_selection" in r
        ]
        every = runs + list(extra) + derived + merged
        table = summarize(every)
        return {
            "benchmark": "oneshot_quality",
            "complete": complete,
            "protocol": (
                (
                    "the embedded digits (train / valid splits)"
                    if args.data == "digits"
                    else f"{args.images // 2} search-train + {args.images // 2} search-val "
                    "CIFAR-10 images (JPEG)"
                )
                + f", search_net C={args.channels} N={args.cells} "
                f"batch_norm={args.batch_norm!r}, {args.epochs} epochs, batch {args.batch_size}; cells "
                "scored by the NAS-Bench-201 table (CIFAR-10 test accuracy, 200 epochs, C=16 N=5)"
            ),
            "machine": machine | {"load_average_1m_now": round(os.getloadavg()[0], 2)},
            "settings": vars(args)
            | {"data": "../shared/data/cifar10-jpeg" if args.data == DEFAULT_DATA else args.data},
            "data_load_s": round(load_s, 1),
            "runs": every,
            "table": table,
            "goals": goals(table, every),
            # what the collapse line (<= 60) means: the share of cells that pass it
            "cells_at_most_60_share": chance_60
            if any(r["strategy"] == "darts" for r in every)
            else None,
            # what CI's collapse test checks (>= 5 of 6 edges skip or pool): its chance share
            "cells_5_of_6_skip_or_pool_share": chance_skip_or_pool
            if any(r["strategy"] == "darts" for r in every)
            else None,
            "wall_s": round(time.perf_counter() - start, 1),
        }

    def write(out: dict[str, Any]) -> str:
        text = json.dumps(out, indent=2)
        if args.out:  # after each run too: a run cut short keeps the seeds it finished
            with open(args.out + ".tmp", "w") as f:
                f.write(text + "\n")
            os.replace(args.out + ".tmp", args.out)
        return text

    for name in names:
        if name == "darts" and derive_darts:
            continue
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            try:
                if name == CHILDREN:  # the --out file gets each child as it ends

                    def partial(run: dict[str, Any]) -> None:
                        write(report(complete=False, extra=[run]))

                    run = train_children(seed, args, data, bench, partial)
                else:
                    run = run_one(name, seed, args, data, bench)
            except Exception as e:  # one failing strategy does not lose the others
                run = {"strategy": name, "seed": seed, "error": f"{type(e).__name__}: {e}"[:2000]}
            print(
                f"# {name} seed {seed}: "
                f"{run.get('test_accuracy', run.get('kendall_tau_vs_table', run.get('error')))}",
                file=sys.stderr,
                flush=True,
            )
            runs.append(run)
            write(report(complete=False))
    print(write(report(complete=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
