import Foundation

/// A tensor's type, shape and data as raw little-endian bytes, whichever of ONNX's storage forms
/// (`raw_data`, the typed repeated fields, or an external file) the model used.
public struct TensorValue: Equatable, Sendable {
    /// The element type.
    public var elementType: ElementType
    /// The dims.
    public var shape: [Int64]
    /// The elements, little-endian, C order; sub-byte types packed as ONNX packs them. Empty for strings.
    public var bytes: Data
    /// The elements of a string tensor.
    public var strings: [Data]

    /// Creates a tensor from raw bytes.
    public init(elementType: ElementType, shape: [Int64], bytes: Data) {
        self.elementType = elementType
        self.shape = shape
        self.bytes = bytes
        self.strings = []
    }

    /// The number of elements; nil when a dim is negative or the product overflows (dims come
    /// from files, so neither can be ruled out).
    public var elementCount: Int? { Self.elementCount(shape) }

    static func elementCount(_ shape: [Int64]) -> Int? {
        var count = 1
        for dim in shape {
            guard dim >= 0, let d = Int(exactly: dim) else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            count = product
        }
        return count
    }

    /// Decodes a `TensorProto`, reading external data through `store` when given.
    public init(_ tensor: Onnx_TensorProto, store: ExternalDataStore? = nil) throws(ONNXError) {
        guard let type = ElementType(onnx: tensor.dataType) else {
            throw .malformedTensor(tensor: tensor.name, reason: "unknown data_type \(tensor.dataType)")
        }
        elementType = type
        shape = tensor.dims
        strings = []
        if shape.contains(where: { $0 < 0 }) {
            throw .malformedTensor(tensor: tensor.name, reason: "negative dim in \(shape)")
        }
        guard let count = Self.elementCount(shape), let expected = type.byteCount(elements: count) ?? (type == .string ? 0 : nil) else {
            throw .malformedTensor(tensor: tensor.name, reason: "its shape \(shape) has more elements than any file can hold")
        }
        if type == .string {
            bytes = Data()
            strings = tensor.stringData
            guard strings.count == count else {
                throw .malformedTensor(tensor: tensor.name, reason: "\(strings.count) strings for shape \(shape)")
            }
            return
        }
        if tensor.dataLocation == .external {
            guard let store else {
                throw .malformedTensor(tensor: tensor.name, reason: "its data is external and no model folder is known")
            }
            bytes = try store.bytes(of: tensor, expectedCount: expected)
        } else if !tensor.rawData.isEmpty {
            bytes = tensor.rawData
        } else {
            bytes = try Self.typedFieldBytes(tensor, type: type, count: count)
        }
        guard bytes.count == expected else {
            throw .malformedTensor(tensor: tensor.name, reason: "\(bytes.count) bytes of data for \(count) \(type.rawValue) elements (\(expected) bytes)")
        }
    }

    /// The `TensorProto` holding this tensor in `raw_data`.
    public func proto(name: String) -> Onnx_TensorProto {
        var tensor = Onnx_TensorProto()
        tensor.name = name
        tensor.dataType = elementType.onnxValue
        tensor.dims = shape
        if elementType == .string { tensor.stringData = strings } else { tensor.rawData = bytes }
        return tensor
    }

    /// The elements as Int64, for any integer or bool tensor (attribute-like inputs: shapes,
    /// axes, sizes).
    public func integers() throws(ONNXError) -> [Int64] {
        switch elementType {
        case .int64: return load(Int64.self).map { $0 }
        case .int32: return load(Int32.self).map { Int64($0) }
        case .int16: return load(Int16.self).map { Int64($0) }
        case .int8: return load(Int8.self).map { Int64($0) }
        case .uint8, .bool: return load(UInt8.self).map { Int64($0) }
        case .uint16: return load(UInt16.self).map { Int64($0) }
        case .uint32: return load(UInt32.self).map { Int64($0) }
        case .uint64: return load(UInt64.self).map { Int64(bitPattern: $0) }
        default: throw .malformedTensor(tensor: "", reason: "\(elementType.rawValue) is not an integer type")
        }
    }

    /// The elements as Double, for float32, float64 and any integer tensor.
    public func doubles() throws(ONNXError) -> [Double] {
        switch elementType {
        case .float32: return load(UInt32.self).map { Double(Float(bitPattern: $0)) }
        case .float64: return load(UInt64.self).map { Double(bitPattern: $0) }
        case .float16: return load(UInt16.self).map { Double(Float16(bitPattern: $0)) }
        default: return try integers().map { Double($0) }
        }
    }

    private func load<T: FixedWidthInteger>(_: T.Type) -> [T] {
        let size = MemoryLayout<T>.size
        return (0..<(bytes.count / size)).map { i in
            bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: i * size, as: T.self)) }
        }
    }

    private static func typedFieldBytes(_ tensor: Onnx_TensorProto, type: ElementType, count: Int) throws(ONNXError) -> Data {
        var data = Data()
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        switch type {
        case .float32:
            tensor.floatData.forEach { append($0.bitPattern) }
        case .complex64:
            tensor.floatData.forEach { append($0.bitPattern) }
        case .float64, .complex128:
            tensor.doubleData.forEach { append($0.bitPattern) }
        case .int64:
            tensor.int64Data.forEach { append($0) }
        case .uint32:
            tensor.uint64Data.forEach { append(UInt32(truncatingIfNeeded: $0)) }
        case .uint64:
            tensor.uint64Data.forEach { append($0) }
        case .int32:
            tensor.int32Data.forEach { append($0) }
        case .int16, .uint16, .float16, .bfloat16:
            // ONNX stores these in int32_data, one element (or its bit pattern) per entry.
            tensor.int32Data.forEach { append(UInt16(truncatingIfNeeded: $0)) }
        case .int8, .uint8, .bool, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0:
            tensor.int32Data.forEach { append(UInt8(truncatingIfNeeded: $0)) }
        case .int4, .uint4, .float4e2m1, .int2, .uint2:
            // Already packed, several elements per int32_data entry (low bits first).
            tensor.int32Data.forEach { append(UInt8(truncatingIfNeeded: $0)) }
        case .string:
            break
        }
        return data
    }
}
