"""Benchmark: morphax's symbolic core against PyGlove on the same search space.

The space: a model of 10 symbolic layers, each with two `oneof` decisions
(`width`, `activation`) and one `floatv` (`dropout`): 30 decision points, an
infinite space. Both libraries get the same candidates in the same order, so
one DNA means the same child in both (checked before timing).

Each operation is timed timeit-style: a loop calibrated to run for a minimum
time, repeated several times (morphax and PyGlove repeats interleaved, so
machine noise hits both alike), with the garbage collector off inside the
loop; the reported number is the median time per item in microseconds. The
ratio is PyGlove / morphax; for the PyGlove side it uses the fastest PyGlove
variant measured for that operation (all variants are listed).

Prints one JSON object to stdout. Exits with status 1 if a correctness check
fails (nothing is timed then).

Usage (from the repository root):
    python benchmarks/symbolic_vs_pyglove.py            # full run (2-3 minutes, mostly PyGlove)
    python benchmarks/symbolic_vs_pyglove.py --quick    # smoke test (about 10 s)
    python benchmarks/symbolic_vs_pyglove.py --profile  # also cProfile morphax to stderr
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
import pyglove as pg

import morphax as mx

NUM_LAYERS = 10
WIDTHS = [16, 32, 64, 128]
ACTIVATIONS = ["relu", "gelu", "tanh"]
DROPOUT = (0.0, 0.5)


# ---------------------------------------------------------------------------
# The search space, once per library.


class Layer:
    """A plain class with three parameters (never built: only its calls are recorded)."""

    def __init__(self, width: int, activation: str, dropout: float) -> None:
        self.width, self.activation, self.dropout = width, activation, dropout


class Model:
    def __init__(self, layers: list[Any]) -> None:
        self.layers = layers


MxLayer = mx.symbolic(Layer)
MxModel = mx.symbolic(Model)


@pg.symbolize
class PgLayer:
    def __init__(self, width: int, activation: str, dropout: float) -> None:
        self.width, self.activation, self.dropout = width, activation, dropout


@pg.symbolize
class PgModel:
    def __init__(self, layers: list[Any]) -> None:
        self.layers = layers


def morphax_program(dropout: Any = None) -> Any:
    return MxModel(
        layers=[
            MxLayer(
                width=mx.oneof(WIDTHS),
                activation=mx.oneof(ACTIVATIONS),
                dropout=mx.floatv(*DROPOUT) if dropout is None else dropout,
            )
            for _ in range(NUM_LAYERS)
        ]
    )


def pyglove_program(dropout: Any = None) -> Any:
    return PgModel(
        layers=[
            PgLayer(
                width=pg.oneof(WIDTHS),
                activation=pg.oneof(ACTIVATIONS),
                dropout=pg.floatv(*DROPOUT) if dropout is None else dropout,
            )
            for _ in range(NUM_LAYERS)
        ]
    )


# ---------------------------------------------------------------------------
# Timing.


@dataclass
class Variant:
    """One timed expression: `fn(x)` for x cycling over `inputs` (or `fn()`)."""

    lib: str  # "morphax" or "pyglove"
    label: str
    fn: Callable[..., Any]
    inputs: Sequence[Any] | None = None
    items_per_call: int = 1


def _loop(v: Variant, n: int) -> float:
    fn = v.fn
    if v.inputs is None:
        loop = range(n)
        t0 = time.perf_counter()
        for _ in loop:
            fn()
        return time.perf_counter() - t0
    k = len(v.inputs)
    seq = [v.inputs[i % k] for i in range(n)]
    t0 = time.perf_counter()
    for x in seq:
        fn(x)
    return time.perf_counter() - t0


def _timed(v: Variant, n: int) -> float:
    """Seconds per item for one repeat of `n` calls, gc off (as timeit does)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        dt = _loop(v, n)
    finally:
        if was_enabled:
            gc.enable()
    return dt / (n * v.items_per_call)


def _calibrate(v: Variant, min_time: float) -> int:
    """Calls per repeat so that one repeat lasts at least `min_time` (also warms up)."""
    _timed(v, 1)  # warm-up (first-call caches, lazy imports)
    n = 1
    while True:
        per_item = _timed(v, n)
        elapsed = per_item * n * v.items_per_call
        if elapsed >= min_time or n >= 1_000_000:
            return n
        if elapsed <= 0:
            n *= 10
            continue
        n = max(n + 1, min(n * 10, math.ceil(n * 1.2 * min_time / elapsed)))


