"""The examples run end to end, in-process, in a fast setting (1 epoch, 2 trials).

Most of the time goes to XLA compiling each new architecture's steps, so the
fast settings keep the number of distinct architectures small (the Random
and RegularizedEvolution searches of `annotate_flax_cnn.py` start from the
same seed and propose the same first children, which `fit` finds compiled).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ACCURACY = r"(\d\.\d{3})"

pytestmark = pytest.mark.slow


def load_example(name: str) -> ModuleType:
    """Imports `examples/<name>.py` as a module (the folder is no package)."""
    spec = importlib.util.spec_from_file_location(
        f"morphax_examples.{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


def accuracies(pattern: str, text: str) -> list[float]:
    matches = re.findall(pattern, text)
    values = [float(v) for m in matches for v in (m if isinstance(m, tuple) else (m,))]
    assert values, f"no match for {pattern!r} in:\n{text}"
    assert all(0.0 <= v <= 1.0 for v in values), values
    return values


def test_annotate_flax_cnn(capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("annotate_flax_cnn")
    example.main(["--trials", "2", "--epochs", "1"])
    out = capsys.readouterr().out

    accuracies(rf"CNN\(\) valid accuracy {ACCURACY} test accuracy {ACCURACY}", out)
    assert "decisions: ['features', 'activation', 'depth', 'hidden']" in out
    assert "space size: 81 architectures" in out  # 3 features x 3 activations x 3 depths x 3 hidden
    assert len(re.findall(r"^  trial +\d+ ", out, flags=re.M)) == 4  # 2 trials x 2 algorithms
    for name in ("Random", "RegularizedEvolution"):
        assert f"Search with {name}, 2 trials of 1 epoch(s)" in out
        best = re.search(
            rf"^best {name}: trial [12] convs=\([\d, ]+\) activation=\w+ hidden=\d+ "
            rf"valid accuracy {ACCURACY} test accuracy {ACCURACY}",
            out,
            flags=re.M,
        )
        assert best, out
        # The best trial beats chance (10 classes) even after one epoch.
        assert float(best.group(1)) > 0.1, out


def test_search_optimizer(capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("search_optimizer")
    example.main(["--trials", "2", "--epochs", "1"])
    out = capsys.readouterr().out

    assert "Search with RegularizedEvolution, 2 trials of 1 epoch(s)" in out
    for name in ("optimizer", "adam.lr", "sgd.lr", "adamw.lr", "depth", "activation", "norm"):
        assert f"'{name}'" in out
    trials = re.findall(r"^  trial +\d+  (\w+)\(lr=", out, flags=re.M)
    assert len(trials) == 2 and set(trials) <= {"adam", "sgd", "adamw"}, out
    best = re.search(r"^best combination: trial [12] (adam|sgd|adamw)\(lr=[\d.e+-]+", out, re.M)
    assert best, out
    accuracies(rf"best valid accuracy {ACCURACY} test accuracy {ACCURACY}", out)


def test_examples_have_help() -> None:
    for name in ("annotate_flax_cnn", "search_optimizer"):
        example = load_example(name)
        with pytest.raises(SystemExit) as exit_info:
            example.main(["--help"])
        assert exit_info.value.code == 0
