"""Peak memory of `mx.from_json` on deeply nested JSON with long keys (issue 13).

A decoder that keeps a formatted path string per nesting level holds
depth x key length characters per level, so a few MB of JSON can need
hundreds of MB. This generates such cases and prints, as JSON, the
tracemalloc peak of `json.loads` alone and of `mx.from_json` (or the error
it raises, for nesting past the depth limit).

Usage: python benchmarks/json_memory.py [--mb 6] [--depth 190]
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from typing import Any

import morphax as mx


def nested(depth: int, total_bytes: int) -> str:
    """`depth` nested dicts, one key each, about `total_bytes` of JSON text."""
    key_len = max(1, total_bytes // depth)
    text = "1"
    for level in range(depth):
        key = (f"k{level}_" + "x" * key_len)[:key_len]
        text = '{"' + key + '": ' + text + "}"
    return text


def peak(fn: Any, text: str) -> dict[str, Any]:
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        fn(text)
        outcome = "ok"
    except (ValueError, RecursionError) as e:
        outcome = f"{type(e).__name__}: {str(e)[:160]}"
    seconds = time.perf_counter() - t0
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"peak_mb": round(top / 2**20, 1), "seconds": round(seconds, 3), "outcome": outcome}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=6.0)
    parser.add_argument("--depth", type=int, default=190)
    args = parser.parse_args()
    cases = {
        f"{args.depth} levels": nested(args.depth, int(args.mb * 2**20)),
        "300 levels": nested(300, int(args.mb * 2**20)),
        "100000 levels": "[" * 100_000 + "]" * 100_000,
    }
    out: dict[str, Any] = {}
    for name, text in cases.items():
        out[name] = {
            "json_mb": round(len(text) / 2**20, 2),
            "json.loads": peak(json.loads, text),
            "mx.from_json": peak(mx.from_json, text),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
