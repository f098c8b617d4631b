import Foundation
import SwiftProtobuf

/// An ONNX model as decoded from its file, with the folder its external data is relative to.
///
/// Everything TPAT does not change survives a load and a save unchanged: SwiftProtobuf keeps
/// unknown fields, and the model's metadata, functions, opset imports and doc strings are plain
/// fields of ``proto``. Tensors stored in side files stay there until asked for
/// (``ExternalDataStore``), so loading a model over 2 GB costs only its structure.
public struct ONNXModel: Sendable {
    /// The decoded `ModelProto`.
    public var proto: Onnx_ModelProto
    /// The folder that external data locations are relative to (the model file's folder).
    public let baseDirectory: URL
    /// The file the model was loaded from, if any.
    public let sourceURL: URL?

    /// Wraps a model built in memory; external data locations resolve against `baseDirectory`.
    public init(proto: Onnx_ModelProto, baseDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) {
        self.proto = proto
        self.baseDirectory = baseDirectory
        self.sourceURL = nil
    }

    private init(proto: Onnx_ModelProto, sourceURL: URL) {
        self.proto = proto
        self.sourceURL = sourceURL
        self.baseDirectory = sourceURL.deletingLastPathComponent()
    }

    /// Reads and decodes the model at `url` and checks that its external data files exist and are
    /// long enough. The data itself is read only when asked for.
    public static func load(contentsOf url: URL) throws(ONNXError) -> ONNXModel {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .fileNotFound(path: path)
        }
        if isDirectory.boolValue { throw .notONNX(path: path, reason: "it is a folder") }
        let proto: Onnx_ModelProto
        if let region = MappedRegion.map(url) {
            // Large initializers stay in the mapping (no copy of their bytes).
            do {
                proto = try MappedModelDecoder.decode(region)
            } catch {
                throw .notONNX(path: path, reason: "protobuf decoding failed: \(error)")
            }
        } else {
            let data: Data
            do {
                data = try Data(contentsOf: url)
            } catch {
                throw .unreadable(path: path, reason: error.localizedDescription)
            }
            if data.isEmpty { throw .notONNX(path: path, reason: "the file is empty") }
            do {
                proto = try Onnx_ModelProto(serializedBytes: data)
            } catch {
                throw .notONNX(path: path, reason: "protobuf decoding failed: \(error)")
            }
        }
        // Arbitrary bytes sometimes decode as a protobuf of unknown fields; a model has a graph
        // and an IR version.
        guard proto.hasGraph, proto.irVersion > 0 else {
            throw .notONNX(path: path, reason: proto.hasGraph ? "it has no ir_version" : "it has no graph")
        }
        let model = ONNXModel(proto: proto, sourceURL: url.standardizedFileURL)
        try model.externalData.validate()
        return model
    }

    /// The main graph.
    public var graph: Onnx_GraphProto {
        get { proto.graph }
        set { proto.graph = newValue }
    }

    /// Access to the tensors this model keeps in side files.
    public var externalData: ExternalDataStore { ExternalDataStore(model: self) }

    /// The opset version imported for `domain` ("" and "ai.onnx" are the default domain).
    public func opsetVersion(domain: String = "") -> Int64? {
        let wanted = domain == "ai.onnx" ? "" : domain
        return proto.opsetImport.first { ($0.domain == "ai.onnx" ? "" : $0.domain) == wanted }?.version
    }
}
