import Foundation

/// The value of a node attribute, typed.
public enum AttributeValue: Equatable, Sendable {
    case float(Float)
    case int(Int64)
    case string(String)
    case tensor(Onnx_TensorProto)
    case graph(Onnx_GraphProto)
    case floats([Float])
    case ints([Int64])
    case strings([String])
    case tensors([Onnx_TensorProto])
    case graphs([Onnx_GraphProto])
    case typeProto(Onnx_TypeProto)
    case sparseTensor(Onnx_SparseTensorProto)
    /// A reference to an attribute of the enclosing function (`ref_attr_name`).
    case reference(String)

    /// Decodes an `AttributeProto` by its declared type.
    public init(_ attribute: Onnx_AttributeProto) {
        if !attribute.refAttrName.isEmpty {
            self = .reference(attribute.refAttrName)
            return
        }
        switch attribute.type {
        case .float: self = .float(attribute.f)
        case .int: self = .int(attribute.i)
        case .string: self = .string(String(decoding: attribute.s, as: UTF8.self))
        case .tensor: self = .tensor(attribute.t)
        case .graph: self = .graph(attribute.g)
        case .floats: self = .floats(attribute.floats)
        case .ints: self = .ints(attribute.ints)
        case .strings: self = .strings(attribute.strings.map { String(decoding: $0, as: UTF8.self) })
        case .tensors: self = .tensors(attribute.tensors)
        case .graphs: self = .graphs(attribute.graphs)
        case .typeProto: self = .typeProto(attribute.tp)
        case .sparseTensor: self = .sparseTensor(attribute.sparseTensor)
        default:
            // Old exporters leave `type` unset; infer it from the field that is filled.
            if attribute.hasT { self = .tensor(attribute.t) }
            else if attribute.hasG { self = .graph(attribute.g) }
            else if !attribute.ints.isEmpty { self = .ints(attribute.ints) }
            else if !attribute.floats.isEmpty { self = .floats(attribute.floats) }
            else if !attribute.strings.isEmpty { self = .strings(attribute.strings.map { String(decoding: $0, as: UTF8.self) }) }
            else if !attribute.s.isEmpty { self = .string(String(decoding: attribute.s, as: UTF8.self)) }
            else if attribute.f != 0 { self = .float(attribute.f) }
            else { self = .int(attribute.i) }
        }
    }

    /// A short human-readable form for tables.
    public var summary: String {
        switch self {
        case .float(let v): "\(v)"
        case .int(let v): "\(v)"
        case .string(let v): "\"\(v)\""
        case .tensor(let t): "tensor\(t.dims)"
        case .graph(let g): "graph(\(g.node.count) nodes)"
        case .floats(let v): "\(v)"
        case .ints(let v): "\(v)"
        case .strings(let v): "\(v)"
        case .tensors(let v): "\(v.count) tensors"
        case .graphs(let v): "\(v.count) graphs"
        case .typeProto: "type"
        case .sparseTensor: "sparse tensor"
        case .reference(let name): "@\(name)"
        }
    }
}

extension Onnx_NodeProto {
    /// The attribute named `name`, typed; nil when the node does not set it.
    public func attribute(named name: String) -> AttributeValue? {
        attribute.first { $0.name == name }.map(AttributeValue.init)
    }

    /// An INT attribute, or `defaultValue` when absent.
    public func intAttribute(_ name: String, default defaultValue: Int64) -> Int64 {
        if case .int(let value) = attribute(named: name) { return value }
        return defaultValue
    }

    /// A STRING attribute, or `defaultValue` when absent.
    public func stringAttribute(_ name: String, default defaultValue: String) -> String {
        if case .string(let value) = attribute(named: name) { return value }
        return defaultValue
    }
}
