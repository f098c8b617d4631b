"""The bridge's error type: a class from the manifest spec and a one-line message in the user's
terms (what in the node is the problem, what to do), with TVM's own words after it."""

from __future__ import annotations

import re

ERROR_CLASSES = ("import", "build", "unsupported", "dtype", "internal")

# TVM's messages that users of exported models meet, and what they mean for the node. Each entry:
# a pattern over TVM's (or the plan's) message, and the explanation, which may use the pattern's
# groups. The first match wins; a message none matches is kept as it is.
EXPLANATIONS: tuple[tuple[str, str], ...] = (
    (r"Type <class '[\w.]+Var'> for (\w+) is currently unsupported",
     "its '{0}' input is computed at run time, and TVM's ONNX frontend takes it only as a constant "
     "(the output's shape would depend on it); make it a constant (fold the model's shape "
     "arithmetic at fixed sizes, e.g. with onnxsim) or leave the node native"),
    (r"relax\.tensor_to_shape|not defined by any input dim|data-dependent shape",
     "its output's size depends on the values of its inputs (a data-dependent shape), which a TPAT "
     "plugin cannot declare yet; leave the node native"),
    (r"host allocation in scope local",
     "TVM's CUDA lowering of this op keeps a per-thread scratch array on the host side, which TPAT "
     "cannot place in a plugin yet; leave the node native"),
    (r"Literal value (9223372036854775807|-9223372036854775808) exceeds range of int32",
     "a constant input or attribute is INT64's extreme value (an exporter's 'no limit', such as "
     "a Slice's end), which TVM's 32-bit index "
     "math cannot hold; replace it by the real bound in the model or leave the node native"),
    (r"^(?:.*: )?AssertionError:?\s*$",
     "TVM's ONNX frontend stopped on an internal check without a message: the node's attributes, "
     "ranks or dtypes are outside what apache-tvm 0.27 converts; leave the node native"),
)


def explain(message: str) -> str:
    """``message`` with the user's-terms explanation in front when one is known."""
    for pattern, text in EXPLANATIONS:
        found = re.search(pattern, message)
        if found:
            return f"{text.format(*found.groups())} (TVM: {message})"
    return message


class BridgeError(Exception):
    """A per-node failure with an ``errorClass`` of docs/manifest.md."""

    def __init__(self, error_class: str, message: str) -> None:
        assert error_class in ERROR_CLASSES, error_class
        super().__init__(message)
        self.error_class = error_class
        self.message = explain(" ".join(message.split()))  # always one line
