"""The `morphax` command line: search (and resume), show, plot, and its errors."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import morphax as mx
from morphax import cli

REPO = Path(__file__).parents[1]
#: A fast search: 1 epoch of one-block CNNs 4 channels wide on the embedded digits.
FAST = ["--space", "cnn", "--algorithm", "random", "--epochs", "1", "--max-depth", "1"]
FAST += ["--widths", "4"]


def run(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `morphax ARGV` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:  # argparse: --help and usage errors
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A 3-trial study made by `morphax search` (path, stdout, stderr)."""
    path = tmp_path_factory.mktemp("cli") / "study.db"
    code, out, err = run(["search", *FAST, "--trials", "3", "--store", str(path)])
    assert code == 0, out + err
    return path, out, err


def _counted(trials: list[Any]) -> list[Any]:
    """The trials that count toward --trials (not the duplicates answered from the study)."""
    return [t for t in trials if not (t.reason or "").startswith("duplicate of trial #")]


def test_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "morphax.cli", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for command in ("search", "show", "plot"):
        assert command in proc.stdout
    code, out, _ = run(["search", "--help"])
    assert code == 0
    for option in ("--space", "--algorithm", "--trials", "--data", "--store", "--epochs"):
        assert option in out
    assert "nasbench201" in out and "evolution" in out