def measure(variants: list[Variant], repeats: int, min_time: float) -> dict[str, float]:
    """Median microseconds per item for each variant; repeats interleaved across variants."""
    counts = [_calibrate(v, min_time) for v in variants]
    samples: list[list[float]] = [[] for _ in variants]
    for _ in range(repeats):
        gc.collect()  # cheap: setup objects are frozen (see main)
        for i, v in enumerate(variants):
            samples[i].append(_timed(v, counts[i]))
    return {
        f"{v.lib}: {v.label}": statistics.median(s) * 1e6
        for v, s in zip(variants, samples, strict=True)
    }


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def summarize(
    variants: list[Variant], times: dict[str, float], morphax_label: str
) -> dict[str, Any]:
    """{morphax_us, pyglove_us, ratio} with the fastest PyGlove variant as the peer."""
    mx_us = times[f"morphax: {morphax_label}"]
    pg_times = {k: t for k, t in times.items() if k.startswith("pyglove: ")}
    pg_best = min(pg_times, key=pg_times.__getitem__)
    return {
        "morphax_us": _round(mx_us),
        "pyglove_us": _round(pg_times[pg_best]),
        "ratio": _round(pg_times[pg_best] / mx_us),
        "_ratio_raw": pg_times[pg_best] / mx_us,  # for the goals; dropped from the report
        "morphax": morphax_label,
        "pyglove": pg_best.removeprefix("pyglove: "),
        "variants_us": {k: _round(t) for k, t in times.items()},
    }


# ---------------------------------------------------------------------------
# Correctness checks (before any timing).


class Checks:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.count = 0

    def __call__(self, ok: bool, what: str) -> None:
        self.count += 1
        if not ok:
            self.failures.append(what)


def _mx_layers(child: Any) -> list[tuple[Any, Any, Any]]:
    return [(x.width, x.activation, x.dropout) for x in child.layers]


def _pg_layers(child: Any) -> list[tuple[Any, Any, Any]]:
    return [(x.width, x.activation, x.dropout) for x in child.layers]


