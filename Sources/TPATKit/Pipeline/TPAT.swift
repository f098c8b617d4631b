import Foundation

/// The library's front door, in the shape of the original TPAT design:
/// `pipeline(onnxFile, nodeNames, enableTuning, tuningOptions, outputONNX) -> (outputONNX, pluginPaths)`.
public enum TPAT {
    /// Turns the named nodes of `onnxFile` into TensorRT plugins and writes the rewritten model to
    /// `outputONNX`, whose folder must be new or empty; the plugins go into a `plugins/` folder beside it. Returns the rewritten
    /// model's path and the plugins' folders. Per-node failures are in the folder's report.json;
    /// if no node became a plugin this throws.
    public static func pipeline(
        onnxFile: String, nodeNames: [String], enableTuning: Bool = false, tuningOptions: TuningOptions? = nil,
        outputONNX: String, arch: String, tensorRTAPI: TensorRTAPI = .v3, tensorRTDirectory: String? = nil
    ) async throws(TPATError) -> (outputONNX: String, pluginPaths: [String]) {
        let output = URL(fileURLWithPath: outputONNX)
        try Toolchain.validateArch(arch)
        var tuning: TuningOptions?
        if enableTuning {
            tuning = tuningOptions ?? TuningOptions(
                trials: 2000,
                database: FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/tpat/tuning").path)
        }
        let request = PipelineRequest(
            model: URL(fileURLWithPath: onnxFile), criteria: .names(nodeNames),
            outputDirectory: output.deletingLastPathComponent(), outputModelName: output.lastPathComponent,
            kernels: KernelOptions(arch: arch, tuning: tuning), target: TensorRTTarget(api: tensorRTAPI),
            tensorRTDirectory: tensorRTDirectory.map { URL(fileURLWithPath: $0) }, force: false)
        let report = try await Pipeline(toolchain: try Toolchain.discover()).run(request)
        guard let model = report.outputModel else {
            throw .usage(
                "no node became a plugin: " + report.failures.map { "\(TerminalText.escaped($0.node)): \($0.message)" }.joined(separator: "; ")
                    + (report.failureLogs.map { " (the report and the logs are in \($0))" } ?? ""))
        }
        return (model, report.pluginPaths)
    }
}
