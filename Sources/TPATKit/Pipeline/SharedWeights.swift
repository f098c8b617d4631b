import Foundation

/// Keeps each weight once in OUT. A plugin folder holds its node as a standalone model
/// (`node.onnx`, what ONNX Runtime runs for the self-test data and what tuning regenerates the
/// kernels from) and the constants its kernels embed (`constants/cN.bin`). For most nodes TVM
/// embeds a weight unchanged (a Conv's filter), so `node.onnx` would hold a second copy of every
/// weight of the model: a node's initializer whose bytes equal a constant file instead points
/// there as ONNX external data. A matrix TVM transposed (a Gemm's B with `transB=1`, the largest
/// weight of a classifier) points at the transposed constant through a Transpose node, so that
/// `node.onnx` still computes exactly what the original node computes.
enum SharedWeights {
    /// Initializers smaller than this stay inline: a reference costs about as much.
    static let minimumBytes = 1024

    /// `subModel` with every initializer of at least ``minimumBytes`` whose raw bytes equal one of
    /// `constants` (paths relative to the plugin folder) stored as external data in that file, and
    /// every 2-D initializer whose transpose equals a constant read from that constant through a
    /// Transpose node. Returns nil when nothing is shared.
    static func sharing(_ subModel: Onnx_ModelProto, constants: [KernelManifest.Constant], in directory: URL) -> Onnx_ModelProto? {
        let candidates = constants.filter { $0.bytes >= minimumBytes }
        guard !candidates.isEmpty else { return nil }
        var contents: [String: Data] = [:]
        func bytes(of constant: KernelManifest.Constant) -> Data? {
            if let known = contents[constant.file] { return known }
            // The bridge wrote these files into the staging folder just now; a missing one
            // simply shares nothing.
            guard let data = try? Data(contentsOf: directory.appendingPathComponent(constant.file), options: .alwaysMapped) else { return nil }
            contents[constant.file] = data
            return data
        }
        func external(_ constant: KernelManifest.Constant) -> [Onnx_StringStringEntryProto] {
            ExternalDataReference(location: constant.file, offset: 0, length: constant.bytes).entries
        }
        var model = subModel
        var transposes: [Onnx_NodeProto] = []
        let graphInputs = Set(model.graph.input.map(\.name))
        var taken = Set(model.graph.initializer.map(\.name) + model.graph.input.map(\.name) + model.graph.node.flatMap(\.output))
        for k in model.graph.initializer.indices {
            let tensor = model.graph.initializer[k]
            guard tensor.dataLocation != .external, tensor.rawData.count >= minimumBytes else { continue }
            if let match = candidates.first(where: { $0.bytes == tensor.rawData.count && bytes(of: $0) == tensor.rawData }) {
                model.graph.initializer[k].rawData = Data()
                model.graph.initializer[k].dataLocation = .external
                model.graph.initializer[k].externalData = external(match)
                continue
            }
            // An initializer also listed as a graph input (IR < 4) keeps its name: it may be fed.
            guard tensor.dims.count == 2, !graphInputs.contains(tensor.name),
                let bits = ElementType(onnx: tensor.dataType)?.bitWidth, bits % 8 == 0,
                let match = candidates.first(where: {
                    $0.shape == [tensor.dims[1], tensor.dims[0]] && $0.bytes == tensor.rawData.count
                        && bytes(of: $0).map { isTranspose($0, of: tensor.rawData, rows: Int(tensor.dims[0]), columns: Int(tensor.dims[1]), element: bits / 8) } == true
                })
            else { continue }
            // The constant is stored as itself (shape [columns, rows]); a Transpose node gives the
            // node the initializer's original name and shape.
            let stored = name(for: tensor.name + "_tpat_transposed", avoiding: &taken)
            model.graph.initializer[k].name = stored
            model.graph.initializer[k].dims = [tensor.dims[1], tensor.dims[0]]
            model.graph.initializer[k].rawData = Data()
            model.graph.initializer[k].dataLocation = .external
            model.graph.initializer[k].externalData = external(match)
            var transpose = Onnx_NodeProto()
            transpose.opType = "Transpose"
            transpose.name = name(for: tensor.name + "_tpat_transpose", avoiding: &taken)
            transpose.input = [stored]
            transpose.output = [tensor.name]
            transposes.append(transpose)
        }
        guard model != subModel else { return nil }
        model.graph.node.insert(contentsOf: transposes, at: 0)
        return model
    }

    /// Whether `candidate` holds the transpose of the row-major `rows` x `columns` matrix `matrix`
    /// of `element`-byte elements.
    static func isTranspose(_ candidate: Data, of matrix: Data, rows: Int, columns: Int, element: Int) -> Bool {
        guard candidate.count == matrix.count, rows * columns * element == matrix.count else { return false }
        return candidate.withUnsafeBytes { (t: UnsafeRawBufferPointer) in
            matrix.withUnsafeBytes { (m: UnsafeRawBufferPointer) in
                for i in 0..<rows {
                    for j in 0..<columns {
                        let a = (i * columns + j) * element, b = (j * rows + i) * element
                        for e in 0..<element where m[a + e] != t[b + e] { return false }
                    }
                }
                return true
            }
        }
    }

    /// `base`, or `base` with a number appended, that is in none of `taken`; records it there.
    private static func name(for base: String, avoiding taken: inout Set<String>) -> String {
        var candidate = base
        var n = 1
        while taken.contains(candidate) {
            candidate = "\(base)_\(n)"
            n += 1
        }
        taken.insert(candidate)
        return candidate
    }
}
