"""morphax JSON is data: no code runs, no file is read, memory and depth are
bounded, and a bad stored row breaks nothing but itself (issue 7, bugs 10-13)."""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import sqlite3
import subprocess
import sys
import textwrap
import tracemalloc
from collections import namedtuple
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

import morphax as mx
from morphax import cli
from morphax.algorithms import Random
from morphax.symbolic import _registry
from morphax.symbolic._json_decode import from_json_value

REPO = Path(__file__).parents[1]


class _Payload:
    """Unpickling it creates `marker`: the attack's proof of execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


@pytest.fixture
def pickle_bomb(tmp_path: Path) -> tuple[Path, Path]:
    """(a pickle file that creates a marker when loaded, that marker)."""
    bomb, marker = tmp_path / "evil.npy", tmp_path / "executed"
    bomb.write_bytes(pickle.dumps(_Payload(marker)))
    return bomb, marker


def _attacks(bomb: Path) -> dict[str, dict[str, Any]]:
    path = str(bomb)
    return {
        "call": {
            "$type": "call",
            "fn": "jax.numpy.load",
            "args": {"file": path, "allow_pickle": True},
        },
        "object": {
            "$type": "object",
            "cls": "jax.numpy.load",
            "fields": {"file": path, "allow_pickle": True},
        },
        "namedtuple": {"$type": "namedtuple", "cls": "jax.numpy.load", "items": [path, None, True]},
        "ref": {"$type": "ref", "name": "jax.numpy.load"},
    }


def test_the_payload_is_live(pickle_bomb: tuple[Path, Path], tmp_path: Path) -> None:
    # The attack is real: loading the file with pickles allowed runs the payload.
    bomb, _ = pickle_bomb
    live = tmp_path / "live.npy"
    live.write_bytes(pickle.dumps(_Payload(tmp_path / "live")))
    np.load(live, allow_pickle=True)
    assert (tmp_path / "live").exists()
    assert bomb.exists()


@pytest.mark.parametrize("record", ["call", "object", "namedtuple", "ref"])
def test_a_json_naming_jnp_load_loads_nothing(record: str, pickle_bomb: tuple[Path, Path]) -> None:
    bomb, marker = pickle_bomb
    text = json.dumps({"layers": [_attacks(bomb)[record]]})
    with pytest.raises(
        ValueError,
        match=r"morphax JSON at \$\.layers\[0\]: unknown name 'jax\.numpy\.load': it is not "
        r"registered, and from_json imports nothing",
    ):
        mx.from_json(text)
    assert not marker.exists()


def test_no_io_function_is_registered_by_default() -> None:
    for name in ("load", "save", "savez", "savez_compressed", "fromfile", "genfromtxt", "loadtxt"):
        with pytest.raises(ValueError, match=f"unknown name 'jax.numpy.{name}'"):
            mx.from_json(json.dumps({"$type": "ref", "name": f"jax.numpy.{name}"}))
    _registry._load_defaults()
    import inspect

    for key, obj in list(_registry._BY_NAME.items()):
        if key in _registry._CHOSEN:
            continue  # registered by a user or mx.symbolic, not by the defaults
        assert key.rsplit(".", 1)[-1] not in _registry.IO_NAMES, key
        assert "memmap" not in key.lower(), key
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            continue
        assert not set(params) & _registry._PATH_PARAMS, key
    assert "jax.numpy.load" in (_registry.__doc__ or "") or "IO_NAMES" in (_registry.__doc__ or "")


def test_objects_are_only_data_classes() -> None:
    with pytest.raises(
        ValueError,
        match=r"refused morphax JSON at \$\.a\[1\]: the 'object' record names 'jax\.numpy\.zeros'"
        r", a \w+, not a class; JSON constructs only registered data classes",
    ):
        mx.from_json(
            '{"a": [1, {"$type": "object", "cls": "jax.numpy.zeros", "fields": {"shape": [2]}}]}'
        )
    with pytest.raises(
        ValueError,
        match=r"at \$: the 'namedtuple' record names 'jax\.nn\.relu', a \w+, not a class",
    ):
        mx.from_json('{"$type": "namedtuple", "cls": "jax.nn.relu", "items": [1]}')
    # A default-module class that is not a dataclass is not rebuilt from JSON.
    with pytest.raises(ValueError, match=r"names 'jax\.numpy\.dtype', the class numpy\.dtype"):
        mx.from_json('{"$type": "object", "cls": "jax.numpy.dtype", "fields": {"dtype": "f4"}}')
    # A registered function is only a reference: never an object, never called.
    calls = []

    @mx.register(name="tests.security.effect")
    def effect(x: int = 0) -> int:
        calls.append(x)
        return x

    with pytest.raises(ValueError, match=r"names 'tests\.security\.effect', a function"):
        mx.from_json('{"$type": "object", "cls": "tests.security.effect", "fields": {"x": 1}}')
    assert mx.from_json('{"$type": "ref", "name": "tests.security.effect"}') is effect
    call = mx.from_json('{"$type": "call", "fn": "tests.security.effect", "args": {"x": 2}}')
    assert isinstance(call, mx.Call) and calls == []  # a Call node, not built
    assert mx.build(call) == 2 and calls == [2]  # built only when the user asks


def test_data_classes_and_named_tuples_still_round_trip() -> None:
    Point = namedtuple("Point", ["x", "y"])
    mx.register(Point, name="tests.security.Point")
    program = {"p": Point(1, mx.oneof([2, 3])), "act": jax.nn.relu}
    assert mx.from_json(mx.to_json(program)) == program
    import flax.linen as nn

    assert mx.from_json(mx.to_json(nn.Dense(4))) == nn.Dense(4)


def _nested(depth: int, key_len: int) -> str:
    text = "1"
    for level in range(depth):
        text = '{"' + (f"k{level}_" + "x" * key_len)[:key_len] + '": ' + text + "}"
    return text


def test_deep_json_is_a_value_error_naming_the_limit() -> None:
    assert mx.from_json(_nested(150, 5)) is not None
    with pytest.raises(
        ValueError, match=r"nests deeper than 200 levels, at \$\.k299_x\.k298_x\.k297_x"
    ) as info:
        mx.from_json(_nested(300, 6))
    assert len(str(info.value)) < 600  # the path prefix, not the whole path
    for text in ("[" * 100_000 + "]" * 100_000, '{"a": ' * 100_000 + "1" + "}" * 100_000):
        with pytest.raises(ValueError, match="nests too deeply"):
            mx.from_json(text)
    with pytest.raises(ValueError, match="nests deeper than 200 levels"):
        from_json_value(json.loads("[" * 900 + "]" * 900))


def test_long_keys_cost_no_quadratic_memory() -> None:
    text = _nested(150, 13_000)  # 2 MB; one path string per level would hold ~150 MB
    tracemalloc.start()
    try:
        mx.from_json(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * len(text), peak
    with pytest.raises(ValueError) as info:
        mx.from_json(_nested(150, 13_000).replace("1}", '{"$type": "nope"}}', 1))
    assert len(str(info.value)) < 600  # long keys are shortened in the message


def test_morphax_names_resolve_in_a_fresh_process() -> None:
    from morphax.spaces.cnn import cnn_space

    space = cnn_space()
    child = mx.materialize(space, mx.dna_spec(space).random_dna(0))
    code = textwrap.dedent(
        """
        import sys
        import morphax as mx
        text = sys.stdin.read()
        assert "morphax.spaces.cnn" not in sys.modules
        child = mx.from_json(text)
        assert type(child).__name__ == "ConvNet", child
        assert "morphax.spaces.cnn" in sys.modules
        for name in ("morphax.evil", "morphax.spaces.cnn.jnp", "morphax.spaces.nasbench201_net"):
            try:
                mx.from_json('{"$type": "ref", "name": "%s"}' % name)
            except ValueError as e:
                assert "unknown name" in str(e), e
            else:
                raise AssertionError(name)
        assert "morphax.spaces.nasbench201_net" not in sys.modules  # nothing else imported
        cell = mx.from_json('{"$type": "ref", "name": "morphax.spaces.NB201Cell"}')
        assert cell.__name__ == "NB201Cell"
        print("ok")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=mx.to_json(child),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_the_table_of_morphax_names_is_complete() -> None:
    import importlib

    import morphax.spaces

    for module in sorted(set(_registry.OWN_MODULES.values())):
        importlib.import_module(module)
    own = {n for n in _registry._BY_NAME if n.startswith("morphax.spaces.")}
    assert own <= set(_registry.OWN_MODULES), own - set(_registry.OWN_MODULES)
    for name in _registry.OWN_MODULES:
        assert name in _registry._BY_NAME, name
    assert morphax.spaces is not None


