import Foundation

/// An ONNX tensor element type (`TensorProto.DataType`), with what the rest of TPAT needs to
/// know about it: its size, its canonical name, and its C++ spelling in CUDA code.
public enum ElementType: String, Codable, Sendable, CaseIterable {
    case float32 = "float32"
    case uint8 = "uint8"
    case int8 = "int8"
    case uint16 = "uint16"
    case int16 = "int16"
    case int32 = "int32"
    case int64 = "int64"
    case string = "string"
    case bool = "bool"
    case float16 = "float16"
    case float64 = "float64"
    case uint32 = "uint32"
    case uint64 = "uint64"
    case complex64 = "complex64"
    case complex128 = "complex128"
    case bfloat16 = "bfloat16"
    case float8e4m3fn = "float8e4m3fn"
    case float8e4m3fnuz = "float8e4m3fnuz"
    case float8e5m2 = "float8e5m2"
    case float8e5m2fnuz = "float8e5m2fnuz"
    case uint4 = "uint4"
    case int4 = "int4"
    case float4e2m1 = "float4e2m1"
    case float8e8m0 = "float8e8m0"
    case uint2 = "uint2"
    case int2 = "int2"

    /// Creates the element type of an ONNX `TensorProto.DataType` value; nil for `UNDEFINED`
    /// and for values this ONNX version does not know.
    public init?(onnx dataType: Int32) {
        switch dataType {
        case 1: self = .float32
        case 2: self = .uint8
        case 3: self = .int8
        case 4: self = .uint16
        case 5: self = .int16
        case 6: self = .int32
        case 7: self = .int64
        case 8: self = .string
        case 9: self = .bool
        case 10: self = .float16
        case 11: self = .float64
        case 12: self = .uint32
        case 13: self = .uint64
        case 14: self = .complex64
        case 15: self = .complex128
        case 16: self = .bfloat16
        case 17: self = .float8e4m3fn
        case 18: self = .float8e4m3fnuz
        case 19: self = .float8e5m2
        case 20: self = .float8e5m2fnuz
        case 21: self = .uint4
        case 22: self = .int4
        case 23: self = .float4e2m1
        case 24: self = .float8e8m0
        case 25: self = .uint2
        case 26: self = .int2
        default: return nil
        }
    }

    /// The ONNX `TensorProto.DataType` number.
    public var onnxValue: Int32 {
        switch self {
        case .float32: 1
        case .uint8: 2
        case .int8: 3
        case .uint16: 4
        case .int16: 5
        case .int32: 6
        case .int64: 7
        case .string: 8
        case .bool: 9
        case .float16: 10
        case .float64: 11
        case .uint32: 12
        case .uint64: 13
        case .complex64: 14
        case .complex128: 15
        case .bfloat16: 16
        case .float8e4m3fn: 17
        case .float8e4m3fnuz: 18
        case .float8e5m2: 19
        case .float8e5m2fnuz: 20
        case .uint4: 21
        case .int4: 22
        case .float4e2m1: 23
        case .float8e8m0: 24
        case .uint2: 25
        case .int2: 26
        }
    }

    /// Bits per element; nil for strings, whose size varies.
    public var bitWidth: Int? {
        switch self {
        case .string: nil
        case .uint2, .int2: 2
        case .uint4, .int4, .float4e2m1: 4
        case .bool, .uint8, .int8, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0: 8
        case .uint16, .int16, .float16, .bfloat16: 16
        case .int32, .uint32, .float32: 32
        case .int64, .uint64, .float64, .complex64: 64
        case .complex128: 128
        }
    }

    /// Bytes that `count` elements take in `raw_data` (sub-byte types are packed); nil for strings.
    public func byteCount(elements count: Int) -> Int? {
        guard let bits = bitWidth, count >= 0 else { return nil }
        // Element counts come from files: a count whose size overflows has no byte count.
        let (total, overflow) = count.multipliedReportingOverflow(by: bits)
        guard !overflow, total <= Int.max - 7 else { return nil }
        return (total + 7) / 8
    }

    /// The C/CUDA type name for this element type, or nil where CUDA code has no plain spelling.
    public var cudaTypeName: String? {
        switch self {
        case .float32: "float"
        case .float64: "double"
        case .float16: "half"
        case .bfloat16: "nv_bfloat16"
        case .int8: "int8_t"
        case .uint8: "uint8_t"
        case .int16: "int16_t"
        case .uint16: "uint16_t"
        case .int32: "int32_t"
        case .uint32: "uint32_t"
        case .int64: "int64_t"
        case .uint64: "uint64_t"
        case .bool: "bool"
        default: nil
        }
    }

    /// Whether this is a floating-point type.
    public var isFloatingPoint: Bool {
        switch self {
        case .float16, .bfloat16, .float32, .float64, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2,
            .float8e5m2fnuz, .float8e8m0, .float4e2m1:
            true
        default: false
        }
    }
}
