import Foundation

/// Many self-test cases made by one bridge process (`python -m tpat_bridge references`,
/// python/tpat_bridge/reference.py `write_references`): ONNX Runtime is imported once per
/// process instead of once per case, which was most of the reference phase's time.
public struct ReferenceBatch: Codable, Sendable, Equatable {
    /// One case of one plugin's self-test.
    public struct Job: Codable, Sendable, Equatable {
        /// The plugin's sub-model (`node.onnx`).
        public var model: String
        /// The case's folder (`test/case0`); its log is `<out_dir>.log`.
        public var outDir: String
        /// Seed of drawn inputs.
        public var seed: Int
        /// Values of the sub-model's symbolic dims for drawn inputs.
        public var dims: [String: Int64]
        /// A folder of captured inputs (`input_<i>.npy`) instead of drawn ones.
        public var inputs: String?
        /// The kernels' size outputs in order (the manifest's data-dependent dims): after the
        /// node's outputs, the case gets one 0-D int32 output each, the extent ONNX Runtime gave.
        public var sizeOutputs: [SizeOutput]?

        /// A size output of the reference: the extent of `output`'s dim `dim`.
        public struct SizeOutput: Codable, Sendable, Equatable {
            public var output: Int
            public var dim: Int

            public init(output: Int, dim: Int) {
                self.output = output
                self.dim = dim
            }
        }

        enum CodingKeys: String, CodingKey {
            case model, seed, dims, inputs, sizeOutputs
            case outDir = "out_dir"
        }
    }

    /// What became of one job.
    public struct Outcome: Codable, Sendable, Equatable {
        /// Why the case could not be made (ONNX Runtime's reason, on one line), or nil.
        public var error: String?
    }

    /// The result document: one outcome per job, in order.
    public struct Result: Codable, Sendable, Equatable {
        /// The outcomes.
        public var jobs: [Outcome]
    }

    /// The jobs.
    public var jobs: [Job]

    /// Runs the batch through the bridge; request, result and log are kept in `folder`.
    public func run(with toolchain: Toolchain, in folder: URL, name: String) async throws(TPATError) -> Result {
        let requestFile = folder.appendingPathComponent("\(name)-request.json")
        let resultFile = folder.appendingPathComponent("\(name)-result.json")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try JSONEncoder().encode(self).write(to: requestFile)
        } catch {
            throw .tool(name: "reference data", reason: "cannot write \(requestFile.path): \(error.localizedDescription)")
        }
        let run = try await ToolRunner.run(
            toolchain.python, arguments: ["-m", "tpat_bridge", "references", requestFile.path, resultFile.path],
            environment: ["PYTHONPATH": toolchain.bridgePath.path], log: folder.appendingPathComponent("\(name).log"))
        guard run.succeeded, let data = try? Data(contentsOf: resultFile), let result = try? JSONDecoder().decode(Result.self, from: data),
            result.jobs.count == jobs.count
        else {
            throw .tool(name: "reference data", reason: "the bridge stopped: \(run.reason)")
        }
        return result
    }
}
