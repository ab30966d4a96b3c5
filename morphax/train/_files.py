"""File loaders: image folders and tarballs, CIFAR-10 pickles and IDX files.

Each returns a :class:`~morphax.train.Dataset` of float32 inputs and int32
labels.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ._data import Dataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


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
