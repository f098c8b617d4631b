import Foundation
import Testing

@testable import TPATKit

/// Paths and helpers shared by the tests.
enum TestSupport {
    /// The package root.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Models written by Python's onnx package during set-up (scripts/make-models.py).
    static func fixture(_ relative: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> URL {
        let url = root.appendingPathComponent("Tests/Fixtures/generated").appendingPathComponent(relative)
        try #require(
            FileManager.default.fileExists(atPath: url.path),
            "fixture \(relative) is missing: run `make test` (scripts/setup.sh writes it)", sourceLocation: sourceLocation)
        return url
    }

    /// The demo model.
    static func demoModel() throws -> URL {
        let url = root.appendingPathComponent("models/generated/demo.onnx")
        try #require(FileManager.default.fileExists(atPath: url.path), "run `make test`: scripts/setup.sh writes the demo model")
        return url
    }

    /// A fresh temporary folder.
    /// The shape inference stage with this checkout's toolchain (the bridge in its .venv).
    static func shapeInference() throws -> ShapeInference {
        ShapeInference(toolchain: try Toolchain.discover(environment: ["TPAT_HOME": root.path]))
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tpat-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The files in a folder, sorted.
    static func listing(_ url: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
    }

    /// A small model built in Swift: x[N,4] -> Relu -> Add(bias) -> y, with an unnamed node.
    static func smallModel() -> Onnx_ModelProto {
        var model = Onnx_ModelProto()
        model.irVersion = 8
        model.producerName = "tpat-tests"
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 17
        model.opsetImport = [opset]
        var graph = Onnx_GraphProto()
        graph.name = "small"
        var relu = Onnx_NodeProto()
        relu.opType = "Relu"
        relu.name = "relu"
        relu.input = ["x"]
        relu.output = ["r"]
        var add = Onnx_NodeProto()
        add.opType = "Add"
        add.input = ["r", "bias"]
        add.output = ["y"]
        graph.node = [relu, add]
        var bias = TensorValue(elementType: .float32, shape: [4], bytes: Data(repeating: 0, count: 16)).proto(name: "bias")
        bias.docString = "zeros"
        graph.initializer = [bias]
        var x = Onnx_ValueInfoProto()
        x.name = "x"
        x.type = TensorType(elementType: .float32, shape: [.symbolic("N"), .fixed(4)]).proto
        var y = Onnx_ValueInfoProto()
        y.name = "y"
        y.type = TensorType(elementType: .float32, shape: [.symbolic("N"), .fixed(4)]).proto
        graph.input = [x]
        graph.output = [y]
        model.graph = graph
        return model
    }

    /// The `tpat` built beside the running test bundle (so `swift test --scratch-path DIR` tests its
    /// own build), else `.build/debug/tpat`.
    static let tpatBinary: URL = {
        let beside = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("tpat")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        return root.appendingPathComponent(".build/debug/tpat")
    }()

    /// Runs the built `tpat`; the kernel cache is off unless `environment` names one, so that
    /// tests never read what an earlier run left in the user's cache.
    static func runTPAT(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        let binary = tpatBinary
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build tpat first (make test does)")
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["TPAT_KERNEL_CACHE": "off"].merging(environment) { $1 }) { $1 }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}
