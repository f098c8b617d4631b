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
                    throw .malformedTensor(tensor: tensor.name, reason: "external data offset '\(entry.value)' is not a byte count (0 to \(Int.max))")
                }
                offset = value
            case "length":
                guard let value = Int(entry.value), value >= 0 else {
                    throw .malformedTensor(tensor: tensor.name, reason: "external data length '\(entry.value)' is not a byte count (0 to \(Int.max))")
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
///
/// Every read of external data goes through ``open(_:tensor:)``: the location is resolved to its
/// real path (symbolic links of the file and of every folder on the way), must lie inside the
/// model's real folder, must be a regular file (no FIFO, device, socket or folder), and the
/// tensor's byte range must fit in the size of the file actually opened.
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

    /// Checks that every external data file is a regular file inside the model's folder (links
    /// resolved) and holds the bytes its tensors claim.
    public func validate() throws(ONNXError) {
        var sizes: [String: Int] = [:]
        for (tensor, reference) in try references() {
            let url = try resolve(reference, tensor: tensor)
            let size: Int
            if let known = sizes[url.path] {
                size = known
            } else {
                size = try open(reference, tensor: tensor).size
                sizes[url.path] = size
            }
            _ = try Self.byteRange(of: reference, inFileOf: size, path: url.path, tensor: tensor)
        }
    }

    /// The real path of the file a reference points to. Refuses locations that are absolute, or
    /// that lead (through `..` or symbolic links) outside the model's real folder.
    public func resolve(_ reference: ExternalDataReference, tensor: String) throws(ONNXError) -> URL {
        let location = reference.location
        if location.hasPrefix("/") {
            throw .externalData(path: location, tensor: tensor, reason: "the location is absolute, which ONNX forbids")
        }
        if location.utf8.contains(0) {
            throw .externalData(path: location, tensor: tensor, reason: "the location holds a NUL character")
        }
        let folder = try modelFolder(tensor: tensor)
        let joined = folder + "/" + location
        guard let real = RealPath.resolve(joined) else {
            // Say "leaves the folder" rather than "missing" when the location itself points out.
            let lexical = URL(fileURLWithPath: joined).standardizedFileURL.path
            if !RealPath.isInside(lexical, folder: folder) {
                throw .externalData(path: location, tensor: tensor, reason: "the location leaves the model's folder")
            }
            throw .externalData(path: lexical, tensor: tensor, reason: "the file is missing")
        }
        guard RealPath.isInside(real, folder: folder) else {
            throw .externalData(
                path: location, tensor: tensor,
                reason: FileAccessFailure.outsideFolder(realPath: real, folder: folder).reason + "; external data must lie in the model's folder")
        }
        return URL(fileURLWithPath: real)
    }

    /// Opens the file a reference points to, confined as ``resolve(_:tensor:)`` says, as a
    /// regular file; its size is that of the file opened.
    func open(_ reference: ExternalDataReference, tensor: String) throws(ONNXError) -> RegularFile {
        let url = try resolve(reference, tensor: tensor)
        let folder = try modelFolder(tensor: tensor)
        do {
            return try RegularFile.open(url.path, confinedTo: folder)
        } catch {
            throw .externalData(path: url.path, tensor: tensor, reason: error.reason)
        }
    }

    /// The raw bytes of a tensor (its `raw_data` when not external).
    public func bytes(of tensor: Onnx_TensorProto) throws(ONNXError) -> Data {
        try bytes(of: tensor, expectedCount: nil)
    }

    /// The raw bytes of a tensor; with `expectedCount`, a reference to any other number of bytes
    /// is refused before anything is read (a hostile length never allocates).
    func bytes(of tensor: Onnx_TensorProto, expectedCount: Int?) throws(ONNXError) -> Data {
        guard let reference = try ExternalDataReference(tensor) else { return tensor.rawData }
        let file = try open(reference, tensor: tensor.name)
        let range = try Self.byteRange(of: reference, inFileOf: file.size, path: file.path, tensor: tensor.name)
        if let expectedCount, range.count != expectedCount {
            throw .malformedTensor(
                tensor: tensor.name,
                reason: "its external data is \(range.count) bytes but its type and shape need \(expectedCount)")
        }
        do {
            return try file.read(range)
        } catch {
            throw .externalData(path: file.path, tensor: tensor.name, reason: error.reason)
        }
    }

    /// The bytes of the file a reference covers, checked against the file's size without
    /// arithmetic that can overflow.
    static func byteRange(of reference: ExternalDataReference, inFileOf size: Int, path: String, tensor: String) throws(ONNXError) -> Range<Int> {
        guard reference.offset <= size else {
            throw .externalData(
                path: path, tensor: tensor,
                reason: "the file has \(size) bytes but the tensor starts at offset \(reference.offset)")
        }
        guard let length = reference.length else { return reference.offset..<size }
        let (end, overflow) = reference.offset.addingReportingOverflow(length)
        guard !overflow, end <= size else {
            throw .externalData(
                path: path, tensor: tensor,
                reason: "the file has \(size) bytes but the tensor needs \(length) bytes from offset \(reference.offset)")
        }
        return reference.offset..<end
    }

    /// The model's folder, every link in it resolved.
    private func modelFolder(tensor: String) throws(ONNXError) -> String {
        let folder = model.baseDirectory.path
        guard let real = RealPath.resolve(folder) else {
            throw .externalData(path: folder, tensor: tensor, reason: "the model's folder cannot be resolved")
        }
        return real
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
