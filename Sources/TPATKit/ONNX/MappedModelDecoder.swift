import Foundation
import SwiftProtobuf

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Decodes a model whose large initializers keep their raw data in the file's memory mapping:
/// SwiftProtobuf decodes a copy of the encoding with those raw_data fields left out (kilobytes),
/// and each such tensor then gets a `Data` over its bytes in the mapping, no copy. SwiftProtobuf
/// copies every bytes field it decodes, which for a 1 GB model means faulting in 1 GB of fresh
/// memory (0.7-5 s on this VM for the first load of a process).
enum MappedModelDecoder {
    /// raw_data fields of at least this many bytes stay in the mapping.
    static let threshold = 1 << 16

    /// The model encoded in `region`.
    static func decode(_ region: MappedRegion) throws -> Onnx_ModelProto {
        let all = UnsafeBufferPointer(start: region.base.assumingMemoryBound(to: UInt8.self), count: region.length)
        // A layout the scan does not take apart (or bytes that are not protobuf): SwiftProtobuf
        // decodes the whole. When both fail, the scan's error says more (which field, at which
        // byte, claiming how many bytes) than SwiftProtobuf's "malformedProtobuf".
        let scanned: Plan?
        do {
            scanned = try plan(all)
        } catch {
            do {
                return try Onnx_ModelProto(serializedBytes: region.data)
            } catch _ {
                throw error
            }
        }
        guard let plan = scanned else {
            return try Onnx_ModelProto(serializedBytes: region.data)
        }
        var skeleton = try Onnx_ModelProto(serializedBytes: plan.skeleton)
        guard skeleton.graph.initializer.count == plan.tensors.count else {
            return try Onnx_ModelProto(serializedBytes: region.data)  // not the layout we read
        }
        for (index, range) in plan.tensors.enumerated() {
            guard let range else { continue }
            skeleton.graph.initializer[index].rawData = region.slice(range)
        }
        return skeleton
    }

    private struct Plan {
        /// The encoding with the large raw_data fields left out and the lengths around them fixed.
        var skeleton: Data
        /// Per initializer, in order: the raw data's byte range when it was left out.
        var tensors: [Range<Int>?]
    }

    /// Finds the large raw_data fields of the graph's initializers; nil when there are none or the
    /// layout is not the plain one (one graph field, at most one raw_data field per tensor).
    private static func plan(_ bytes: UnsafeBufferPointer<UInt8>) throws -> Plan? {
        var graphs: [ProtobufWire.FieldRange] = []
        var offset = 0
        while offset < bytes.count {
            let (number, range) = try ProtobufWire.nextField(bytes, at: offset, limit: bytes.count)
            if number == 7 { graphs.append(range) }
            offset = range.end
        }
        guard graphs.count == 1, let graph = graphs.first else { return nil }
        // Initializers (field 5 of GraphProto) and, inside each, raw_data (field 9 of TensorProto).
        var tensors: [Range<Int>?] = []
        var cuts: [(tensor: ProtobufWire.FieldRange, raw: ProtobufWire.FieldRange)] = []
        offset = graph.payload
        while offset < graph.end {
            let (number, field) = try ProtobufWire.nextField(bytes, at: offset, limit: graph.end)
            offset = field.end
            guard number == 5 else { continue }
            var raws: [ProtobufWire.FieldRange] = []
            var inner = field.payload
            while inner < field.end {
                let (n, f) = try ProtobufWire.nextField(bytes, at: inner, limit: field.end)
                if n == 9 { raws.append(f) }
                inner = f.end
            }
            if raws.count == 1, let raw = raws.first, raw.end - raw.payload >= threshold {
                tensors.append(raw.payload..<raw.end)
                cuts.append((field, raw))
            } else {
                tensors.append(nil)
            }
        }
        guard !cuts.isEmpty else { return nil }
        // The skeleton: everything but the cut raw_data fields, with new length prefixes for each
        // cut tensor and for the graph.
        let removed = cuts.reduce(0) { $0 + ($1.raw.end - $1.raw.start) }
        var skeleton = Data()
        skeleton.reserveCapacity(bytes.count - removed + 64)
        func copy(_ range: Range<Int>) {
            if !range.isEmpty { skeleton.append(UnsafeBufferPointer(rebasing: bytes[range])) }
        }
        copy(0..<graph.start)
        skeleton.append(contentsOf: ProtobufWire.varint(7 << 3 | 2))
        skeleton.append(contentsOf: ProtobufWire.varint(UInt64(try newGraphLength(graph, cuts: cuts))))
        var cursor = graph.payload
        for cut in cuts {
            copy(cursor..<cut.tensor.start)
            let length = (cut.tensor.end - cut.tensor.payload) - (cut.raw.end - cut.raw.start)
            skeleton.append(contentsOf: ProtobufWire.varint(5 << 3 | 2))
            skeleton.append(contentsOf: ProtobufWire.varint(UInt64(length)))
            copy(cut.tensor.payload..<cut.raw.start)
            copy(cut.raw.end..<cut.tensor.end)
            cursor = cut.tensor.end
        }
        copy(cursor..<graph.end)
        copy(graph.end..<bytes.count)
        return Plan(skeleton: skeleton, tensors: tensors)
    }

    private static func newGraphLength(_ graph: ProtobufWire.FieldRange, cuts: [(tensor: ProtobufWire.FieldRange, raw: ProtobufWire.FieldRange)]) throws -> Int {
        var length = graph.end - graph.payload
        for cut in cuts {
            let oldTensor = cut.tensor.end - cut.tensor.payload
            let newTensor = oldTensor - (cut.raw.end - cut.raw.start)
            // The tensor's own length prefix can get shorter too.
            length += ProtobufWire.varintSize(UInt64(newTensor)) - ProtobufWire.varintSize(UInt64(oldTensor)) - (oldTensor - newTensor)
        }
        return length
    }
}

/// A file mapped read-only into memory, unmapped when the last `Data` over it is gone.
final class MappedRegion: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let length: Int

    private init(base: UnsafeMutableRawPointer, length: Int) {
        self.base = base
        self.length = length
    }

    deinit { munmap(base, length) }

    /// Maps the whole of an open regular file with its pages faulted in at once (`MAP_POPULATE`
    /// on Linux); nil where mapping is not possible (an empty file, or a system that refuses).
    static func map(_ file: RegularFile) -> MappedRegion? {
        guard file.size > 0 else { return nil }
        #if os(Linux)
            let flags = MAP_PRIVATE | MAP_POPULATE
        #else
            let flags = MAP_PRIVATE
        #endif
        guard let base = mmap(nil, file.size, PROT_READ, flags, file.descriptor, 0), base != MAP_FAILED else { return nil }
        return MappedRegion(base: base, length: file.size)
    }

    /// Maps the regular file at `url` (see ``map(_:)-(RegularFile)``); nil where it cannot be
    /// opened as one or mapped.
    static func map(_ url: URL) -> MappedRegion? {
        guard let file = try? RegularFile.open(url.path) else { return nil }
        return map(file)
    }

    /// The whole file.
    var data: Data { slice(0..<length) }

    /// Bytes `range` of the file, without copying; the mapping stays while the `Data` lives.
    func slice(_ range: Range<Int>) -> Data {
        Data(bytesNoCopy: base + range.lowerBound, count: range.count, deallocator: .custom { [self] _, _ in
            withExtendedLifetime(self) {}
        })
    }
}
