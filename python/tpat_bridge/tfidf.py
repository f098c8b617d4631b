"""TPAT's TfIdfVectorizer (TVM's frontend lacks it), for integer tokens: each row's counts of the
pool's n-grams, as ONNX defines them. An n-gram of n >= 2 tokens is counted at every start and
every skip distance 1..max_skip_count+1 (its tokens that far apart); a unigram once per position.
Only n-grams of min_gram_length..max_gram_length count. Then TF (the count), IDF (the weight where
the count is not 0) or TFIDF (count x weight); weights default to 1.

Two reductions: counts[b, j] over the start positions and skip distances, with the pool as
constant tables (tokens, lengths); then each output column sums the n-grams ngram_indexes maps to
it."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import BridgeError


def _pool(attr: dict[str, Any]) -> tuple[list[tuple[int, ...]], list[int]]:
    """The pool's n-grams of the counted sizes, and each one's output column."""
    pool = [int(v) for v in attr.get("pool_int64s", [])]
    if not pool:
        raise BridgeError("unsupported", "TfIdfVectorizer: only pool_int64s (integer tokens); string pools stay native")
    counts = [int(v) for v in attr["ngram_counts"]]
    indexes = [int(v) for v in attr["ngram_indexes"]]
    lo, hi = int(attr["min_gram_length"]), int(attr["max_gram_length"])
    grams, columns, gram_id = [], [], 0
    for size, start in enumerate(counts, start=1):
        end = counts[size] if size < len(counts) else len(pool)
        for g in range((end - start) // size):
            if lo <= size <= hi:
                grams.append(tuple(pool[start + g * size:start + (g + 1) * size]))
                columns.append(indexes[gram_id])
            gram_id += 1
    return grams, columns


def convert_tfidf_vectorizer(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX TfIdfVectorizer."""
    from tvm import relax, te, tirx

    x = inputs[0]
    mode = attr.get("mode", b"TF")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    grams, columns = _pool(attr)
    width = max(int(v) for v in attr["ngram_indexes"]) + 1
    skips = int(attr.get("max_skip_count", 0)) + 1
    longest = max((len(g) for g in grams), default=1)
    weights = [float(w) for w in attr.get("weights", [])] or [1.0] * width
    rank = len(x.ty.shape.values)
    if rank not in (1, 2) or not grams:
        raise BridgeError("unsupported", f"TfIdfVectorizer: a rank-{rank} input or an empty pool")
    tokens = np.zeros((len(grams), longest), np.int64)
    for j, g in enumerate(grams):
        tokens[j, :len(g)] = g
    lengths = np.array([len(g) for g in grams], np.int32)
    column = np.array(columns, np.int32)

    def vectorize(xs: Any, tok: Any, length: Any, col: Any, weight: Any) -> Any:
        rows = [xs.shape[0]] if rank == 2 else []
        c = xs.shape[rank - 1]

        def at(b: list[Any], p: Any) -> Any:
            return tirx.Cast("int64", xs[tuple(b + [tirx.min(p, c - 1)])])

        rd = te.reduce_axis((0, skips), name="skip")
        rp = te.reduce_axis((0, c), name="start")

        def count(*idx: Any) -> Any:
            b, j = list(idx[:-1]), idx[-1]
            n = length[j]
            step = rd + 1
            fits = tirx.all(tirx.any(n >= 2, rd == 0), rp + (n - 1) * step < c)
            match = [tirx.any(k >= n, at(b, rp + k * step) == tok[j, k]) for k in range(longest)]
            return te.sum(tirx.Select(tirx.all(fits, *match), tirx.const(1.0, "float32"), tirx.const(0.0, "float32")),
                          axis=[rd, rp])

        counts = te.compute(rows + [len(grams)], count, name="ngram_counts")
        rj = te.reduce_axis((0, len(grams)), name="gram")

        def out(*idx: Any) -> Any:
            b, o = list(idx[:-1]), idx[-1]
            return te.sum(tirx.Select(col[rj] == o, counts[tuple(b + [rj])], tirx.const(0.0, "float32")), axis=[rj])

        freq = te.compute(rows + [width], out, name="ngram_frequency")

        def weigh(*idx: Any) -> Any:
            f, w = freq[idx], weight[idx[-1]]
            if mode == "TF":
                return f
            if mode == "IDF":
                return tirx.Select(f > 0, w, tirx.const(0.0, "float32"))
            return f * w

        return te.compute(rows + [width], weigh, name="tfidf")

    return bb.emit_te(vectorize, x, relax.const(tokens), relax.const(lengths), relax.const(column),
                      relax.const(np.array(weights, np.float32)), primfunc_name_hint="tfidf_vectorizer")
