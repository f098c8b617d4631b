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

    /// Reads and decodes the model at `url`, checks that it is a valid ONNX graph
    /// (``GraphValidation``), and that its external data files are regular files inside its
    /// folder and long enough. The data itself is read only when asked for. Both `tpat inspect`
    /// and `tpat generate` load through here, so both refuse the same models.
    public static func load(contentsOf url: URL) throws(ONNXError) -> ONNXModel {
        let path = url.path
        let file: RegularFile
        do {
            file = try RegularFile.open(path)
        } catch {
            switch error {
            case .missing: throw .fileNotFound(path: path)
            case .notRegular(let kind): throw .notONNX(path: path, reason: "it is \(kind), not a file")
            default: throw .unreadable(path: path, reason: error.reason)
            }
        }
        if file.size == 0 { throw .notONNX(path: path, reason: "the file is empty") }
        let proto: Onnx_ModelProto
        if let region = MappedRegion.map(file) {
            // Large initializers stay in the mapping (no copy of their bytes).
            do {
                proto = try MappedModelDecoder.decode(region)
            } catch let error as ProtobufWire.WireError {
                throw .notONNX(path: path, reason: "\(error)")
            } catch {
                throw .notONNX(path: path, reason: "protobuf decoding failed: \(error)")
            }
        } else {
            let data: Data
            do {
                data = try file.read(0..<file.size)
            } catch {
                throw .unreadable(path: path, reason: error.reason)
            }
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
        try GraphValidation.validate(proto, path: path)
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