# ---------------------------------------------------------------------------
# Study files.

SPACE = {"x": mx.oneof([1, 2, 3, 4]), "act": mx.oneof([jax.nn.relu, jax.nn.gelu])}


def _study(path: Path, n: int = 3) -> dict[int, float]:
    rewards = {}
    for trial in mx.search(SPACE, Random(seed=0), num_trials=n, store=path):
        trial.report(float(trial.program["x"]) + 0.1 * trial.id)
        rewards[trial.id] = float(trial.reward)  # type: ignore[arg-type]
    return rewards


def _tamper(path: Path, number: int, program_json: str | None) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE trials SET program_json = ? WHERE number = ?", (program_json, number))


def test_a_tampered_row_breaks_only_its_own_program(
    tmp_path: Path, pickle_bomb: tuple[Path, Path]
) -> None:
    bomb, marker = pickle_bomb
    path = tmp_path / "study.db"
    _study(path)
    _tamper(path, 2, json.dumps({"layer": _attacks(bomb)["object"]}))
    study = mx.load_study(path)  # decodes no program
    assert len(study.trials) == 3 and len(study.best(3)) == 3
    assert len(study.to_dataframe()) == 3
    assert study.trials[0].program["act"] in (jax.nn.relu, jax.nn.gelu)
    with pytest.raises(
        ValueError,
        match=r"the program of trial #2 cannot be loaded from the study file: morphax JSON at "
        r"\$\.layer: unknown name 'jax\.numpy\.load'",
    ):
        study.trials[1].program  # noqa: B018
    assert "not loadable" in repr(study.trials[1])
    assert not marker.exists()


