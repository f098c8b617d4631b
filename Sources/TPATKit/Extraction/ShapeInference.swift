import Foundation

/// Fills in the value_info a model does not declare, with ONNX's shape inference (through the
/// bridge). Weights do not travel: tensors over 1 KiB are passed as external references that
/// inference never reads, so a 1 GB model costs no more than its structure.
public struct ShapeInference: Sendable {
    let toolchain: Toolchain

    /// Creates the step over a toolchain.
    public init(toolchain: Toolchain) {
        self.toolchain = toolchain
    }

    /// Returns `model` with value_info added for every value whose type was missing or partial.
    public func fillMissingTypes(of model: ONNXModel) async throws(TPATError) -> ONNXModel {
        let fm = FileManager.default
        let work = fm.temporaryDirectory.appendingPathComponent("tpat-shapes-\(UUID().uuidString)")
        defer { try? fm.removeItem(at: work) }
        var skeleton = model.proto
        TensorWalk.transform(&skeleton) { tensor in
            guard tensor.dataLocation == .external || tensor.rawData.count > 1024 else { return }
            tensor.rawData = Data()
            tensor.dataLocation = .external
            tensor.externalData = ExternalDataReference(location: "tpat-not-read.bin", offset: 0, length: nil).entries
        }
        let input = work.appendingPathComponent("model.onnx")
        let output = work.appendingPathComponent("inferred.onnx")
        do {
            try fm.createDirectory(at: work, withIntermediateDirectories: true)
            let bytes: Data = try skeleton.serializedBytes()
            try bytes.write(to: input)
        } catch {
            throw .tool(name: "shape inference", reason: "cannot write a temporary model in \(work.path): \(error)")
        }
        let run = try await ToolRunner.run(
            toolchain.python, arguments: ["-m", "tpat_bridge", "infer-shapes", input.path, output.path],
            environment: ["PYTHONPATH": toolchain.bridgePath.path], log: work.appendingPathComponent("infer.log"))
        guard run.succeeded, let data = try? Data(contentsOf: output), let inferred = try? Onnx_ModelProto(serializedBytes: data) else {
            throw .tool(name: "ONNX shape inference", reason: "it failed on the model; declare the shapes of the selected nodes' inputs and outputs (value_info), or fix the model:\n\(run.logTail(lines: 8))")
        }
        var result = model
        let declared = GraphIndex(model: model).types
        let known = Set(model.graph.input.map(\.name) + model.graph.output.map(\.name))
        var valueInfo = model.graph.valueInfo.filter { info in
            // Drop partial declarations that inference improved on.
            !inferred.graph.valueInfo.contains { $0.name == info.name && TensorType($0.type)?.isFullyKnown == true && declared[info.name]?.isFullyKnown != true }
        }
        for info in inferred.graph.valueInfo where !known.contains(info.name) && declared[info.name]?.isFullyKnown != true {
            valueInfo.append(info)
        }
        result.proto.graph.valueInfo = valueInfo
        for (i, output) in result.proto.graph.output.enumerated() where declared[output.name]?.isFullyKnown != true {
            if let better = inferred.graph.output.first(where: { $0.name == output.name }), TensorType(better.type) != nil {
                result.proto.graph.output[i].type = better.type
            }
        }
        return result
    }
}
