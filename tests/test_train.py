"""morphax.train: datasets and loaders, jitted fit, compile caching, search-loop use."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

import morphax as mx
from morphax import train as mt
from morphax.spaces.cnn import MLP, Block, ConvNet, cnn_space
from morphax.testing import CompileLog, log_compilations

SHARED_CIFAR = Path(__file__).parents[1] / ".." / "shared" / "data" / "cifar10-jpeg"
#: One optimizer object for the tests, so equal children share compiled steps.
TX = optax.adam(1e-2)
METRICS = {
    "accuracy", "loss", "train_loss", "train_accuracy", "params", "flops_per_example",
    "step_time_ms", "compile_s", "steps", "epochs",
}  # fmt: skip


#: The jitted bodies of `fit` (compiled ahead of time: each trace is one compile).
STEP_FUNCTIONS = ("init_variables", "train_step", "eval_step")
NONE, ONCE = dict.fromkeys(STEP_FUNCTIONS, 0), dict.fromkeys(STEP_FUNCTIONS, 1)


def steps(log: CompileLog) -> dict[str, int]:
    """How often `fit` compiled each of its step functions in a logged block."""
    compiles = {name: log.compiles[name] for name in STEP_FUNCTIONS}
    assert compiles == {name: log.traces[name] for name in STEP_FUNCTIONS}, log
    return compiles


@pytest.fixture(scope="module")
def digits() -> tuple[mt.Dataset, mt.Dataset]:
    return mt.load_digits()


def test_public_names() -> None:
    names = [
        "Dataset", "from_arrays", "load_cifar10", "load_digits", "load_idx", "load_image_folder",
        "read_idx", "prefetch_to_device", "LOSSES", "FitResult",
        "TrainingDiverged", "TrainState", "clear_cache", "cross_entropy", "evaluate", "fit",
        "init", "make_eval_step", "make_train_step",
    ]  # fmt: skip
    for name in names:
        assert hasattr(mt, name), name
    assert not hasattr(mt, "TRACE_COUNTS")  # count compiles with morphax.testing.log_compilations


# ---------------------------------------------------------------------------
# Datasets.


def test_dataset_validation_errors() -> None:
    with pytest.raises(ValueError, match="x has 5 examples but y has 4 labels"):
        mt.Dataset(np.zeros((5, 2)), np.zeros(4, int), 2)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\).*label 3 is not"):
        mt.Dataset(np.zeros((4, 2)), np.array([0, 1, 2, 3]), 3)
    with pytest.raises(ValueError, match="label -1 is not"):
        mt.Dataset(np.zeros((2, 2)), np.array([0, -1]), 3)
    with pytest.raises(ValueError, match="labels must be integers, but got dtype float64"):
        mt.Dataset(np.zeros((2, 2)), np.array([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        mt.Dataset(np.zeros((0, 2)), np.zeros(0, int), 0)
    with pytest.raises(ValueError, match=r"need x of shape \[N, ...\] and y of shape \[N\]"):
        mt.Dataset(np.zeros((2, 2)), np.zeros((2, 1), int), 2)
    with pytest.raises(ValueError, match="3 class names for num_classes=2"):
        mt.Dataset(np.zeros((2, 2)), np.array([0, 1]), 2, classes=("a", "b", "c"))
    data = mt.from_arrays(np.ones((3, 2), np.uint8), [0, 2, 1])
    assert data.num_classes == 3 and data.x.dtype == np.float32 and data.y.dtype == np.int32


def test_split_shuffle_and_batches_are_seeded() -> None:
    data = mt.Dataset(np.arange(50, dtype=float)[:, None], np.arange(50) % 5, 5)
    a_train, a_valid = data.split(0.2, seed=3)
    b_train, b_valid = data.split(0.2, seed=3)
    c_train, _ = data.split(0.2, seed=4)
    assert len(a_train) == 40 and len(a_valid) == 10
    np.testing.assert_array_equal(a_train.x, b_train.x)
    np.testing.assert_array_equal(a_valid.y, b_valid.y)
    assert not np.array_equal(a_train.x, c_train.x)
    assert sorted(np.concatenate([a_train.x, a_valid.x])[:, 0]) == list(range(50))
    np.testing.assert_array_equal(data.shuffle(1).x, data.shuffle(1).x)
    assert sorted(data.shuffle(1).x[:, 0]) == list(range(50))

    epoch = [x[:, 0].tolist() for x, _ in data.batches(16, seed=7)]
    assert epoch == [x[:, 0].tolist() for x, _ in data.batches(16, seed=7)]
    assert epoch != [x[:, 0].tolist() for x, _ in data.batches(16, seed=8)]
    assert [len(b) for b in epoch] == [16, 16, 16]  # the partial batch is dropped
    assert len({v for b in epoch for v in b}) == 48
    assert [len(y) for _, y in data.batches(16, drop_remainder=False)] == [16, 16, 16, 2]

    with pytest.raises(ValueError, match=r"split fraction must be in \(0, 1\), but got 1.5"):
        data.split(1.5, seed=0)
    with pytest.raises(ValueError, match="cannot split 1 example"):
        data.take(slice(0, 1)).split(0.5, seed=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1, but got 0"):
        next(data.batches(0))


def test_prefetch_to_device_keeps_order() -> None:
    data = mt.Dataset(np.arange(10, dtype=float)[:, None], np.arange(10) % 2, 2)
    plain = list(data.batches(3, seed=0))
    fetched = list(mt.prefetch_to_device(data.batches(3, seed=0), size=2))
    assert len(fetched) == len(plain) == 3
    for (x, y), (fx, fy) in zip(plain, fetched, strict=True):
        assert isinstance(fx, jax.Array)
        np.testing.assert_array_equal(x, fx)
        np.testing.assert_array_equal(y, fy)
    with pytest.raises(ValueError, match="prefetch size must be >= 1"):
        next(mt.prefetch_to_device(iter(plain), size=0))


# ---------------------------------------------------------------------------
# Image folders and tarballs.


def _write_images(root: Path) -> dict[str, np.ndarray]:
    """<root>/<split>/<class>/<n>.png|jpg; returns the PNG pixels by relative path."""
    rng = np.random.default_rng(0)
    pixels = {}
    for split, n in (("train", 3), ("test", 1)):
        for cls in ("zebra", "cat", "dog"):  # not in label order: labels sort by name
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                image = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
                if i == 2:
                    Image.fromarray(image).save(folder / f"{i}.jpg", quality=95)
                else:
                    Image.fromarray(image).save(folder / f"{i}.png")
                    pixels[f"{split}/{cls}/{i}.png"] = image
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    return pixels


def test_image_folder_and_tarball(tmp_path: Path) -> None:
    root = tmp_path / "images"
    pixels = _write_images(root)
    train = mt.load_image_folder(root, split="train")
    assert train.x.shape == (9, 6, 5, 3) and train.num_classes == 3
    assert train.classes == ("cat", "dog", "zebra")
    assert train.y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    np.testing.assert_allclose(train.x[3], pixels["train/dog/0.png"] / 255.0, atol=1e-6)
    assert train.x.min() >= 0.0 and train.x.max() <= 1.0

    tarball = tmp_path / "images.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(root, arcname="images")
    from_tar = mt.load_image_folder(tarball, split="train")
    np.testing.assert_array_equal(from_tar.x, train.x)
    np.testing.assert_array_equal(from_tar.y, train.y)
    test = mt.load_image_folder(tarball, split="test")
    assert len(test) == 3 and test.classes == ("cat", "dog", "zebra")
    limited = mt.load_image_folder(root, split="train", limit_per_class=1)
    assert limited.y.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(limited.x[1], train.x[3])
    assert len(mt.load_image_folder(root)) == 12  # no split: every image


def test_image_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such data path: '.*missing'"):
        mt.load_image_folder(tmp_path / "missing")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images found in .*expected"):
        mt.load_image_folder(tmp_path / "empty")
    for i, size in enumerate([(4, 4), (5, 4)]):
        (tmp_path / "mixed" / f"c{i}").mkdir(parents=True)
        Image.new("RGB", size).save(tmp_path / "mixed" / f"c{i}" / "0.png")
    with pytest.raises(ValueError, match="differ in size"):
        mt.load_image_folder(tmp_path / "mixed")
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball at all")
    with pytest.raises(ValueError, match="cannot read .*junk.tar.gz.* as a tarball of images"):
        mt.load_image_folder(tmp_path / "junk.tar.gz")
    (tmp_path / "bad" / "cls").mkdir(parents=True)
    (tmp_path / "bad" / "cls" / "0.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot decode image .*0.png"):
        mt.load_image_folder(tmp_path / "bad")


@pytest.mark.skipif(
    not (SHARED_CIFAR / "test.tar.gz").exists(),
    reason=f"the shared CIFAR-10 JPEG tarballs are not at {SHARED_CIFAR}",
)
def test_real_cifar10_jpeg_tarball() -> None:
    data = mt.load_image_folder(SHARED_CIFAR / "test.tar.gz", split="test", limit_per_class=3)
    assert data.num_classes == 10 and data.x.shape == (30, 32, 32, 3)
    assert data.classes == tuple(sorted(data.classes)) == mt._files.CIFAR10_CLASSES
    assert data.y.tolist() == [c for c in range(10) for _ in range(3)]
    assert 0.0 <= data.x.min() < data.x.max() <= 1.0


# ---------------------------------------------------------------------------
# CIFAR-10 pickles.


def _cifar_batch(path: Path, labels: list[int], protocol: int) -> np.ndarray:
    n = len(labels)
    data = (np.arange(n * 3072) % 251).astype(np.uint8).reshape(n, 3072)
    batch = {b"batch_label": b"test", b"labels": labels, b"data": data}
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    return data


def test_cifar10_pickles(tmp_path: Path) -> None:
    for i in range(1, 6):
        _cifar_batch(tmp_path / f"data_batch_{i}", [i % 10, (i + 1) % 10], protocol=2)
    raw = _cifar_batch(tmp_path / "test_batch", [9, 0, 3], protocol=4)
    train = mt.load_cifar10(tmp_path, split="train")
    assert train.x.shape == (10, 32, 32, 3) and train.y.tolist() == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]
    test = mt.load_cifar10(tmp_path, split="test")
    assert test.y.tolist() == [9, 0, 3] and test.classes[9] == "truck"
    # rows hold the red plane, then green, then blue, each 32x32 row-major
    np.testing.assert_allclose(test.x[1, 2, 5, 1], raw[1, 1024 + 2 * 32 + 5] / 255.0)
    with pytest.raises(ValueError, match="split must be 'train' or 'test', but got 'valid'"):
        mt.load_cifar10(tmp_path, split="valid")
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(ValueError, match=r"no CIFAR-10 batches \['data_batch_3'\]"):
        mt.load_cifar10(tmp_path)
    with pytest.raises(ValueError, match="no such CIFAR-10 folder"):
        mt.load_cifar10(tmp_path / "nowhere")


class _Exploit:
    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return os.system, ("echo pwned > /dev/null",)


def test_cifar10_unpickler_refuses_code(tmp_path: Path) -> None:
    (tmp_path / "test_batch").write_bytes(
        pickle.dumps({b"data": _Exploit(), b"labels": [0]}, protocol=2)
    )
    with pytest.raises(ValueError, match=r"refusing to load (posix|os)\.system"):
        mt.load_cifar10(tmp_path, split="test")
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((1, 5), np.uint8)}))
    with pytest.raises(ValueError, match="is not a CIFAR-10 batch"):
        mt.load_cifar10(tmp_path, split="test")


# ---------------------------------------------------------------------------
# IDX files.


def _idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def test_idx_raw_and_gzipped(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (7, 4, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 5, 9], np.uint8)
    (tmp_path / "images.idx").write_bytes(_idx_bytes(images))
    (tmp_path / "labels.idx.gz").write_bytes(gzip.compress(_idx_bytes(labels)))
    data = mt.load_idx(tmp_path / "images.idx", tmp_path / "labels.idx.gz")
    assert data.x.shape == (7, 4, 3, 1) and data.y.tolist() == labels.tolist()
    np.testing.assert_allclose(data.x[..., 0], images / 255.0)
    ints = (np.arange(6).reshape(2, 3) - 3).astype(">i4")
    (tmp_path / "ints.idx").write_bytes(_idx_bytes(ints))
    np.testing.assert_array_equal(mt.read_idx(tmp_path / "ints.idx"), ints)
    floats = np.linspace(0, 1, 4).astype(">f4")
    (tmp_path / "floats.gz").write_bytes(gzip.compress(_idx_bytes(floats)))
    np.testing.assert_array_equal(mt.read_idx(tmp_path / "floats.gz"), floats)


def test_idx_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such IDX file"):
        mt.read_idx(tmp_path / "missing")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="is not an IDX file: it must start with 0, 0"):
        mt.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(_idx_bytes(np.zeros((3, 2), np.uint8))[:-1])
    with pytest.raises(ValueError, match=r"has the wrong size: its header says shape \(3, 2\)"):
        mt.read_idx(tmp_path / "short")
    (tmp_path / "header").write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match="is truncated: its header lists 3 dimensions"):
        mt.read_idx(tmp_path / "header")
    (tmp_path / "x.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(ValueError, match="cannot read IDX file"):
        mt.read_idx(tmp_path / "x.gz")
    (tmp_path / "img").write_bytes(_idx_bytes(np.zeros((3, 2, 2), np.uint8)))
    (tmp_path / "lab").write_bytes(_idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match="x has 3 examples but y has 4 labels"):
        mt.load_idx(tmp_path / "img", tmp_path / "lab")
    (tmp_path / "lab").write_bytes(_idx_bytes(np.array([0, 1, 12], np.uint8)))
    with pytest.raises(ValueError, match="label 12 is not"):
        mt.load_idx(tmp_path / "img", tmp_path / "lab")


# ---------------------------------------------------------------------------
# fit.


def test_fit_from_given_variables_keeps_the_callers_arrays(digits: Any) -> None:
    train, test = digits
    first = mt.fit(MLP(hidden=(16,)), TX, train, valid_data=test, epochs=2, key=0)
    given = {"params": first.state.params, **first.state.model_state}
    before = jax.tree.map(np.asarray, given)
    tuned = mt.fit(MLP(hidden=(16,)), TX, train, valid_data=test, epochs=1, key=5, variables=given)
    # The train step donates its state: the caller's arrays are copied, never deleted.
    assert all(not a.is_deleted() for a in jax.tree.leaves(given))
    assert jax.tree.all(jax.tree.map(np.array_equal, given, before))
    fresh = mt.fit(MLP(hidden=(16,)), TX, train, valid_data=test, epochs=1, key=5)
    assert tuned.history[0]["train_loss"] < fresh.history[0]["train_loss"]  # it started trained
    with pytest.raises(ValueError, match=r"does not fit the model at \['params'\]"):
        mt.fit(MLP(hidden=(8,)), TX, train, epochs=1, variables=given)


def test_fit_learns_digits_and_reports_metrics(digits: Any) -> None:
    train, test = digits
    result = mt.fit(MLP(hidden=(16,)), TX, train, valid_data=test, epochs=2, key=0)
    m = result.metrics
    assert set(m) == METRICS
    assert m["accuracy"] > 0.6, m  # chance is 0.1
    assert m["epochs"] == 2 and m["steps"] == 2 * (len(train) // 64)
    assert m["params"] == 64 * 16 + 16 + 16 * 10 + 10
    assert m["flops_per_example"] > 2 * 64 * 16 and m["step_time_ms"] > 0
    assert [h["train_loss"] for h in result.history][1] < result.history[0]["train_loss"]
    again = result.evaluate(test)
    assert again["accuracy"] == pytest.approx(m["accuracy"])
    assert again["loss"] == pytest.approx(m["loss"], rel=1e-5)
    with pytest.raises(ValueError, match=r"has inputs of shape \(3,\) and 10 classes"):
        result.evaluate(mt.Dataset(np.zeros((4, 3)), np.zeros(4, int), 10, "odd"))


def test_same_structure_reuses_and_new_structure_compiles_once(digits: Any) -> None:
    train, test = digits
    small = test.take(slice(0, 5))  # fewer than a batch: padded
    mt.fit(MLP(hidden=(16,)), TX, train, valid_data=small, epochs=1)
    with log_compilations() as log:
        again = mt.fit(MLP(hidden=(16,)), TX, train, valid_data=small, epochs=1, key=1)
    assert steps(log) == NONE  # an equal, distinct module: no trace, no compile
    assert again.metrics["compile_s"] == 0.0
    assert again.evaluate(small)["accuracy"] in {i / 5 for i in range(6)}

    with log_compilations() as log:
        new = mt.fit(MLP(hidden=(12,)), TX, train, valid_data=small, epochs=1)
    assert steps(log) == ONCE
    assert new.metrics["compile_s"] > 0 and new.metrics["params"] == 64 * 12 + 12 + 12 * 10 + 10
    with log_compilations() as log:
        mt.fit(MLP(hidden=(12,)), TX, train, valid_data=small, epochs=1)
    assert steps(log) == NONE


def test_symbolic_optimizer_is_keyed_by_value_and_divergence_is_named(digits: Any) -> None:
    train, test = digits
    adam = mx.symbolic(optax.adam)
    mt.fit(MLP(hidden=(16,)), adam(learning_rate=1e-2), train, valid_data=test, epochs=1)
    with log_compilations() as log:
        result = mt.fit(
            MLP(hidden=(16,)), adam(learning_rate=1e-2), train, valid_data=test, epochs=1
        )
    assert steps(log) == NONE and result.metrics["compile_s"] == 0.0
    assert result.metrics["accuracy"] > 0.4

    with (
        log_compilations() as log,
        pytest.raises(mt.TrainingDiverged, match=r"became (nan|inf) at step \d+ of epoch 1"),
    ):
        mt.fit(MLP(hidden=(16,)), adam(learning_rate=1e30), train, epochs=2)
    # a new learning rate is a value of the compiled step: nothing recompiles
    assert steps(log) == NONE
    with pytest.raises(TypeError, match="must be an optax GradientTransformation"):
        mt.fit(MLP(hidden=(16,)), "adam", train)


def test_fit_argument_errors(digits: Any) -> None:
    train, test = digits
    with pytest.raises(ValueError, match=r"output shape \(64, 3\) does not fit .* \(64, 10\)"):
        mt.fit(MLP(hidden=(16,), num_classes=3), TX, train)
    with pytest.raises(ValueError, match="batch_size=5000 exceeds the 1438 training examples"):
        mt.fit(MLP(hidden=(16,)), TX, train, batch_size=5000)
    with pytest.raises(ValueError, match="epochs must be an int >= 1, but got 0"):
        mt.fit(MLP(hidden=(16,)), TX, train, epochs=0)
    with pytest.raises(ValueError, match=r"unknown loss 'l1'; known losses: \['binary_cross"):
        mt.fit(MLP(hidden=(16,)), TX, train, loss="l1")
    flat = mt.Dataset(test.x.reshape(len(test), -1), test.y, 10, "flat")
    with pytest.raises(ValueError, match=r"flat has inputs of shape \(64,\) .* \(8, 8, 1\)"):
        mt.fit(MLP(hidden=(16,)), TX, train, valid_data=flat)
    with pytest.raises(ValueError, match="prefetch must be an int >= 0 or None"):
        mt.fit(MLP(hidden=(16,)), TX, train, prefetch=-1)


def test_on_epoch_stops_early(digits: Any) -> None:
    train, test = digits
    seen: list[tuple[int, float]] = []

    def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
        seen.append((epoch, metrics["accuracy"]))
        return epoch == 2

    result = mt.fit(MLP(hidden=(16,)), TX, train, valid_data=test, epochs=5, on_epoch=on_epoch)
    assert [e for e, _ in seen] == [1, 2] and result.metrics["epochs"] == 2
    assert result.metrics["accuracy"] == seen[-1][1] and len(result.history) == 2


def test_batchnorm_model_trains(digits: Any) -> None:
    train, test = digits
    model = ConvNet(blocks=(Block(4),), norm="batch")
    result = mt.fit(model, TX, train, valid_data=test, epochs=1, key=0)
    stats = result.state.model_state["batch_stats"]["BatchNorm_0"]
    assert float(jnp.abs(stats["mean"]).max()) > 0.0  # initialized at 0: updated
    assert float(jnp.abs(stats["var"] - 1.0).max()) > 0.0
    assert result.metrics["steps"] == len(train) // 64 and np.isfinite(result.metrics["loss"])


class DropoutMLP(nn.Module):
    """A model whose training is random (dropout): needs the train step's PRNG key."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = nn.relu(nn.Dense(16)(x.reshape((x.shape[0], -1))))
        x = nn.Dropout(0.5, deterministic=not train)(x)
        return nn.Dense(10)(x)


