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
    /// Why `--auto` chose it when TensorRT lists its op as supported: the documented limit the
    /// node breaks. nil otherwise.
    public var tensorRTRestriction: String? = nil
}

/// A node the criteria matched that stays a native node, and why.
public struct SkippedNode: Sendable, Equatable, Codable {
    /// The name the node is known by.
    public var node: String
    /// Its op type.
    public var opType: String
    /// Why it stays, in the user's terms.
    public var reason: String
}

/// What the selection stage hands on: the chosen nodes (in graph order, each once), the nodes
/// the criteria matched but that must stay native, and warnings about the criteria.
public struct NodeSelection: Sendable, Equatable {
    /// The chosen nodes.
    public var nodes: [SelectedNode]
    /// Matched nodes left out, with the reason.
    public var skipped: [SkippedNode]
    /// Things the user should know about the request (an op type absent from the model, a named
    /// node whose output is shape arithmetic).
    public var warnings: [String]
}

/// The selection stage: criteria in, a ``NodeSelection`` out.
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
    ///
    /// `--nodes` takes every named node. `--op-types` and `--auto` leave out nodes whose outputs
    /// are shape arithmetic (``ShapeValues``): TensorRT cannot use a plugin's output as a shape.
    public func select(_ criteria: NodeCriteria, in index: GraphIndex) throws(TPATError) -> NodeSelection {
        var chosen: [Int: String?] = [:]
        var skipped: [SkippedNode] = []
        var warnings: [String] = []
        let shapeValues = ShapeValues(index: index)
        func shapeReason(_ node: Onnx_NodeProto) -> String? {
            shapeValues.shapeOutput(of: node).map {
                "its output '\($0)' is shape arithmetic (it ends in a shape, size or axis input); TensorRT needs it as a shape tensor, which a plugin cannot produce"
            }
        }
        switch criteria {
        case .names(let names):
            guard !names.isEmpty else { throw .usage("no node names given; pass --nodes A,B or --op-types, or --auto") }
            for name in names {
                let found: (index: Int, node: Onnx_NodeProto)
                do { found = try index.node(named: name) } catch { throw .usage(error.description) }
                chosen[found.index] = .some(nil)
                if let reason = shapeReason(found.node) {
                    warnings.append("node '\(name)': \(reason); the rewritten model may not build in TensorRT")
                }
            }
        case .opTypes(let types):
            guard !types.isEmpty else { throw .usage("no op types given") }
            let present = Set(index.graph.node.map(\.opType))
            for type in types {
                let matches = index.graph.node.indices.filter { index.graph.node[$0].opType == type }
                if matches.isEmpty {
                    guard tables.isKnownOpType(type) else {
                        throw .usage("'\(type)' is not an ONNX op type (op types are case-sensitive; the model has: \(present.sorted().joined(separator: ", ")))")
                    }
                    warnings.append("the model has no node of op type '\(type)'")
                    continue
                }
                for i in matches {
                    if let reason = shapeReason(index.graph.node[i]) {
                        skipped.append(SkippedNode(node: index.nodeNames[i], opType: type, reason: reason))
                    } else {
                        chosen[i] = .some(nil)
                    }
                }
            }
            guard !chosen.isEmpty || !skipped.isEmpty else {
                throw .usage("the model has no node of op type \(types.map { "'\($0)'" }.joined(separator: ", ")) (the model has: \(present.sorted().joined(separator: ", ")))")
            }
        case .auto:
            for (i, node) in index.graph.node.enumerated()
            where tables.tvmConverts(opType: node.opType, domain: node.domain) && !Self.opsWithoutKernels.contains(node.opType) {
                let restriction: String?
                if !tables.tensorRTRunsNatively(opType: node.opType, domain: node.domain) {
                    restriction = nil
                } else if let broken = TensorRTRestrictions.brokenRestriction(of: node, in: index) {
                    restriction = broken
                } else {
                    continue
                }
                if let reason = shapeReason(node) {
                    skipped.append(SkippedNode(node: index.nodeNames[i], opType: node.opType, reason: reason))
                } else {
                    chosen[i] = .some(restriction)
                }
            }
        }
        let selected = chosen.keys.sorted().map {
            SelectedNode(index: $0, name: index.nodeNames[$0], node: index.graph.node[$0], tensorRTRestriction: chosen[$0] ?? nil)
        }
        for s in selected {
            if Self.opsWithoutKernels.contains(s.node.opType) {
                throw .node(name: s.name, reason: "\(s.node.opType) computes no data on the GPU; TensorRT handles it natively, so leave it out of the selection")
            }
            guard tables.tvmConverts(opType: s.node.opType, domain: s.node.domain) else {
                let domain = s.node.domain.isEmpty ? "" : " of domain '\(s.node.domain)'"
                throw .node(name: s.name, reason: "op \(s.node.opType)\(domain) is not supported by TVM's ONNX frontend (apache-tvm 0.27); leave it out of the selection")
            }
        }
        return NodeSelection(nodes: selected, skipped: skipped, warnings: warnings)
    }
}

extension OpSupportTables {
    /// Whether `opType` names an op of the default ONNX domain that either table knows (TensorRT's
    /// table lists every ONNX op, supported or not).
    func isKnownOpType(_ opType: String) -> Bool {
        tensorRT[opType] != nil || tvm.contains(opType)
    }
}
