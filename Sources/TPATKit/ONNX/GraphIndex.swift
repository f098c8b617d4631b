import Foundation

/// One dimension of a tensor shape as the model declares it.
public enum TensorDim: Hashable, Sendable, CustomStringConvertible, Codable {
    /// A fixed size.
    case fixed(Int64)
    /// A named symbolic size (`dim_param`).
    case symbolic(String)
    /// Neither a size nor a name.
    case unknown

    public var description: String {
        switch self {
        case .fixed(let v): "\(v)"
        case .symbolic(let name): name
        case .unknown: "?"
        }
    }

    /// The fixed size, if the dim has one.
    public var fixedValue: Int64? {
        if case .fixed(let v) = self { return v }
        return nil
    }
}

/// A tensor's element type and shape as declared in the graph (inputs, outputs, value_info,
/// or an initializer's own type). A nil shape means the rank itself is unknown.
public struct TensorType: Hashable, Sendable, CustomStringConvertible {
    /// The element type; nil when the model does not say.
    public var elementType: ElementType?
    /// The dims; nil when not even the rank is known.
    public var shape: [TensorDim]?

    /// Creates a tensor type.
    public init(elementType: ElementType?, shape: [TensorDim]?) {
        self.elementType = elementType
        self.shape = shape
    }

    /// Reads an ONNX `TypeProto`; nil for sequences, maps and other non-tensor types.
    public init?(_ type: Onnx_TypeProto) {
        guard case .tensorType(let tensor)? = type.value else { return nil }
        elementType = ElementType(onnx: tensor.elemType)
        if tensor.hasShape {
            shape = tensor.shape.dim.map { dim in
                switch dim.value {
                case .dimValue(let v)?: .fixed(v)
                case .dimParam(let p)? where !p.isEmpty: .symbolic(p)
                default: .unknown
                }
            }
        } else {
            shape = nil
        }
    }

    /// Whether every dim is known (fixed or symbolic).
    public var isFullyKnown: Bool { shape.map { !$0.contains(.unknown) } ?? false }

    /// The `TypeProto` for this type.
    public var proto: Onnx_TypeProto {
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = elementType?.onnxValue ?? 0
        if let shape {
            var shapeProto = Onnx_TensorShapeProto()
            shapeProto.dim = shape.map { dim in
                var d = Onnx_TensorShapeProto.Dimension()
                switch dim {
                case .fixed(let v): d.dimValue = v
                case .symbolic(let name): d.dimParam = name
                case .unknown: break
                }
                return d
            }
            tensor.shape = shapeProto
        }
        var type = Onnx_TypeProto()
        type.tensorType = tensor
        return type
    }

    public var description: String {
        let dtype = elementType?.rawValue ?? "?"
        guard let shape else { return "\(dtype)[?]" }
        return "\(dtype)[\(shape.map(\.description).joined(separator: ","))]"
    }
}

/// Look-ups over a graph that every stage needs: nodes by name, the producer and consumers of
/// each value, initializers, declared types, opsets and model-local functions.
///
/// Node names in ONNX are optional and not always unique; the index gives every node a
/// ``nodeNames`` entry that is: the node's own name when it is non-empty and unique, otherwise
/// `<OpType>#<index>`.
public struct GraphIndex: Sendable {
    /// The graph indexed.
    public let graph: Onnx_GraphProto
    /// The name each node is known by, in graph order.
    public let nodeNames: [String]
    /// Node index by name.
    public let nodeByName: [String: Int]
    /// The node that produces each value.
    public let producer: [String: Int]
    /// The nodes that consume each value, in graph order.
    public let consumers: [String: [Int]]
    /// Initializers by name.
    public let initializers: [String: Onnx_TensorProto]
    /// Declared types of values: graph inputs, outputs, value_info and initializers.
    public let types: [String: TensorType]
    /// Names of graph inputs that are not initializers (the model's real inputs).
    public let inputNames: [String]
    /// Names of graph outputs.
    public let outputNames: [String]
    /// Opset version by domain ("" is the default ONNX domain).
    public let opsets: [String: Int64]
    /// Model-local functions by `domain:name`.
    public let functions: [String: Onnx_FunctionProto]

    /// Indexes the main graph of `model`.
    public init(model: ONNXModel) {
        self.init(graph: model.proto.graph, opsetImport: model.proto.opsetImport, functions: model.proto.functions)
    }

