"""Size expressions of the manifest (``Expr``): a tree plus its C++ spelling.

Expressions come from TVM's TIR (launch values, scalar kernel arguments, buffer sizes).
:func:`from_tir` turns a TIR ``PrimExpr`` into a :class:`Node`, replacing variables through an
environment, and folds constants on the way, so that a host-side loop variable or a let-bound value
becomes a plain number or an expression of the model's symbols only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Union

from .errors import BridgeError

ARITH_OPS = ("add", "sub", "mul", "floordiv", "floormod", "ceildiv", "min", "max")
CMP_OPS = ("lt", "le", "gt", "ge", "eq", "ne")


@dataclass(frozen=True)
class Int:
    """An integer constant (int64)."""

    value: int


@dataclass(frozen=True)
class Sym:
    """A symbol of the manifest (a C identifier)."""

    name: str


@dataclass(frozen=True)
class Op:
    """An operation: one of ARITH_OPS, CMP_OPS or ``select`` (cond, a, b)."""

    op: str
    args: tuple["Node", ...]


Node = Union[Int, Sym, Op]


def _fold(op: str, a: int, b: int) -> int:
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "floordiv":
        return a // b
    if op == "floormod":
        return a % b
    if op == "ceildiv":
        return -(-a // b)
    if op == "min":
        return min(a, b)
    if op == "max":
        return max(a, b)
    return int({"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b, "eq": a == b, "ne": a != b}[op])


def make(op: str, *args: Node) -> Node:
    """Build an operation node, folding constants and trivial identities."""
    if op == "select":
        cond, a, b = args
        if isinstance(cond, Int):
            return a if cond.value else b
        if a == b:
            return a
        return Op(op, (cond, a, b))
    a, b = args
    if isinstance(a, Int) and isinstance(b, Int):
        if op in ("floordiv", "floormod", "ceildiv") and b.value == 0:
            raise BridgeError("internal", f"division by zero in a size expression ({op})")
        return Int(_fold(op, a.value, b.value))
    if op == "add":
        if a == Int(0):
            return b
        if b == Int(0):
            return a
    if op == "sub" and b == Int(0):
        return a
    if op == "mul":
        if Int(0) in (a, b):
            return Int(0)
        if a == Int(1):
            return b
        if b == Int(1):
            return a
    if op in ("floordiv", "ceildiv") and b == Int(1):
        return a
    if op == "floormod" and b == Int(1):
        return Int(0)
    if op in ("min", "max") and a == b:
        return a
    return Op(op, (a, b))


def symbols_of(node: Node) -> set[str]:
    """The symbol names a node uses."""
    if isinstance(node, Sym):
        return {node.name}
    if isinstance(node, Op):
        out: set[str] = set()
        for arg in node.args:
            out |= symbols_of(arg)
        return out
    return set()


def tree(node: Node) -> dict:
    """The JSON tree form of a node."""
    if isinstance(node, Int):
        return {"int": node.value}
    if isinstance(node, Sym):
        return {"sym": node.name}
    return {"op": node.op, "args": [tree(a) for a in node.args]}


_INFIX = {"add": "+", "sub": "-", "mul": "*", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


def cxx(node: Node) -> str:
    """The C++ spelling of a node (symbols are ``int64_t`` variables in scope)."""
    if isinstance(node, Int):
        return str(node.value) if node.value >= 0 else f"({node.value})"
    if isinstance(node, Sym):
        return node.name
    if node.op == "select":
        c, a, b = (cxx(x) for x in node.args)
        return f"({c} ? {a} : {b})"
    a, b = (cxx(x) for x in node.args)
    if node.op in _INFIX:
        return f"({a} {_INFIX[node.op]} {b})"
    return f"tpat_{node.op}({a}, {b})"


def to_json(node: Node) -> dict:
    """An ``Expr`` of the manifest: ``{"cxx": ..., "tree": ...}``."""
    return {"cxx": cxx(node), "tree": tree(node)}


def evaluate(node: Node, values: Mapping[str, int]) -> int:
    """Evaluate a node for given symbol values (used by tests and checks)."""
    if isinstance(node, Int):
        return node.value
    if isinstance(node, Sym):
        return values[node.name]
    args = [evaluate(a, values) for a in node.args]
    if node.op == "select":
        return args[1] if args[0] else args[2]
    return _fold(node.op, args[0], args[1])


def align_up(node: Node, alignment: int) -> Node:
    """``node`` rounded up to a multiple of ``alignment``."""
    return make("mul", make("ceildiv", node, Int(alignment)), Int(alignment))


# --------------------------------------------------------------------------- from TIR

Lookup = Callable[[object], Node]


def from_tir(expr: object, lookup: Lookup) -> Node:
    """Translate a TIR PrimExpr into a node; ``lookup`` resolves each variable to a node
    (raising BridgeError when it cannot)."""
    from tvm import tirx  # local import: keeps this module importable without TVM
    import tvm

    def go(e: object) -> Node:
        if isinstance(e, tirx.IntImm):
            return Int(int(e.value))
        if isinstance(e, tirx.Var):
            return lookup(e)
        if isinstance(e, tirx.Cast):
            dtype = str(e.ty.dtype)
            if not (dtype.startswith("int") or dtype.startswith("uint") or dtype == "bool"):
                raise BridgeError("unsupported", f"non-integer cast in a size expression: {e}")
            inner = go(e.value)
            return make("ne", inner, Int(0)) if dtype == "bool" else inner
        binary = {tirx.Add: "add", tirx.Sub: "sub", tirx.Mul: "mul", tirx.FloorDiv: "floordiv",
                  tirx.FloorMod: "floormod", tirx.Div: "floordiv", tirx.Mod: "floormod", tirx.Min: "min",
                  tirx.Max: "max", tirx.LT: "lt", tirx.LE: "le", tirx.GT: "gt", tirx.GE: "ge",
                  tirx.EQ: "eq", tirx.NE: "ne"}
        for cls, op in binary.items():
            if isinstance(e, cls):
                a, b = go(e.a), go(e.b)
                if cls in (tirx.Div, tirx.Mod) and isinstance(a, Int) and isinstance(b, Int):
                    q = abs(a.value) // abs(b.value) * (1 if (a.value >= 0) == (b.value >= 0) else -1)
                    return Int(q if cls is tirx.Div else a.value - q * b.value)
                return make(op, a, b)
        if isinstance(e, tirx.And):
            return make("mul", make("ne", go(e.a), Int(0)), make("ne", go(e.b), Int(0)))
        if isinstance(e, tirx.Or):
            return make("ne", make("add", make("ne", go(e.a), Int(0)), make("ne", go(e.b), Int(0))), Int(0))
        if isinstance(e, tirx.Not):
            return make("eq", go(e.a), Int(0))
        if isinstance(e, (tirx.LShift, tirx.RShift)):
            a, b = go(e.a), go(e.b)
            if not isinstance(b, Int):
                raise BridgeError("unsupported", f"shift by a symbolic amount in a size expression: {e}")
            if isinstance(a, Int):
                return Int(a.value << b.value if isinstance(e, tirx.LShift) else a.value >> b.value)
            return make("mul" if isinstance(e, tirx.LShift) else "floordiv", a, Int(1 << b.value))
        if isinstance(e, tirx.Select):
            return make("select", go(e.condition), go(e.true_value), go(e.false_value))
        if isinstance(e, tvm.ir.Call) and isinstance(e.op, tvm.ir.Op) and e.op.name == "tirx.if_then_else":
            return make("select", go(e.args[0]), go(e.args[1]), go(e.args[2]))
        raise BridgeError("unsupported", f"cannot express {type(e).__name__} in a size expression: {e}")

    return go(expr)