def test_a_tampered_dna_row_breaks_only_its_dna(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    _study(path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE trials SET dna_json = '[1, 2]' WHERE number = 3")
    study = mx.load_study(path)
    assert "not loadable" in study.to_dataframe().loc[3, "dna"]
    with pytest.raises(ValueError, match=r"the DNA of trial #3 .*: it holds a list, not a DNA"):
        study.trials[2].dna  # noqa: B018
    assert study.trials[0].dna == mx.DNA(study.trials[0].dna.values)


def _show(path: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["show", str(path)])
    return code, out.getvalue() + err.getvalue()


def test_morphax_show_of_a_tampered_study_runs_nothing(
    tmp_path: Path, pickle_bomb: tuple[Path, Path]
) -> None:
    bomb, marker = pickle_bomb
    path = tmp_path / "study.db"
    rewards = _study(path, 4)
    worst = min(rewards, key=rewards.__getitem__)
    best = max(rewards, key=rewards.__getitem__)
    _tamper(path, worst, json.dumps(_attacks(bomb)["namedtuple"]))
    code, out = _show(path)
    assert code == 0, out
    assert sum(1 for line in out.splitlines() if " completed " in line) == 4
    assert "best 3 programs:" in out and "#1 trial" in out
    # The best trial's row tampered too: the table is still shown, nothing runs,
    # and what could not be loaded is named.
    _tamper(path, best, json.dumps(_attacks(bomb)["call"]))
    code, out = _show(path)
    assert code == 0, out
    assert sum(1 for line in out.splitlines() if " completed " in line) == 4
    assert f"trial #{best}" in out and "unknown name 'jax.numpy.load'" in out
    assert not marker.exists()


def test_an_unserializable_program_records_why(tmp_path: Path) -> None:
    def local_act(x: Any) -> Any:  # not registered
        return x

    space = {"x": mx.oneof([1, 2, 3]), "act": local_act}
    path = tmp_path / "study.db"
    for trial in mx.search(space, Random(seed=0), num_trials=2, store=path):
        assert trial.program["act"] is local_act  # the search runs on
        trial.report(1.0)
    # The same space again resumes (the recorded reason does not vary).
    for trial in mx.search(space, Random(seed=0), num_trials=3, store=path):
        trial.report(2.0)
    study = mx.load_study(path)
    assert len(study.completed) == 3 and study.best(1)[0].reward == 2.0  # duplicates: skipped rows
    with pytest.raises(
        ValueError,
        match=r"the program of trial #1 was not stored: cannot serialize <function .*local_act> "
        r"at \$\.act: it is not registered; .*register the class with mx\.register",
    ):
        study.trials[0].program  # noqa: B018
    with pytest.raises(
        ValueError, match=r"the space of study 'default' was not stored: .*local_act"
    ):
        study.space  # noqa: B018
    # A row without a program (an older study file) is None, as before.
    _tamper(path, 1, None)
    assert mx.load_study(path).trials[0].program is None


def test_registering_the_missing_class_later_still_resumes(tmp_path: Path) -> None:
    def late_act(x: Any) -> Any:
        return x

    space = {"x": mx.oneof([1, 2, 3]), "act": late_act}
    path = tmp_path / "study.db"
    for trial in mx.search(space, Random(seed=0), num_trials=2, store=path):
        trial.report(1.0)
    mx.register(late_act, name="tests.late_act")  # what the message advises
    ran = 0
    for trial in mx.search(space, Random(seed=0), num_trials=3, store=path):
        ran += 1
        trial.report(2.0)
    assert ran == 1 and len(mx.load_study(path).completed) == 3  # duplicates: skipped rows
