"""Command line of the bridge: ``manifests``, ``capture``, ``reference``, ``references``, ``infer-shapes``."""

from __future__ import annotations

import argparse


def parse_dims(text: str | None) -> dict[str, int]:
    """``N=4,L=16`` -> {"N": 4, "L": 16}."""
    dims: dict[str, int] = {}
    for item in (text or "").split(","):
        if item.strip():
            name, _, value = item.partition("=")
            dims[name.strip()] = int(value)
    return dims


def main(argv: list[str] | None = None) -> int:
    """Dispatch a subcommand; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tpat_bridge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("manifests", help="compile nodes with TVM and write kernel manifests")
    p.add_argument("request")
    p.add_argument("result")
    p = sub.add_parser("reference", help="random inputs and ONNX Runtime outputs for a sub-model")
    p.add_argument("model")
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dims", default="", help="values of symbolic dims, e.g. N=4,L=16")
    p.add_argument("--inputs", default=None, help="a folder of input_<i>.npy kept by capture, instead of drawn inputs")
    p = sub.add_parser("references", help="many reference jobs in one process (a JSON request)")
    p.add_argument("request")
    p.add_argument("result")
    p = sub.add_parser("capture", help="run the whole model and keep each plugin's real inputs")
    p.add_argument("request")
    p.add_argument("result")
    p.add_argument("out_dir")
    p = sub.add_parser("infer-shapes", help="ONNX shape inference, external data preserved")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--run-model", default=None, help="the model with its weights, run to read the shapes no inference finds")
    args = parser.parse_args(argv)
    if args.command == "manifests":
        from .bridge import run_request

        return run_request(args.request, args.result)
    if args.command == "reference":
        from .reference import write_reference

        write_reference(args.model, args.out_dir, args.seed, parse_dims(args.dims), args.inputs)
        return 0
    if args.command == "references":
        from .reference import write_references

        return write_references(args.request, args.result)
    if args.command == "capture":
        from .capture import capture

        return capture(args.request, args.result, args.out_dir)
    from .shapes import infer_shapes

    infer_shapes(args.input, args.output, args.run_model)
    return 0
