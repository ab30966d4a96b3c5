"""`supernet(model, x)`: one model code run as a weight-sharing supernet.

The supernet is the third decider over the same walk as tracing and
children (`mx.resolving`): in its runs a `oneof` gives a
:class:`~morphax.oneshot._mixed.MixedChoice` (or a width, see `_width`), and
the architecture arrays (:class:`Arch`) decide how the candidates mix.
"""

from __future__ import annotations

import functools
import inspect
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ..symbolic import (
    DNA,
    Choice,
    DNASpec,
    DynamicChild,
    DynamicSpace,
    HyperValue,
    ManyOf,
    OneOf,
    resolve_fields,
    resolving,
    space,
    trace,
)
from ._arch import Arch, check_arch
from ._export import export_dna, one_hot, path_of, row_values
from ._mixed import MixedChoice, strip_scopes
from ._slice import child_variables
from ._width import Width, interceptor, is_width

PATH_IMPLS = ("onehot", "switch")


def default_path_impl() -> str:
    """The single-path implementation measured fastest on the default backend.

    On CPU XLA runs a convolution with batch norm inside a `lax.switch` branch
    far slower than at top level, so single paths run as one-hot weighted
    sums there ("onehot"): on the NAS-Bench-201 supernet (C=8, N=1, batch 64)
    a SPOS step took 2.6x and a GDAS step 1.7x as long under "switch"
    (`benchmarks/oneshot_nb201.py --quick --path-impl switch`). No
    accelerator has been measured yet, so "onehot" is the default everywhere.
    """
    return "onehot"


