"""TPAT's LinearAttention (opset 27; TVM's frontend lacks it, and ONNX's function body runs a Scan,
which TVM's frontend lacks too): the recurrence of every update rule (linear, gated, delta,
gated_delta), with grouped query heads, an optional past state, per-key-dim or per-head decay, and
per-head or shared beta.

Each column ``m`` of a KV head's state ``S`` (``d_k`` values) evolves on its own: a decay scales it,
the delta rule reads ``S[:, m] . k_t`` from it alone, the write adds ``k_t * u_m``, and each query
head's output column ``m`` is ``scale * q_t . S[:, m]``. So one thread owns one column of one KV
head of one batch item, keeps it in registers in float32 (ONNX's reference accumulates in float32
too), and runs the T steps in order; the key, query, decay and beta a step reads are the same for
the threads of a head and come from the cache. Batch and sequence may be symbolic; heads and head
sizes are static (attributes and packed last dims)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from .errors import BridgeError
from .lowering import static_dim, thread_per_item

# One thread per state column on the GPU; False (the CPU checks of pytest, TVM's llvm target): the
# same arithmetic in a serial loop over the columns.
ON_GPU = True

# Threads per block.
_THREADS = 128


@contextmanager
def _each_column(count: Any) -> Iterator[Any]:
    from tvm.script.ir_builder import tirx as T

    if ON_GPU:
        with thread_per_item(count, _THREADS, "int64") as c:
            yield c
    else:
        with T.serial(0, count) as c:
            yield c


def _last_dim(x: Any) -> int | None:
    """The static last dim of a Relax tensor, or None (absent input, or symbolic)."""
    return None if x is None else static_dim(x.ty.shape.values[-1])


def _text(value: Any, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def convert_linear_attention(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """The Relax of ONNX LinearAttention: ``(output, present_state)``."""
    from tvm import relax, te, tirx
    from tvm.script.ir_builder import IRBuilder
    from tvm.script.ir_builder import tirx as T

    slots = list(inputs) + [None] * (6 - len(inputs))
    query, key, value, past, decay, beta = slots[:6]
    rule = _text(attr.get("update_rule"), "gated_delta")
    if rule not in ("linear", "gated", "delta", "gated_delta"):
        raise BridgeError("unsupported", f"LinearAttention: update_rule '{rule}' is none of linear, gated, delta, gated_delta")
    gating, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    if gating and decay is None or delta and beta is None:
        raise BridgeError("unsupported", f"LinearAttention: update_rule '{rule}' needs its {'decay' if gating else 'beta'} input")
    hq, hkv = int(attr["q_num_heads"]), int(attr["kv_num_heads"])
    last = [_last_dim(x) for x in (query, key, value, decay, beta)]
    if any(x is not None and n is None for x, n in zip((query, key, value, decay, beta), last)):
        raise BridgeError("unsupported", "LinearAttention: the packed last dims (heads x head size) must be static")
    if hq <= 0 or hkv <= 0 or hq % hkv:
        raise BridgeError("unsupported", f"LinearAttention: q_num_heads {hq} must be a positive multiple of kv_num_heads {hkv}")
    d_k, d_v = last[0] // hq, last[2] // hkv
    group = hq // hkv
    decay_per_key = decay is not None and last[3] == hkv * d_k
    beta_per_head = beta is not None and last[4] == hkv
    scale = float(attr.get("scale", 0.0) or 0.0) or 1.0 / (d_k ** 0.5)
    dtype = str(query.ty.dtype)
    state_dtype = str(past.ty.dtype) if past is not None else dtype
    f32 = "float32"
    present = [past is not None, decay is not None, beta is not None]

    def make(*tensors: Any) -> Any:
        q, k, v = tensors[:3]
        rest = list(tensors[3:])
        b_size, t_size = q.shape[0], q.shape[1]

        def gen(ins: list[Any], outs: list[Any]) -> Any:
            it = iter(ins[3:])
            past_buf = next(it) if present[0] else None
            decay_buf = next(it) if present[1] else None
            beta_buf = next(it) if present[2] else None
            with IRBuilder() as ib:
                # plain expressions: a binding outside the launch's frame would end the builder
                batch = tirx.Cast("int64", b_size)
                steps = tirx.Cast("int64", t_size)
                with _each_column(batch * hkv * d_v) as c:
                    def flat(buf: Any, size: Any) -> Any:
                        return T.buffer_proxy(T.decl_buffer((size,), buf.dtype, data=buf.data))

                    bt = batch * steps
                    qf, kf, vf = flat(ins[0], bt * (hq * d_k)), flat(ins[1], bt * (hkv * d_k)), flat(ins[2], bt * (hkv * d_v))
                    of = flat(outs[0], bt * (hq * d_v))
                    sf = flat(outs[1], batch * (hkv * d_k * d_v))
                    m = T.bind(c % d_v)
                    h = T.bind((c // d_v) % hkv)
                    b = T.bind(c // (d_v * hkv))
                    s = T.buffer_proxy(T.alloc_local((d_k,), f32))
                    acc = T.buffer_proxy(T.alloc_local((1,), f32))
                    state_at = T.bind(b * (hkv * d_k * d_v) + h * (d_k * d_v) + m)
                    with T.serial(0, d_k) as d:
                        if past_buf is not None:
                            pf = flat(past_buf, batch * (hkv * d_k * d_v))
                            s[d] = tirx.Cast(f32, pf[state_at + d * d_v])
                        else:
                            s[d] = tirx.const(0.0, f32)
                    with T.serial(0, steps) as t:
                        row = T.bind(b * steps + t)
                        k_at = T.bind(row * (hkv * d_k) + h * d_k)
                        if decay_buf is not None:
                            gf = flat(decay_buf, bt * (hkv * d_k if decay_per_key else hkv))
                            if decay_per_key:
                                with T.serial(0, d_k) as d:
                                    s[d] = s[d] * tirx.exp(tirx.Cast(f32, gf[k_at + d]))
                            else:
                                g = T.bind(tirx.exp(tirx.Cast(f32, gf[row * hkv + h])))
                                with T.serial(0, d_k) as d:
                                    s[d] = s[d] * g
                        u = T.buffer_proxy(T.alloc_local((1,), f32))
                        u[0] = tirx.Cast(f32, vf[row * (hkv * d_v) + h * d_v + m])
                        if beta_buf is not None:
                            acc[0] = tirx.const(0.0, f32)
                            with T.serial(0, d_k) as d:
                                acc[0] = acc[0] + s[d] * tirx.Cast(f32, kf[k_at + d])
                            bf = flat(beta_buf, bt * (hkv if beta_per_head else 1))
                            rate = tirx.Cast(f32, bf[row * hkv + h] if beta_per_head else bf[row])
                            u[0] = rate * (u[0] - acc[0])
                        with T.serial(0, d_k) as d:
                            s[d] = s[d] + tirx.Cast(f32, kf[k_at + d]) * u[0]
                        with T.serial(0, group) as j:
                            head = T.bind(h * group + j)
                            acc[0] = tirx.const(0.0, f32)
                            with T.serial(0, d_k) as d:
                                acc[0] = acc[0] + tirx.Cast(f32, qf[row * (hq * d_k) + head * d_k + d]) * s[d]
                            of[row * (hq * d_v) + head * d_v + m] = tirx.Cast(dtype, acc[0] * tirx.const(scale, f32))
                    with T.serial(0, d_k) as d:
                        sf[state_at + d * d_v] = tirx.Cast(state_dtype, s[d])
            return ib.get()

        out_shape = [b_size, t_size, hq * d_v]
        state_shape = [b_size, hkv, d_k, d_v]
        return te.extern([out_shape, state_shape], [q, k, v, *rest], lambda ins, outs: gen(list(ins), list(outs)),
                         dtype=[dtype, state_dtype], name="linear_attention.tpat", tag="linear_attention.tpat")

    args = [query, key, value] + [x for x in (past, decay, beta) if x is not None]
    out = bb.emit_te(make, *args, primfunc_name_hint="linear_attention")
    return relax.Tuple([bb.emit(relax.TupleGetItem(out, 0)), bb.emit(relax.TupleGetItem(out, 1))])
