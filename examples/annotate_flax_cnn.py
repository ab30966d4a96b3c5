"""From a plain Flax CNN to an architecture search, by adding four hyper-values.

Part 1 is a small CNN written the way any Flax user writes it, trained on the
8x8 digits that ship with scikit-learn (no download).

Part 2 turns the same model into a search space. The diff is four
hyper-values and nothing else:

* two in the module's fields, where the model is constructed:
  `features=mx.oneof([...])` and `activation=mx.oneof([...])`;
* two define-by-run, called inside `@nn.compact __call__`:

      -        depth = len(self.features)
      +        depth = mx.intv(1, len(self.features), name="depth")
      -        x = nn.Dense(64)(x)
      +        x = nn.Dense(mx.oneof(HIDDEN, name="hidden"))(x)

`mx.trace(model, example_x)` runs the module once per explored choice and
returns ONE space holding all four decisions. Each child it materializes is a
`DynamicChild`: `child.program` is the concrete module (field choices
applied) and `child.init` / `child.apply` run `__call__` with the child's
define-by-run choices, so `morphax.train.fit` trains it like any Flax module.

The same search loop then runs with random search and with regularized
evolution; switching between them is one line.

Run:
    python examples/annotate_flax_cnn.py                     # 12 trials, 3 epochs each
    python examples/annotate_flax_cnn.py --trials 3 --epochs 1   # a quick look
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import optax

import morphax as mx
from morphax.train import Dataset, FitResult, fit, load_digits

Activation = Callable[[jax.Array], jax.Array]

# ---------------------------------------------------------------------------
# Part 1: a plain Flax CNN.


class CNN(nn.Module):
    """Conv blocks (conv, activation, 2x2 max-pool), then a two-layer dense head."""

    features: Sequence[int] = (16, 32)
    activation: Activation = nn.relu
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        depth = len(self.features)
        for i in range(depth):
            x = nn.Conv(self.features[i], (3, 3))(x)
            x = self.activation(x)
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.Dense(64)(x)
        x = self.activation(x)
        return nn.Dense(self.num_classes)(x)


# ---------------------------------------------------------------------------
# Part 2: the same model with four hyper-values.

HIDDEN = [32, 64, 128]


class SearchableCNN(nn.Module):
    """`CNN` with two define-by-run decisions in `__call__` (marked below)."""

    features: Sequence[int] = (16, 32)
    activation: Activation = nn.relu
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        depth = mx.intv(1, len(self.features), name="depth")  # hyper-value 3 (define-by-run)
        for i in range(depth):
            x = nn.Conv(self.features[i], (3, 3))(x)
            x = self.activation(x)
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.Dense(mx.oneof(HIDDEN, name="hidden"))(x)  # hyper-value 4 (define-by-run)
        x = self.activation(x)
        return nn.Dense(self.num_classes)(x)


def make_space(example_x: jax.Array) -> mx.DynamicSpace:
    """The search space: field hyper-values plus the define-by-run ones, traced once."""
    model = SearchableCNN(
        features=mx.oneof([(8, 16, 32), (16, 32, 64), (32, 64, 128)]),  # hyper-value 1 (field)
        activation=mx.oneof([nn.relu, nn.gelu, nn.tanh]),  # hyper-value 2 (field)
    )
    return mx.trace(model, example_x)


def describe(child: mx.DynamicChild) -> str:
    """A one-line summary of a child: its field choices and define-by-run choices."""
    cnn = child.program  # the concrete SearchableCNN, field choices applied
    depth = child.values["depth"]
    hidden = HIDDEN[child.values["hidden"]]  # a oneof's value is the index of its pick
    return (
        f"convs={tuple(cnn.features[:depth])} activation={cnn.activation.__name__} hidden={hidden}"
    )


def search_cnn(
    space: mx.DynamicSpace,
    algorithm: mx.algorithms.Algorithm,
    optimizer: optax.GradientTransformation,
    train: Dataset,
    valid: Dataset,
    args: argparse.Namespace,
) -> tuple[mx.Trial, FitResult]:
    """Trains one child per trial and reports its validation accuracy."""
    results: dict[int, FitResult] = {}
    search = mx.search(space, algorithm, num_trials=args.trials, objective="accuracy")
    for trial in search:
        result = fit(
            trial.program,  # a DynamicChild: fit calls its init/apply
            optimizer,
            train,
            valid_data=valid,
            epochs=args.epochs,
            batch_size=args.batch_size,
            key=args.seed,
        )
        results[trial.id] = result
        m = result.metrics
        trial.report({"accuracy": m["accuracy"], "params": m["params"]})
        print(
            f"  trial {trial.id:2d}  {describe(trial.program):48s} "
            f"accuracy {m['accuracy']:.3f}  params {int(m['params']):6d}  compile {m['compile_s']:.1f}s"
        )
    best = search.best()
    if best is None:
        raise RuntimeError("no trial completed")
    return best, results[best.id]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=12, help="trials per algorithm (12)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per child (3)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (64)")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (3e-3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, init and search (0)")
    args = parser.parse_args(argv)

    # The digits: 80% train, 20% test; 20% of train is held out to validate.
    train, test = load_digits(seed=args.seed)
    search_train, valid = train.split(0.2, seed=args.seed)

    # One optimizer object for all training: `fit` compiles a child's steps once
    # per optimizer object, and reuses them when it meets that child again.
    optimizer = optax.adam(args.lr)

    print("Part 1: a plain Flax CNN")
    result = fit(
        CNN(),
        optimizer,
        search_train,
        valid_data=valid,
        epochs=args.epochs,
        batch_size=args.batch_size,
        key=args.seed,
    )
    print(
        f"  CNN() valid accuracy {result.metrics['accuracy']:.3f} "
        f"test accuracy {result.evaluate(test)['accuracy']:.3f}"
    )

    print("Part 2: the same CNN with four hyper-values")
    space = make_space(train.x[:1])
    print(f"  decisions: {[p.id for p in space.spec.columns]}")
    print(f"  space size: {space.spec.space_size} architectures")

    # Same space, same loop: the algorithm is the one line that changes.
    for algorithm in [
        mx.algorithms.Random(seed=args.seed),
        mx.algorithms.RegularizedEvolution(population_size=6, tournament_size=3, seed=args.seed),
    ]:
        name = type(algorithm).__name__
        print(f"Search with {name}, {args.trials} trials of {args.epochs} epoch(s)")
        start = time.perf_counter()
        best, best_result = search_cnn(space, algorithm, optimizer, search_train, valid, args)
        test_accuracy = best_result.evaluate(test)["accuracy"]
        print(
            f"best {name}: trial {best.id} {describe(best.program)} "
            f"valid accuracy {best.reward:.3f} test accuracy {test_accuracy:.3f} "
            f"({time.perf_counter() - start:.0f}s)"
        )


if __name__ == "__main__":
    main()
