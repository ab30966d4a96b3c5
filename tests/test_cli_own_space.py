"""The command line on a user's own space (issue 11 item 9), NSGA-II, --version,
and the fixes: refused flags name themselves, a changed training configuration
is refused naming what changed, test accuracy is shown for the best only."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from test_cli import FAST, run

import morphax as mx

SPACE_FILE = """
import flax.linen as nn
import morphax as mx


class TinyNet(nn.Module):
    width: int = 4
    num_classes: int = 10

    @nn.compact
    def __call__(self, x, train=False):
        x = x.reshape((x.shape[0], -1))
        return nn.Dense(self.num_classes)(nn.relu(nn.Dense(self.width)(x)))


mx.register(TinyNet, name="user.TinyNet")


def tiny_space(num_classes):
    return TinyNet(width=mx.oneof([2, 4]), num_classes=num_classes)


def tiny_space_compiled():
    return mx.space(TinyNet(width=mx.oneof([2, 3])))


def not_a_space():
    return 3
"""


@pytest.fixture(scope="module")
def space_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("own") / "my_spaces.py"
    path.write_text(textwrap.dedent(SPACE_FILE))
    return path


QUICK = ["--algorithm", "random", "--epochs", "1", "--trials", "2"]


def test_a_users_space_from_a_file_runs_with_the_built_in_training(
    space_file: Path, tmp_path: Path
) -> None:
    store = tmp_path / "s.db"
    code, out, err = run(
        ["search", "--space", f"{space_file}:tiny_space", *QUICK, "--store", str(store)]
    )
    assert code == 0, out + err
    assert f"space={space_file}:tiny_space (2 architectures)" in out
    assert "best architecture: TinyNet(width=" in out and "num_classes=10" in out
    study = mx.load_study(store, "tiny_space-random-0")
    assert len(study.completed) == 2
    assert study.trials[0].program["train"]["epochs"] == 1  # stored with the space


def test_a_users_space_from_a_module(
    space_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(space_file.parent))
    store = tmp_path / "s.db"
    argv = ["search", "--space", "my_spaces:tiny_space_compiled", *QUICK, "--store", str(store)]
    code, out, err = run(argv)
    assert code == 0, out + err
    assert "best architecture: TinyNet(width=" in out


def test_a_bad_user_space_is_named(space_file: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    code, _, err = run(["search", "--space", f"{space_file}:nope", "--store", store])
    assert (
        code == 2
        and f"--space '{space_file}:nope': {str(space_file)!r} has no function 'nope'" in err
    )
    code, _, err = run(["search", "--space", f"{space_file}:not_a_space", "--store", store])
    assert code == 2 and "not_a_space() did not return a space" in err
    code, _, err = run(["search", "--space", "no_such_module_x:fn", "--store", store])
    assert code == 2 and "cannot import module 'no_such_module_x'" in err
    code, _, err = run(["search", "--space", str(tmp_path / "none.py") + ":fn", "--store", store])
    assert code == 2 and "no such file" in err
    assert not (tmp_path / "s.db").exists()


def test_version() -> None:
    code, out, _ = run(["--version"])
    assert code == 0 and out.strip() == f"morphax {mx.__version__}"


def test_nsga2_searches_accuracy_and_parameter_count(space_file: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    argv = ["search", "--space", f"{space_file}:tiny_space", "--algorithm", "nsga2"]
    code, out, err = run(
        [*argv, "--epochs", "1", "--trials", "2", "--population", "2", "--store", str(store)]
    )
    assert code == 0, out + err
    study = mx.load_study(store)
    assert study.objective.names == ("valid_accuracy", "params")
    assert study.objective.directions == ("maximize", "minimize")
    assert all(isinstance(t.reward, tuple) and len(t.reward) == 2 for t in study.completed)
    code, out, _ = run(["show", str(store)])
    assert code == 0 and "reward (" in out
    code, _, err = run(
        ["search", "--space", "nasbench201", "--algorithm", "nsga2", "--store", str(store)]
    )
    assert code == 2
    assert "NAS-Bench-201's table holds no parameter counts" in err


def test_bad_lr_and_seed_are_refused_naming_the_flag(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    for value in ("-1", "0", "nan", "x"):
        code, out, err = run(["search", "--lr", value, "--store", str(store)])
        assert code == 2 and out == ""
        assert f"argument --lr: expected a positive number, but got {value!r}" in err
    code, _, err = run(["search", "--seed", "-1", "--store", str(store)])
    assert code == 2 and "argument --seed: expected a non-negative integer, but got '-1'" in err
    assert not store.exists()


def test_epochs_for_nasbench201_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    code, _, err = run(["search", "--space", "nasbench201", "--epochs", "2", "--store", str(store)])
    assert code == 2
    assert (
        "morphax: error: --epochs cannot apply to --space nasbench201: it trains nothing, its "
        "accuracies are NAS-Bench-201's recorded ones (12-epoch validation, 200-epoch test); "
        "drop --epochs"
    ) in err
    assert not store.exists()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("own_cli") / "study.db"
    code, out, err = run(["search", *FAST, "--trials", "2", "--store", str(path)])
    assert code == 0, out + err
    return path


@pytest.mark.parametrize(
    ("flag", "value", "change"),
    [
        ("--epochs", "2", "train.epochs: 1 -> 2"),
        ("--lr", "0.01", "train.lr: 0.003 -> 0.01"),
        ("--batch-size", "32", "train.batch_size: 64 -> 32"),
        ("--limit-per-class", "5", "train.limit_per_class: null -> 5"),
    ],
)
def test_resuming_with_another_training_configuration_is_refused(
    study: Path, flag: str, value: str, change: str
) -> None:
    argv = ["search", *FAST, "--trials", "3", "--store", str(study)]
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    code, _, err = run(argv)
    assert code == 2, err
    assert f"study 'cnn-random-0' in {str(study)!r} was made for another space (spec " in err
    assert f": {{{change}}}); this search's space is spec " in err
    assert "use another study name, or the same space (and settings) to resume it" in err
    assert len(mx.load_study(study).trials) == 2  # nothing ran


def test_a_changed_space_names_the_decisions_that_differ(study: Path) -> None:
    argv = ["search", *FAST, "--trials", "3", "--store", str(study)]
    argv[argv.index("--widths") + 1] = "8"
    code, _, err = run(argv)
    assert code == 2
    assert ": {model.blocks.candidates[0][0].features.candidates[0]: 4 -> 8}); " in err


def test_show_prints_test_accuracy_for_the_best_only(study: Path) -> None:
    code, out, _ = run(["show", str(study)])
    assert code == 0
    header = next(line for line in out.splitlines() if "valid_accuracy" in line)
    assert "test_accuracy" not in header
    best = mx.load_study(study).best(1)[0]
    assert (
        f"held-out test accuracy of the best trial (#{best.id}): "
        f"{best.metrics['test_accuracy']:.4f} (report it; do not select on it)"
    ) in out


def test_resuming_on_other_data_is_refused(study: Path, tmp_path: Path) -> None:
    from test_cli import _images

    _images(tmp_path / "imgs", "train", 50)
    _images(tmp_path / "imgs", "test", 2)
    data = str(tmp_path / "imgs")
    argv = ["search", *FAST, "--trials", "3", "--store", str(study), "--data", data]
    code, _, err = run(argv)
    assert code == 2, err
    # num_classes 10 is ConvNet's default, so the stored program leaves it out.
    assert f'{{model.num_classes: (absent) -> 2; train.data: "digits" -> "{data}"}}' in err
    assert len(mx.load_study(study).trials) == 2
