import Foundation
import SwiftProtobuf

/// How ``ONNXModel/write(to:options:)`` lays out tensor data.
public struct SaveOptions: Sendable {
    /// Inline tensors of at least this many bytes are moved to the side file. nil keeps inline
    /// tensors inline, unless the model would pass protobuf's 2 GB limit: then every tensor of
    /// 1 KiB or more goes to the side file, as ONNX's own tools do.
    public var externalizeThreshold: Int?
    /// The side file's name, next to the output model; default `<model file name>.data`.
    public var dataFileName: String?
    /// Alignment of each tensor in the side file, so that it can be memory-mapped.
    public var alignment: Int = 64

    /// Creates options.
    public init(externalizeThreshold: Int? = nil, dataFileName: String? = nil) {
        self.externalizeThreshold = externalizeThreshold
        self.dataFileName = dataFileName
    }
}

/// Protobuf messages cannot exceed 2 GiB; keep a margin for the graph's structure.
private let protobufLimit = 2_000_000_000

extension ONNXModel {
    /// Writes the model to `url`, and the data of its external tensors to one side file next to
    /// it. Both are written to temporary files first and moved into place only when complete, so
    /// a failure leaves nothing behind. Refuses to write over the input model or its data files.
    public func write(to url: URL, options: SaveOptions = SaveOptions()) throws(ONNXError) {
        let destination = url.standardizedFileURL
        let dataName = options.dataFileName ?? destination.lastPathComponent + ".data"
        let dataURL = destination.deletingLastPathComponent().appendingPathComponent(dataName).standardizedFileURL
        try refuseOverwritingInput(destination)
        try refuseOverwritingInput(dataURL)

        var output = proto
        let inlineBytes = Self.inlineDataSize(proto)
        let threshold = options.externalizeThreshold ?? (inlineBytes > protobufLimit ? 1024 : nil)
        let store = externalData
        let directory = destination.deletingLastPathComponent()
        let token = UUID().uuidString.prefix(8)
        let modelTemp = directory.appendingPathComponent(".\(destination.lastPathComponent).\(token).tmp")
        let dataTemp = directory.appendingPathComponent(".\(dataName).\(token).tmp")
        var dataWriter: AlignedFileWriter?
        defer {
            try? dataWriter?.close()
            try? FileManager.default.removeItem(at: modelTemp)
            try? FileManager.default.removeItem(at: dataTemp)
        }
        // Touching every tensor of a large model costs time; only do it when data moves.
        let externalTensors = try store.references()
        let dataMoves = threshold != nil || !externalTensors.isEmpty
        do {
            if dataMoves {
                try TensorWalk.transform(&output) { tensor in
                    let isExternal = tensor.dataLocation == .external
                    let moveOut = !isExternal && threshold.map { tensor.rawData.count >= $0 && !tensor.rawData.isEmpty } == true
                    guard isExternal || moveOut else { return }
                    let bytes = isExternal ? try store.bytes(of: tensor) : tensor.rawData
                    if dataWriter == nil { dataWriter = try AlignedFileWriter(url: dataTemp, alignment: options.alignment) }
                    let offset = try dataWriter!.append(bytes)
                    tensor.rawData = Data()
                    tensor.dataLocation = .external
                    tensor.externalData = ExternalDataReference(location: dataName, offset: offset, length: bytes.count).entries
                }
            }
            try dataWriter?.close()
            if StreamedModelWriter.applies(to: output) {
                try StreamedModelWriter.write(output, toNewFile: modelTemp.path)
            } else {
                let serialized: Data = try output.serializedBytes()
                try serialized.withUnsafeBytes { try DirectFileSink.write($0, toNewFile: modelTemp.path) }
            }
        } catch let error as ONNXError {
            throw error
        } catch {
            throw .writeFailed(path: destination.path, reason: "\(error)")
        }
        do {
            if dataWriter != nil { try Self.moveReplacing(dataTemp, to: dataURL) }
            try Self.moveReplacing(modelTemp, to: destination)
        } catch {
            throw .writeFailed(path: destination.path, reason: "\(error)")
        }
    }

    /// The model's serialized bytes; tensors that are external stay external.
    public func serializedData() throws(ONNXError) -> Data {
        do {
            return try proto.serializedBytes()
        } catch {
            throw .writeFailed(path: "<memory>", reason: "\(error)")
        }
    }

    private func refuseOverwritingInput(_ url: URL) throws(ONNXError) {
        let target = url.resolvingSymlinksInPath().path
        if let source = sourceURL, source.resolvingSymlinksInPath().path == target {
            throw .wouldOverwriteInput(path: url.path)
        }
        for (tensor, reference) in (try? externalData.references()) ?? [] {
            if let file = try? externalData.resolve(reference, tensor: tensor), file.resolvingSymlinksInPath().path == target {
                throw .wouldOverwriteInput(path: url.path)
            }
        }
    }

    private static func inlineDataSize(_ proto: Onnx_ModelProto) -> Int {
        var total = 0
        TensorWalk.visit(proto) { total += $0.rawData.count }
        return total
    }

    private static func moveReplacing(_ source: URL, to destination: URL) throws {
        // rename(2) replaces the destination atomically.
        if rename(source.path, destination.path) != 0 {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: destination.path, NSLocalizedDescriptionKey: String(cString: strerror(errno))])
        }
    }
}

/// Appends blobs to a file, each starting at a multiple of `alignment`.
private final class AlignedFileWriter {
    private let handle: FileHandle
    private let alignment: Int
    private var position = 0
    private var closed = false

    init(url: URL, alignment: Int) throws {
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: url.path])
        }
        handle = try FileHandle(forWritingTo: url)
        self.alignment = max(1, alignment)
    }

    func append(_ data: Data) throws -> Int {
        let padding = (alignment - position % alignment) % alignment
        if padding > 0 { try handle.write(contentsOf: Data(count: padding)) }
        let offset = position + padding
        try handle.write(contentsOf: data)
        position = offset + data.count
        return offset
    }

    func close() throws {
        guard !closed else { return }
        closed = true
        try handle.close()
    }
}
