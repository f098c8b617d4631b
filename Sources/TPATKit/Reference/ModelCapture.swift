import Foundation

/// What the bridge's `capture` command is asked: run the original model in ONNX Runtime, once per
/// case, and keep the values each plugin reads (python/tpat_bridge/capture.py, `CaptureRequest`).
public struct CaptureRequest: Codable, Sendable, Equatable {
    /// One run of the whole model.
    public struct Case: Codable, Sendable, Equatable {
        /// The case's folder name (`case0`, ...).
        public var name: String
        /// Symbolic dims of the model's inputs fixed for this case; the others get values that
        /// suit where they appear.
        public var dims: [String: Int64]
    }

    /// A plugin and the model values that are its inputs, in the plugin's input order.
    public struct Plugin: Codable, Sendable, Equatable {
        /// The plugin's name.
        public var id: String
        /// The original model's value names.
        public var values: [String]
    }

    /// The original model's path.
    public var model: String
    /// Seed of the drawn model inputs.
    public var seed: Int
    /// The runs.
    public var cases: [Case]
    /// A `.npz` of the model's inputs given by the user (one case), or nil to draw them.
    public var inputs: String?
    /// The plugins whose inputs to keep.
    public var plugins: [Plugin]
}

/// What `capture` answers (python/tpat_bridge/capture.py, the result document).
public struct CaptureResult: Codable, Sendable, Equatable {
    /// One run of the whole model.
    public struct Case: Codable, Sendable, Equatable {
        /// The case's folder name.
        public var name: String
        /// The value every symbolic dim of the model's inputs took.
        public var dims: [String: Int64]
        /// Why ONNX Runtime could not run the model, or nil.
        public var error: String?
    }

    /// The runs, in request order.
    public var cases: [Case]
    /// For each plugin and case, the folder of its captured inputs (`input_<i>.npy`), or nil.
    public var plugins: [String: [String: String?]]
    /// Plugins whose inputs cannot be captured (a value inside an If/Loop body), with the reason.
    public var missing: [String: String]
    /// For each plugin and case, the bytes of its captured inputs.
    public var bytes: [String: [String: Int]]
    /// For each case that ran, the `.npz` of the model inputs it ran on (keyed by graph input).
    public var modelInputs: [String: String]?

    /// The folder of `plugin`'s inputs in `caseName`, when they were captured.
    public func inputs(of plugin: String, in caseName: String) -> URL? {
        guard let folder = plugins[plugin]?[caseName] ?? nil else { return nil }
        return URL(fileURLWithPath: folder)
    }
}

/// Runs the bridge's `capture` command.
public struct ModelCapture: Sendable {
    let toolchain: Toolchain

    /// Creates the step over a toolchain.
    public init(toolchain: Toolchain) {
        self.toolchain = toolchain
    }

    /// Runs `request`, keeping the captured inputs and the log in `folder`. Throws only when the
    /// bridge itself fails; a model ONNX Runtime cannot run comes back as each case's `error`.
    public func run(_ request: CaptureRequest, in folder: URL) async throws(TPATError) -> CaptureResult {
        let requestFile = folder.appendingPathComponent("capture-request.json")
        let resultFile = folder.appendingPathComponent("capture-result.json")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try encoder.encode(request).write(to: requestFile)
        } catch {
            throw .tool(name: "reference data", reason: "cannot write \(requestFile.path): \(error.localizedDescription)")
        }
        let run = try await ToolRunner.run(
            toolchain.python,
            arguments: ["-m", "tpat_bridge", "capture", requestFile.path, resultFile.path, folder.appendingPathComponent("inputs").path],
            environment: ["PYTHONPATH": toolchain.bridgePath.path], log: folder.appendingPathComponent("capture.log"))
        guard run.succeeded else {
            throw .tool(name: "reference data", reason: "running the whole model in ONNX Runtime failed: \(run.logTail(lines: 1))")
        }
        do {
            return try JSONDecoder().decode(CaptureResult.self, from: Data(contentsOf: resultFile))
        } catch {
            throw .tool(name: "reference data", reason: "the capture result \(resultFile.path) cannot be read: \(error)")
        }
    }
}
