import Foundation

/// The few facts of protobuf's wire format that TPAT's model I/O needs to splice large tensors in
/// and out of a model's encoding without copying them (SwiftProtobuf encodes and decodes every
/// message; this only finds and frames fields).
enum ProtobufWire {
    enum WireError: Error, CustomStringConvertible {
        case malformed(String)
        var description: String {
            switch self {
            case .malformed(let what): "protobuf wire format: \(what)"
            }
        }
    }

    /// A field's byte range: its tag at `start`, its payload from `payload` to `end`.
    struct FieldRange { var start: Int; var payload: Int; var end: Int }

    static func readVarint(_ bytes: UnsafeBufferPointer<UInt8>, _ offset: inout Int, limit: Int) throws -> UInt64 {
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

    /// Steps over one field at `offset`; returns its number and range. Every length read from the
    /// bytes is checked against the bytes left before it is added to anything, so no length in a
    /// file (2^63-1, 2^64-1) can overflow the cursor or trap in a conversion.
    static func nextField(_ bytes: UnsafeBufferPointer<UInt8>, at offset: Int, limit: Int) throws -> (UInt64, FieldRange) {
        var cursor = offset
        let key = try readVarint(bytes, &cursor, limit: limit)
        guard key >> 3 != 0 else { throw WireError.malformed("field number 0 at byte \(offset)") }
        var payload = cursor
        // readVarint never moves the cursor past `limit`, so `limit - cursor` cannot overflow.
        func skip(_ count: UInt64, _ what: String) throws {
            guard count <= UInt64(limit - cursor) else {
                throw WireError.malformed("\(what) at byte \(offset) claims \(count) bytes but only \(limit - cursor) remain")
            }
            cursor += Int(count)
        }
        switch key & 7 {
        case 0: _ = try readVarint(bytes, &cursor, limit: limit)
        case 1: try skip(8, "a 64-bit field")
        case 2:
            let length = try readVarint(bytes, &cursor, limit: limit)
            payload = cursor
            try skip(length, "a length-delimited field")
        case 5: try skip(4, "a 32-bit field")
        default: throw WireError.malformed("wire type \(key & 7) at byte \(offset)")
        }
        return (key >> 3, FieldRange(start: offset, payload: payload, end: cursor))
    }

    /// The range of the (singular) field `number` among the fields from `start` to `end`.
    static func field(_ number: UInt64, in bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) throws -> FieldRange? {
        var offset = start
        while offset < end {
            let (n, range) = try nextField(bytes, at: offset, limit: end)
            if n == number { return range }
            offset = range.end
        }
        return nil
    }

    /// Where the leading run of fields numbered within `numbers` ends.
    static func endOfLeadingFields(_ numbers: ClosedRange<UInt64>, in bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) throws -> Int {
        var offset = start
        while offset < end {
            let (n, range) = try nextField(bytes, at: offset, limit: end)
            guard numbers.contains(n) else { return offset }
            offset = range.end
        }
        return end
    }

    static func varintSize(_ value: UInt64) -> Int {
        var v = value
        var n = 1
        while v >= 0x80 { v >>= 7; n += 1 }
        return n
    }

    static func varint(_ value: UInt64) -> [UInt8] {
        var v = value
        var out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
        return out
    }
}
