"""The optimizer ops of ONNX's ai.onnx.preview.training domain (Adagrad, Adam, Momentum; TVM's
frontend has none): the update of each of N parameter tensors, elementwise, from the scalar
learning rate R and step T, as the ONNX operator documents define them. Outputs: every new X,
then every new state tensor (H for Adagrad; V for Momentum; V then H for Adam)."""

from __future__ import annotations

from typing import Any


def _scalars(inputs: list[Any], dtype: str) -> tuple[Any, Any]:
    """R and T as scalars of the parameters' type."""
    from tvm import relax

    r, t = inputs[0], inputs[1]
    return (relax.op.astype(r, dtype) if str(r.ty.dtype) != dtype else r), relax.op.astype(t, dtype)


def _groups(inputs: list[Any], per: int) -> list[list[Any]]:
    """The parameter tensors' groups: ``per`` lists of N inputs after R and T."""
    rest = inputs[2:]
    n = len(rest) // per
    return [rest[k * n:(k + 1) * n] for k in range(per)]


def _c(value: float, dtype: str) -> Any:
    from tvm import relax

    return relax.const(value, dtype)


def convert_adagrad(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """Adagrad: ``r = R / (1 + T * decay_factor)``, ``G' = norm_coefficient * X + G``,
    ``H_new = H + G'^2``, ``X_new = X - r * G' / (sqrt(H_new) + epsilon)``."""
    from tvm import relax

    xs, gs, hs = _groups(inputs, 3)
    dtype = str(xs[0].ty.dtype)
    r, t = _scalars(inputs, dtype)
    op = relax.op
    rate = op.divide(r, op.add(_c(1.0, dtype), op.multiply(t, _c(float(attr.get("decay_factor", 0.0)), dtype))))
    new_x, new_h = [], []
    for x, g, h in zip(xs, gs, hs):
        reg = op.add(op.multiply(_c(float(attr.get("norm_coefficient", 0.0)), dtype), x), g)
        h_new = bb.emit(op.add(h, op.multiply(reg, reg)))
        root = op.add(op.sqrt(h_new), _c(float(attr.get("epsilon", 0.0)), dtype))
        new_x.append(bb.emit(op.subtract(x, op.divide(op.multiply(rate, reg), root))))
        new_h.append(h_new)
    return relax.Tuple(new_x + new_h)


def convert_momentum(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """Momentum: ``G' = norm_coefficient * X + G``, ``V_new = alpha * V + (T > 0 ? beta : 1) * G'``;
    standard ``X_new = X - R * V_new``, nesterov ``X_new = X - R * (G' + alpha * V_new)``."""
    from tvm import relax

    xs, gs, vs = _groups(inputs, 3)
    dtype = str(xs[0].ty.dtype)
    r, t = _scalars(inputs, dtype)
    op = relax.op
    alpha = _c(float(attr.get("alpha", 0.0)), dtype)
    beta = op.where(op.greater(t, _c(0.0, dtype)), _c(float(attr.get("beta", 0.0)), dtype), _c(1.0, dtype))
    mode = attr.get("mode", b"standard")
    nesterov = (mode.decode() if isinstance(mode, bytes) else str(mode)) == "nesterov"
    new_x, new_v = [], []
    for x, g, v in zip(xs, gs, vs):
        reg = op.add(op.multiply(_c(float(attr.get("norm_coefficient", 0.0)), dtype), x), g)
        v_new = bb.emit(op.add(op.multiply(alpha, v), op.multiply(beta, reg)))
        step = op.add(reg, op.multiply(alpha, v_new)) if nesterov else v_new
        new_x.append(bb.emit(op.subtract(x, op.multiply(r, step))))
        new_v.append(v_new)
    return relax.Tuple(new_x + new_v)


def convert_adam(bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
    """Adam: ``G' = norm_coefficient * X + G``, ``V_new = alpha * V + (1 - alpha) * G'``,
    ``H_new = beta * H + (1 - beta) * G'^2``, ``R' = T > 0 ? R * sqrt(1 - beta^T) / (1 - alpha^T)
    : R``, ``X_new = (1 - norm_coefficient_post) * (X - R' * V_new / (sqrt(H_new) + epsilon))``."""
    from tvm import relax

    xs, gs, vs, hs = _groups(inputs, 4)
    dtype = str(xs[0].ty.dtype)
    r, t = _scalars(inputs, dtype)
    op = relax.op
    a, b = float(attr.get("alpha", 0.9)), float(attr.get("beta", 0.999))
    one = _c(1.0, dtype)
    corrected = op.divide(op.multiply(r, op.sqrt(op.subtract(one, op.power(_c(b, dtype), t)))),
                          op.subtract(one, op.power(_c(a, dtype), t)))
    rate = op.where(op.greater(t, _c(0.0, dtype)), corrected, r)
    post = _c(1.0 - float(attr.get("norm_coefficient_post", 0.0)), dtype)
    new_x, new_v, new_h = [], [], []
    for x, g, v, h in zip(xs, gs, vs, hs):
        reg = op.add(op.multiply(_c(float(attr.get("norm_coefficient", 0.0)), dtype), x), g)
        v_new = bb.emit(op.add(op.multiply(_c(a, dtype), v), op.multiply(_c(1.0 - a, dtype), reg)))
        h_new = bb.emit(op.add(op.multiply(_c(b, dtype), h), op.multiply(_c(1.0 - b, dtype), op.multiply(reg, reg))))
        root = op.add(op.sqrt(h_new), _c(float(attr.get("epsilon", 1e-6)), dtype))
        new_x.append(bb.emit(op.multiply(post, op.subtract(x, op.multiply(rate, op.divide(v_new, root))))))
        new_v.append(v_new)
        new_h.append(h_new)
    return relax.Tuple(new_x + new_v + new_h)
