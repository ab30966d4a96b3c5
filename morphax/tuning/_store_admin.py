"""Housekeeping of a study file: listing and deleting its studies."""

from __future__ import annotations

import os
import shutil

from ._storage import StoreError
from ._store import Store
from ._trial import checkpoint_dir


def list_studies(path: str | os.PathLike[str]) -> list[str]:
    """The names of the studies in the study file `path`, oldest first (read-only).

    Raises:
        StoreError: if `path` is missing or not a study file.

    Examples:
        >>> import morphax as mx, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "study.db")
        >>> space = {"x": mx.oneof([1, 2])}
        >>> for name in ("a", "b"):
        ...     mx.search(space, mx.algorithms.Random(seed=0), num_trials=1, store=path,
        ...               name=name).run(lambda t: 1.0)
        >>> mx.list_studies(path)
        ['a', 'b']
        >>> mx.delete_study(path, "a"); mx.list_studies(path)
        ['b']
    """
    _exists(path)
    with Store(path, readonly=True) as store:
        return store.study_names()


def delete_study(path: str | os.PathLike[str], name: str) -> None:
    """Deletes study `name` from the study file `path`: its trials, step
    reports and trained weights (the study's folder beside the file).

    Raises:
        StoreError: if `path` is missing or not a study file, if it has no
            study `name` (its studies are named), or if a live search holds
            the study's lease (naming it): stop that search first.
    """
    _exists(path)
    with Store(path) as store:
        store.delete_study(name)
        others = store.study_names()
    folder = _weights_folder(path, name)
    shared = any(_weights_folder(path, other) == folder for other in others)
    if folder is not None and not shared and os.path.isdir(folder):
        shutil.rmtree(folder, ignore_errors=True)


def _weights_folder(path: str | os.PathLike[str], name: str) -> str | None:
    trial = checkpoint_dir(os.fspath(path), name, 0)
    return None if trial is None else os.path.dirname(trial)


def _exists(path: str | os.PathLike[str]) -> None:
    if not os.path.isfile(path):
        raise StoreError(f"no study file {os.fspath(path)!r}")
