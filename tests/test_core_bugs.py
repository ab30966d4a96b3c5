"""Regression tests for the symbolic-core bugs of issue 7, one (or more) per bug."""

from __future__ import annotations

import functools
import pickle
from typing import Any

import cloudpickle
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import pytest

import morphax as mx


# 1. A compiled Space keeps a snapshot of its program.
def test_space_does_not_alias_its_program() -> None:
    prog = {"w": mx.oneof([16, 32])}
    s = mx.space(prog)
    mx.rebind(prog, {"w": mx.oneof([1, 2, 3])})
    assert s.spec.space_size == 2
    assert s.materialize(mx.DNA([1])) == {"w": 32}
    assert s.materialize(s.encode({"w": 32})) == {"w": 32}
    prog["w"] = 5  # a direct edit does not reach the space either
    assert s.materialize(mx.DNA([0])) == {"w": 16}


# 2. Hyper-value rules hold on every path that builds one.
def test_rebind_keeps_hyper_value_rules() -> None:
    prog = {"lr": mx.floatv(1.0, 5.0)}
    with pytest.raises(
        ValueError, match=r"cannot rebind 'lr.low' to 6.0: `floatv` needs low < high"
    ):
        mx.rebind(prog, {"lr.low": 6.0})
    assert prog["lr"].low == 1.0  # nothing changed
    with pytest.raises(ValueError, match=r"`manyof` needs k >= 1, but got k=0"):
        mx.rebind({"m": mx.manyof(2, [1, 2, 3])}, {"m.k": 0})
    with pytest.raises(AttributeError, match="floatv is immutable"):
        prog["lr"].low = 9.0  # type: ignore[misc]


def test_from_json_keeps_hyper_value_rules() -> None:
    with pytest.raises(
        ValueError, match=r"scale must be one of \('linear', 'log'\), but got scale='cubic'"
    ):
        mx.from_json('{"$type": "floatv", "low": 0.1, "high": 1.0, "scale": "cubic", "name": null}')
    with pytest.raises(ValueError, match=r"`manyof` needs k >= 1, but got k=0"):
        mx.from_json(
            '{"$type": "manyof", "k": 0, "candidates": [1, 2], "distinct": true,'
            ' "sorted": false, "name": null}'
        )


def test_hyper_value_replace_checks_rules() -> None:
    with pytest.raises(ValueError, match="`intv` needs low <= high, but got low=5, high=2"):
        mx.intv(0, 2).replace(low=5)


# 3. DNA is a plain value and pickles.
def test_dna_is_a_plain_value() -> None:
    spec = mx.dna_spec({"a": mx.oneof([1, 2, 3]), "b": mx.floatv(0.0, 1.0)})
    made = spec.random_dna(0)
    bare = mx.DNA(made.values)
    assert made == bare and hash(made) == hash(bare)
    assert not hasattr(made, "spec")
    other = {"x": mx.oneof([4, 5, 6]), "y": mx.floatv(0.0, 1.0)}
    assert mx.materialize(other, made) == mx.materialize(other, bare)
    for dumps in (pickle.dumps, cloudpickle.dumps):
        assert pickle.loads(dumps(made)) == made


# 4. One id scheme: compiled and traced ids agree.
class _Hidden(nn.Module):
    hidden: Any = mx.oneof([(8,), (mx.oneof([4, 16]), 8)])

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for w in self.hidden:
            x = nn.Dense(w)(x)
        return x


def test_compiled_and_traced_ids_agree() -> None:
    compiled = mx.dna_spec(_Hidden())
    traced = mx.trace(_Hidden(), jnp.ones((1, 3))).spec
    assert [p.id for p in compiled.columns] == ["hidden", "hidden[=1][0]"]
    assert [p.id for p in traced.columns] == [p.id for p in compiled.columns]


# 5. Hyper-values inside partials and ConfigDicts are part of the space.
def test_partial_arguments_are_walked() -> None:
    space = {"conv": functools.partial(nn.Conv, kernel_dilation=mx.oneof([1, 2]))}
    spec = mx.dna_spec(space)
    assert [p.id for p in spec.columns] == ["conv.keywords.kernel_dilation"]
    child = mx.materialize(space, mx.DNA([1]))
    assert isinstance(child["conv"], functools.partial)
    assert child["conv"].keywords == {"kernel_dilation": 2}
    layer = child["conv"](features=4, kernel_size=(3, 3))
    params = layer.init(jax.random.key(0), jnp.ones((1, 8, 8, 1)))
    assert params["params"]["kernel"].shape == (3, 3, 1, 4)
    assert mx.encode(space, child) == mx.DNA([1])
    positional = functools.partial(max, mx.oneof([1, 5]))
    assert mx.materialize(positional, mx.DNA([1]))(3) == 5


