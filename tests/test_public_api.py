"""The public surface: every name re-exported, and no JAX at symbolic import time."""

from __future__ import annotations

import importlib
import subprocess
import sys

import morphax as mx

# `mx.symbolic` is the decorator; the sub-package of the same name is reached
# through sys.modules (DESIGN.md names both).
mxs = importlib.import_module("morphax.symbolic")

PUBLIC = [
    "DNA", "DNAArray", "DNASpec", "Call", "ChildResolver", "Choice", "DecisionPoint",
    "DynamicChild", "DynamicSpace", "Float", "FloatV", "HyperValue", "Int", "IntV", "ManyOf",
    "OneOf", "Resolver", "Space", "SymbolicFactory", "TraceResolver", "build", "clone",
    "current_resolver", "dna_spec", "encode", "eq", "floatv", "format_path", "from_json", "get",
    "intv", "iter", "manyof", "materialize", "oneof", "parse_path", "query", "random_sample",
    "rebind", "register", "resolving", "space", "symbolic", "to_json", "trace", "traverse",
    "NodeType", "register_node", "ManyChoice", "Pick",
]  # fmt: skip
INTEROP = [
    "from_pyglove", "from_pyglove_dna", "from_pyglove_spec", "to_pyglove_dna", "to_pyglove_spec",
]  # fmt: skip


def test_every_public_name_is_exported() -> None:
    import morphax.interop

    for name in PUBLIC:
        assert getattr(mx, name) is getattr(mxs, name), name
    for name in INTEROP:
        assert getattr(mx, name) is getattr(morphax.interop, name), name
        assert not hasattr(mxs, name), f"{name} moved to morphax.interop"


ALGORITHMS = [
    "Algorithm", "Random", "Grid", "RegularizedEvolution", "Evolution", "TournamentSelector",
    "NSGA2", "pareto_front", "MedianStopping", "SuccessiveHalving", "mutators", "Reinforce", "PPO",
]  # fmt: skip


def test_algorithms_and_tuning_names() -> None:
    for name in ALGORITHMS:
        assert hasattr(mx.algorithms, name), name
    for name in ("Uniform", "Gaussian", "Chain", "RandomChoice", "UniformCrossover"):
        assert hasattr(mx.algorithms.mutators, name), name
    for name in (
        "cnn_space",
        "mlp_space",
        "ConvNet",
        "MLP",
        "net_space",
        "to_net",
        "NB201Net",
        "nasbench201",
    ):
        assert hasattr(mx.spaces, name), name
    for name in ("search", "load_study", "Study", "Trial"):
        assert getattr(mx, name) is getattr(mx.tuning, name)


def test_symbolic_layer_imports_no_jax() -> None:
    code = (
        "import sys, morphax as mx\n"
        "s = mx.dna_spec({'a': mx.oneof([1, 2]), 'b': mx.floatv(0.0, 1.0)})\n"
        "mx.materialize({'a': mx.oneof([1, 2])}, s.random_dna(0).values[:1])\n"
        "print(sorted(m for m in ('jax', 'flax', 'optax', 'pyglove') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
