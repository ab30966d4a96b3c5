"""The command line after issue 11: plots into missing folders, duplicates, direction."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import FAST, run


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli11") / "study.db"
    code, out, err = run(["search", *FAST, "--trials", "2", "--store", str(path)])
    assert code == 0, out + err
    return path


def test_plot_into_a_missing_folder_is_refused_by_name(study: Path, tmp_path: Path) -> None:
    target = tmp_path / "nope" / "x.png"
    code, out, err = run(["plot", str(study), "--out", str(target)])
    assert code == 2 and "Traceback" not in err
    assert f"morphax: error: cannot write the plot to {str(target)!r}: the folder " in err
    assert "does not exist" in err


def test_search_writes_the_default_plot_and_a_tqdm_bar(study: Path) -> None:
    assert Path(f"{str(study)[:-3]}.cnn-random-0.png").read_bytes()[:4] == b"\x89PNG"
    code, out, err = run(["search", *FAST, "--trials", "3", "--store", str(study)])
    assert code == 0 and "3/3" in err and "best=" in err


def test_show_names_the_direction(study: Path) -> None:
    code, out, _ = run(["show", str(study)])
    assert code == 0 and "direction='maximize'" in out