def test_prng_keys_are_explicit(digits: Any) -> None:
    train, test = digits
    a = mt.fit(DropoutMLP(), TX, train, valid_data=test, epochs=1, key=0)
    b = mt.fit(DropoutMLP(), TX, train, valid_data=test, epochs=1, key=jax.random.key(0))
    c = mt.fit(DropoutMLP(), TX, train, valid_data=test, epochs=1, key=1)
    assert a.metrics["accuracy"] > 0.3
    assert (
        a.metrics["loss"] == b.metrics["loss"]
        and a.metrics["train_loss"] == b.metrics["train_loss"]
    )
    assert a.metrics["train_loss"] != c.metrics["train_loss"]
    # dropout draws new masks each step: the training loss is not the clean loss
    assert a.metrics["train_loss"] != pytest.approx(a.evaluate(train)["loss"], rel=1e-3)


# ---------------------------------------------------------------------------
# The search loop: step-wise reports, early stopping, failed children.


def nan_activation(x: jax.Array) -> jax.Array:
    """An activation that breaks training (for a child that must fail)."""
    return x * jnp.nan


def _reporter(trial: mx.Trial) -> Callable[[int, dict[str, float]], bool]:
    def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
        trial.report({"valid_accuracy": metrics["accuracy"]}, step=epoch)
        return trial.should_stop()

    return on_epoch


