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
            guard let graph = try field(modelGraphField, in: bytes, from: 0, to: bytes.count) else {
                throw WireError.malformed("the serialized model has no graph field")
            }
            let insert = try endOfLeadingFields(graphFieldsBeforeInitializers, in: bytes, from: graph.payload, to: graph.end)
            let initializerBytes = zip(entries, entrySizes).reduce(0) { $0 + 1 + varintSize(UInt64($1.1)) + $1.1 }
            let graphLength = (graph.end - graph.payload) + initializerBytes
            let sink = try DirectFileSink(path: path)
            do {
                try sink.append(UnsafeRawBufferPointer(rebasing: raw[0..<graph.start]))
                try sink.append(varint(modelGraphField << 3 | 2) + varint(UInt64(graphLength)))
                try sink.append(UnsafeRawBufferPointer(rebasing: raw[graph.payload..<insert]))
                for (tensor, size) in zip(entries, entrySizes) {
                    let encoded: Data = try tensor.serializedBytes()
                    guard encoded.count == size else { throw WireError.malformed("a tensor's size changed while writing") }
                    try sink.append([0x2A] + varint(UInt64(size)))  // field 5, length-delimited
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
        return headerBytes.count + 1 + varintSize(UInt64(raw)) + raw
    }

    enum WireError: Error, CustomStringConvertible {
        case malformed(String)
        var description: String {
            switch self {
            case .malformed(let what): "streamed model writer: \(what)"
            }
        }
    }

    /// A field's byte range: its tag at `start`, its payload from `payload` to `end`.
    private struct FieldRange { var start: Int; var payload: Int; var end: Int }

    private static func readVarint(_ bytes: UnsafeBufferPointer<UInt8>, _ offset: inout Int, limit: Int) throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while offset < limit {
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
            if shift > 63 { break }
        }
        throw WireError.malformed("bad varint")
    }

    /// Steps over one field at `offset`; returns its number and range.
    private static func nextField(_ bytes: UnsafeBufferPointer<UInt8>, at offset: Int, limit: Int) throws -> (UInt64, FieldRange) {
        var cursor = offset
        let key = try readVarint(bytes, &cursor, limit: limit)
        var payload = cursor
        switch key & 7 {
        case 0: _ = try readVarint(bytes, &cursor, limit: limit)
        case 1: cursor += 8
        case 2:
            let length = Int(try readVarint(bytes, &cursor, limit: limit))
            payload = cursor
            cursor += length
        case 5: cursor += 4
        default: throw WireError.malformed("wire type \(key & 7)")
        }
        guard cursor <= limit else { throw WireError.malformed("a field runs past its message") }
        return (key >> 3, FieldRange(start: offset, payload: payload, end: cursor))
    }

    /// The range of the (singular) field `number` among the fields from `start` to `end`.
    private static func field(_ number: UInt64, in bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) throws -> FieldRange? {
        var offset = start
        while offset < end {
            let (n, range) = try nextField(bytes, at: offset, limit: end)
            if n == number { return range }
            offset = range.end
        }
        return nil
    }

    /// Where the leading run of fields numbered within `numbers` ends.
    private static func endOfLeadingFields(_ numbers: ClosedRange<UInt64>, in bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) throws -> Int {
        var offset = start
        while offset < end {
            let (n, range) = try nextField(bytes, at: offset, limit: end)
            guard numbers.contains(n) else { return offset }
            offset = range.end
        }
        return end
    }

    private static func varintSize(_ value: UInt64) -> Int {
        var v = value
        var n = 1
        while v >= 0x80 { v >>= 7; n += 1 }
        return n
    }

    private static func varint(_ value: UInt64) -> [UInt8] {
        var v = value
        var out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
        return out
    }
}

/// Appends bytes to a new file through one reused page-aligned buffer, written with `O_DIRECT`
/// where the file system allows it (whole pages; the file is cut to its length at the end), else
/// with ordinary writes.
private final class DirectFileSink {
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
