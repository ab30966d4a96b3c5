"""Datasets: in-memory arrays, image folders and tarballs, CIFAR-10 pickles,
IDX files, and the embedded default (scikit-learn's 8x8 digits).

Every loader returns :class:`Dataset` objects: float32 inputs `[N, ...]` and
int32 labels `[N]`, checked for matching lengths and labels in range. A
Dataset may also hold a dict of inputs and regression targets.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def _as_inputs(x: Any) -> Any:
    """Inputs as numpy: floating arrays in float32, integer ones in int32."""
    if isinstance(x, dict):
        return {str(k): _as_inputs(v) for k, v in x.items()}
    a = np.asarray(x)
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32, copy=False)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int32, copy=False)
    return a


def _leaves(x: Any) -> list[np.ndarray]:
    return list(x.values()) if isinstance(x, dict) else [x]


def _take(x: Any, index: Any) -> Any:
    if isinstance(x, dict):
        return {k: v[index] for k, v in x.items()}
    return x[index]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs `x` and targets `y`, `N` examples each.

    `x` is one array `[N, ...]` (stored as float32) or a dict of them (passed
    to the model by name: `model(**x)`, e.g. inputs and a mask; floating
    arrays are stored as float32, integer ones as int32). With `num_classes`, `y` holds int32
    class labels `[N]` in `[0, num_classes)`; with `num_classes=None` it holds
    any targets `[N, ...]` (regression: float32).

    Raises:
        ValueError: if lengths differ or a label is outside `[0, num_classes)`.

    Examples:
        >>> import numpy as np
        >>> from morphax.train import Dataset
        >>> data = Dataset(np.zeros((10, 4)), np.arange(10) % 2, num_classes=2)
        >>> train, valid = data.split(0.2, seed=0)
        >>> len(train), len(valid)
        (8, 2)
        >>> reg = Dataset({"x": np.zeros((10, 4)), "mask": np.ones((10, 4), bool)},
        ...               np.zeros((10, 1)), num_classes=None)
        >>> reg.input_shape, reg.target_shape
        ({'x': (4,), 'mask': (4,)}, (1,))
    """

    x: Any
    y: np.ndarray
    num_classes: int | None
    name: str = "arrays"
    classes: tuple[str, ...] = ()  # class names by label id, when known

    def __post_init__(self) -> None:
        x = _as_inputs(self.x) if isinstance(self.x, dict) else np.asarray(self.x, np.float32)
        y = np.asarray(self.y)
        if isinstance(x, dict) and not x:
            raise ValueError(f"{self.name}: x is an empty dict; give at least one input array")
        for a in _leaves(x):
            if a.ndim < 1 or len(a) != len(y):
                raise ValueError(
                    f"{self.name}: x has {len(a) if a.ndim else 0} examples but y has "
                    f"{len(y)} labels; they must match (inputs of shape {a.shape})"
                )
        if self.num_classes is None:
            if y.ndim < 1:
                raise ValueError(f"{self.name}: need targets of shape [N, ...], but got {y.shape}")
            if np.issubdtype(y.dtype, np.floating):
                y = y.astype(np.float32, copy=False)
            object.__setattr__(self, "x", x)
            object.__setattr__(self, "y", y)
            return
        if y.ndim != 1:
            raise ValueError(
                f"{self.name}: need x of shape [N, ...] and y of shape [N], but got "
                f"{_leaves(x)[0].shape} and {y.shape}"
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"{self.name}: labels must be integers, but got dtype {y.dtype}; for "
                "regression targets pass num_classes=None"
            )
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
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y.astype(np.int32, copy=False))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> Any:
        """The shape of one input (a dict of shapes for dict inputs)."""
        if isinstance(self.x, dict):
            return {k: tuple(v.shape[1:]) for k, v in self.x.items()}
        return tuple(self.x.shape[1:])

    @property
    def target_shape(self) -> tuple[int, ...]:
        return tuple(self.y.shape[1:])

    def signature(self) -> Any:
        """What a compiled step depends on: input and target shapes and dtypes."""
        leaves = {k: (v.shape[1:], str(v.dtype)) for k, v in _items(self.x)}
        return (tuple(sorted(leaves.items())), self.y.shape[1:], str(self.y.dtype))

    def take(self, index: np.ndarray | slice) -> Dataset:
        """The examples at `index` (a slice, integer or boolean array) as a Dataset."""
        return Dataset(
            _take(self.x, index), self.y[index], self.num_classes, self.name, self.classes
        )

    def __getitem__(self, index: np.ndarray | slice) -> Dataset:
        """`ds[:128]`, `ds[idx]`: :meth:`take` (a single example is not a Dataset)."""
        if isinstance(index, int | np.integer):
            raise TypeError(
                f"{self.name}: index a Dataset with a slice or an index array, e.g. "
                f"ds[{index}:{index + 1}], not the int {index}"
            )
        return self.take(index)

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
    ) -> Iterator[tuple[Any, np.ndarray]]:
        """Batches of (x, y); shuffled when `seed` is given."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, but got {batch_size}")
        n = len(self)
        order = np.random.default_rng(seed).permutation(n) if seed is not None else np.arange(n)
        stop = n - n % batch_size if drop_remainder else n
        for i in range(0, stop, batch_size):
            idx = order[i : i + batch_size]
            yield _take(self.x, idx), self.y[idx]


def _items(x: Any) -> list[tuple[str, np.ndarray]]:
    return list(x.items()) if isinstance(x, dict) else [("", x)]


def prefetch_to_device(batches: Iterable[T], *, size: int = 2, sharding: Any = None) -> Iterator[T]:
    """Keeps up to `size` batches on their way to the device ahead of use.

    Each batch (any pytree of arrays) is handed to `jax.device_put` (which
    returns at once and copies in the background) `size` batches before it is
    yielded, so the host gathers and the device copies the next batches while
    the current step runs. With `sharding` (e.g. a `NamedSharding` over a
    batch axis) each batch is placed that way instead of on the default device.

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
        queue.append(jax.device_put(batch, sharding))
    while queue:
        current = queue.popleft()
        for batch in itertools.islice(it, 1):
            queue.append(jax.device_put(batch, sharding))
        yield current


def from_arrays(x: Any, y: Any, *, num_classes: int | None = None, name: str = "arrays") -> Dataset:
    """A Dataset from numpy-like arrays (`x` may be a dict of them).

    Integer labels are classes (`num_classes` defaults to max label + 1);
    floating targets are regression targets (no classes).

    Examples:
        >>> import numpy as np
        >>> from morphax.train import from_arrays
        >>> from_arrays(np.zeros((4, 2)), [0, 2, 1, 0]).num_classes
        3
        >>> from_arrays({"a": np.zeros((4, 2))}, np.zeros((4, 1))).num_classes is None
        True
    """
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.floating):
        return Dataset(x, y, None, name)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if len(y) else 1
    return Dataset(x, y, num_classes, name)


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
