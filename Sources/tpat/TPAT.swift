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

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every node with its shapes and whether TensorRT and TVM can run it.")

    @Argument(help: "The ONNX model.")
    var model: String

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let url = URL(fileURLWithPath: model)
        let loaded: ONNXModel
        let tables: OpSupportTables
        do {
            loaded = try ONNXModel.load(contentsOf: url)
            tables = try OpSupportTables.bundled()
        } catch let error as CustomStringConvertible {
            fail(error.description)
        }
        let report = ModelInspector(tables: tables).inspect(loaded, path: model)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(report)
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(report.renderTable(), terminator: "")
        }
    }
}