def test_config_dict_values_are_walked() -> None:
    cfg = ml_collections.ConfigDict(
        {"lr": mx.floatv(1e-4, 1e-1), "model": {"w": mx.oneof([8, 16])}}
    )
    spec = mx.dna_spec(cfg)
    assert [p.id for p in spec.columns] == ["lr", "model.w"]
    child = mx.materialize(cfg, mx.DNA([0.01, 1]))
    assert isinstance(child, ml_collections.ConfigDict)
    assert child.lr == 0.01 and child.model.w == 16
    mx.rebind(cfg, {"model.w": mx.oneof([1, 2, 3])})  # a ConfigDict changes in place
    assert mx.dna_spec(cfg).space_size == float("inf")
    assert len(cfg.model.w.candidates) == 3


# 6. One rule for spaces without decisions.
def test_trace_without_decisions_is_refused_like_dna_spec() -> None:
    class Plain(nn.Module):
        @nn.compact
        def __call__(self, x: jax.Array) -> jax.Array:
            return nn.Dense(3)(x)

    with pytest.raises(TypeError, match="which has no hyper-values when traced"):
        mx.trace(Plain(), jnp.ones((1, 2)))
    with pytest.raises(TypeError, match="which has no hyper-values"):
        mx.dna_spec(Plain())


# 7. rebind on an immutable root copies the path; the original stays as it was.
def test_rebind_on_sequential_never_changes_the_original() -> None:
    original = nn.Sequential([nn.Dense(4), nn.Dense(2)])
    new = mx.rebind(original, {"layers[0].features": 8})
    assert new.layers[0].features == 8
    assert original.layers[0].features == 4
    assert new.layers is not original.layers
    root = {"seq": original}
    assert mx.rebind(root, {"seq.layers[1].features": 5}) is root  # a mutable root: in place
    assert root["seq"].layers[1].features == 5 and original.layers[1].features == 2


# 9. Define-by-run ids do not depend on source lines.
def _model_v1(x: int) -> int:
    return x * mx.oneof([1, 2]) + mx.oneof([0, 1])


def _model_v2(x: int) -> int:
    # A comment line and a blank line above the decisions.

    return x * mx.oneof([1, 2]) + mx.oneof([0, 1])


def test_anonymous_ids_are_stable_to_edits() -> None:
    ids1 = [p.id.split("/")[-1] for p in mx.trace(_model_v1, 1).spec.columns]
    ids2 = [p.id.split("/")[-1] for p in mx.trace(_model_v2, 1).spec.columns]
    assert ids1 == ids2 == ["oneof#0", "oneof#1"]
    col = mx.trace(_model_v1, 1).spec.columns[0]
    assert col.id == "_model_v1/oneof#0" and col.location.startswith("_model_v1:")