class _Decider:
    """Decides each hyper-value of one supernet run (init or apply)."""

    def __init__(
        self, net: Supernet, arch: Arch | None, path_impl: str, partial: int | None
    ) -> None:
        self.net = net
        self.arch = arch
        self.path_impl = path_impl
        self.partial = partial
        self.done = False
        self.met: dict[str, HyperValue] = {}
        self.masked: dict[int, tuple[Any, Width]] = {}  # id -> (a width-masked output, its width)

    def decide(self, hyper: HyperValue, pid: str) -> Any:
        if hyper.name is None:
            pid = strip_scopes(pid)
        self.met.setdefault(pid, hyper)
        if isinstance(hyper, OneOf):
            row = self.net._row_of.get(pid)
            if row is None:
                raise ValueError(
                    f"decision {pid!r} ({hyper!r}, at {hyper.site}) was met by the supernet but "
                    f"is not a decision of the model's DNASpec (rows {list(self.net.row_ids)}); "
                    "it depends on something tracing did not see: give it a `name`"
                )
            if is_width(hyper.candidates):
                if self.partial:
                    raise ValueError(
                        f"partial_channels={self.partial} mixes 1/{self.partial} of the "
                        f"channels of candidates that keep the width, but decision {pid!r} "
                        f"({hyper!r}, at {hyper.site}) chooses a width "
                        f"{list(hyper.candidates)}; run it without partial_channels, or pin it"
                    )
                return Width(self, row, pid, tuple(hyper.candidates))
            return MixedChoice(self, row, pid, hyper)
        fixed = getattr(hyper, "fixed", None)
        if fixed is None:
            raise ValueError(
                f"decision {pid!r} ({hyper!r}, at {hyper.site}) is a {hyper.kind}, which a "
                f"supernet cannot mix (only oneof decisions are mixed); pin the value the "
                f"supernet uses with fixed=, e.g. mx.{hyper.kind}(..., fixed=...), and search "
                "it apart"
            )
        return list(fixed) if isinstance(hyper, ManyOf) else fixed

    # -- the mixing coefficients of one row ------------------------------------

    def coefs(self, row: int, size: int) -> jax.Array:
        """The weight of each of the `size` candidates of `row`."""
        a = self.arch
        if a is None:  # init: every candidate runs (weights do not matter)
            return jnp.full((size,), 1.0 / size, jnp.float32)
        if a.index is None:
            return a.weights[row, :size]
        hot = jax.nn.one_hot(a.index[row], size, dtype=jnp.float32)
        if a.weights is None:
            return hot
        # GDAS's straight-through hard sample: the value is the one-hot and the
        # gradient reaches only the chosen candidate's weight (Dong & Yang 2019,
        # Sec. 3.2), exactly as `straight_through` gives it under "switch".
        w = a.weights[row, :size]
        return hot * (1.0 - jax.lax.stop_gradient(w) + w)

    def switch_index(self, row: int) -> jax.Array | None:
        a = self.arch
        if self.path_impl == "switch" and a is not None and a.index is not None:
            return a.index[row]
        return None

    def straight_through(self, row: int, out: Any) -> Any:
        a = self.arch
        if a is None or a.weights is None:
            return out
        w = a.weights[row][a.index[row]]
        scale = 1.0 - jax.lax.stop_gradient(w) + w
        return jax.tree.map(lambda y: scale.astype(y.dtype) * y, out)

    # -- partial channels (PC-DARTS) --------------------------------------------

    def partial_in(self, mixed: MixedChoice, args: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any]:
        k = self.partial
        if k is None:
            return args, None
        if not args or not hasattr(args[0], "shape") or not jnp.ndim(args[0]):
            raise ValueError(
                f"partial_channels={k} mixes 1/{k} of each decision's input channels, but "
                f"decision {mixed.pid!r} was mixed without an array input; call it as "
                "choice(x) or write mx.dispatch(choice, fn, x) with fn(value, x)"
            )
        x = args[0]
        c = x.shape[-1]
        if c % k:
            raise ValueError(
                f"partial_channels={k} needs the channels of decision {mixed.pid!r}'s input "
                f"divisible by {k}, but the input has {c} channels (shape {tuple(x.shape)})"
            )
        return (x[..., : c // k], *args[1:]), x[..., c // k :]

    def partial_out(self, mixed: MixedChoice, out: Any, rest: Any) -> Any:
        if rest is None:
            return out
        k = self.partial
        assert k is not None
        part = rest.shape[-1] // (k - 1) if k > 1 else 0
        if (
            not hasattr(out, "shape")
            or out.shape[:-1] != rest.shape[:-1]
            or (k > 1 and out.shape[-1] != part)
        ):
            raise ValueError(
                f"partial_channels={k} needs candidates that keep the shape of their input, "
                f"but decision {mixed.pid!r} maps {part} channels to "
                f"{getattr(out, 'shape', out)}; it changes the width, so run it without "
                "partial_channels"
            )
        y = jnp.concatenate([out, rest], axis=-1)
        shape = y.shape
        return y.reshape(*shape[:-1], k, shape[-1] // k).swapaxes(-1, -2).reshape(shape)


class Supernet:
    """A model run as a supernet. Made by :func:`supernet`; see there."""

    def __init__(
        self,
        model: nn.Module,
        x_example: Any,
        path_impl: str | None,
        partial_channels: int | None,
        call_kwargs: dict[str, Any],
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"mx.oneshot.supernet needs a Flax linen module whose fields or @nn.compact "
                f"code hold mx.oneof decisions, but got {model!r} ({type(model).__name__})"
            )
        impl = default_path_impl() if path_impl is None else path_impl
        if impl not in PATH_IMPLS:
            raise ValueError(
                f"`path_impl` must be one of {PATH_IMPLS} or None, but got {path_impl!r}"
            )
        if partial_channels is not None and (
            isinstance(partial_channels, bool)
            or not isinstance(partial_channels, int)
            or partial_channels < 1
        ):
            raise ValueError(
                f"`partial_channels` must be an int K >= 1 (1/K of the channels are mixed) or "
                f"None, but got partial_channels={partial_channels!r}"
            )
        self.model = model
        self.path_impl = impl
        self.partial_channels = partial_channels
        self._x = x_example
        self._kw = dict(call_kwargs)
        hook = getattr(model, "__mx_dna_spec__", None)
        self._space: DynamicSpace | None = None
        if hook is not None:
            self.spec: DNASpec = hook()
        else:
            try:
                self._space = trace(model, x_example, **call_kwargs)
            except TypeError as err:  # a value candidate called, say: name the decision
                _explain(self, err)
                raise
            self.spec = self._space.spec
        self._static = _static_space(model, self.spec)
        rows = [p for p in self.spec.columns if isinstance(p, Choice) and not p.is_manyof]
        ids: list[str] = []
        for p in rows:
            if p.id not in ids:
                ids.append(p.id)
        self.row_ids: tuple[str, ...] = tuple(ids)
        self._row_of = {pid: r for r, pid in enumerate(ids)}
        self.sizes: tuple[int, ...] = tuple(
            next(p for p in rows if p.id == pid).num_candidates for pid in ids
        )
        self.rows = len(ids)
        self.num_candidates = max(self.sizes, default=1)
        self.mask = np.arange(self.num_candidates)[None, :] < np.asarray(self.sizes)[:, None]
        self._met: dict[str, HyperValue] = {}
        self._width_sites: dict[str, int] = {}  # module path -> the width row masking it
        self._child_shapes: OrderedDict[DNA, Any] = OrderedDict()
        self._takes_train = "train" in inspect.signature(type(model).__call__).parameters
        # One run now: mixing errors (a refused hyper-value, ...) surface here.
        self._shapes = jax.eval_shape(
            lambda: self.init(jax.random.key(0), x_example, **call_kwargs)
        )

    # -- runs ----------------------------------------------------------------------

    def _run(self, arch: Arch | None, method: str, *args: Any, **kwargs: Any) -> Any:
        decider = _Decider(self, arch, self.path_impl, self.partial_channels)
        try:
            with resolving(decider), nn.intercept_methods(functools.partial(interceptor, decider)):
                module = resolve_fields(self.model)
                out = getattr(module, method)(*args, **kwargs)
        finally:
            decider.done = True
        for pid, hyper in decider.met.items():
            self._met.setdefault(pid, hyper)
        return out

    def init(self, key: jax.Array | dict[str, jax.Array], x: Any, **kwargs: Any) -> Any:
        """The supernet's variables: every candidate's weights (widths at their largest)."""
        return self._run(None, "init", key, x, **{**self._kw, **kwargs})

    def apply(
        self,
        variables: Any,
        x: Any,
        *,
        arch: Arch,
        train: bool | None = None,
        mutable: Any = False,
        rngs: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Runs the supernet with architecture `arch`; returns what `module.apply` returns.

        `train` is passed to the model when given (or fixed when the supernet
        was made); `mutable` and `rngs` are Flax's.

        Raises:
            TypeError, ValueError: if `arch` does not fit (naming the decision).
        """
        check_arch(arch, self.row_ids, self.sizes, self.num_candidates)
        kw = {**self._kw, **kwargs}
        if train is not None:
            if not self._takes_train:
                raise TypeError(
                    f"train={train!r} was given, but {type(self.model).__name__}.__call__ "
                    "takes no `train` argument"
                )
            kw["train"] = train
        return self._run(arch, "apply", variables, x, mutable=mutable, rngs=rngs, **kw)

    # -- DNA and children ------------------------------------------------------------

    def export(self, logits_or_weights: Any) -> DNA:
        """The DNA of the best candidate per decision: argmax over the valid candidates.

        Conditional decisions are set only where active; pinned hyper-values
        (`fixed=`) take their pinned value.

        Raises:
            ValueError: if the array is not `[n, K]`.
        """
        return export_dna(self, np.asarray(logits_or_weights))

    def one_hot(self, dna: DNA | Sequence[Any]) -> np.ndarray:
        """`[n, K]` float32 weights with a 1 at each decision's candidate (0 for inactive rows)."""
        return one_hot(self, self.spec.validate(dna))

    def path(self, dna: DNA | Sequence[Any]) -> np.ndarray:
        """`[n]` int32 candidate indices of `dna` (0 for inactive rows)."""
        return path_of(self, self.spec.validate(dna))

    def row_values(self, dna: DNA | Sequence[Any]) -> dict[int, int]:
        """`{row: candidate}` for the rows `dna` makes active."""
        return row_values(self, self.spec.validate(dna))

    def space(self) -> Any:
        """The model as a search space (for `mx.search` over the trained supernet):
        its static space, else the trace this supernet made, else a new trace
        (a model that gave its DNASpec by `__mx_dna_spec__`)."""
        if self._static is not None:
            return self._static
        if self._space is not None:
            return self._space
        return trace(self.model, self._x, **self._kw)

    def child(self, dna: DNA | Sequence[Any]) -> Any:
        """The child of `dna`: `mx.materialize(model, dna)`, or the define-by-run child."""
        dna = self.spec.validate(dna)
        if self._static is not None:
            return self._static.materialize(dna)
        if self._space is not None:
            return self._space.materialize(dna)
        return DynamicChild(self.model, dna, self.spec.to_dict(dna), self.spec)

    def child_shapes(self, dna: DNA | Sequence[Any]) -> Any:
        """`jax.eval_shape` of the child's init on the example input (cached)."""
        dna = self.spec.validate(dna)
        hit = self._child_shapes.get(dna)
        if hit is None:
            child = self.child(dna)
            hit = jax.eval_shape(lambda: child.init(jax.random.key(0), self._x, **self._kw))
            self._child_shapes[dna] = hit
            if len(self._child_shapes) > 64:
                self._child_shapes.popitem(last=False)
        return hit

    def child_variables(self, variables: Any, dna: DNA | Sequence[Any]) -> Any:
        """The child's variables taken from the supernet's: its candidates, widths sliced.

        Raises:
            ValueError: if a child variable has no counterpart (naming its path).
        """
        dna = self.spec.validate(dna)
        return child_variables(self, variables, dna)

    def is_valid(self, dna: DNA | Sequence[Any]) -> bool:
        """Whether single-path sampling may use `dna` (the model's `__mx_is_valid__` hook)."""
        dna = self.spec.validate(dna)
        hook = getattr(self.model, "__mx_is_valid__", None)
        return True if hook is None else bool(hook(dna))

    def random_dna(self, rng: np.random.Generator | int | None = None) -> DNA:
        """A uniformly random DNA that :meth:`is_valid` accepts (resampled up to 1000 times)."""
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        for _ in range(1000):
            dna = self.spec.random_dna(gen)
            if self.is_valid(dna):
                return dna
        raise ValueError("no valid DNA in 1000 random samples; check the model's __mx_is_valid__")

    def verify(self, variables: Any, x: Any, num: int = 8, seed: int = 0) -> Any:
        """The largest |one-hot supernet - child| over `num` sampled DNAs; see :class:`Verification`."""
        from ._verify import verify

        return verify(self, variables, x, num=num, seed=seed)

    def __repr__(self) -> str:
        return (
            f"Supernet({type(self.model).__name__}, rows={self.rows}, "
            f"num_candidates={self.num_candidates}, path_impl={self.path_impl!r})"
        )


class _Explorer(_Decider):
    """Mixes every `oneof` met, rows in the order met (no DNASpec needed)."""

    def decide(self, hyper: HyperValue, pid: str) -> Any:
        if isinstance(hyper, OneOf):
            pid = pid if hyper.name is not None else strip_scopes(pid)
            self.net._row_of.setdefault(pid, len(self.net._row_of))
        return super().decide(hyper, pid)


def _explain(net: Supernet, err: TypeError) -> None:
    """Raises the supernet's own error (naming a decision) where tracing failed.

    A choice whose candidates are values, called in the model, fails in the
    trace with Python's error ("'str' object is not callable"); run as a
    supernet, the same code fails naming the decision and the fix.
    """
    net._row_of, net._width_sites = {}, {}
    decider = _Explorer(net, None, net.path_impl, None)

    def run() -> Any:
        with resolving(decider), nn.intercept_methods(functools.partial(interceptor, decider)):
            return resolve_fields(net.model).init(jax.random.key(0), net._x, **net._kw)

    try:
        jax.eval_shape(run)
    except Exception as own:  # noqa: BLE001 - anything else: the trace's error stands
        if isinstance(own, TypeError | ValueError) and str(own).startswith(
            ("decision ", "width decision ")
        ):
            raise own from err
    finally:
        decider.done = True


def _static_space(model: Any, spec: DNASpec) -> Any:
    """The static space of `model` when its fields hold all its decisions, else None."""
    try:
        compiled = space(model)
    except (TypeError, ValueError):
        return None
    return compiled if compiled.spec == spec else None


def supernet(
    model: nn.Module,
    x_example: Any,
    *,
    path_impl: str | None = None,
    partial_channels: int | None = None,
    **call_kwargs: Any,
) -> Supernet:
    """One model code as a weight-sharing supernet.

    `model` is a Flax linen module that is a space: hyper-values in its
    fields (like :func:`morphax.dna_spec`) and/or `mx.oneof` called inside
    `@nn.compact` code (like :func:`morphax.trace`). In the supernet every
    `oneof` is mixed: a choice of callables (modules, functions) is called,
    a choice of values is run through :func:`morphax.dispatch`, a choice of
    ints is a weight-entangled width (channel masks; a batch norm right after
    the masked layer is masked too, see `sn.verify` for what does not
    decompose). `intv`, `floatv` and `manyof` must be pinned with `fixed=`.

    Args:
        model: the model (a space).
        x_example: an example input (shapes are what matter).
        path_impl: how `Arch(index=...)` runs a single path: "onehot" (every
            candidate runs, weighted by a one-hot) or "switch"
            (`nn.switch`, only the chosen one); None: the backend's default.
        partial_channels: `K` for PC-DARTS: 1/K of each mixed input's
            channels go through the candidates, then a channel shuffle.
        **call_kwargs: passed to the model on every call (e.g. `train=False`).

    Returns:
        A :class:`Supernet` (`spec`, `rows`, `num_candidates`, `mask`,
        `init`, `apply`, `export`, `child`, `child_variables`, `verify`, `space`).

    Raises:
        TypeError: if `model` is not a Flax linen module.
        ValueError: for hyper-values a supernet cannot mix (naming the
            decision; pin them with `fixed=`) and bad options.

    Examples:
        >>> import flax.linen as nn, jax, jax.numpy as jnp
        >>> import morphax as mx
        >>> class Net(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x):
        ...         x = nn.Dense(features=mx.oneof([4, 8], name="width"))(x)
        ...         act = mx.oneof(["relu", "tanh"], name="act")
        ...         x = mx.dispatch(act, lambda a: nn.relu(x) if a == "relu" else jnp.tanh(x))
        ...         return nn.Dense(2)(x)
        >>> x = jnp.ones((3, 5))
        >>> sn = mx.oneshot.supernet(Net(), x)
        >>> sn.rows, sn.num_candidates, sn.spec == mx.trace(Net(), x).spec
        (2, 2, True)
        >>> variables = sn.init(jax.random.key(0), x)
        >>> dna = mx.DNA([0, 1])
        >>> y = sn.apply(variables, x, arch=mx.oneshot.Arch(weights=jnp.asarray(sn.one_hot(dna))))
        >>> child = sn.child(dna)
        >>> float(jnp.max(jnp.abs(y - child.apply(sn.child_variables(variables, dna), x)))) < 1e-6
        True
        >>> sn.export(jnp.array([[0.1, 0.9], [2.0, -1.0]]))
        DNA([1, 0])
    """
    return Supernet(model, x_example, path_impl, partial_channels, call_kwargs)
