"""Datasets: in-memory arrays, image folders and tarballs, CIFAR-10 pickles,
IDX files, and the embedded default (scikit-learn's 8x8 digits).

Every loader returns :class:`Dataset` objects: float32 inputs `[N, ...]` and
int32 labels `[N]`, checked for matching lengths and labels in range.
"""

from __future__ import annotations

import collections
import gzip
import io
import itertools
import os
import pickle
import struct
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
T = TypeVar("T")


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
    classes: tuple[str, ...] = ()  # class names by label id, when known

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
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int | np.integer):
            raise TypeError(
                f"{self.name}: num_classes must be an int, but got {self.num_classes!r}"
            )
        if self.num_classes < 1:
            raise ValueError(f"{self.name}: num_classes must be >= 1, but got {self.num_classes}")
        if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
            bad = int(y[(y < 0) | (y >= self.num_classes)][0])
            raise ValueError(
                f"{self.name}: labels must be in [0, {self.num_classes}) for "
                f"num_classes={self.num_classes}, but label {bad} is not (labels span "
                f"{int(y.min())}..{int(y.max())}); fix the labels or num_classes"
            )
        if self.classes and len(self.classes) != self.num_classes:
            raise ValueError(
                f"{self.name}: {len(self.classes)} class names for num_classes={self.num_classes}"
            )
        object.__setattr__(self, "x", x.astype(np.float32, copy=False))
        object.__setattr__(self, "y", y.astype(np.int32, copy=False))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def take(self, index: np.ndarray | slice) -> Dataset:
        return Dataset(self.x[index], self.y[index], self.num_classes, self.name, self.classes)

    def shuffle(self, seed: int) -> Dataset:
        return self.take(np.random.default_rng(seed).permutation(len(self)))

    def split(self, fraction: float, *, seed: int) -> tuple[Dataset, Dataset]:
        """A seeded, shuffled (train, held-out) split with `fraction` held out."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"split fraction must be in (0, 1), but got {fraction}")
        if len(self) < 2:
            raise ValueError(
                f"{self.name}: cannot split {len(self)} example(s); a split needs at least 2"
            )
        order = np.random.default_rng(seed).permutation(len(self))
        held = min(len(self) - 1, max(1, round(len(self) * fraction)))
        cut = len(self) - held
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


def prefetch_to_device(batches: Iterable[T], *, size: int = 2) -> Iterator[T]:
    """Keeps up to `size` batches on their way to the device ahead of use.

    Each batch (any pytree of arrays) is handed to `jax.device_put` (which
    returns at once and copies in the background) `size` batches before it is
    yielded, so the host gathers and the device copies the next batches while
    the current step runs.

    Examples:
        >>> import numpy as np
        >>> from morphax.train import Dataset, prefetch_to_device
        >>> data = Dataset(np.zeros((10, 4)), np.arange(10) % 2, num_classes=2)
        >>> [x.shape for x, y in prefetch_to_device(data.batches(4))]
        [(4, 4), (4, 4)]
    """
    import jax

    if size < 1:
        raise ValueError(f"prefetch size must be >= 1, but got {size}")
    queue: collections.deque[T] = collections.deque()
    it = iter(batches)
    for batch in itertools.islice(it, size):
        queue.append(jax.device_put(batch))
    while queue:
        current = queue.popleft()
        for batch in itertools.islice(it, 1):
            queue.append(jax.device_put(batch))
        yield current


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
    names = tuple(str(i) for i in range(10))
    data = Dataset(x, digits.target.astype(np.int32), 10, "digits", names)
    train, test = data.split(test_fraction, seed=seed)
    return (
        Dataset(train.x, train.y, 10, "digits/train", names),
        Dataset(test.x, test.y, 10, "digits/test", names),
    )


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
    `../shared/data/cifar10-jpeg/`): an image's class is the name of the
    folder holding it; class names sorted alphabetically give the label ids.
    Images are scaled to [0, 1], shaped `[N, H, W, 3]`, ordered by class and
    then by file name.

    Args:
        path: the folder or tarball.
        split: read only images under a folder of this name (for example
            "train"), or None for all images.
        limit_per_class: read at most this many images of each class (the
            first ones by file name).

    Raises:
        ValueError: if the path is missing or unreadable, holds no images, or
            the images differ in size.

    Examples:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> from morphax.train import load_image_folder
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for cls in ("cat", "dog"):
        ...     (root / "train" / cls).mkdir(parents=True)
        ...     Image.new("RGB", (4, 4)).save(root / "train" / cls / "0.png")
        >>> data = load_image_folder(root, split="train")
        >>> data.x.shape, data.y.tolist()
        ((2, 4, 4, 3), [0, 1])
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"no such data path: {os.fspath(path)!r}")
    if limit_per_class is not None and limit_per_class < 1:
        raise ValueError(f"limit_per_class must be >= 1 or None, but got {limit_per_class}")
    try:
        files = _tar_images(p, split) if p.is_file() else _folder_images(p, split)
    except OSError as e:
        raise ValueError(f"cannot read images from {os.fspath(path)!r}: {e}") from None
    if not files:
        raise ValueError(
            f"no images found in {os.fspath(path)!r} (split={split!r}); expected "
            f"[<split>/]<class>/<image> files ending in {IMAGE_SUFFIXES}"
        )
    classes = sorted({cls for cls, _ in files})
    label_of = {c: i for i, c in enumerate(classes)}
    names = sorted(files, key=lambda item: (label_of[item[0]], item[1]))
    if limit_per_class is not None:
        names = _first_per_class(names, limit_per_class)
    images = [_decode_image(files[item], item[1]) for item in names]
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"images in {os.fspath(path)!r} differ in size: {sorted(shapes)[:4]}")
    x = np.stack(images).astype(np.float32) / 255.0
    y = np.array([label_of[cls] for cls, _ in names], np.int32)
    name = f"{p.name}/{split}" if split else p.name
    return Dataset(x, y, len(classes), name, tuple(classes))


def _keep(parts: tuple[str, ...], split: str | None) -> bool:
    """Whether a relative path `parts` names an image of `split`."""
    if len(parts) < 2 or not parts[-1].lower().endswith(IMAGE_SUFFIXES):
        return False
    return split is None or split in parts[:-2]


def _tar_images(path: Path, split: str | None) -> dict[tuple[str, str], bytes]:
    """{(class, member name): bytes} of the images in a tarball."""
    files: dict[tuple[str, str], bytes] = {}
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                parts = Path(member.name).parts
                if not member.isfile() or not _keep(parts, split):
                    continue
                fobj = tar.extractfile(member)
                if fobj is not None:
                    files[(parts[-2], member.name)] = fobj.read()
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise ValueError(
            f"cannot read {os.fspath(path)!r} as a tarball of images ({e}); give a folder or "
            "a .tar/.tar.gz of [<split>/]<class>/<image> files"
        ) from None
    return files


def _folder_images(root: Path, split: str | None) -> dict[tuple[str, str], bytes]:
    """{(class, file path): bytes} of the images under a folder."""
    files: dict[tuple[str, str], bytes] = {}
    for f in sorted(root.rglob("*")):
        parts = f.relative_to(root).parts
        if f.is_file() and _keep(parts, split):
            files[(parts[-2], str(f))] = f.read_bytes()
    return files


def _first_per_class(names: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    counts: dict[str, int] = {}
    kept = []
    for cls, name in names:
        counts[cls] = counts.get(cls, 0) + 1
        if counts[cls] <= limit:
            kept.append((cls, name))
    return kept


# ---------------------------------------------------------------------------
# CIFAR-10 python pickles, read with an unpickler that builds only numpy data.


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Builds dicts, lists, bytes and numpy arrays; refuses any other global."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: a CIFAR-10 batch may only hold numpy arrays"
        )


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as e:
        raise ValueError(f"cannot read CIFAR-10 batch {os.fspath(path)!r}: {e}") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(
            f"{os.fspath(path)!r} is not a CIFAR-10 batch: it needs a dict with b'data' and b'labels'"
        )
    data = np.asarray(batch[b"data"], np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(
            f"{os.fspath(path)!r}: CIFAR-10 data must be uint8 of shape [N, 3072], "
            f"but got {data.shape}"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(batch[b"labels"], np.int64)


def load_cifar10(path: str | os.PathLike[str], *, split: str = "train") -> Dataset:
    """CIFAR-10 from its standard python pickles (`cifar-10-batches-py`):
    `data_batch_1` .. `data_batch_5` (train) and `test_batch` (test).

    Only numpy arrays are unpickled; anything else (a pickle calling
    `os.system`, say) is refused. Images are scaled to [0, 1], `[N, 32, 32, 3]`.

    Args:
        path: the folder holding the batch files.
        split: "train" or "test".

    Raises:
        ValueError: if a batch is missing, unreadable, refused or malformed.
    """
    root = Path(path)
    if split not in ("train", "test"):
        raise ValueError(f"CIFAR-10 split must be 'train' or 'test', but got {split!r}")
    if not root.is_dir():
        raise ValueError(f"no such CIFAR-10 folder: {os.fspath(path)!r}")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    missing = [n for n in names if not (root / n).exists()]
    if missing:
        raise ValueError(f"no CIFAR-10 batches {missing} in {os.fspath(path)!r}")
    parts = [_read_cifar_batch(root / n) for n in names]
    x = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    y = np.concatenate([p[1] for p in parts])
    return Dataset(x, y, 10, f"cifar10/{split}", CIFAR10_CLASSES)


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
    """One IDX array (the MNIST file format), from a raw or gzipped file.

    Raises:
        ValueError: if the file is missing, unreadable, not IDX, or truncated.
    """
    where = repr(os.fspath(path))
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise ValueError(f"no such IDX file: {where}") from None
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"cannot read IDX file {where}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(
            f"{where} is not an IDX file: it must start with 0, 0, a type code in "
            f"{sorted(_IDX_TYPES)} and the rank, but starts with {raw[:4]!r}"
        )
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{where} is truncated: its header lists {ndim} dimensions")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    body = raw[4 + 4 * ndim :]
    if len(body) != int(np.prod(dims)) * dtype.itemsize:
        raise ValueError(
            f"{where} has the wrong size: its header says shape {dims} of {dtype}, "
            f"but the body has {len(body)} bytes"
        )
    return np.frombuffer(body, dtype).reshape(dims).astype(dtype.newbyteorder("="))


def load_idx(
    images: str | os.PathLike[str], labels: str | os.PathLike[str], *, num_classes: int = 10
) -> Dataset:
    """Images and labels from a pair of IDX files (MNIST, Fashion-MNIST), raw
    or gzipped; uint8 images are scaled to [0, 1] and shaped `[N, H, W, 1]`.

    Raises:
        ValueError: if a file is bad, or the images and labels do not match.
    """
    x = read_idx(images)
    y = read_idx(labels)
    x = x.astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0)
    if x.ndim == 3:
        x = x[..., None]
    return Dataset(x, y.astype(np.int64), num_classes, Path(images).name)