def verify(env: dict[str, Any], num: int, batch: int) -> Checks:
    check = Checks()
    spec, pspec, space, tmpl = env["spec"], env["pspec"], env["space"], env["template"]
    program, pprogram = env["program"], env["pprogram"]

    # Same space: 30 decision points with the same ids, both infinite.
    check(len(spec) == 3 * NUM_LAYERS, f"morphax spec has {len(spec)} columns, not 30")
    check(
        len(pspec.decision_points) == 3 * NUM_LAYERS,
        f"pyglove spec has {len(pspec.decision_points)} decision points, not 30",
    )
    mx_ids = [p.id for p in spec.columns]
    pg_ids = [str(dp.id) for dp in pspec.decision_points]
    check(mx_ids == pg_ids, f"decision ids differ: {mx_ids[:4]}... vs {pg_ids[:4]}...")
    check(math.isinf(spec.space_size), f"morphax space_size {spec.space_size}, expected inf")
    # PyGlove reports an infinite space (any float decision) as -1.
    check(pspec.space_size == -1, f"pyglove space_size {pspec.space_size}, expected -1 (inf)")
    # The same space with the floats fixed is finite, and equal in both.
    mx_fin = mx.dna_spec(morphax_program(dropout=0.1)).space_size
    pg_fin = pg.dna_spec(pyglove_program(dropout=0.1)).space_size
    want = (len(WIDTHS) * len(ACTIVATIONS)) ** NUM_LAYERS
    check(
        mx_fin == pg_fin == want,
        f"finite sizes differ: morphax {mx_fin}, pyglove {pg_fin}, expected {want}",
    )

    rng = np.random.default_rng(12345)
    prng = random.Random(12345)
    for i in range(num):
        dna = spec.random_dna(rng)
        child = space.materialize(dna)
        check(space.encode(child) == dna, f"morphax encode(materialize(dna)) != dna for {dna}")
        check(
            mx.materialize(program, dna) == child,
            "mx.materialize(program, dna) != space.materialize(dna)",
        )
        check(spec.from_array(spec.to_array(dna)) == dna, f"morphax array round trip: {dna}")
        check(mx.from_json(mx.to_json(child)) == child, "morphax JSON round trip changed a child")
        # The same DNA values give the same child in both libraries.
        pdna = pg.DNA.from_numbers(list(dna.values), pspec)
        pchild = tmpl.decode(pdna)
        check(
            _pg_layers(pchild) == _mx_layers(child),
            f"same DNA, different children: {_pg_layers(pchild)} vs {_mx_layers(child)}",
        )
        if i < max(1, num // 10):  # PyGlove is slow: check fewer of its round trips
            pd = pg.random_dna(pspec, prng)
            pc = tmpl.decode(pd)
            check(tmpl.encode(pc) == pd, f"pyglove encode(decode(dna)) != dna for {pd}")
            check(pg.eq(pg.materialize(pprogram, pd), pc), "pg.materialize != template.decode")
            check(pg.DNA.from_numbers(pd.to_numbers(), pspec) == pd, "pyglove numbers round trip")
            check(pg.eq(pg.from_json_str(pg.to_json_str(pc)), pc), "pyglove JSON round trip")
            mc = space.materialize(mx.DNA(pd.to_numbers()))
            check(_mx_layers(mc) == _pg_layers(pc), "pyglove DNA gives another morphax child")

    arrays = spec.random_arrays(batch, rng)
    n = len(spec)
    check(arrays.indices.shape == (batch, n), f"random_arrays shape {arrays.indices.shape}")
    check(bool(arrays.mask.all()), "random_arrays: a decision is masked off (none is conditional)")
    widths, acts = arrays.indices[:, 0::3], arrays.indices[:, 1::3]
    check(
        bool((widths >= 0).all() and (widths < len(WIDTHS)).all()),
        "random_arrays: width index out of range",
    )
    check(
        bool((acts >= 0).all() and (acts < len(ACTIVATIONS)).all()),
        "random_arrays: activation index out of range",
    )
    drops = arrays.values[:, 2::3]
    check(
        bool((drops >= DROPOUT[0]).all() and (drops <= DROPOUT[1]).all()),
        "random_arrays: dropout out of range",
    )
    check(
        len(np.unique(widths)) == len(WIDTHS) and len(np.unique(acts)) == len(ACTIVATIONS),
        "random_arrays: some candidates are never drawn",
    )
    first = spec.from_array((arrays.indices[0], arrays.values[0]))
    check(space.encode(space.materialize(first)) == first, "random_arrays row does not round trip")
    return check


# ---------------------------------------------------------------------------
# The operations.


def build_env(seed: int, pool: int) -> dict[str, Any]:
    """Both spaces, compiled, and pools of `pool` DNA / children cycled through by the loops."""
    program = morphax_program()
    space = mx.space(program)
    pprogram = pyglove_program()
    tmpl = pg.template(pprogram)
    spec, pspec = space.spec, tmpl.dna_spec()
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    dnas = [spec.random_dna(rng) for _ in range(pool)]
    children = [space.materialize(d) for d in dnas]
    pdnas = [pg.random_dna(pspec, prng) for _ in range(pool)]
    pchildren = [tmpl.decode(d) for d in pdnas]
    return {
        "program": program,
        "space": space,
        "spec": spec,
        "pprogram": pprogram,
        "template": tmpl,
        "pspec": pspec,
        "rng": rng,
        "prng": prng,
        "dnas": dnas,
        "children": children,
        "arrays": [spec.to_array(d) for d in dnas],
        "jsons": [mx.to_json(c) for c in children],
        "pdnas": pdnas,
        "pchildren": pchildren,
        "pnumbers": [d.to_numbers() for d in pdnas],
        "pjsons": [pg.to_json_str(c) for c in pchildren],
    }


def operations(
    env: dict[str, Any], amortized: int
) -> dict[str, tuple[list[Variant], list[tuple[str, str]]]]:
    """name -> (variants, [(entry name, morphax label)]).

    `amortized` > 1 adds the batch samplers (`random_sample(space, amortized)`, per child).
    """
    program, space, spec = env["program"], env["space"], env["spec"]
    pprogram, tmpl, pspec = env["pprogram"], env["template"], env["pspec"]
    rng, prng = env["rng"], env["prng"]
    dnas, children, pdnas, pchildren = env["dnas"], env["children"], env["pdnas"], env["pchildren"]

    def pg_random_sample_1() -> Any:
        return list(pg.random_sample(pprogram, 1))

    def pg_random_sample_n() -> Any:
        return list(pg.random_sample(pprogram, amortized))

    def mx_random_sample_n() -> Any:
        return list(mx.random_sample(program, amortized, seed=rng))

    ops: dict[str, tuple[list[Variant], list[tuple[str, str]]]] = {}
    ops["random_sample"] = (
        [
            Variant(
                "morphax",
                "space.materialize(spec.random_dna(rng))",
                lambda: space.materialize(spec.random_dna(rng)),
            ),
            Variant(
                "morphax",
                "mx.materialize(program, spec.random_dna(rng))",
                lambda: mx.materialize(program, spec.random_dna(rng)),
            ),
            Variant("morphax", "spec.random_dna(rng) alone", lambda: spec.random_dna(rng)),
            Variant("pyglove", "pg.random_sample(space, 1)", pg_random_sample_1),
            Variant(
                "pyglove",
                "template.decode(pg.random_dna(spec, rng))",
                lambda: tmpl.decode(pg.random_dna(pspec, prng)),
            ),
        ]
        + (
            [
                Variant(
                    "morphax",
                    f"mx.random_sample(program, {amortized}) per child",
                    mx_random_sample_n,
                    items_per_call=amortized,
                ),
                Variant(
                    "pyglove",
                    f"pg.random_sample(space, {amortized}) per child",
                    pg_random_sample_n,
                    items_per_call=amortized,
                ),
            ]
            if amortized > 1
            else []
        ),
        [
            ("random_sample", "space.materialize(spec.random_dna(rng))"),
            ("random_sample_uncompiled", "mx.materialize(program, spec.random_dna(rng))"),
        ],
    )
    ops["materialize"] = (
        [
            Variant("morphax", "space.materialize(dna)", space.materialize, dnas),
            Variant(
                "morphax",
                "mx.materialize(program, dna)",
                lambda d: mx.materialize(program, d),
                dnas,
            ),
            Variant("pyglove", "template.decode(dna)", tmpl.decode, pdnas),
            Variant(
                "pyglove",
                "pg.materialize(space, dna)",
                lambda d: pg.materialize(pprogram, d),
                pdnas,
            ),
        ],
        [
            ("materialize", "space.materialize(dna)"),
            ("materialize_uncompiled", "mx.materialize(program, dna)"),
        ],
    )
    ops["encode"] = (
        [
            Variant("morphax", "space.encode(child)", space.encode, children),
            Variant("pyglove", "template.encode(child)", tmpl.encode, pchildren),
        ],
        [("encode", "space.encode(child)")],
    )
    ops["dna_array_round_trip"] = (
        [
            Variant(
                "morphax",
                "spec.from_array(spec.to_array(dna))",
                lambda d: spec.from_array(spec.to_array(d)),
                dnas,
            ),
            Variant("morphax", "spec.to_array(dna) alone", spec.to_array, dnas),
            Variant("morphax", "spec.from_array(array) alone", spec.from_array, env["arrays"]),
            Variant(
                "pyglove",
                "pg.DNA.from_numbers(dna.to_numbers(), spec)",
                lambda d: pg.DNA.from_numbers(d.to_numbers(), pspec),
                pdnas,
            ),
            Variant("pyglove", "dna.to_numbers() alone", lambda d: d.to_numbers(), pdnas),
            Variant(
                "pyglove",
                "pg.DNA.from_numbers(numbers, spec) alone",
                lambda n: pg.DNA.from_numbers(n, pspec),
                env["pnumbers"],
            ),
        ],
        [("dna_array_round_trip", "spec.from_array(spec.to_array(dna))")],
    )
    ops["json_round_trip"] = (
        [
            Variant(
                "morphax",
                "mx.from_json(mx.to_json(child))",
                lambda c: mx.from_json(mx.to_json(c)),
                children,
            ),
            Variant("morphax", "mx.to_json(child) alone", mx.to_json, children),
            Variant("morphax", "mx.from_json(text) alone", mx.from_json, env["jsons"]),
            Variant(
                "pyglove",
                "pg.from_json_str(pg.to_json_str(child))",
                lambda c: pg.from_json_str(pg.to_json_str(c)),
                pchildren,
            ),
            Variant("pyglove", "pg.to_json_str(child) alone", pg.to_json_str, pchildren),
            Variant("pyglove", "pg.from_json_str(text) alone", pg.from_json_str, env["pjsons"]),
        ],
        [("json_round_trip", "mx.from_json(mx.to_json(child))")],
    )
    return ops


def _set_peer(entry: dict[str, Any], times: dict[str, float], label: str) -> None:
    """Uses the PyGlove variant `label` as the peer (round trips: the full round trip)."""
    peer = times[f"pyglove: {label}"]
    entry["pyglove_us"] = _round(peer)
    entry["pyglove"] = label
    entry["_ratio_raw"] = peer / times[f"morphax: {entry['morphax']}"]
    entry["ratio"] = _round(entry["_ratio_raw"])


# Entries whose peer is a given PyGlove variant rather than the fastest one.
_PEERS = {
    # A round trip against PyGlove's full round trip, not one half of it.
    "dna_array_round_trip": "pg.DNA.from_numbers(dna.to_numbers(), spec)",
    "json_round_trip": "pg.from_json_str(pg.to_json_str(child))",
}
# Uncompiled entries also get a like-for-like ratio: PyGlove's one-shot call.
_LIKE_FOR_LIKE = {
    "random_sample_uncompiled": "pg.random_sample(space, 1)",
    "materialize_uncompiled": "pg.materialize(space, dna)",
}


def batched(env: dict[str, Any], batch: int, repeats: int, min_time: float) -> dict[str, Any]:
    spec, pspec, rng, prng = env["spec"], env["pspec"], env["rng"], env["prng"]
    variants = [
        Variant(
            "morphax",
            f"spec.random_arrays({batch}, rng) per DNA",
            lambda: spec.random_arrays(batch, rng),
            items_per_call=batch,
        ),
        Variant("morphax", "spec.random_dna(rng)", lambda: spec.random_dna(rng)),
        Variant("pyglove", "pg.random_dna(spec, rng)", lambda: pg.random_dna(pspec, prng)),
    ]
    times = measure(variants, repeats, min_time)
    mx_us = times[f"morphax: {variants[0].label}"]
    one_us = times[f"morphax: {variants[1].label}"]
    pg_us = times[f"pyglove: {variants[2].label}"]
    return {
        "batch": batch,
        "morphax_random_arrays_ms_per_batch": _round(mx_us * batch / 1e3),
        "morphax_dna_per_s": _round(1e6 / mx_us),
        "_rate_raw": 1e6 / mx_us,  # for the goals; dropped from the report
        "morphax_single_random_dna_per_s": _round(1e6 / one_us),
        "pyglove_random_dna_per_s": _round(1e6 / pg_us),
        "ratio": _round(pg_us / mx_us),
        "variants_us": {k: _round(t) for k, t in times.items()},
    }


# ---------------------------------------------------------------------------
# Profiles (stderr).


def profile(env: dict[str, Any], num: int, top: int) -> None:
    space, spec, program, rng = env["space"], env["spec"], env["program"], env["rng"]
    dnas = env["dnas"]

    def random_sample() -> None:
        for _ in range(num):
            space.materialize(spec.random_dna(rng))

    def materialize() -> None:
        for i in range(num):
            space.materialize(dnas[i % len(dnas)])

    def uncompiled() -> None:
        for i in range(num // 10):
            mx.materialize(program, dnas[i % len(dnas)])

    runs: list[tuple[str, Callable[[], None]]] = [
        (f"morphax random sample: space.materialize(spec.random_dna(rng)) x {num}", random_sample),
        (f"morphax materialize: space.materialize(dna) x {num}", materialize),
        (f"morphax uncompiled: mx.materialize(program, dna) x {num // 10}", uncompiled),
    ]
    for title, fn in runs:
        prof = cProfile.Profile()
        prof.runcall(fn)
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out).strip_dirs().sort_stats("tottime")
        stats.print_stats(top)
        print(f"==== {title} (sorted by tottime) ====", file=sys.stderr)
        print(out.getvalue(), file=sys.stderr)


# ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "jax": version("jax"),
        "pyglove": pg.__version__,
        "morphax": mx.__version__,
        "loadavg_1m_at_start": _round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Time morphax against PyGlove on one search space (10 symbolic layers x "
            "(2 oneof + 1 floatv)) and print a JSON report to stdout."
        )
    )
    parser.add_argument("--quick", action="store_true", help="few short repeats (smoke test)")
    parser.add_argument("--repeats", type=int, help="repeats per variant (default 7; quick: 3)")
    parser.add_argument(
        "--min-time",
        type=float,
        help="minimum seconds per repeat (default 0.2; quick: 0.01)",
    )
    parser.add_argument(
        "--batch", type=int, default=100_000, help="batch size for random_arrays (default 100000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile the morphax random-sample and materialize paths (to stderr)",
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    min_time = args.min_time if args.min_time is not None else (0.01 if args.quick else 0.2)
    batch = args.batch
    if repeats < 1 or min_time < 0 or batch < 1:
        parser.error("--repeats and --batch must be positive, --min-time non-negative")

    started = time.perf_counter()
    env = build_env(args.seed, pool=8 if args.quick else 64)
    checks = verify(env, num=5 if args.quick else 200, batch=min(batch, 10_000))
    if checks.failures:
        print(
            f"{len(checks.failures)} of {checks.count} correctness checks failed:", file=sys.stderr
        )
        for f in checks.failures[:20]:
            print(f"  - {f if len(f) <= 300 else f[:297] + '...'}", file=sys.stderr)
        return 1
    # Move the setup objects (pools, modules) out of the collector's reach, so the
    # collections between repeats cost little and do not depend on the pools.
    gc.collect()
    gc.freeze()

    report: dict[str, Any] = {
        "machine": machine(),
        "config": {
            "space": (
                f"{NUM_LAYERS} symbolic layers x (oneof({WIDTHS}), oneof({ACTIVATIONS}), "
                f"floatv{DROPOUT})"
            ),
            "decision_points": len(env["spec"]),
            "quick": args.quick,
            "repeats": repeats,
            "min_time_per_repeat_s": min_time,
            "seed": args.seed,
            "pool": len(env["dnas"]),
            "timing": (
                "median over repeats of the per-item time (us) of a calibrated loop, gc off in "
                "the loop, morphax and pyglove repeats interleaved; ratio = pyglove_us / "
                "morphax_us with the fastest pyglove variant as the peer (round trips: the full "
                "pyglove round trip)"
            ),
            "correctness_checks_passed": checks.count,
        },
        "operations": {},
    }
    for variants, entries in operations(env, amortized=0 if args.quick else 8).values():
        times = measure(variants, repeats, min_time)
        for entry_name, mx_label in entries:
            entry = summarize(variants, times, mx_label)
            if entry_name in _PEERS:
                _set_peer(entry, times, _PEERS[entry_name])
            if entry_name in _LIKE_FOR_LIKE:
                label = _LIKE_FOR_LIKE[entry_name]
                entry["ratio_like_for_like"] = _round(
                    times[f"pyglove: {label}"] / times[f"morphax: {mx_label}"]
                )
                entry["like_for_like_pyglove"] = label
            report["operations"][entry_name] = entry
    report["batched_random_arrays"] = batched(env, batch, repeats, min_time)

    raw = {name: entry.pop("_ratio_raw") for name, entry in report["operations"].items()}
    report["goals"] = {
        "random_sample_100x": raw["random_sample"] >= 100,
        "materialize_100x": raw["materialize"] >= 100,
        "batched_over_1M_per_s": report["batched_random_arrays"].pop("_rate_raw") > 1e6,
    }
    report["machine"]["loadavg_1m_at_end"] = (
        _round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else None
    )
    report["wall_s"] = _round(time.perf_counter() - started)
    print(json.dumps(report, indent=2))

    if args.profile:
        profile(env, num=200 if args.quick else 5000, top=25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
