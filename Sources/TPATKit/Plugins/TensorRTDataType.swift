/// A TensorRT `nvinfer1::DataType`: the enumerator a plugin source names and the value TensorRT's
/// ABI gives it (the same in TensorRT 8, 10 and 11), which the plugin host list carries.
public enum TensorRTDataType: Int32, Sendable, Codable, CaseIterable {
    case float = 0
    case half = 1
    case int8 = 2
    case int32 = 3
    case bool = 4
    case uint8 = 5
    case bfloat16 = 7
    case int64 = 8

    /// The type a plugin of `api` takes for ONNX element type `t`; nil where it has none (TensorRT
    /// 8's plugins take no BF16 or INT64).
    public init?(_ t: ElementType, api: TensorRTAPI) {
        switch t {
        case .float32: self = .float
        case .float16: self = .half
        case .int8: self = .int8
        case .int32: self = .int32
        case .bool: self = .bool
        case .uint8: self = .uint8
        case .bfloat16 where api == .v3: self = .bfloat16
        case .int64 where api == .v3: self = .int64
        default: return nil
        }
    }

    /// The enumerator's name, e.g. `kFLOAT`.
    public var enumerator: String {
        switch self {
        case .float: "kFLOAT"
        case .half: "kHALF"
        case .int8: "kINT8"
        case .int32: "kINT32"
        case .bool: "kBOOL"
        case .uint8: "kUINT8"
        case .bfloat16: "kBF16"
        case .int64: "kINT64"
        }
    }

    /// The enumerator as C++ (`nvinfer1::DataType::kFLOAT`).
    public var cxx: String { "nvinfer1::DataType::\(enumerator)" }
}
