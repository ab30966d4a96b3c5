"""The command line's choices: algorithms, spaces, data forms, and its error."""

from __future__ import annotations

from typing import Any

#: Command-line algorithm names and the `mx.algorithms` classes they make.
ALGORITHMS: dict[str, str] = {
    "random": "Random",
    "grid": "Grid",
    "evolution": "RegularizedEvolution",
    "reinforce": "Reinforce",
    "ppo": "PPO",
    "nsga2": "NSGA2",
}
#: What `--algorithm nsga2` optimizes: validation accuracy up, parameter count down.
NSGA2_OBJECTIVES = ("valid_accuracy", "params")
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
    if name == "nsga2":
        size = {} if population is None else {"population_size": population}
        return cls(objectives=NSGA2_OBJECTIVES, seed=seed, **size)
    if name == "evolution" and population is not None:
        return cls(population_size=population, seed=seed)
    return cls(seed=seed)
