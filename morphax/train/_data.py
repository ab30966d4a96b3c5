"""Datasets: in-memory arrays, image folders and tarballs, CIFAR-10 pickles,
IDX files, and the embedded default (scikit-learn's 8x8 digits).

Every loader returns :class:`Dataset` objects: float32 inputs `[N, ...]` and
int32 labels `[N]`, checked for matching lengths and labels in range.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs `x` (float32, `[N, ...]`) and labels `y` (int32, `[N]`).

    Raises:
        ValueError: if lengths differ or a label is outside `[0, num_classes)`.

    Examples:
        >>> import numpy as np
        >>> from morphax.train import Dataset
        >>> data = Dataset(np.zeros((10, 4)), np.arange(10) % 2, num_classes=2)
        >>> train, valid = data.split(0.2, seed=0)
        >>> len(train), len(valid)
        (8, 2)
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    name: str = "arrays"

    def __post_init__(self) -> None:
        x = np.asarray(self.x)
        y = np.asarray(self.y)
        if x.ndim < 1 or y.ndim != 1:
            raise ValueError(
                f"{self.name}: need x of shape [N, ...] and y of shape [N], but got {x.shape} and {y.shape}"
            )
        if len(x) != len(y):
            raise ValueError(
                f"{self.name}: x has {len(x)} examples but y has {len(y)} labels; they must match"
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{self.name}: labels must be integers, but got dtype {y.dtype}")
        if self.num_classes < 1:
            raise ValueError(f"{self.name}: num_classes must be >= 1, but got {self.num_classes}")
        if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
            bad = int(y[(y < 0) | (y >= self.num_classes)][0])
            raise ValueError(
                f"{self.name}: label {bad} is out of range for num_classes={self.num_classes} "
                f"(labels span {int(y.min())}..{int(y.max())})"
            )
        object.__setattr__(self, "x", x.astype(np.float32, copy=False))
        object.__setattr__(self, "y", y.astype(np.int32, copy=False))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def take(self, index: np.ndarray | slice) -> Dataset:
        return Dataset(self.x[index], self.y[index], self.num_classes, self.name)

    def shuffle(self, seed: int) -> Dataset:
        return self.take(np.random.default_rng(seed).permutation(len(self)))

    def split(self, fraction: float, *, seed: int) -> tuple[Dataset, Dataset]:
        """A seeded, shuffled (train, held-out) split with `fraction` held out."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"split fraction must be in (0, 1), but got {fraction}")
        order = np.random.default_rng(seed).permutation(len(self))
        cut = len(self) - max(1, round(len(self) * fraction))
        return self.take(order[:cut]), self.take(order[cut:])

    def batches(
        self, batch_size: int, *, seed: int | None = None, drop_remainder: bool = True
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Batches of (x, y); shuffled when `seed` is given."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, but got {batch_size}")
        n = len(self)
        order = np.random.default_rng(seed).permutation(n) if seed is not None else np.arange(n)
        stop = n - n % batch_size if drop_remainder else n
        for i in range(0, stop, batch_size):
            idx = order[i : i + batch_size]
            yield self.x[idx], self.y[idx]


def from_arrays(x: Any, y: Any, *, num_classes: int | None = None, name: str = "arrays") -> Dataset:
    """A Dataset from numpy-like arrays; `num_classes` defaults to max label + 1."""
    y = np.asarray(y)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if len(y) else 1
    return Dataset(np.asarray(x), y, num_classes, name)


