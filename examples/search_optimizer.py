"""Search the optimizer and its learning rate together with the architecture.

An optax optimizer is an ordinary function call, so `mx.symbolic` records it
with hyper-values in its arguments instead of building it: a `oneof` between
Adam, SGD with Nesterov momentum and AdamW, each with its own learning rate
drawn on a log scale (AdamW also searches its weight decay). The
architecture comes from `mx.spaces.cnn_space()` (depth, per-block widths and
kernel sizes, activation, normalization, residual connections). One space
holds both:

    space = {"model": cnn_space(...), "optimizer": mx.oneof([Adam(...), SGD(...), AdamW(...)])}

Each trial's child is the same dict with every choice made: a concrete
`ConvNet` and a concrete symbolic optimizer call, which `fit` builds.

Each optimizer's learning rate is its own decision (`adam.lr`, `sgd.lr`,
`adamw.lr`), active only when that optimizer is chosen: good learning rates
differ between them, and a conditional decision cannot share its name with one
under another candidate.

Run:
    python examples/search_optimizer.py                          # 16 trials, 5 epochs each
    python examples/search_optimizer.py --algorithm random --trials 4 --epochs 1
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import optax

import morphax as mx
from morphax.train import FitResult, TrainingDiverged, fit, load_digits

# Symbolic versions of optax's optimizers: calling them records the call.
Adam = mx.symbolic(optax.adam)
SGD = mx.symbolic(optax.sgd)
AdamW = mx.symbolic(optax.adamw)


def log_uniform(low: float, high: float, name: str) -> mx.FloatV:
    return mx.floatv(low, high, scale="log", name=name)


def make_space() -> dict[str, Any]:
    """The architecture and the optimizer, searched together."""
    return {
        "model": mx.spaces.cnn_space(max_depth=2, widths=(16, 32, 64)),
        "optimizer": mx.oneof(
            [
                Adam(learning_rate=log_uniform(1e-4, 1e-1, "adam.lr")),
                SGD(learning_rate=log_uniform(1e-3, 1.0, "sgd.lr"), momentum=0.9, nesterov=True),
                AdamW(
                    learning_rate=log_uniform(1e-4, 1e-1, "adamw.lr"),
                    weight_decay=log_uniform(1e-5, 1e-1, "adamw.weight_decay"),
                ),
            ],
            name="optimizer",
        ),
    }


def describe(child: dict[str, Any]) -> str:
    """One line for a child: its optimizer call and its architecture."""
    opt = child["optimizer"]
    extra = f" wd={opt.weight_decay:.1e}" if opt.target is optax.adamw else ""
    model = child["model"]
    blocks = "-".join(f"{b.features}k{b.kernel_size}" for b in model.blocks)
    residual = " residual" if model.residual else ""
    return (
        f"{opt.target.__name__}(lr={opt.learning_rate:.1e}{extra}) | convs {blocks} "
        f"{model.activation.__name__} norm={model.norm}{residual}"
    )


def make_algorithm(name: str, seed: int) -> mx.algorithms.Algorithm:
    if name == "random":
        return mx.algorithms.Random(seed=seed)
    return mx.algorithms.RegularizedEvolution(population_size=8, tournament_size=3, seed=seed)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=16, help="trials (16)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs per child (5)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (32)")
    parser.add_argument(
        "--algorithm", choices=["evolution", "random"], default="evolution", help="(evolution)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of data, init and search (0)")
    args = parser.parse_args(argv)

    train, test = load_digits(seed=args.seed)
    train, valid = train.split(0.2, seed=args.seed)  # the search sees valid, never test
    space = make_space()
    spec = mx.dna_spec(space)
    print(f"{len(spec)} decisions: {[p.id for p in spec.columns]}")

    algorithm = make_algorithm(args.algorithm, args.seed)
    print(f"Search with {type(algorithm).__name__}, {args.trials} trials of {args.epochs} epoch(s)")
    results: dict[int, FitResult] = {}
    start = time.perf_counter()
    search = mx.search(space, algorithm, num_trials=args.trials)
    for trial in search:
        child = trial.program  # {"model": ConvNet(...), "optimizer": adam(learning_rate=...)}
        try:
            result = fit(
                child["model"],
                child["optimizer"],  # a symbolic call: fit builds the optax optimizer
                train,
                valid_data=valid,
                epochs=args.epochs,
                batch_size=args.batch_size,
                key=args.seed,
            )
        except TrainingDiverged as e:  # too large a learning rate: tell the algorithm
            trial.fail(str(e))
            print(f"  trial {trial.id:2d}  {describe(child)}  diverged")
            continue
        results[trial.id] = result
        trial.report(result.metrics["accuracy"])
        print(f"  trial {trial.id:2d}  {describe(child)}  accuracy {trial.reward:.3f}")

    best = search.best()
    if best is None:
        raise SystemExit("no trial completed")
    test_accuracy = results[best.id].evaluate(test)["accuracy"]
    print(f"best combination: trial {best.id} {describe(best.program)}")
    print(
        f"best valid accuracy {best.reward:.3f} test accuracy {test_accuracy:.3f} "
        f"({time.perf_counter() - start:.0f}s)"
    )


if __name__ == "__main__":
    main()