class _Block(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Dense(mx.oneof([4, 8]))(x)


class _Two(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = _Block()(x)
        return _Block()(x)


def test_flax_ids_follow_module_scopes() -> None:
    spec = mx.trace(_Two(), jnp.ones((1, 3))).spec
    assert [p.id for p in spec.columns] == ["_Block_0/oneof#0", "_Block_1/oneof#0"]


# 14. An anonymous decision inside nn.scan is one decision.
class _ScanCell(nn.Module):
    @nn.compact
    def __call__(self, c: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = nn.Dense(mx.oneof([4, 6]))(c)
        return nn.Dense(c.shape[-1])(h), x


class _Scanned(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scan = nn.scan(
            _ScanCell, variable_broadcast="params", split_rngs={"params": False}, length=3
        )
        c, _ = scan()(x, jnp.zeros((3, 1)))
        return c


def test_anonymous_decision_inside_scan_is_one_decision() -> None:
    space = mx.trace(_Scanned(), jnp.ones((2, 5)))
    assert space.spec.space_size == 2 and len(space.spec) == 1
    for dna in (mx.DNA([0]), mx.DNA([1])):
        child = mx.materialize(space, dna)
        params = child.init(jax.random.key(0), jnp.ones((2, 5)))
        assert child.apply(params, jnp.ones((2, 5))).shape == (2, 5)


# 15. Unordered candidates are refused.
def test_sets_are_refused_as_candidates() -> None:
    with pytest.raises(
        TypeError, match=r"`oneof` needs candidates in a fixed order, but got a set"
    ):
        mx.oneof({3, 1, 2})
    with pytest.raises(TypeError, match=r"`manyof` needs candidates in a fixed order"):
        mx.manyof(2, frozenset([1, 2, 3]))
    assert mx.oneof(sorted({3, 1, 2})).candidates == [1, 2, 3]


# 16. The one-shot materialize reuses the compiled space, and sees a rebind.
def test_one_shot_materialize_is_cached_and_sees_edits() -> None:
    prog = {"w": mx.oneof([16, 32]), "act": mx.oneof(["relu", "gelu"])}
    from morphax.symbolic import _api

    assert mx.materialize(prog, mx.DNA([1, 0])) == {"w": 32, "act": "relu"}
    first = _api._CACHE[id(prog)][1]
    assert mx.materialize(prog, mx.DNA([0, 1])) == {"w": 16, "act": "gelu"}
    assert _api._CACHE[id(prog)][1] is first  # no recompile
    mx.rebind(prog, {"w": mx.oneof([1, 2, 3])})
    assert mx.materialize(prog, mx.DNA([2, 0])) == {"w": 3, "act": "relu"}
    prog["act"] = mx.oneof(["tanh"])
    assert mx.materialize(prog, mx.DNA([2, 0])) == {"w": 3, "act": "tanh"}
    prog["act"].candidates[0] = "selu"  # an edit deep inside a hyper-value
    assert mx.materialize(prog, mx.DNA([2, 0])) == {"w": 3, "act": "selu"}
    nested = {"layers": [{"w": mx.oneof([1, 2])}]}
    assert mx.materialize(nested, mx.DNA([1])) == {"layers": [{"w": 2}]}
    nested["layers"][0]["w"] = mx.oneof([7, 8])
    assert mx.materialize(nested, mx.DNA([1])) == {"layers": [{"w": 8}]}
    nested["layers"].append({"v": mx.oneof([5])})
    assert mx.materialize(nested, mx.DNA([0, 0])) == {"layers": [{"w": 7}, {"v": 5}]}


# 10 (the fingerprint part). Candidate values and class identities change it.
def test_fingerprint_covers_candidate_values_and_classes() -> None:
    def fp(cands: list[Any]) -> str:
        return mx.dna_spec({"k": mx.oneof(cands)}).fingerprint

    assert fp([(1, 1), (3, 3)]) != fp([(4, 4), (3, 3)])

    class Conv:  # unregistered classes of one name in two places
        pass

    first = Conv

    class Conv:  # type: ignore[no-redef]  # noqa: F811
        pass

    first.__qualname__ = "A.Conv"
    Conv.__qualname__ = "B.Conv"
    assert fp([first]) != fp([Conv])
    assert fp([(1, 1), (3, 3)]) == fp([(1, 1), (3, 3)])


# Values are values: programs, spaces and children survive (cloud)pickle.
def test_programs_spaces_and_children_survive_cloudpickle() -> None:
    Dense = mx.symbolic(nn.Dense)
    prog = {"layer": Dense(features=mx.oneof([4, 8])), "lr": mx.floatv(1e-3, 1e-1, scale="log")}
    space = mx.space(prog)
    for obj in (prog, space, space.materialize(mx.DNA([1, 0.01]))):
        back = cloudpickle.loads(cloudpickle.dumps(obj))
        if isinstance(obj, mx.Space):
            assert back.spec == obj.spec
            assert back.materialize(mx.DNA([0, 0.01])) == obj.materialize(mx.DNA([0, 0.01]))
        else:
            assert back == obj
    assert pickle.loads(pickle.dumps(space)).spec == space.spec
    dyn = mx.trace(_Two(), jnp.ones((1, 3)))
    child = dyn.materialize(mx.DNA([1, 0]))
    back = cloudpickle.loads(cloudpickle.dumps(child))
    assert back == child
    back_space = cloudpickle.loads(cloudpickle.dumps(dyn))
    assert back_space.spec == dyn.spec


# Decision points own their rules: a manyof is one ManyChoice point with k columns.
def test_manyof_is_one_point_with_a_column_per_pick() -> None:
    space = {
        "m": mx.manyof(2, [{"k": mx.oneof([3, 5])}, "skip"], distinct=False),
        "w": mx.oneof([1]),
    }
    spec = mx.dna_spec(space)
    many = spec.root[0]
    assert isinstance(many, mx.ManyChoice) and len(spec.root) == 2
    assert many.columns == (0, 2) and [p.id for p in many.picks] == ["m[0]", "m[1]"]
    assert all(
        spec.columns[c] is q and q.owner is many
        for c, q in zip(many.columns, many.picks, strict=True)
    )
    assert spec.columns[1].parent == 0 and spec.columns[3].parent == 2  # each pick's sub-space
    assert many.check_picks([1, 1]) is None and many.size() == 9
    strict = mx.dna_spec(mx.manyof(2, [1, 2, 3], sorted=True)).root[0]
    assert strict.check_picks([2, 1]) == "needs sorted picks"
    assert strict.check_picks([1, 1]) == "needs distinct picks"


def test_fingerprints_of_manyof_spaces_are_those_of_stored_studies() -> None:
    # Computed before decision points were rebuilt: studies stored then still resume.
    pinned = {
        "f2abfed38613eb6c": {"m": mx.manyof(2, ["a", "b", "c"]), "w": mx.oneof([16, 32])},
        "c77d7dd5d6d25195": mx.manyof(3, [1, 2, 3, 4], sorted=True, name="ops"),
        "89c883dd775d46eb": {
            "m": mx.manyof(2, [{"k": mx.oneof([3, 5])}, "skip"], distinct=False),
            "lr": mx.floatv(0.1, 1.0),
        },
    }
    for fingerprint, space in pinned.items():
        assert mx.dna_spec(space).fingerprint == fingerprint


@pytest.mark.parametrize("name", ["Random", "RegularizedEvolution", "NSGA2"])
def test_a_search_validates_each_dna_once(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    validate = mx.DNASpec.validate

    def counting(self: mx.DNASpec, dna: Any) -> Any:
        calls.append(dna)
        return validate(self, dna)

    monkeypatch.setattr(mx.DNASpec, "validate", counting)
    space = {"w": mx.oneof([1, 2, 3]), "lr": mx.floatv(0.1, 1.0), "m": mx.manyof(2, [1, 2, 3])}
    algorithm = {
        "Random": lambda: mx.algorithms.Random(seed=0),
        "RegularizedEvolution": lambda: mx.algorithms.RegularizedEvolution(
            population_size=4, tournament_size=2, seed=0
        ),
        "NSGA2": lambda: mx.algorithms.NSGA2(objectives=("a", "b"), population_size=4, seed=0),
    }[name]()
    for trial in mx.search(space, algorithm, num_trials=30):
        w = float(trial.program["w"])
        trial.report({"a": w, "b": -w} if name == "NSGA2" else w)
    # At the search boundary, once per proposal (with duplicates reused, a
    # proposal the study already answered is proposed, and checked, too).
    assert len(calls) == algorithm.num_proposed >= 30
    algorithm.feedback(mx.DNA([0, 0.5, 0, 1]), 1.0 if name != "NSGA2" else (1.0, 0.0))
    assert len(calls) == algorithm.num_proposed + 1  # a DNA it did not propose is checked
    with pytest.raises(ValueError, match="too short for this space"):
        algorithm.feedback(mx.DNA([0]), 1.0 if name != "NSGA2" else (1.0, 0.0))


class _DefaultProj(nn.Module):
    """A field whose default value holds a decision."""

    proj: nn.Module = nn.Dense(features=mx.oneof([8, 16, 32], name="width"))

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return self.proj(x)


def test_a_default_that_holds_a_decision_is_in_the_space() -> None:
    net = _DefaultProj()
    spec = mx.dna_spec(net)
    assert [c.id for c in spec.columns] == ["width"]
    x = jnp.ones((2, 3))
    assert mx.trace(net, x).spec == spec
    child = mx.materialize(net, mx.DNA([1]))
    assert child.proj.features == 16
    assert child.apply(child.init(jax.random.key(0), x), x).shape == (2, 16)
    assert mx.encode(net, child) == mx.DNA([1])