def test_search_prints_the_best_architecture_and_held_out_accuracy(
    study: tuple[Path, str, str],
) -> None:
    path, out, err = study
    assert "space=cnn" in out and "algorithm=random" in out
    assert "best of 3 completed trials" in out
    assert "best architecture: ConvNet(blocks=(Block(features=4" in out
    assert "held-out test accuracy 0." in out
    assert path.exists()
    png = path.with_name("study.cnn-random-0.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "3/3" in err and "best=" in err  # the tqdm bar, with the best so far
    trials = mx.load_study(path).trials
    assert [t.status for t in trials] == ["completed"] * 3
    metrics = trials[0].metrics or {}
    for key in ("valid_accuracy", "test_accuracy", "params", "compile_s", "step_time_ms"):
        assert key in metrics
    assert trials[0].steps and trials[0].steps[0][0] == 1  # per-epoch reports


def test_rerun_with_more_trials_resumes_in_a_new_process(
    study: tuple[Path, str, str], tmp_path: Path
) -> None:
    path = tmp_path / "copy.db"
    shutil.copy(study[0], path)
    proc = subprocess.run(
        [sys.executable, "-m", "morphax.cli", "search", *FAST, "--trials", "4"]
        + ["--store", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "best of 4 completed trials" in proc.stdout
    before, after = mx.load_study(study[0]).trials, mx.load_study(path).trials
    assert len(_counted(after)) == 4  # and duplicates answered from the study, if any
    assert [(t.dna, t.metrics) for t in after[:3]] == [(t.dna, t.metrics) for t in before]
    code, out, _ = run(["search", *FAST, "--trials", "4", "--store", str(path)])
    assert code == 0 and len(_counted(mx.load_study(path).trials)) == 4  # nothing left to do


def test_show_prints_a_table_and_the_best_programs(study: tuple[Path, str, str]) -> None:
    code, out, _ = run(["show", str(study[0])])
    assert code == 0
    lines = out.splitlines()
    header = next(line for line in lines if "valid_accuracy" in line)
    # Test accuracy is printed for the best trial only (issue 11 item 9), not as a column.
    assert "status" in header and "test_accuracy" not in header
    assert "held-out test accuracy of the best trial (#" in out
    assert sum(1 for line in lines if " completed " in line) == 3
    assert "best 3 programs:" in out and "#1 trial" in out and "ConvNet(" in out


def test_plot_writes_a_png(study: tuple[Path, str, str], tmp_path: Path) -> None:
    target = tmp_path / "x.png"
    code, out, _ = run(["plot", str(study[0]), "--out", str(target)])
    assert code == 0 and str(target) in out
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ctrl_c_leaves_a_resumable_study(
    study: tuple[Path, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from morphax import train as mt

    real_fit = mt.fit
    calls = []

    def interrupted_fit(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    path = tmp_path / "study.db"
    argv = ["search", *FAST, "--trials", "3", "--store", str(path)]
    monkeypatch.setattr(mt, "fit", interrupted_fit)
    code, out, _ = run(argv)
    assert code == 130
    assert "interrupted: 1 of 3 trials are saved" in out
    assert "trial #2 was cut short and will run again" in out
    assert "To resume, run the same command again:\n  morphax search --space cnn" in out
    first = mx.load_study(path).trials
    assert [t.status for t in first] == ["completed", "pending"]

    monkeypatch.setattr(mt, "fit", real_fit)
    code, out, _ = run(argv)
    assert code == 0, out
    resumed, uninterrupted = mx.load_study(path).trials, mx.load_study(study[0]).trials
    assert [t.status for t in resumed] == ["completed"] * 3
    assert resumed[0].metrics == first[0].metrics  # no reported trial lost
    assert [t.dna for t in resumed] == [t.dna for t in uninterrupted]


def test_a_failing_child_is_reported_failed_and_the_search_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from morphax import train as mt

    real_fit = mt.fit
    calls = []

    def diverging_fit(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise mt.TrainingDiverged("the training loss became nan at step 3 of epoch 1")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(mt, "fit", diverging_fit)
    path = tmp_path / "study.db"
    code, out, err = run(["search", *FAST, "--trials", "3", "--store", str(path)])
    assert code == 0, out + err
    trials = mx.load_study(path).trials
    assert [t.status for t in trials] == ["completed", "failed", "completed"]
    assert trials[1].reason == "TrainingDiverged: the training loss became nan at step 3 of epoch 1"
    assert "trial 2 failed" in err and "best of 2 completed trials" in out


def test_nasbench201_search_is_tabular_and_fast(tmp_path: Path) -> None:
    path = tmp_path / "nb.db"
    argv = ["search", "--space", "nasbench201", "--algorithm", "random", "--trials", "20"]
    code, out, _ = run([*argv, "--store", str(path)])
    assert code == 0, out
    assert "best of 20 completed trials" in out
    assert "best architecture: Cell(edges=(" in out and "= |" in out
    trials = mx.load_study(path).trials
    assert len(trials) == 20 and all(t.status == "completed" for t in trials)
    best = max(t.metrics["valid_accuracy"] for t in trials if t.metrics)
    assert f"valid accuracy {best:.4f}" in out


# NSGA-II needs a parameter count that NAS-Bench-201 lacks: tests/test_cli_own_space.py runs it.
@pytest.mark.parametrize("algorithm", [a for a in cli.available_algorithms() if a != "nsga2"])
def test_every_algorithm_runs_from_the_command_line(algorithm: str, tmp_path: Path) -> None:
    path = tmp_path / "nb.db"
    argv = ["search", "--space", "nasbench201", "--algorithm", algorithm, "--trials", "6"]
    code, out, err = run([*argv, "--store", str(path), "--seed", "1"])
    assert code == 0, out + err
    study = mx.load_study(path)
    assert study.name == f"nasbench201-{algorithm}-1" and len(study.completed) == 6


def test_unknown_names_list_the_known_ones(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    code, _, err = run(["search", "--space", "resnet", "--store", store])
    assert code == 2
    assert "unknown space 'resnet'; known spaces: cnn, mlp, nasbench201" in err
    code, _, err = run(["search", "--algorithm", "bayes", "--store", store])
    assert code == 2
    assert (
        f"unknown algorithm 'bayes'; known algorithms: {', '.join(cli.available_algorithms())}"
        in err
    )
    assert {"random", "grid", "evolution"} <= set(cli.available_algorithms())
    code, _, err = run(["search", "--space", "nasbench201", "--dataset", "mnist", "--store", store])
    assert code == 2 and "unknown NAS-Bench-201 dataset 'mnist'; known datasets: cifar10" in err
    assert not (tmp_path / "s.db").exists()


def test_bad_data_and_store_paths_are_named(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    missing = tmp_path / "nowhere"
    code, _, err = run(["search", "--data", str(missing), "--store", store])
    assert code == 2 and f"no data at {str(missing)!r}: --data takes 'digits'" in err
    code, _, err = run(["search", "--data", f"cifar10:{missing}", "--store", store])
    assert code == 2 and "no such CIFAR-10 folder" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run(["search", "--data", str(tmp_path / "empty"), "--store", store])
    assert code == 2 and "no images found in" in err
    code, _, err = run(["search", "--data", "idx:only-one-file", "--store", store])
    assert code == 2 and "IDX data is idx:IMAGES,LABELS" in err
    code, _, err = run(["show", str(tmp_path / "none.db")])
    assert code == 2 and "no study file at" in err
    code, _, err = run(["search", "--trials", "0"])
    assert code == 2 and "expected a positive integer, but got 0" in err
    code, _, err = run(["search", "--widths", "4,x"])
    assert code == 2 and "expected integers like 16,32" in err


def _images(root: Path, split: str, per_class: int) -> None:
    from PIL import Image

    for cls in ("b", "a"):
        (root / split / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (4, 4), (i, 0, 0)).save(root / split / cls / f"{i}.png")


def test_load_data_finds_the_splits(tmp_path: Path) -> None:
    import tarfile

    _images(tmp_path / "folders", "train", 10)
    _images(tmp_path / "folders", "test", 2)
    train, valid, test = cli.load_data(str(tmp_path / "folders"), seed=0)
    assert (len(train), len(valid), len(test)) == (16, 4, 4)
    assert train.classes == ("a", "b") and train.input_shape == (4, 4, 3)
    for split in ("train", "test"):
        with tarfile.open(tmp_path / f"{split}.tar.gz", "w:gz") as tar:
            tar.add(tmp_path / "folders" / split, arcname=split)
    (tmp_path / "tars").mkdir()
    for split in ("train", "test"):
        (tmp_path / f"{split}.tar.gz").rename(tmp_path / "tars" / f"{split}.tar.gz")
    train, valid, test = cli.load_data(str(tmp_path / "tars"), seed=0, limit_per_class=5)
    assert (len(train), len(valid), len(test)) == (8, 2, 4)
    train, valid, test = cli.load_data(str(tmp_path / "folders" / "train"), seed=0)
    assert (len(train), len(valid), len(test)) == (13, 3, 4)  # no test split: 20% held out


def test_progress_bar() -> None:
    # The bar is tqdm's now (issue 11): its counts, and the best so far as a postfix.
    stream = io.StringIO()
    bar = cli.Progress(4, done=1, stream=stream)
    bar.update(2, None, "trial 2 failed")
    bar.update(3, 0.5, "trial 3 completed")
    bar.update(4, 0.75)
    bar.close()
    text = stream.getvalue()
    assert "1/4" in text and "2/4" in text and "best=-, last=trial 2 failed" in text
    assert "3/4" in text and "best=0.5000" in text
    assert "4/4" in text and "best=0.7500" in text and text.endswith("\n")
