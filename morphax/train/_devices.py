"""Data parallelism: each batch sharded over devices, the state replicated.

`fit(..., devices=jax.devices())` trains on a one-axis mesh named
``"batch"``: batches are placed with ``NamedSharding(mesh, P("batch"))``,
parameters, optimizer and model state with ``NamedSharding(mesh, P())``,
and the steps run under :func:`jax.shard_map` over the mesh, so a model
that names the batch axis (``nn.BatchNorm(axis_name="batch")``, as Flax's
ResNet example does) finds it bound. Each device computes the loss and the
gradients of its shard; the train step averages them (and the metrics, and
floating model state such as batch statistics) over the axis, so every
device applies the same update and the run follows the one-device run up to
float rounding. A model that needs the axis on one device gets a mesh of one.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

#: The name of the mesh axis that batches are sharded over.
AXIS = "batch"


@dataclass(frozen=True, eq=False)
class Placement:
    """A one-axis mesh of devices, and how a step's arguments lie on it."""

    mesh: Mesh

    @property
    def size(self) -> int:
        return int(self.mesh.devices.size)

    @property
    def key(self) -> Hashable:
        """What compiled steps depend on: the devices, in order."""
        return tuple((d.platform, d.id) for d in self.mesh.devices.flat)

    @property
    def data(self) -> NamedSharding:
        return NamedSharding(self.mesh, P(AXIS))

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    def shard(self, fn: Callable[..., Any], in_specs: Any, out_specs: Any) -> Callable[..., Any]:
        """`fn` run per device on its shard, with the axis ``"batch"`` bound."""
        return jax.shard_map(
            fn, mesh=self.mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False
        )


def placement(devices: Sequence[Any] | None, batch_size: int) -> Placement | None:
    """The placement of `fit(..., devices=...)`, checked against the batch size.

    Raises:
        TypeError: if `devices` is not a sequence of JAX devices.
        ValueError: if it is empty, repeats a device, or the batch size is not
            a multiple of the number of devices.
    """
    if devices is None:
        return None
    if isinstance(devices, jax.Device):
        devices = [devices]
    devices = list(devices)
    bad = next((d for d in devices if not isinstance(d, jax.Device)), None)
    if bad is not None:
        raise TypeError(
            f"devices must be a sequence of JAX devices (e.g. jax.devices()), but got {bad!r}"
        )
    if not devices:
        raise ValueError("devices is empty; pass e.g. devices=jax.devices(), or None for one")
    if len(set(devices)) != len(devices):
        raise ValueError(f"devices must be distinct, but got {devices}")
    n = len(devices)
    if batch_size % n:
        lower, upper = max(n, batch_size - batch_size % n), batch_size + n - batch_size % n
        raise ValueError(
            f"batch_size={batch_size} must be a multiple of the {n} devices (each device "
            f"trains on batch_size / {n} examples); use batch_size={lower} or {upper}"
        )
    return Placement(Mesh(np.array(devices), (AXIS,)))


def one_device() -> Placement:
    """A mesh of the default device: binds the axis for a model that names it."""
    return Placement(Mesh(np.array(jax.devices()[:1]), (AXIS,)))


#: Models (by cache key) found to need the batch axis bound on one device.
NEEDS_AXIS: collections.OrderedDict[Hashable, None] = collections.OrderedDict()


def remember_needs_axis(key: Hashable) -> None:
    NEEDS_AXIS[key] = None
    while len(NEEDS_AXIS) > 256:
        NEEDS_AXIS.popitem(last=False)


def unbound_axis(error: BaseException) -> bool:
    """Whether `error` is JAX's for the batch axis used without being bound."""
    text = str(error)
    return isinstance(error, NameError) and "axis name" in text and AXIS in text


def bind(
    where: Placement | None, fn: Callable[..., Any], in_specs: Any, out_specs: Any
) -> Callable[..., Any]:
    """`fn` as it is, or run per device under `where`'s mesh."""
    return fn if where is None else where.shard(fn, in_specs, out_specs)


def jit(
    where: Placement | None,
    fn: Callable[..., Any],
    in_specs: tuple[Any, ...],
    out_specs: Any,
    **kwargs: Any,
) -> Any:
    """`jax.jit` of `fn`; under a placement, of its per-device form, with its
    arguments and results placed as the specs say (``P()`` replicated,
    ``P("batch")`` sharded)."""
    if where is None:
        return jax.jit(fn, **kwargs)

    def sharding(spec: Any) -> Any:
        return jax.tree.map(
            lambda s: NamedSharding(where.mesh, s), spec, is_leaf=lambda s: isinstance(s, P)
        )

    return jax.jit(
        where.shard(fn, in_specs, out_specs),
        in_shardings=sharding(in_specs),
        out_shardings=sharding(out_specs),
        **kwargs,
    )


BATCH = P(AXIS)
REPLICATED = P()
