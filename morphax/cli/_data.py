"""The `--data` of `morphax search`: (train, valid, test) datasets."""

from __future__ import annotations

import os
from typing import Any

from ._choices import DATA_FORMS, CLIError


def _tarball(root: str, split: str) -> str | None:
    for ext in (".tar.gz", ".tgz", ".tar"):
        path = os.path.join(root, split + ext)
        if os.path.isfile(path):
            return path
    return None


def _image_splits(root: str, limit: int | None) -> tuple[Any, Any | None]:
    """(train, test or None) from a folder or tarball of images: a folder with
    train/test tarballs or sub-folders gives both splits."""
    from .. import train as mt

    train_tar, test_tar = _tarball(root, "train"), _tarball(root, "test")
    if train_tar and test_tar:
        return (
            mt.load_image_folder(train_tar, limit_per_class=limit),
            mt.load_image_folder(test_tar, limit_per_class=limit),
        )
    if all(os.path.isdir(os.path.join(root, s)) for s in ("train", "test")):
        return (
            mt.load_image_folder(root, split="train", limit_per_class=limit),
            mt.load_image_folder(root, split="test", limit_per_class=limit),
        )
    return mt.load_image_folder(root, limit_per_class=limit), None


def load_data(spec: str, *, seed: int, limit_per_class: int | None = None) -> tuple[Any, Any, Any]:
    """(train, valid, test) for a `--data` spec (see :data:`DATA_FORMS`).

    Raises:
        CLIError: if the data is missing or unreadable.
    """
    from .. import train as mt

    test = None
    try:
        if spec == "digits":
            train, test = mt.load_digits(seed=seed)
        elif spec.startswith("cifar10:"):
            path = spec.split(":", 1)[1]
            train, test = mt.load_cifar10(path, split="train"), mt.load_cifar10(path, split="test")
        elif spec.startswith("idx:"):
            parts = spec.split(":", 1)[1].split(",")
            if len(parts) != 2:
                raise CLIError(f"IDX data is idx:IMAGES,LABELS, but got {spec!r}")
            train = mt.load_idx(*parts)
        elif os.path.exists(spec):
            train, test = _image_splits(spec, limit_per_class)
        else:
            raise CLIError(f"no data at {spec!r}: --data takes {DATA_FORMS}")
    except ValueError as e:
        raise CLIError(f"cannot load --data {spec!r}: {e}") from None
    if test is None:
        train, test = train.split(0.2, seed=seed)
    train, valid = train.split(0.2, seed=seed + 1)
    return train, valid, test
