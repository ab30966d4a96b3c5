"""JSON for programs, spaces and DNA: registered names only."""

from __future__ import annotations

import json
import math

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest

import morphax as mx


@mx.symbolic
def block(width: int, act=jax.nn.relu, dropout: float = 0.0) -> dict:
    return {"width": width, "act": act, "dropout": dropout}


def test_programs_spaces_and_dna_round_trip() -> None:
    space = {
        "blocks": [
            block(mx.oneof([16, 32]), act=mx.oneof([nn.relu, nn.gelu, jax.nn.silu]))
            for _ in range(2)
        ],
        "head": nn.Dense(features=mx.intv(2, 10)),
        "opt": mx.symbolic(optax.adamw)(
            learning_rate=mx.floatv(1e-4, 1e-2, scale="log"), weight_decay=1e-4
        ),
        "tags": ("a", 1, None, True),
        "odd_keys": {1: "x", (1, 2): "y"},
        "nan": float("nan"),
        "array": np.arange(6, dtype=np.float32).reshape(2, 3),
    }
    text = mx.to_json(space)
    back = mx.from_json(text)
    assert math.isnan(back.pop("nan")) and math.isnan(space.pop("nan"))
    assert mx.eq(back, space) and not mx.eq(back, {**space, "tags": ("a",)})
    spec = mx.dna_spec(space)
    assert mx.dna_spec(back) == spec
    dna = spec.random_dna(1)
    child = mx.materialize(space, dna)
    assert mx.eq(mx.from_json(mx.to_json(child)), child)
    assert mx.encode(back, mx.from_json(mx.to_json(child))) == dna
    compiled = mx.space(space)
    again = mx.from_json(mx.to_json(compiled))
    assert isinstance(again, mx.Space) and again.spec == compiled.spec


def test_json_is_plain_and_readable() -> None:
    doc = json.loads(
        mx.to_json({"layer": mx.symbolic(nn.Dense)(features=mx.oneof([8, 16], name="w"))})
    )
    assert doc == {
        "layer": {
            "$type": "call",
            "fn": "flax.linen.Dense",
            "args": {"features": {"$type": "oneof", "candidates": [8, 16], "name": "w"}},
        }
    }
    assert json.loads(mx.to_json(mx.DNA([1, 0.5]))) == {"$type": "DNA", "values": [1, 0.5]}


def test_user_registration_call_and_decorator() -> None:
    def swish(x):
        return x

    class MyBlock(nn.Module):
        width: int = 4

        @nn.compact
        def __call__(self, x):
            return nn.Dense(self.width)(x)

    with pytest.raises(TypeError, match="it is not registered"):
        mx.to_json({"act": swish})
    mx.register(swish)
    mx.register(MyBlock, name="tests.MyBlock")
    program = {"act": swish, "block": MyBlock(width=mx.oneof([4, 8]))}
    text = mx.to_json(program)
    assert '"cls": "tests.MyBlock"' in text
    assert mx.from_json(text) == program


def test_from_json_runs_no_code_but_registered_constructors() -> None:
    # A name that would import a module if resolved by import is refused.
    for name in ("os.system", "subprocess.run", "builtins.eval"):
        with pytest.raises(ValueError, match="it is not registered"):
            mx.from_json(json.dumps({"$type": "ref", "name": name}))
    with pytest.raises(ValueError, match="ndarray dtype must be numeric"):
        mx.from_json('{"$type": "ndarray", "dtype": "|O", "shape": [1], "data": [1]}')