def test_search_with_fit_early_stopping_and_a_diverging_child(digits: Any) -> None:
    train, test = digits
    space = cnn_space(
        max_depth=1,
        widths=(4,),
        kernel_sizes=(3,),
        activations=(nn.relu, nan_activation),
        norms=("batch",),
        residual=False,
    )
    policy = mx.algorithms.MedianStopping(min_steps=1, min_trials=1)
    search = mx.search(
        space,
        mx.algorithms.Random(seed=0),
        num_trials=6,
        early_stopping=policy,
        objective="valid_accuracy",
        duplicates="rerun",  # the scenario of this test: six trials as proposed
    )
    for trial in search:
        try:
            result = mt.fit(
                trial.program, TX, train, valid_data=test, epochs=2, key=trial.id,
                on_epoch=_reporter(trial),
            )  # fmt: skip
        except mt.TrainingDiverged as e:
            trial.fail(str(e))
            continue
        trial.report({"valid_accuracy": result.metrics["accuracy"], **result.metrics})

    trials = search.trials
    assert len(trials) == 6
    failed = [t for t in trials if t.status == "failed"]
    done = [t for t in trials if t.status == "completed"]
    assert failed and done, [t.status for t in trials]
    for t in failed:
        assert t.program.activation is nan_activation and not t.steps
        assert "epoch 1" in (t.reason or "")
    for i, t in enumerate(trials):
        if t.status != "completed":
            continue
        assert t.steps[0][0] == 1 and t.metrics is not None
        # stopped after epoch 1 exactly when the median rule said so, given the earlier trials
        first = [(s, m["valid_accuracy"]) for s, m in t.steps[:1]]
        others = [[(s, m["valid_accuracy"]) for s, m in o.steps] for o in trials[:i] if o.steps]
        assert (t.metrics["epochs"] == 1) == policy.should_stop(first, others)
    assert any(t.metrics["epochs"] == 1 for t in done if t.metrics)  # someone was stopped
    assert search.best() in done
