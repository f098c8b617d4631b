import Foundation

/// One value a node reads or writes, with its declared type.
public struct ValueSummary: Codable, Sendable, Equatable {
    /// The value's name in the graph ("" for an omitted optional input).
    public var name: String
    /// Element type name, or nil when the model does not declare it.
    public var dtype: String?
    /// Dims as text (numbers, symbolic names, or "?"); nil when the rank is unknown.
    public var shape: [String]?
    /// Whether the value is a constant (initializer or Constant output).
    public var isConstant: Bool
}

/// What `tpat inspect` reports of one node.
public struct NodeInspection: Codable, Sendable, Equatable {
    /// The name the node is known by (its own, or `<OpType>#<index>` when it has none).
    public var name: String
    /// The op type.
    public var opType: String
    /// The op's domain ("" is ONNX's default domain).
    public var domain: String
    /// The inputs.
    public var inputs: [ValueSummary]
    /// The outputs.
    public var outputs: [ValueSummary]
    /// Whether TensorRT's ONNX parser runs the op natively.
    public var tensorRTNative: Bool
    /// Whether the pinned TVM's ONNX frontend converts the op.
    public var tvmConverts: Bool
    /// Whether the node is a plugin candidate: TensorRT cannot run it and TVM can.
    public var pluginCandidate: Bool
}

/// The whole report of `tpat inspect`.
public struct ModelInspection: Codable, Sendable, Equatable {
    /// The model file.
    public var model: String
    /// IR version, producer and opsets, for orientation.
    public var irVersion: Int64
    /// The producer named in the model.
    public var producer: String
    /// Opset version by domain.
    public var opsets: [String: Int64]
    /// Every node in graph order.
    public var nodes: [NodeInspection]
    /// Where the op tables come from.
    public var tableSources: [String]

    /// How many nodes TensorRT's ONNX parser cannot run natively.
    public var tensorRTUnsupportedCount: Int { nodes.filter { !$0.tensorRTNative }.count }
    /// How many nodes are plugin candidates.
    public var candidateCount: Int { nodes.filter(\.pluginCandidate).count }

    /// The closing summary line.
    public var summaryLine: String {
        "\(nodes.count) nodes, \(tensorRTUnsupportedCount) that TensorRT cannot run natively, \(candidateCount) plugin candidates (TensorRT cannot, TVM can)."
    }
}

/// The first stage of `inspect`: reads an indexed model and reports every node's support.
public struct ModelInspector: Sendable {
    /// The op tables to consult.
    public var tables: OpSupportTables

    /// Creates an inspector over the given tables (``OpSupportTables/bundled()`` are the ones TPAT ships).
    public init(tables: OpSupportTables) {
        self.tables = tables
    }

    /// Inspects every node of `model`.
    public func inspect(_ model: ONNXModel, path: String) -> ModelInspection {
        let index = GraphIndex(model: model)
        func summary(_ name: String) -> ValueSummary {
            let type = index.types[name]
            return ValueSummary(
                name: name, dtype: type?.elementType?.rawValue, shape: type?.shape?.map(\.description),
                isConstant: !name.isEmpty && index.isConstant(name))
        }
        let nodes = index.graph.node.enumerated().map { i, node in
            let native = tables.tensorRTRunsNatively(opType: node.opType, domain: node.domain)
            let converts = tables.tvmConverts(opType: node.opType, domain: node.domain)
            return NodeInspection(
                name: index.nodeNames[i], opType: node.opType, domain: node.domain,
                inputs: node.input.map(summary), outputs: node.output.map(summary),
                tensorRTNative: native, tvmConverts: converts, pluginCandidate: !native && converts)
        }
        return ModelInspection(
            model: path, irVersion: model.proto.irVersion, producer: model.proto.producerName,
            opsets: index.opsets, nodes: nodes, tableSources: [tables.tensorRTSource, tables.tvmSource])
    }
}

extension ModelInspection {
    /// The report as an aligned text table followed by the summary line.
    public func renderTable() -> String {
        func value(_ v: ValueSummary) -> String {
            let shape = v.shape.map { "[\($0.joined(separator: ","))]" } ?? "[?]"
            return "\(v.dtype ?? "?")\(shape)\(v.isConstant ? " const" : "")"
        }
        func yesNo(_ b: Bool) -> String { b ? "yes" : "no" }
        let header = ["NODE", "OP", "INPUTS", "OUTPUTS", "TENSORRT", "TVM", "PLUGIN"]
        let rows = nodes.map { n in
            [
                n.name, n.domain.isEmpty ? n.opType : "\(n.domain):\(n.opType)",
                n.inputs.filter { !$0.name.isEmpty }.map(value).joined(separator: " "),
                n.outputs.map(value).joined(separator: " "),
                yesNo(n.tensorRTNative), yesNo(n.tvmConverts), n.pluginCandidate ? "candidate" : "-",
            ]
        }
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        var out = line(header) + "\n"
        for row in rows { out += line(row) + "\n" }
        out += summaryLine + "\n"
        return out
    }
}