    /// Indexes a graph with the model's opset imports and functions.
    public init(graph: Onnx_GraphProto, opsetImport: [Onnx_OperatorSetIdProto] = [], functions: [Onnx_FunctionProto] = []) {
        self.graph = graph
        var counts: [String: Int] = [:]
        for node in graph.node where !node.name.isEmpty { counts[node.name, default: 0] += 1 }
        var names: [String] = []
        var byName: [String: Int] = [:]
        var producer: [String: Int] = [:]
        var consumers: [String: [Int]] = [:]
        for (i, node) in graph.node.enumerated() {
            var name = counts[node.name] == 1 ? node.name : "\(node.opType)#\(i)"
            if byName[name] != nil { name = "\(node.opType)#\(i)" }
            names.append(name)
            byName[name] = i
            for output in node.output where !output.isEmpty { producer[output] = i }
            for input in node.input where !input.isEmpty {
                if consumers[input]?.last != i { consumers[input, default: []].append(i) }
            }
        }
        nodeNames = names
        nodeByName = byName
        self.producer = producer
        self.consumers = consumers
        var initializers: [String: Onnx_TensorProto] = [:]
        var types: [String: TensorType] = [:]
        for tensor in graph.initializer {
            initializers[tensor.name] = tensor
            types[tensor.name] = TensorType(elementType: ElementType(onnx: tensor.dataType), shape: tensor.dims.map { .fixed($0) })
        }
        self.initializers = initializers
        for info in graph.valueInfo + graph.output + graph.input {
            if let type = TensorType(info.type) { types[info.name] = type }
        }
        self.types = types
        inputNames = graph.input.map(\.name).filter { initializers[$0] == nil }
        outputNames = graph.output.map(\.name)
        var opsets: [String: Int64] = [:]
        for entry in opsetImport { opsets[entry.domain == "ai.onnx" ? "" : entry.domain] = entry.version }
        self.opsets = opsets
        var functionTable: [String: Onnx_FunctionProto] = [:]
        for function in functions { functionTable["\(function.domain):\(function.name)"] = function }
        self.functions = functionTable
    }

    /// The node known by `name`, or an error that suggests close names.
    public func node(named name: String) throws(ONNXError) -> (index: Int, node: Onnx_NodeProto) {
        guard let index = nodeByName[name] else {
            let lowered = name.lowercased()
            let suggestions = nodeNames.filter { $0.lowercased().contains(lowered) || lowered.contains($0.lowercased()) }
            throw .unknownNode(name: name, suggestions: Array(suggestions.prefix(3)))
        }
        return (index, graph.node[index])
    }

    /// The opset version that applies to `node`.
    public func opsetVersion(of node: Onnx_NodeProto) -> Int64? {
        opsets[node.domain == "ai.onnx" ? "" : node.domain]
    }

    /// Whether a value is a constant: an initializer that is not also a graph input (which a
    /// user could override), or the output of a `Constant` node.
    public func isConstant(_ value: String) -> Bool {
        if initializers[value] != nil && !graph.input.contains(where: { $0.name == value }) { return true }
        if let p = producer[value], graph.node[p].opType == "Constant", graph.node[p].domain.isEmpty || graph.node[p].domain == "ai.onnx" { return true }
        return false
    }

    /// The value of a constant (initializer or `Constant` node output), or nil.
    public func constantValue(_ value: String, store: ExternalDataStore?) throws(ONNXError) -> TensorValue? {
        if let tensor = initializers[value], !graph.input.contains(where: { $0.name == value }) {
            return try TensorValue(tensor, store: store)
        }
        guard let p = producer[value], graph.node[p].opType == "Constant" else { return nil }
        let node = graph.node[p]
        switch node.attribute(named: "value") {
        case .tensor(let t)?: return try TensorValue(t, store: store)
        default: break
        }
        let scalar: TensorValue? =
            switch (node.attribute(named: "value_float"), node.attribute(named: "value_int"),
                    node.attribute(named: "value_floats"), node.attribute(named: "value_ints")) {
            case (.float(let f)?, _, _, _): Self.tensor(.float32, [], [f.bitPattern])
            case (_, .int(let i)?, _, _): Self.tensor(.int64, [], [i])
            case (_, _, .floats(let fs)?, _): Self.tensor(.float32, [Int64(fs.count)], fs.map(\.bitPattern))
            case (_, _, _, .ints(let xs)?): Self.tensor(.int64, [Int64(xs.count)], xs)
            default: nil
            }
        return scalar
    }

    private static func tensor<T: FixedWidthInteger>(_ type: ElementType, _ shape: [Int64], _ values: [T]) -> TensorValue {
        var data = Data()
        for v in values { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        return TensorValue(elementType: type, shape: shape, bytes: data)
    }
}
