"""The laws every search space keeps, as checks a user's test suite runs.

Each check takes a program with hyper-values (a space) and raises an
AssertionError that names the law, the space and the DNA that break it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import morphax as mx


def _fail(law: str, space: Any, detail: str) -> AssertionError:
    return AssertionError(f"{law} does not hold for the space {space!r}: {detail}")


def check_encode_inverts_materialize(space: Any, dna: mx.DNA) -> None:
    """`encode(materialize(dna)) == dna`, and the child has no hyper-values.

    Raises:
        AssertionError: with the child and the DNA encode returned.
        ValueError: from `materialize`, if `dna` is not of the space.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_encode_inverts_materialize
        >>> check_encode_inverts_materialize({"w": mx.oneof([8, 16])}, mx.DNA([1]))
    """
    compiled = mx.space(space)
    child = compiled.materialize(dna)
    left = mx.query(child, where=mx.HyperValue)
    if left:
        raise _fail("materialize(dna) is a plain program", space, f"it keeps {left!r}")
    encoded = compiled.encode(child)
    if encoded != dna:
        raise _fail(
            "encode(materialize(dna)) == dna",
            space,
            f"materialize({dna!r}) = {child!r}, which encodes to {encoded!r}",
        )


def check_materialize_inverts_encode(space: Any, child: Any) -> None:
    """`materialize(encode(child)) == child` for a child of the space.

    Raises:
        AssertionError: with the DNA and the program materialize returned.
        ValueError: from `encode`, if `child` is not a child of the space.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_materialize_inverts_encode
        >>> check_materialize_inverts_encode({"w": mx.oneof([8, 16])}, {"w": 16})
    """
    compiled = mx.space(space)
    dna = compiled.encode(child)
    again = compiled.materialize(dna)
    if again != child:
        raise _fail(
            "materialize(encode(child)) == child",
            space,
            f"encode({child!r}) = {dna!r}, which materializes to {again!r}",
        )


def check_dna_round_trips(space: Any, dna: mx.DNA) -> None:
    """DNA survives the array form (alone and in a batch) and JSON.

    Raises:
        AssertionError: naming the form that lost information.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_dna_round_trips
        >>> check_dna_round_trips([mx.oneof([1, 2]), mx.floatv(0.0, 1.0)], mx.DNA([0, 0.25]))
    """
    spec = mx.dna_spec(space)
    spec.validate(dna)
    via_array = spec.from_array(spec.to_array(dna))
    if via_array != dna:
        raise _fail("from_array(to_array(dna)) == dna", space, f"{dna!r} -> {via_array!r}")
    batch = [dna, spec.random_dna(0)]
    via_batch = spec.from_array(spec.to_array(batch))
    if via_batch != batch:
        raise _fail("from_array(to_array(batch)) == batch", space, f"{batch!r} -> {via_batch!r}")
    via_json = mx.from_json(mx.to_json(dna))
    if via_json != dna:
        raise _fail("from_json(to_json(dna)) == dna", space, f"{dna!r} -> {via_json!r}")


def check_json_round_trip(program: Any) -> None:
    """`from_json(to_json(program)) == program`, for a space or a child.

    Raises:
        AssertionError: with the JSON text.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_json_round_trip
        >>> check_json_round_trip({"act": mx.oneof(["relu", "gelu"]), "depth": mx.intv(1, 4)})
    """
    text = mx.to_json(program)
    again = mx.from_json(text)
    if again != program:
        raise _fail("from_json(to_json(program)) == program", program, f"{text} reads as {again!r}")


def check_space_size(space: Any, *, max_size: int = 2000) -> None:
    """On a finite space of at most `max_size` points, `spec.space_size` is the
    number of DNA `spec.iter_dna()` enumerates, all distinct and valid, and
    their children are distinct. Larger or infinite spaces pass unchecked.

    Raises:
        AssertionError: with both counts.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_space_size
        >>> check_space_size(mx.manyof(2, [1, 2, 3], sorted=True))
    """
    spec = mx.dna_spec(space)
    if not spec.is_finite or spec.space_size > max_size:
        return
    dnas = list(spec.iter_dna())
    if len(dnas) != spec.space_size or len(set(dnas)) != len(dnas):
        raise _fail(
            "space_size == len(list(iter_dna()))",
            space,
            f"space_size is {spec.space_size}, iter_dna gives {len(dnas)} DNA "
            f"({len(set(dnas))} distinct)",
        )
    for dna in dnas:
        spec.validate(dna)
    texts = {mx.to_json(mx.materialize(space, d)) for d in dnas}
    if len(texts) != len(dnas):
        raise _fail(
            "distinct DNA give distinct children", space, f"{len(dnas)} DNA, {len(texts)} children"
        )


def check_deciders_agree(space: Any, dna: mx.DNA) -> None:
    """The compiled space and the decider walk make the same child of `dna`.

    A static space materializes through a compiled plan; the runtime modes
    (tracing, a define-by-run child, a supernet) decide the same hyper-values
    through `resolve_fields` under a resolver. Both must give one child,
    under the same decision ids.

    Raises:
        AssertionError: with both children.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_deciders_agree
        >>> check_deciders_agree({"op": mx.oneof([1, {"k": mx.oneof([3, 5])}])}, mx.DNA([1, 0]))
    """
    from morphax.symbolic import ChildResolver, resolve_fields, resolving

    compiled = mx.space(space)
    planned = compiled.materialize(dna)
    with resolving(ChildResolver(compiled.spec.to_dict(dna), compiled.spec)):
        walked = resolve_fields(space)
    if not mx.eq(planned, walked):
        raise _fail(
            "the compiled plan and the decider walk agree",
            space,
            f"for {dna!r} the plan gives {planned!r}, the walk {walked!r}",
        )


def check_space_laws(space: Any, *, seeds: Iterable[int] = range(5), max_size: int = 2000) -> None:
    """Runs every space law on `space`, with random DNA from each seed.

    The laws: encode inverts materialize and materialize inverts encode,
    DNA round trips through arrays and JSON, the space and its children round
    trip through JSON, the compiled plan and the decider walk agree, and `space_size` counts the enumeration (finite spaces
    of at most `max_size` points).

    Raises:
        AssertionError: from the first law that fails.

    Examples:
        >>> import morphax as mx
        >>> from morphax.testing import check_space_laws
        >>> check_space_laws({
        ...     "op": mx.oneof(["skip", {"conv": mx.oneof([3, 5]), "width": mx.intv(8, 64)}]),
        ...     "lr": mx.floatv(1e-4, 1e-1, scale="log"),
        ... })
    """
    spec = mx.dna_spec(space)
    check_json_round_trip(space)
    for seed in seeds:
        dna = spec.random_dna(seed)
        check_encode_inverts_materialize(space, dna)
        child = mx.materialize(space, dna)
        check_materialize_inverts_encode(space, child)
        check_json_round_trip(child)
        check_dna_round_trips(space, dna)
        check_deciders_agree(space, dna)
    check_space_size(space, max_size=max_size)
