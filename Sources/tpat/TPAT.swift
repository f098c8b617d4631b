import ArgumentParser
import Foundation
import TPATKit

/// The `tpat` command: a thin layer over TPATKit.
@main
struct TPATCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tpat",
        abstract: "TVM Plugin Autogen Tool: turn ONNX nodes into TensorRT plugins with TVM-generated CUDA kernels.",
        subcommands: [Inspect.self, Generate.self]
    )
}

/// Prints a message to standard error and exits with a non-zero code; the tool never crashes on
/// bad input.
func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data(("tpat: error: " + message + "\n").utf8))
    Foundation.exit(code)
}

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every node (If/Loop/Scan bodies included) with its shapes and whether TensorRT runs it and TPAT can generate it.",
        discussion: """
            Shapes are the ones `tpat generate` works with: when the model leaves dims unknown or \
            symbolic, ONNX Runtime's symbolic shape inference runs first (through TPAT's Python \
            environment; without it, the declared shapes are shown). Body nodes are listed by the \
            path name `--nodes` accepts. TENSORRT says whether TensorRT's ONNX parser runs the node \
            ("no (limit)": the op, but not beyond a documented limit the node breaks), AUTO whether \
            `--auto` takes it, TPAT whether TPAT can generate a plugin for it, or why not. The table \
            is followed by one row per op type; long names and shapes are cut, `--json` has them \
            whole (fixed dims as numbers, symbolic ones as strings, unknown ones null).
            """)

    @Argument(help: "The ONNX model.")
    var model: String

    @Flag(help: "Print JSON instead of a table: every node and the per-op-type summary, whatever --summary says.")
    var json = false

    @Flag(help: "Print only the per-op-type summary: nodes, TensorRT support, what --op-types and --auto would take, and what TPAT can generate.")
    var summary = false

    @Flag(name: .customLong("no-shape-inference"), help: "Show the shapes the model declares; do not run shape inference.")
    var noShapeInference = false

    func run() async throws {
        let url = URL(fileURLWithPath: model)
        let loaded: ONNXModel
        let tables: OpSupportTables
        do {
            loaded = try ONNXModel.load(contentsOf: url)
            tables = try OpSupportTables.bundled()
        } catch let error as CustomStringConvertible {
            fail(TerminalText.sanitized(error.description))
        }
        if !noShapeInference, isatty(STDERR_FILENO) != 0, ModelInspector.needsShapeInference(loaded) {
            // a large model's inference takes a minute; say why nothing happens meanwhile
            FileHandle.standardError.write(Data("tpat: relating the model's dims (shape inference; --no-shape-inference skips it)...\n".utf8))
        }
        let (report, warning) = await ModelInspector(tables: tables).inspect(
            loaded, path: model, inferShapes: !noShapeInference, toolchain: { () throws(TPATError) in try Toolchain.discover() })
        if let warning {
            FileHandle.standardError.write(Data(("tpat: warning: " + TerminalText.escaped(warning) + "\n").utf8))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(report)
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(summary ? report.renderSummary() : report.renderTable(), terminator: "")
        }
    }
}
