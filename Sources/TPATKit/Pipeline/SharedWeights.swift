import Foundation

/// Keeps each weight once in OUT. A plugin folder holds its node as a standalone model
/// (`node.onnx`, what ONNX Runtime runs for the self-test data and what tuning regenerates the
/// kernels from) and the constants its kernels embed (`constants/cN.bin`). For most nodes TVM
/// embeds a weight unchanged (a Conv's filter), so `node.onnx` would hold a second copy of every
/// weight of the model: a node's initializer whose bytes equal a constant file instead points
/// there as ONNX external data. A weight TVM transformed (a Gemm's transposed B) stays inline.
enum SharedWeights {
    /// Initializers smaller than this stay inline: a reference costs about as much.
    static let minimumBytes = 1024

    /// `subModel` with every initializer of at least ``minimumBytes`` whose raw bytes equal one of
    /// `constants` (paths relative to the plugin folder) stored as external data in that file.
    /// Returns nil when nothing is shared.
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
        var model = subModel
        var shared = false
        for k in model.graph.initializer.indices {
            let tensor = model.graph.initializer[k]
            guard tensor.dataLocation != .external, tensor.rawData.count >= minimumBytes else { continue }
            guard let match = candidates.first(where: { $0.bytes == tensor.rawData.count && bytes(of: $0) == tensor.rawData }) else { continue }
            model.graph.initializer[k].rawData = Data()
            model.graph.initializer[k].dataLocation = .external
            model.graph.initializer[k].externalData = ExternalDataReference(location: match.file, offset: 0, length: match.bytes).entries
            shared = true
        }
        return shared ? model : nil
    }
}