def load_digits(*, test_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """The embedded default: scikit-learn's 8x8 digits (1,797 images, 10
    classes), scaled to [0, 1], shaped `[N, 8, 8, 1]`, split (train, test).

    No download: the data ships inside scikit-learn.

    Examples:
        >>> from morphax.train import load_digits
        >>> train, test = load_digits()
        >>> train.input_shape, len(train) + len(test), train.num_classes
        ((8, 8, 1), 1797, 10)
    """
    from sklearn.datasets import load_digits as sk_digits

    digits = sk_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    data = Dataset(x, digits.target.astype(np.int32), 10, "digits")
    train, test = data.split(test_fraction, seed=seed)
    return Dataset(train.x, train.y, 10, "digits/train"), Dataset(test.x, test.y, 10, "digits/test")


# ---------------------------------------------------------------------------
# Image folders and tarballs: <root>/[<split>/]<class>/<image>.


def _decode_image(data: bytes, where: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as e:
        raise ValueError(f"cannot decode image {where}: {e}") from None


def load_image_folder(
    path: str | os.PathLike[str], *, split: str | None = None, limit_per_class: int | None = None
) -> Dataset:
    """Class-labelled images from a folder or a tarball (`.tar`, `.tar.gz`).

    The layout is `<root>/[<split>/]<class>/<image>` (the layout of
    `../shared/data/cifar10-jpeg/`); class names sorted alphabetically give
    the label ids. Images are scaled to [0, 1], shaped `[N, H, W, 3]`.

    Args:
        path: the folder or tarball.
        split: a sub-folder to read (for example "train"), or None.
        limit_per_class: read at most this many images of each class.

    Raises:
        ValueError: if the path is missing or unreadable, holds no images, or
            the images differ in size.
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"no such data path: {os.fspath(path)!r}")
    items: list[tuple[str, str, bytes]] = []  # (class, name, bytes)
    if p.is_file():
        try:
            with tarfile.open(p) as tar:
                for member in tar:
                    if not member.isfile() or not member.name.lower().endswith(IMAGE_SUFFIXES):
                        continue
                    parts = Path(member.name).parts
                    if split is not None and split not in parts[:-2]:
                        continue
                    fobj = tar.extractfile(member)
                    if fobj is not None and len(parts) >= 2:
                        items.append((parts[-2], member.name, fobj.read()))
        except tarfile.TarError as e:
            raise ValueError(
                f"cannot read {os.fspath(path)!r} as a tarball of images: {e}"
            ) from None
    else:
        root = p / split if split is not None else p
        if not root.is_dir():
            raise ValueError(f"no folder {os.fspath(root)!r} (split={split!r})")
        for class_dir in sorted(d for d in root.iterdir() if d.is_dir()):
            for f in sorted(class_dir.iterdir()):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    items.append((class_dir.name, str(f), f.read_bytes()))
    if not items:
        raise ValueError(
            f"no images found in {os.fspath(path)!r} (split={split!r}); expected <class>/<image> files"
        )
    classes = sorted({c for c, _, _ in items})
    label_of = {c: i for i, c in enumerate(classes)}
    items.sort(key=lambda t: (label_of[t[0]], t[1]))
    if limit_per_class is not None:
        counts: dict[str, int] = {}
        kept = []
        for item in items:
            counts[item[0]] = counts.get(item[0], 0) + 1
            if counts[item[0]] <= limit_per_class:
                kept.append(item)
        items = kept
    images = [_decode_image(data, name) for _, name, data in items]
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"images in {os.fspath(path)!r} differ in size: {sorted(shapes)[:4]}")
    x = np.stack(images).astype(np.float32) / 255.0
    y = np.array([label_of[c] for c, _, _ in items], np.int32)
    return Dataset(x, y, len(classes), f"{p.name}/{split}" if split else p.name)


# ---------------------------------------------------------------------------
# CIFAR-10 python pickles, read with an unpickler that builds only numpy data.


class _NumpyOnlyUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise ValueError(
            f"refusing to load {module}.{name} from a CIFAR-10 batch: only numpy arrays are allowed"
        )


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    except (OSError, pickle.UnpicklingError, EOFError) as e:
        raise ValueError(f"cannot read CIFAR-10 batch {os.fspath(path)!r}: {e}") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{os.fspath(path)!r} is not a CIFAR-10 batch (no data/labels)")
    data = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return data, np.asarray(batch[b"labels"], np.int32)


def load_cifar10(path: str | os.PathLike[str], *, split: str = "train") -> Dataset:
    """CIFAR-10 from its standard python pickles (`cifar-10-batches-py`).

    Only numpy arrays are unpickled; anything else is refused.
    """
    root = Path(path)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    if split not in ("train", "test"):
        raise ValueError(f"CIFAR-10 split must be 'train' or 'test', but got {split!r}")
    missing = [n for n in names if not (root / n).exists()]
    if missing:
        raise ValueError(f"no CIFAR-10 batches {missing} in {os.fspath(path)!r}")
    parts = [_read_cifar_batch(root / n) for n in names]
    x = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    y = np.concatenate([p[1] for p in parts])
    return Dataset(x, y, 10, f"cifar10/{split}")


# ---------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST), raw or gzipped.

_IDX_TYPES: dict[int, Any] = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """One IDX array (the MNIST file format), from a raw or `.gz` file."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"no such IDX file: {os.fspath(path)!r}")
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{os.fspath(path)!r} is not an IDX file (bad magic {raw[:4]!r})")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    count = int(np.prod(dims))
    body = raw[4 + 4 * ndim :]
    if len(body) != count * dtype.itemsize:
        raise ValueError(
            f"{os.fspath(path)!r} is truncated: header says {dims}, body has {len(body)} bytes"
        )
    return np.frombuffer(body, dtype).reshape(dims)


def load_idx(
    images: str | os.PathLike[str], labels: str | os.PathLike[str], *, num_classes: int = 10
) -> Dataset:
    """Images and labels from a pair of IDX files, scaled to [0, 1], `[N, H, W, 1]`."""
    x = read_idx(images)
    y = read_idx(labels)
    x = x.astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0)
    if x.ndim == 3:
        x = x[..., None]
    return Dataset(x, y.astype(np.int64), num_classes, Path(images).name)
