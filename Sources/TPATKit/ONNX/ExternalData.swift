import Foundation

/// Where a tensor's bytes live when its `data_location` is `EXTERNAL`: a file relative to the
/// model's folder, an offset and a length.
public struct ExternalDataReference: Equatable, Sendable {
    /// The file name, relative to the model's folder.
    public var location: String
    /// Byte offset of the tensor in the file.
    public var offset: Int
    /// Byte length, or nil for "to the end of the file".
    public var length: Int?

    /// Reads the reference from a tensor; nil when the tensor's data is stored inline.
    public init?(_ tensor: Onnx_TensorProto) throws(ONNXError) {
        guard tensor.dataLocation == .external else { return nil }
        var location: String?
        var offset = 0
        var length: Int?
        for entry in tensor.externalData {
            switch entry.key {
            case "location": location = entry.value
            case "offset":
                guard let value = Int(entry.value), value >= 0 else {
                    throw .malformedTensor(tensor: tensor.name, reason: "external data offset '\(entry.value)' is not a byte count")
                }
                offset = value
            case "length":
                guard let value = Int(entry.value), value >= 0 else {
                    throw .malformedTensor(tensor: tensor.name, reason: "external data length '\(entry.value)' is not a byte count")
                }
                length = value
            default: continue
            }
        }
        guard let location, !location.isEmpty else {
            throw .malformedTensor(tensor: tensor.name, reason: "data_location is EXTERNAL but no location is given")
        }
        self.location = location
        self.offset = offset
        self.length = length
    }

    /// Creates a reference.
    public init(location: String, offset: Int, length: Int?) {
        self.location = location
        self.offset = offset
        self.length = length
    }

    /// The key/value entries ONNX stores for this reference.
    var entries: [Onnx_StringStringEntryProto] {
        var result = [entry("location", location), entry("offset", String(offset))]
        if let length { result.append(entry("length", String(length))) }
        return result
    }

    private func entry(_ key: String, _ value: String) -> Onnx_StringStringEntryProto {
        var e = Onnx_StringStringEntryProto()
        e.key = key
        e.value = value
        return e
    }
}

/// Reads the tensors a model keeps in side files, lazily, and checks that those files are there.
public struct ExternalDataStore: Sendable {
    let model: ONNXModel

