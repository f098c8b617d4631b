"""Writes the seed corpus of the ONNX loader's fuzz target (fuzz/corpus/): small valid models that
cover what the loader takes apart (initializers in each storage form, external data, subgraphs,
functions, sparse and string tensors, the zero-copy layout of large raw data), and hostile ones
(links and special files as external data, offsets near 2^63, protobuf lengths of 2^63-1 and
2^64-1, cycles, two producers, undefined inputs, unknown IR and opset versions).

External-data locations name the files the fuzz target puts next to each input (see
fuzz/Sources/FuzzONNXLoader/FuzzONNXLoader.swift): weights.bin (4096 bytes), sub/inner.bin,
inside.bin, outside.bin, passwd, up, fifo, zero.

Run with the project's venv: .venv/bin/python fuzz/make-corpus.py
"""

import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def vi(name, dtype=TensorProto.FLOAT, shape=(2,)):
    return helper.make_tensor_value_info(name, dtype, list(shape))


def model(nodes, inputs=("x",), outputs=("y",), inits=(), ir=8, opsets=(("", 17),), functions=(), sparse=(), value_info=()):
    graph = helper.make_graph(
        nodes, "g", [vi(i) if isinstance(i, str) else i for i in inputs], [vi(o) if isinstance(o, str) else o for o in outputs],
        initializer=list(inits), sparse_initializer=list(sparse), value_info=list(value_info))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], functions=list(functions))
    m.ir_version = ir
    return m


def external(name, location, offset=None, length=None, dims=(4,), dtype=TensorProto.FLOAT):
    tensor = TensorProto()
    tensor.name = name
    tensor.data_type = dtype
    tensor.dims.extend(dims)
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            entry = tensor.external_data.add()
            entry.key = key
            entry.value = str(value)
    return tensor


def add_with(tensor):
    return model([helper.make_node("Add", ["x", tensor.name], ["y"], name="add")], inits=[tensor],
                 inputs=[vi("x", shape=tensor.dims)], outputs=[vi("y", shape=tensor.dims)])


