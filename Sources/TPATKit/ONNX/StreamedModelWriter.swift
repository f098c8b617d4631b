import Foundation
import SwiftProtobuf

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes a model's protobuf encoding to a file without building it in one buffer: the model
/// with no initializers is serialized by SwiftProtobuf (small), and the graph's initializers are
/// serialized one by one (SwiftProtobuf again) and spliced into the graph field, its length prefix
/// recomputed. A message's encoding is the concatenation of its fields' encodings, so the file is
/// byte for byte what `serializedBytes()` of the whole model gives (the tests check that).
///
/// Why: serializing a 1 GB model into one buffer faults in 1 GB of fresh memory, which took this
/// VM 0.5-3.4 s on the first save of a process; here the largest buffer is one tensor's.
enum StreamedModelWriter {
    /// Graph fields SwiftProtobuf writes before `initializer` (5): `node` (1) and `name` (2).
    private static let graphFieldsBeforeInitializers: ClosedRange<UInt64> = 1...4
    private static let modelGraphField: UInt64 = 7

    /// Whether the splice reproduces SwiftProtobuf's layout for this model: a graph with
    /// initializers and no unknown fields (those go after every known field, initializers too).
    static func applies(to model: Onnx_ModelProto) -> Bool {
        model.hasGraph && !model.graph.initializer.isEmpty && model.graph.unknownFields.data.isEmpty
    }

    /// Writes `model` to a new file at `path` (see ``applies(to:)``).
    static func write(_ model: Onnx_ModelProto, toNewFile path: String) throws {
        var skeleton = model
        skeleton.graph.initializer = []
        let skeletonBytes: Data = try skeleton.serializedBytes()
        let entries = model.graph.initializer
        // Sizes first: the graph's length prefix comes before its initializers.
        var entrySizes: [Int] = []
        entrySizes.reserveCapacity(entries.count)
        for tensor in entries { entrySizes.append(try tensorSize(tensor)) }
        try skeletonBytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            guard let graph = try ProtobufWire.field(modelGraphField, in: bytes, from: 0, to: bytes.count) else {
                throw ProtobufWire.WireError.malformed("the serialized model has no graph field")
            }
            let insert = try ProtobufWire.endOfLeadingFields(graphFieldsBeforeInitializers, in: bytes, from: graph.payload, to: graph.end)
            let initializerBytes = zip(entries, entrySizes).reduce(0) { $0 + 1 + ProtobufWire.varintSize(UInt64($1.1)) + $1.1 }
            let graphLength = (graph.end - graph.payload) + initializerBytes
            let sink = try DirectFileSink(path: path)
            do {
                try sink.append(UnsafeRawBufferPointer(rebasing: raw[0..<graph.start]))
                try sink.append(ProtobufWire.varint(modelGraphField << 3 | 2) + ProtobufWire.varint(UInt64(graphLength)))
                try sink.append(UnsafeRawBufferPointer(rebasing: raw[graph.payload..<insert]))
                for (tensor, size) in zip(entries, entrySizes) {
                    let encoded: Data = try tensor.serializedBytes()
                    guard encoded.count == size else { throw ProtobufWire.WireError.malformed("a tensor's size changed while writing") }
                    try sink.append([0x2A] + ProtobufWire.varint(UInt64(size)))  // field 5, length-delimited
                    try encoded.withUnsafeBytes { try sink.append($0) }
                }
                try sink.append(UnsafeRawBufferPointer(rebasing: raw[insert..<bytes.count]))
                try sink.finish()
            } catch {
                sink.abandon()
                throw error
            }
        }
    }

    /// The encoded size of one tensor. Large raw data is measured without copying it: the tensor
    /// without its raw data, plus the raw_data field (9) it would add.
    private static func tensorSize(_ tensor: Onnx_TensorProto) throws -> Int {
        guard tensor.hasRawData, tensor.rawData.count > 4096 else {
            let encoded: Data = try tensor.serializedBytes()
            return encoded.count
        }
        var header = tensor
        header.clearRawData()
        let headerBytes: Data = try header.serializedBytes()
        let raw = tensor.rawData.count
        return headerBytes.count + 1 + ProtobufWire.varintSize(UInt64(raw)) + raw
    }

}

/// Appends bytes to a new file through one reused page-aligned buffer, written with `O_DIRECT`
/// where the file system allows it (whole pages; the file is cut to its length at the end), else
/// with ordinary writes. (This VM wrote through the page cache at about 230 MB/s, with `O_DIRECT`
/// at about 2 GB/s.)
final class DirectFileSink {
    /// Writes `bytes` to a new file at `path`.
    static func write(_ bytes: UnsafeRawBufferPointer, toNewFile path: String) throws {
        let sink = try DirectFileSink(path: path)
        do {
            try sink.append(bytes)
            try sink.finish()
        } catch {
            sink.abandon()
            throw error
        }
    }

    private static let capacity = 32 << 20
    private var buffer = PageAlignedBytes(repeating: 0, count: DirectFileSink.capacity)
    private var filled = 0
    private var written = 0
    private var fd: Int32
    private var direct: Bool
    private let path: String

    init(path: String) throws {
        self.path = path
        #if os(Linux)
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | PageAlignedBytes.directIO, 0o644)
            direct = fd >= 0
            if fd < 0 { fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
        #else
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            direct = false
        #endif
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try append($0) }
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = min(Self.capacity - filled, bytes.count - offset)
            let start = filled
            buffer.withUnsafeMutableBytes { dst in
                dst.baseAddress!.advanced(by: start).copyMemory(from: bytes.baseAddress!.advanced(by: offset), byteCount: n)
            }
            filled += n
            offset += n
            if filled == Self.capacity { try flush(length: filled) }
        }
    }

    /// Writes what is left and cuts the file to the bytes appended.
    func finish() throws {
        defer { close(fd); fd = -1 }
        let total = written + filled
        if filled > 0 {
            // O_DIRECT writes whole pages: pad, then truncate.
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            try flush(length: direct ? (filled + page - 1) / page * page : filled)
        }
        guard ftruncate(fd, off_t(total)) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    /// Closes without finishing (the caller removes the file).
    func abandon() {
        if fd >= 0 { close(fd); fd = -1 }
    }

    private func flush(length: Int) throws {
        if !writeAll(length: length) {
            // Some file systems accept O_DIRECT at open and refuse it at write: go on without it
            // (nothing of this chunk reached the file, and earlier chunks stay where they are).
            guard direct, errno == EINVAL else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            close(fd)
            fd = open(path, O_WRONLY)
            direct = false
            guard fd >= 0, lseek(fd, off_t(written), SEEK_SET) >= 0, writeAll(length: filled) else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        }
        written += filled
        filled = 0
    }

    private func writeAll(length: Int) -> Bool {
        buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < length {
                let n = Foundation.write(fd, raw.baseAddress! + offset, length - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += n
            }
            return true
        }
    }
}
