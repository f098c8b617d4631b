import Foundation

/// Which nodes to turn into plugins.
public enum NodeCriteria: Sendable, Equatable {
    /// Nodes by the names `tpat inspect` shows.
    case names([String])
    /// Every node of these op types.
    case opTypes([String])
    /// Every node TensorRT's ONNX parser cannot run natively and TVM can convert.
    case auto
}

/// A node chosen for a plugin.
public struct SelectedNode: Sendable, Equatable {
    /// Index in the graph.
    public var index: Int
    /// The name the node is known by (``GraphIndex/nodeNames``).
    public var name: String
    /// The node.
    public var node: Onnx_NodeProto
}

/// The selection stage: criteria in, the chosen nodes out (in graph order, each once).
public struct NodeSelector: Sendable {
    /// The op tables that decide `auto` and whether TVM can convert an op.
    public var tables: OpSupportTables

    /// Creates a selector.
    public init(tables: OpSupportTables) {
        self.tables = tables
    }

    /// Ops that compute nothing on the device (or only shapes); selecting them is a mistake.
    public static let opsWithoutKernels: Set<String> = ["Constant", "Shape", "Size", "ConstantOfShape", "Optional", "OptionalGetElement", "OptionalHasElement"]

    /// Chooses the nodes of `index` that `criteria` names.
    public func select(_ criteria: NodeCriteria, in index: GraphIndex) throws(TPATError) -> [SelectedNode] {
        var chosen = Set<Int>()
        switch criteria {
        case .names(let names):
            guard !names.isEmpty else { throw .usage("no node names given; pass --nodes A,B or --op-types, or --auto") }
            for name in names {
                do {
                    chosen.insert(try index.node(named: name).index)
                } catch {
                    throw .usage(error.description)
                }
            }
        case .opTypes(let types):
            guard !types.isEmpty else { throw .usage("no op types given") }
            for type in types {
                let matches = index.graph.node.indices.filter { index.graph.node[$0].opType == type }
                guard !matches.isEmpty else {
                    let present = Set(index.graph.node.map(\.opType)).sorted().joined(separator: ", ")
                    throw .usage("the model has no node of op type '\(type)' (op types are case-sensitive; the model has: \(present))")
                }
                chosen.formUnion(matches)
            }
        case .auto:
            for (i, node) in index.graph.node.enumerated()
            where !tables.tensorRTRunsNatively(opType: node.opType, domain: node.domain)
                && tables.tvmConverts(opType: node.opType, domain: node.domain)
                && !Self.opsWithoutKernels.contains(node.opType) {
                chosen.insert(i)
            }
        }
        let selected = chosen.sorted().map { SelectedNode(index: $0, name: index.nodeNames[$0], node: index.graph.node[$0]) }
        for s in selected {
            if Self.opsWithoutKernels.contains(s.node.opType) {
                throw .node(name: s.name, reason: "\(s.node.opType) computes no data on the GPU; TensorRT handles it natively, so leave it out of the selection")
            }
            guard tables.tvmConverts(opType: s.node.opType, domain: s.node.domain) else {
                let domain = s.node.domain.isEmpty ? "" : " of domain '\(s.node.domain)'"
                throw .node(name: s.name, reason: "op \(s.node.opType)\(domain) is not supported by TVM's ONNX frontend (apache-tvm 0.27); leave it out of the selection")
            }
        }
        return selected
    }
}