def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def seeds():
    N = helper.make_node
    w = numpy_helper.from_array(np.arange(2, dtype=np.float32), "w")
    yield "relu", model([N("Relu", ["x"], ["y"], name="relu")])
    yield "add_raw", add_with(w)
    typed = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0], raw=False)
    yield "add_typed", add_with(typed)
    shape = numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "shape")
    yield "reshape", model([N("Reshape", ["x", "shape"], ["y"], name="reshape")], inits=[shape], outputs=[vi("y", shape=(1, 2))])
    yield "constant", model([
        N("Constant", [], ["c"], name="c", value=numpy_helper.from_array(np.ones(2, np.float32))),
        N("Constant", [], ["axes"], name="axes", value_ints=[0]),
        N("Add", ["x", "c"], ["s"], name="add"), N("Unsqueeze", ["s", "axes"], ["y"], name="unsqueeze")],
        outputs=[vi("y", shape=(1, 2))])
    then = helper.make_graph([N("Relu", ["x"], ["t"], name="then_relu")], "then", [], [vi("t")])
    other = helper.make_graph([N("Neg", ["x"], ["e"], name="else_neg")], "else", [], [vi("e")])
    yield "if", model([N("If", ["c"], ["y"], name="if", then_branch=then, else_branch=other)],
                      inputs=["x", vi("c", TensorProto.BOOL, ())])
    body = helper.make_graph(
        [N("Identity", ["cond"], ["cond_out"], name="keep"), N("Add", ["acc", "x"], ["acc_out"], name="accumulate")], "body",
        [vi("i", TensorProto.INT64, ()), vi("cond", TensorProto.BOOL, ()), vi("acc")], [vi("cond_out", TensorProto.BOOL, ()), vi("acc_out")])
    yield "loop", model([N("Loop", ["n", "", "x"], ["y"], name="loop", body=body)], inputs=["x", vi("n", TensorProto.INT64, ())])
    scan_body = helper.make_graph([N("Add", ["s", "e"], ["s2"], name="sum"), N("Identity", ["s2"], ["o"], name="out")], "scan",
                                  [vi("s", shape=()), vi("e", shape=())], [vi("s2", shape=()), vi("o", shape=())])
    yield "scan", model([N("Scan", ["s0", "x"], ["y", "ys"], name="scan", body=scan_body, num_scan_inputs=1)],
                        inputs=[vi("s0", shape=()), "x"], outputs=[vi("y", shape=()), "ys"])
    function = helper.make_function("local", "Twice", ["a"], ["b"], [N("Add", ["a", "a"], ["b"], name="f_add")],
                                    [helper.make_opsetid("", 17)])
    yield "function", model([N("Twice", ["x"], ["y"], name="twice", domain="local")], opsets=(("", 17), ("local", 1)),
                            functions=[function])
    yield "ext_start", add_with(external("w", "weights.bin", 0, 16))
    yield "ext_offset", add_with(external("w", "weights.bin", 64, 64, dims=(16,)))
    yield "ext_to_end", add_with(external("w", "weights.bin", 0, None, dims=(1024,)))
    yield "ext_sub", add_with(external("w", "sub/inner.bin", 32, 16))
    yield "ext_inside_link", add_with(external("w", "inside.bin", 0, 16))
    values = numpy_helper.from_array(np.array([5.0], np.float32), "sp")
    indices = numpy_helper.from_array(np.array([1], np.int64), "sp_indices")
    yield "sparse", model([N("Add", ["x", "sp"], ["y"], name="add")],
                          sparse=[helper.make_sparse_tensor(values, indices, [2])])
    strings = helper.make_tensor("labels", TensorProto.STRING, [2], [b"a", b"b"])
    yield "strings", model([N("Identity", ["x"], ["y"], name="id")], inits=[strings])
    dtypes = [numpy_helper.from_array(np.arange(4).astype(t), f"t_{np.dtype(t).name}")
              for t in (np.float16, np.float64, np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64, np.bool_)]
    yield "dtypes", model([N("Relu", ["x"], ["y"], name="relu")], inits=dtypes)
    yield "int4", model([N("Relu", ["x"], ["y"], name="relu")],
                        inits=[helper.make_tensor("q", TensorProto.INT4, [4], [1, -2, 3, -4])], ir=10, opsets=(("", 21),))
    yield "symbolic", model([N("Relu", ["x"], ["r"], name="relu"), N("Relu", ["r"], ["y"], name="relu2")],
                            inputs=[vi("x", shape=("N", 3))], outputs=[vi("y", shape=("N", 3))], value_info=[vi("r", shape=("N", 3))])
    yield "ml_opset", model([N("Relu", ["x"], ["y"], name="relu")], opsets=(("", 17), ("ai.onnx.ml", 3)))
    yield "unnamed_nodes", model([N("Relu", ["x"], ["r"]), N("Relu", ["r"], ["y"])])
    yield "optional_inputs", model([N("Clip", ["x", "", ""], ["y"], name="clip")])
    big = numpy_helper.from_array(np.arange(17000, dtype=np.float32), "big")
    yield "large_raw", model([N("Relu", ["x"], ["y"], name="relu")], inits=[big])

    # Hostile external data.
    yield "ext_outside_link", add_with(external("w", "outside.bin", 0, 8))
    yield "ext_passwd_link", add_with(external("w", "passwd", 0, 4, dims=(1,)))
    yield "ext_folder_link", add_with(external("w", "up/weights.bin", 0, 16))
    yield "ext_fifo", add_with(external("w", "fifo", 0, 16))
    yield "ext_dev_zero", add_with(external("w", "zero", 0, None))
    yield "ext_folder", add_with(external("w", "sub", 0, 16))
    yield "ext_dotdot", add_with(external("w", "../../etc/passwd", 0, 4, dims=(1,)))
    yield "ext_absolute", add_with(external("w", "/etc/passwd", 0, 4, dims=(1,)))
    yield "ext_offset_2p63", add_with(external("w", "weights.bin", 2**63 - 1, 1, dims=(1,)))
    yield "ext_length_2p63", add_with(external("w", "weights.bin", 16, 2**63 - 1))
    yield "ext_offset_2p64", add_with(external("w", "weights.bin", 2**64 - 1, 16))
    yield "ext_negative", add_with(external("w", "weights.bin", -1, 16))
    yield "ext_short", add_with(external("w", "weights.bin", 4090, 16))

    # Invalid graphs.
    yield "cycle", model([N("Add", ["x", "b"], ["a"], name="A"), N("Relu", ["a"], ["b"], name="B"), N("Relu", ["a"], ["y"], name="C")])
    yield "out_of_order", model([N("Relu", ["a"], ["y"], name="second"), N("Relu", ["x"], ["a"], name="first")])
    yield "two_producers", model([N("Relu", ["x"], ["a"], name="p1"), N("Neg", ["x"], ["a"], name="p2"), N("Relu", ["a"], ["y"], name="c")])
    yield "writes_input", model([N("Relu", ["x"], ["x"], name="w"), N("Relu", ["x"], ["y"], name="r")])
    yield "writes_initializer", model([N("Relu", ["x"], ["w"], name="w"), N("Add", ["x", "w"], ["y"], name="a")], inits=[w])
    yield "undefined_input", model([N("Add", ["x", "q"], ["y"], name="add")])
    yield "undefined_output", model([N("Relu", ["x"], ["z"], name="relu")])
    yield "ir99", model([N("Relu", ["x"], ["y"], name="relu")], ir=99)
    yield "opset99", model([N("Relu", ["x"], ["y"], name="relu")], opsets=(("", 99),))
    huge = TensorProto(name="h", data_type=TensorProto.FLOAT, dims=[2**40, 2**40], raw_data=b"\0" * 16)
    yield "huge_dims", model([N("Relu", ["h"], ["y"], name="relu")], inputs=(), inits=[huge])


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    count = 0
    for name, m in seeds():
        with open(os.path.join(OUT, name + ".onnx"), "wb") as f:
            f.write(m.SerializeToString())
        count += 1
    relu = seeds().__next__()[1].SerializeToString()
    raw = {
        # ModelProto.graph (field 7, length-delimited) claiming 2^63-1 and 2^64-1 bytes.
        "wire_len_2p63": bytes([0x08, 0x08]) + bytes([0x3A]) + varint(2**63 - 1) + relu[:16],
        "wire_len_2p64": bytes([0x08, 0x08]) + bytes([0x3A]) + varint(2**64 - 1) + relu[:16],
        # An initializer's raw_data claiming 2^63-1 bytes inside a plausible graph.
        "wire_raw_2p63": bytes([0x08, 0x08, 0x3A, 0x10, 0x2A, 0x0E, 0x4A]) + varint(2**63 - 1),
        # A varint that never ends, and an unknown wire type.
        "wire_endless_varint": bytes([0x08]) + bytes([0xFF] * 12),
        "wire_type_7": bytes([0x0F, 0x00]),
        "truncated": relu[: len(relu) // 2],
    }
    for name, data in raw.items():
        with open(os.path.join(OUT, name + ".onnx"), "wb") as f:
            f.write(data)
        count += 1
    print(f"{count} seeds in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
