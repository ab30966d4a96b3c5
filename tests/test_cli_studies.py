"""`morphax studies`: list the studies of a file, delete one (issue 11 item 8)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import morphax as mx
from morphax import cli


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli.main(list(argv))
    return code, out.getvalue()


def test_studies_lists_and_deletes(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    space = {"x": mx.oneof([1, 2, 3])}
    for name in ("first", "second"):
        mx.search(space, mx.algorithms.Grid(), num_trials=3, store=path, name=name).run(
            lambda t: float(t.program["x"])
        )
    code, out = _run("studies", str(path))
    assert code == 0
    assert out.splitlines() == [
        "first: 3 trials, 3 completed, best reward 3.0000 (trial #3)",
        "second: 3 trials, 3 completed, best reward 3.0000 (trial #3)",
    ]
    code, out = _run("studies", str(path), "--delete", "first")
    assert code == 0 and "deleted study 'first'" in out
    assert mx.list_studies(path) == ["second"]
    live = mx.search(space, mx.algorithms.Grid(), num_trials=3, store=path, name="second")
    live.ask()  # a live search holds the study
    code, out = _run("studies", str(path), "--delete", "second")
    assert code != 0 and "second" in out and "lease" in out
    live.close()
