import Foundation

/// Types every value of a model with one consistent set of symbols, through the bridge: ONNX
/// Runtime's symbolic shape inference, or ONNX's where that cannot take the model. Weights do not travel: tensors over 1 KiB are passed as external references that
/// inference never reads, so a 1 GB model costs no more than its structure.
public struct ShapeInference: Sendable {
    let toolchain: Toolchain

    /// Creates the step over a toolchain.
    public init(toolchain: Toolchain) {
        self.toolchain = toolchain
    }

    /// The metadata entry the bridge sets on the inferred model: `symbolic` when ONNX Runtime's
    /// symbolic shape inference made its shapes, `onnx` when ONNX's did (python/tpat_bridge/shapes.py).
    static let engineKey = "tpat.shape_inference"

    /// Gives every `If`/`Loop`/`Scan` body of `graph` the value_info the inference found for it,
    /// recursively: every value's when `replacing` (the symbolic inference, whose symbols relate
    /// the body to the model), else only those the body leaves without a full type (ONNX's, whose
    /// `unk__N` relate nothing, but which still types torchvision's NonMaxSuppression in an If).
    /// Bodies are matched through their owner node's outputs and the attribute, since the
    /// inference may reorder a body's nodes.
    static func takeBodyTypes(into graph: inout Onnx_GraphProto, from inferred: Onnx_GraphProto, replacing: Bool = true) {
        var inferredOwners: [String: Onnx_NodeProto] = [:]
        for node in inferred.node { if let first = node.output.first(where: { !$0.isEmpty }) { inferredOwners[first] = node } }
        for n in graph.node.indices {
            guard let first = graph.node[n].output.first(where: { !$0.isEmpty }), let owner = inferredOwners[first] else { continue }
            for a in graph.node[n].attribute.indices {
                let name = graph.node[n].attribute[a].name
                guard let twin = owner.attribute.first(where: { $0.name == name }) else { continue }
                if graph.node[n].attribute[a].hasG, twin.hasG {
                    take(into: &graph.node[n].attribute[a].g, from: twin.g)
                }
                for k in graph.node[n].attribute[a].graphs.indices where twin.graphs.indices.contains(k) {
                    take(into: &graph.node[n].attribute[a].graphs[k], from: twin.graphs[k])
                }
            }
        }
        func take(into body: inout Onnx_GraphProto, from twin: Onnx_GraphProto) {
            let known = replacing ? [] : Set(body.valueInfo.filter { TensorType($0.type)?.isFullyKnown == true }.map(\.name))
            let typed = twin.valueInfo.filter { TensorType($0.type)?.isFullyKnown == true && !known.contains($0.name) }
            let names = Set(typed.map(\.name))
            body.valueInfo = body.valueInfo.filter { !names.contains($0.name) } + typed
            takeBodyTypes(into: &body, from: twin, replacing: replacing)
        }
    }

    /// Whether the values a selection reads and writes need shape inference: a type that is not
    /// fully known, or a symbolic dim that a whole-model inference would relate to the others.
    public static func isNeeded(for values: Set<String>, in index: GraphIndex) -> Bool {
        values.contains { value in
            guard !value.isEmpty, !index.isConstant(value) else { return false }
            guard let type = index.types[value], type.isFullyKnown else { return true }
            return type.shape?.contains { if case .symbolic = $0 { true } else { false } } ?? false
        }
    }

    /// Whether the values the selected nodes read and write (in their own graphs) need shape
    /// inference.
    public static func isNeeded(for selected: [SelectedNode], in graphs: ModelGraphs) -> Bool {
        selected.contains { node in
            guard let index = graphs.entry(at: node.path)?.index else { return true }
            return isNeeded(for: Set(node.node.input + node.node.output), in: index)
        }
    }

    /// Returns `model` with the inferred types: every value whose type was missing or partial,
    /// and, when the symbolic inference ran, every value it typed. `source`, the model's file
    /// (read, never written): where both inferences leave values without a rank, the bridge runs
    /// it in ONNX Runtime at two sizes to read them (its weights decide what a detector's
    /// post-processing passes on).
    public func fillMissingTypes(of model: ONNXModel, source: URL? = nil) async throws(TPATError) -> ONNXModel {
        let fm = FileManager.default
        let work = fm.temporaryDirectory.appendingPathComponent("tpat-shapes-\(UUID().uuidString)")
        // A signal while the bridge infers removes this folder too (Cancellation).
        try Cancellation.shared.track(stagingFolder: work)
        defer { Cancellation.shared.removeStagingFolder(work) }
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
            toolchain.python, arguments: ["-m", "tpat_bridge", "infer-shapes", input.path, output.path] + (source.flatMap { FileManager.default.isReadableFile(atPath: $0.path) ? ["--run-model", $0.path] : nil } ?? []),
            environment: ["PYTHONPATH": toolchain.bridgePath.path], log: work.appendingPathComponent("infer.log"))
        guard run.succeeded, let data = try? Data(contentsOf: output), let inferred = try? Onnx_ModelProto(serializedBytes: data) else {
            throw .tool(name: "ONNX shape inference", reason: "it failed on the model; declare the shapes of the selected nodes' inputs and outputs (value_info), or fix the model:\n\(run.logTail(lines: 8))")
        }
        var result = model
        let declared = GraphIndex(model: model).types
        let inputs = Set(model.graph.input.map(\.name))
        // The symbolic inference relates every dim of the model; its answer replaces declared
        // types (exporters declare dims like `unk__3` or `Conv_output_dim_2` that relate
        // nothing). ONNX's inference only fills in what was not declared.
        let symbolic = inferred.metadataProps.contains { $0.key == Self.engineKey && $0.value == "symbolic" }
        func better(_ name: String, _ type: Onnx_TypeProto) -> Bool {
            guard let found = TensorType(type), found.isFullyKnown else { return false }
            guard let had = declared[name], had.isFullyKnown else { return true }
            // A declared static shape relates nothing, so it stays where an inference disagrees
            // (ONNX Runtime's symbolic inference gives GatherND with batch_dims one dim too many).
            if had.shape?.allSatisfy({ $0.fixedValue != nil }) == true { return false }
            return symbolic
        }
        var inferredTypes: [String: Onnx_TypeProto] = [:]
        for info in inferred.graph.valueInfo + inferred.graph.output where !inputs.contains(info.name) && better(info.name, info.type) {
            inferredTypes[info.name] = info.type
        }
        var valueInfo = model.graph.valueInfo.filter { inferredTypes[$0.name] == nil }
        let outputs = Set(model.graph.output.map(\.name))
        for info in inferred.graph.valueInfo where inferredTypes[info.name] != nil && !outputs.contains(info.name) {
            valueInfo.append(info)
        }
        result.proto.graph.valueInfo = valueInfo
        Self.takeBodyTypes(into: &result.proto.graph, from: inferred.graph, replacing: symbolic)
        for (i, output) in result.proto.graph.output.enumerated() {
            if let type = inferredTypes[output.name] { result.proto.graph.output[i].type = type }
        }
        return result
    }
}
