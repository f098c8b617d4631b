import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
    /// Index in its graph.
    public var index: Int
    /// The name the node is known by: ``GraphIndex/nodeNames`` in the main graph, with its
    /// body's prefix in an `If`/`Loop`/`Scan` body (``ModelGraphs``).
    public var name: String
    /// The node.
    public var node: Onnx_NodeProto
    /// Why `--auto` chose it when TensorRT lists its op as supported: the documented limit the
    /// node breaks. nil otherwise.
    public var tensorRTRestriction: String? = nil
    /// The graph it is in.
    public var path: GraphPath = .main
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

/// What the selection stage hands on: the chosen nodes (in graph order, each once) grouped into
/// the parts that become plugins, the nodes the criteria matched but that must stay native, and
/// warnings about the criteria.
public struct NodeSelection: Sendable, Equatable {
    /// The chosen nodes.
    public var nodes: [SelectedNode]
    /// The chosen nodes grouped into the parts that each become one plugin (each node alone
    /// unless fused, ``SubgraphGrouping``).
    public var subgraphs: [Subgraph]
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

    /// Chooses the nodes of a model's graphs (bodies of `If`, `Loop` and `Scan` included) that
    /// `criteria` names.
    ///
    /// `--nodes` takes every named node. `--op-types` and `--auto` leave out nodes whose outputs
    /// are shape arithmetic (``ShapeValues``): TensorRT cannot use a plugin's output as a shape.
    ///
    /// `grouping` says which of the chosen nodes make one plugin together. In a part of several
    /// nodes, ops that compute no data of their own (`Shape`, `Constant`) are welcome: TVM folds them.
    public func select(_ criteria: NodeCriteria, grouping: SubgraphGrouping = .singleNodes, in graphs: ModelGraphs) throws(TPATError) -> NodeSelection {
        var chosen: [ChosenKey: String?] = [:]
        var skipped: [SkippedNode] = []
        var warnings: [String] = []
        let shapeValues = graphs.entries.map { ShapeValues(index: $0.index) }
        func shapeReason(_ node: Onnx_NodeProto, graph g: Int) -> String? {
            shapeValues[g].shapeOutput(of: node).map {
                "its output '\($0)' is shape arithmetic (it ends in a shape, size or axis input); TensorRT needs it as a shape tensor, which a plugin cannot produce"
            }
        }
        func every(_ body: (Int, ModelGraphs.Entry, Int, Onnx_NodeProto) throws(TPATError) -> Void) throws(TPATError) {
            for (g, entry) in graphs.entries.enumerated() {
                for (k, node) in entry.index.graph.node.enumerated() { try body(g, entry, k, node) }
            }
        }
        switch criteria {
        case .names(let names):
            guard !names.isEmpty else { throw .usage("no node names given; pass --nodes A,B or --op-types, or --auto") }
            for pattern in names where Self.isPattern(pattern) {
                // A pattern names a region (`/encoder/layer.0/act/*`): every node it matches; nodes
                // that compute no data join a fused part, and are left out of single-node plugins.
                var matched = 0
                try every { g, entry, k, node throws(TPATError) in
                    let name = graphs.name(of: k, in: entry)
                    guard fnmatch(pattern, name, 0) == 0 else { return }
                    matched += 1
                    if Self.opsWithoutKernels.contains(node.opType), grouping == .singleNodes {
                        skipped.append(SkippedNode(node: name, opType: node.opType, reason: "\(node.opType) computes no data on the GPU; TensorRT runs it natively (with --fuse it joins its neighbours' plugin)"))
                        return
                    }
                    chosen[ChosenKey(graph: g, node: k)] = .some(nil)
                }
                guard matched > 0 else { throw .usage("--nodes pattern '\(pattern)' matches no node; `tpat inspect` lists the node names") }
            }
            for name in names where !Self.isPattern(name) {
                guard let found = graphs.node(named: name) else {
                    let lowered = name.lowercased()
                    let suggestions = graphs.allNodeNames.filter { $0.lowercased().contains(lowered) || lowered.contains($0.lowercased()) }
                    throw .usage(ONNXError.unknownNode(name: name, suggestions: Array(suggestions.prefix(3))).description)
                }
                let g = graphs.entries.firstIndex { $0.path == found.entry.path }!
                chosen[ChosenKey(graph: g, node: found.index)] = .some(nil)
                if let reason = shapeReason(found.entry.index.graph.node[found.index], graph: g) {
                    warnings.append("node '\(name)': \(reason); the rewritten model may not build in TensorRT")
                }
            }
        case .opTypes(let types):
            guard !types.isEmpty else { throw .usage("no op types given") }
            // An op of another domain is also named `domain:op`, as `inspect` and the op table name it.
            func qualified(_ node: Onnx_NodeProto) -> String {
                OpSupportTables.qualifiedName(opType: node.opType, domain: node.domain)
            }
            var present = Set<String>()
            try every { _, _, _, node throws(TPATError) in
                present.insert(node.opType)
                present.insert(qualified(node))
            }
            for type in types where !present.contains(type) {
                guard tables.isKnownOpType(type) else {
                    throw .usage("'\(type)' is not an ONNX op type (op types are case-sensitive; the model has: \(present.sorted().joined(separator: ", ")))")
                }
                warnings.append("the model has no node of op type '\(type)'")
            }
            let wanted = Set(types)
            try every { g, entry, k, node throws(TPATError) in
                guard wanted.contains(node.opType) || wanted.contains(qualified(node)) else { return }
                if let reason = shapeReason(node, graph: g) {
                    skipped.append(SkippedNode(node: graphs.name(of: k, in: entry), opType: node.opType, reason: reason))
                } else {
                    chosen[ChosenKey(graph: g, node: k)] = .some(nil)
                }
            }
            guard !chosen.isEmpty || !skipped.isEmpty else {
                throw .usage("the model has no node of op type \(types.map { "'\($0)'" }.joined(separator: ", ")) (the model has: \(present.sorted().joined(separator: ", ")))")
            }
        case .auto:
            try every { g, entry, k, node throws(TPATError) in
                guard tables.tvmConverts(opType: node.opType, domain: node.domain), !Self.opsWithoutKernels.contains(node.opType) else { return }
                let restriction: String?
                if !tables.tensorRTRunsNatively(opType: node.opType, domain: node.domain) {
                    restriction = nil
                } else if let broken = TensorRTRestrictions.brokenRestriction(of: node, in: entry.index) {
                    restriction = broken
                } else {
                    return
                }
                if let reason = shapeReason(node, graph: g) {
                    skipped.append(SkippedNode(node: graphs.name(of: k, in: entry), opType: node.opType, reason: reason))
                } else {
                    chosen[ChosenKey(graph: g, node: k)] = .some(restriction)
                }
            }
        }
        let selected = chosen.keys.sorted().map { key in
            let entry = graphs.entries[key.graph]
            return SelectedNode(
                index: key.node, name: graphs.name(of: key.node, in: entry), node: entry.index.graph.node[key.node],
                tensorRTRestriction: chosen[key] ?? nil, path: entry.path)
        }
        var parts = grouping.subgraphs(of: selected, in: graphs)
        if grouping == .connected {
            // Shape or Constant nodes that join no other chosen node are left out, not refused:
            // fusing asks for the connected parts, and these form none.
            parts.removeAll { part in
                guard part.isSingleNode, Self.opsWithoutKernels.contains(part.members[0].node.opType) else { return false }
                skipped.append(SkippedNode(
                    node: part.members[0].name, opType: part.opType,
                    reason: "\(part.opType) computes no data on the GPU and joins no other chosen node; TensorRT runs it natively"))
                return true
            }
        }
        for part in parts {
            for s in part.members {
                if Self.opsWithoutKernels.contains(s.node.opType), part.isSingleNode {
                    throw .node(name: s.name, reason: "\(s.node.opType) computes no data on the GPU; TensorRT handles it natively, so leave it out of the selection")
                }
                guard tables.tvmConverts(opType: s.node.opType, domain: s.node.domain) else {
                    let domain = s.node.domain.isEmpty ? "" : " of domain '\(s.node.domain)'"
                    throw .node(name: s.name, reason: "op \(s.node.opType)\(domain) is not supported by TVM's ONNX frontend (apache-tvm 0.27); leave it out of the selection")
                }
            }
        }
        return NodeSelection(nodes: selected, subgraphs: parts, skipped: skipped, warnings: warnings)
    }

    /// Whether a `--nodes` entry is a pattern (`*` or `?`, as the shell's; `[...]` too once one
    /// of those makes it a pattern) rather than a name: body names hold `[0]` literally.
    static func isPattern(_ name: String) -> Bool {
        name.contains("*") || name.contains("?")
    }

    /// A node by its graph (position in ``ModelGraphs/entries``) and index there, in model order.
    private struct ChosenKey: Hashable, Comparable {
        var graph: Int
        var node: Int
        static func < (a: ChosenKey, b: ChosenKey) -> Bool { (a.graph, a.node) < (b.graph, b.node) }
    }
}

extension OpSupportTables {
    /// Whether `opType` names an op of the default ONNX domain that either table knows (TensorRT's
    /// table lists every ONNX op, supported or not).
    func isKnownOpType(_ opType: String) -> Bool {
        tensorRT[opType] != nil || tvm.contains(opType)
    }
}