    /// Every tensor of the model (initializers and tensor attributes, subgraphs included) whose
    /// data is external, with its reference.
    public func references() throws(ONNXError) -> [(tensor: String, reference: ExternalDataReference)] {
        var result: [(String, ExternalDataReference)] = []
        var failure: ONNXError?
        TensorWalk.visit(model.proto) { tensor in
            guard failure == nil else { return }
            do throws(ONNXError) {
                if let reference = try ExternalDataReference(tensor) { result.append((tensor.name, reference)) }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return result
    }

    /// Checks that every external data file exists inside the model's folder and holds the
    /// bytes its tensors claim.
    public func validate() throws(ONNXError) {
        var sizes: [String: Int] = [:]
        for (tensor, reference) in try references() {
            let url = try resolve(reference, tensor: tensor)
            let size: Int
            if let known = sizes[url.path] {
                size = known
            } else {
                guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
                    let fileSize = attributes[.size] as? NSNumber
                else {
                    throw .externalData(path: url.path, tensor: tensor, reason: "the file is missing")
                }
                size = fileSize.intValue
                sizes[url.path] = size
            }
            let end = reference.offset + (reference.length ?? 0)
            if end > size || reference.offset > size {
                throw .externalData(
                    path: url.path, tensor: tensor,
                    reason: "the file has \(size) bytes but the tensor needs bytes \(reference.offset)..<\(end)")
            }
        }
    }

    /// The file a reference points to; refuses locations that leave the model's folder.
    public func resolve(_ reference: ExternalDataReference, tensor: String) throws(ONNXError) -> URL {
        let base = model.baseDirectory.standardizedFileURL
        if reference.location.hasPrefix("/") {
            throw .externalData(path: reference.location, tensor: tensor, reason: "the location is absolute, which ONNX forbids")
        }
        let url = base.appendingPathComponent(reference.location).standardizedFileURL
        guard url.path.hasPrefix(base.path.hasSuffix("/") ? base.path : base.path + "/") else {
            throw .externalData(path: reference.location, tensor: tensor, reason: "the location leaves the model's folder")
        }
        return url
    }

    /// The raw bytes of a tensor stored externally.
    public func bytes(of tensor: Onnx_TensorProto) throws(ONNXError) -> Data {
        guard let reference = try ExternalDataReference(tensor) else { return tensor.rawData }
        let url = try resolve(reference, tensor: tensor.name)
        do {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            try handle.seek(toOffset: UInt64(reference.offset))
            let data: Data?
            if let length = reference.length {
                data = try handle.read(upToCount: length)
            } else {
                data = try handle.readToEnd()
            }
            let bytes = data ?? Data()
            if let length = reference.length, bytes.count != length {
                throw ONNXError.externalData(path: url.path, tensor: tensor.name, reason: "the file ends after \(bytes.count) of \(length) bytes")
            }
            return bytes
        } catch let error as ONNXError {
            throw error
        } catch {
            throw .externalData(path: url.path, tensor: tensor.name, reason: error.localizedDescription)
        }
    }
}

/// Visits every tensor of a model that can hold data: graph initializers, sparse initializers'
/// values and indices, and tensor attributes of nodes, in subgraphs and functions too.
enum TensorWalk {
    static func visit(_ model: Onnx_ModelProto, _ body: (Onnx_TensorProto) -> Void) {
        visit(model.graph, body)
        for function in model.functions {
            for node in function.node { visit(node, body) }
        }
    }

    static func visit(_ graph: Onnx_GraphProto, _ body: (Onnx_TensorProto) -> Void) {
        graph.initializer.forEach(body)
        for sparse in graph.sparseInitializer {
            if sparse.hasValues { body(sparse.values) }
            if sparse.hasIndices { body(sparse.indices) }
        }
        for node in graph.node { visit(node, body) }
    }

    static func visit(_ node: Onnx_NodeProto, _ body: (Onnx_TensorProto) -> Void) {
        for attribute in node.attribute {
            if attribute.hasT { body(attribute.t) }
            attribute.tensors.forEach(body)
            if attribute.hasG { visit(attribute.g, body) }
            for graph in attribute.graphs { visit(graph, body) }
        }
    }

    /// Rewrites every tensor in place, in the same order as `visit`.
    static func transform(_ model: inout Onnx_ModelProto, _ body: (inout Onnx_TensorProto) throws -> Void) rethrows {
        try transform(&model.graph, body)
        for f in model.functions.indices {
            for n in model.functions[f].node.indices { try transform(&model.functions[f].node[n], body) }
        }
    }

    static func transform(_ graph: inout Onnx_GraphProto, _ body: (inout Onnx_TensorProto) throws -> Void) rethrows {
        for i in graph.initializer.indices { try body(&graph.initializer[i]) }
        for i in graph.sparseInitializer.indices {
            // Touching an unset message field would set it and change the saved bytes.
            if graph.sparseInitializer[i].hasValues { try body(&graph.sparseInitializer[i].values) }
            if graph.sparseInitializer[i].hasIndices { try body(&graph.sparseInitializer[i].indices) }
        }
        for n in graph.node.indices { try transform(&graph.node[n], body) }
    }

    static func transform(_ node: inout Onnx_NodeProto, _ body: (inout Onnx_TensorProto) throws -> Void) rethrows {
        for a in node.attribute.indices {
            if node.attribute[a].hasT { try body(&node.attribute[a].t) }
            for t in node.attribute[a].tensors.indices { try body(&node.attribute[a].tensors[t]) }
            if node.attribute[a].hasG { try transform(&node.attribute[a].g, body) }
            for g in node.attribute[a].graphs.indices { try transform(&node.attribute[a].graphs[g], body) }
        }
    }
}
