import Foundation

/// One of a plugin node's inputs or outputs: the value in the original graph, and the element
/// type the plugin sees when it differs (TensorRT plugins cannot take BOOL or UINT8, so those
/// values travel as another type, ``PluginTarget/boundaryCarriers``, converted by Cast nodes around
/// the plugin).
public struct PluginPort: Sendable, Equatable, Codable {
    /// The value's name in the original graph.
    public var value: String
    /// The value's element type in the original graph.
    public var originalType: ElementType
    /// The type the plugin reads or writes; nil when it is `originalType`.
    public var pluginType: ElementType?

    /// Creates a port.
    public init(value: String, originalType: ElementType, pluginType: ElementType? = nil) {
        self.value = value
        self.originalType = originalType
        self.pluginType = pluginType
    }
}

/// How one part of the model (a node, or the nodes of a ``Subgraph``) is replaced by one plugin node.
public struct NodeReplacement: Sendable, Equatable {
    /// The indices of the part's nodes in their graph, in graph order.
    public var nodeIndices: [Int]
    /// The graph it is in: the main graph, or an `If`/`Loop`/`Scan` body, rewritten in place.
    public var path: GraphPath
    /// The plugin's name: the new op_type.
    public var pluginName: String
    /// `plugin_version`.
    public var pluginVersion: String
    /// `plugin_namespace`.
    public var pluginNamespace: String
    /// `tpat_kernels_id`: the kernels the plugin library holds. The parser hands it to the
    /// plugin's creator, which refuses a model rewritten for other kernels (a stale pair of model
    /// and library); nil writes no attribute.
    public var kernelsID: String?
    /// The plugin's inputs in order: the node's non-constant inputs (constants are inside the plugin).
    public var inputs: [PluginPort]
    /// The plugin's outputs in order.
    public var outputs: [PluginPort]

    /// Creates a replacement of the nodes at `nodeIndices`.
    public init(
        nodeIndices: [Int], path: GraphPath = .main, pluginName: String, pluginVersion: String = "1", pluginNamespace: String = "",
        kernelsID: String? = nil, inputs: [PluginPort], outputs: [PluginPort]
    ) {
        self.kernelsID = kernelsID
        self.nodeIndices = nodeIndices.sorted()
        self.path = path
        self.pluginName = pluginName
        self.pluginVersion = pluginVersion
        self.pluginNamespace = pluginNamespace
        self.inputs = inputs
        self.outputs = outputs
    }

    /// Creates a replacement of the one node at `nodeIndex`.
    public init(
        nodeIndex: Int, path: GraphPath = .main, pluginName: String, pluginVersion: String = "1", pluginNamespace: String = "",
        kernelsID: String? = nil, inputs: [PluginPort], outputs: [PluginPort]
    ) {
        self.init(
            nodeIndices: [nodeIndex], path: path, pluginName: pluginName, pluginVersion: pluginVersion, pluginNamespace: pluginNamespace,
            kernelsID: kernelsID, inputs: inputs, outputs: outputs)
    }
}

/// The rewrite stage: replaces chosen nodes by plugin nodes that TensorRT's ONNX parser resolves
/// through its plugin registry (op_type = plugin name, `plugin_version`, `plugin_namespace`).
public struct ModelRewriter: Sendable {
    /// The domain plugin nodes are put in; an opset import for it is added.
    public static let pluginDomain = "tpat"
    /// The plugin node's attribute naming its kernels (the plugin's creator field of that name).
    public static let kernelsIDAttribute = "tpat_kernels_id"

    /// Creates a rewriter.
    public init() {}

    /// One string attribute of a plugin node.
    public struct PluginAttribute: Sendable, Equatable {
        /// The attribute's name.
        public var name: String
        /// Its value.
        public var value: String
        /// Whether the ONNX parser hands it to the plugin's creator as a field; `plugin_version`
        /// and `plugin_namespace` it reads itself, to find the creator.
        public var isCreatorField: Bool
    }

    /// The attributes of `r`'s plugin node, in order: what the node carries, and so what the
    /// plugin's creator receives (the plugin host passes the same fields).
    public static func pluginAttributes(_ r: NodeReplacement) -> [PluginAttribute] {
        var attributes = [
            PluginAttribute(name: "plugin_version", value: r.pluginVersion, isCreatorField: false),
            PluginAttribute(name: "plugin_namespace", value: r.pluginNamespace, isCreatorField: false),
        ]
        if let id = r.kernelsID { attributes.append(PluginAttribute(name: kernelsIDAttribute, value: id, isCreatorField: true)) }
        return attributes
    }

    /// Returns a copy of `model` with each replacement applied; the input is not modified.
    /// Initializers that only replaced nodes used are dropped (their data lives in the plugins).
    public func rewrite(_ model: ONNXModel, replacements: [NodeReplacement]) -> ONNXModel {
        var result = model
        var graph = model.graph
        // Deepest graphs first: rewriting a graph inserts Casts and so moves its nodes, which
        // would leave the paths into its bodies stale; a graph is rewritten only after every
        // graph inside it.
        let byGraph = Dictionary(grouping: replacements, by: \.path)
        for path in byGraph.keys.sorted(by: { $0.steps.count > $1.steps.count }) {
            path.modify(&graph) { target in
                target.node = rewritten(target.node, byGraph[path] ?? [])
            }
        }
        // Initializers no remaining node reads (weights now inside plugins) would only bloat the model.
        var used = Set(graph.output.map(\.name))
        func collect(_ graph: Onnx_GraphProto) {
            for node in graph.node {
                used.formUnion(node.input)
                for attribute in node.attribute {
                    if attribute.hasG { collect(attribute.g) }
                    attribute.graphs.forEach(collect)
                }
            }
        }
        collect(graph)
        let graphInputs = Set(graph.input.map(\.name))
        graph.initializer.removeAll { !used.contains($0.name) && !graphInputs.contains($0.name) }
        result.graph = graph
        if !result.proto.opsetImport.contains(where: { $0.domain == Self.pluginDomain }) {
            var opset = Onnx_OperatorSetIdProto()
            opset.domain = Self.pluginDomain
            opset.version = 1
            result.proto.opsetImport.append(opset)
        }
        return result
    }

    /// `nodes` with each replacement's nodes swapped for the plugin node (and its Casts), which
    /// takes the place of the part's last node. Between a part's first and last node there may be
    /// nodes that read its results (the part is convex, so none of them feeds it): the graph is
    /// then put back into a topological order, keeping the given order wherever it can.
    private func rewritten(_ nodes: [Onnx_NodeProto], _ replacements: [NodeReplacement]) -> [Onnx_NodeProto] {
        var byLast: [Int: NodeReplacement] = [:]
        var removed = Set<Int>()
        for r in replacements {
            guard let last = r.nodeIndices.last, byLast[last] == nil else { continue }
            byLast[last] = r
            removed.formUnion(r.nodeIndices.dropLast())
        }
        var result: [Onnx_NodeProto] = []
        result.reserveCapacity(nodes.count + replacements.count * 2)
        for (i, node) in nodes.enumerated() where !removed.contains(i) {
            guard let replacement = byLast[i] else {
                result.append(node)
                continue
            }
            let members = replacement.nodeIndices.map { nodes[$0] }
            let (before, plugin, after) = pluginNodes(for: members, replacement)
            result += before
            result.append(plugin)
            result += after
        }
        return replacements.contains(where: { $0.nodeIndices.count > 1 }) ? Self.topologicallySorted(result) : result
    }

    /// `nodes` in a topological order: each node after the producers of what it reads (values no
    /// node produces are graph inputs, initializers or outer-scope values), otherwise in the given
    /// order.
    static func topologicallySorted(_ nodes: [Onnx_NodeProto]) -> [Onnx_NodeProto] {
        var producer: [String: Int] = [:]
        for (i, node) in nodes.enumerated() {
            for output in node.output where !output.isEmpty { producer[output] = i }
        }
        // Each node in the given order, after pulling forward the producers it reads that come
        // later (the plugin node of a part, and what it reads in turn).
        let producers = nodes.enumerated().map { i, node in
            Set((node.input + node.valuesReadInBodies).compactMap { producer[$0] }).subtracting([i]).sorted()
        }
        var placed = [Bool](repeating: false, count: nodes.count)
        var visiting = [Bool](repeating: false, count: nodes.count)
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        func place(_ i: Int) {
            // a cycle (a graph that was not acyclic to begin with) keeps its nodes where they are
            guard !placed[i], !visiting[i] else { return }
            visiting[i] = true
            for p in producers[i] { place(p) }
            placed[i] = true
            order.append(i)
        }
        for i in nodes.indices { place(i) }
        return order.map { nodes[$0] }
    }

    private func pluginNodes(for members: [Onnx_NodeProto], _ r: NodeReplacement) -> ([Onnx_NodeProto], Onnx_NodeProto, [Onnx_NodeProto]) {
        let node = members[0]
        var before: [Onnx_NodeProto] = []
        var after: [Onnx_NodeProto] = []
        var plugin = Onnx_NodeProto()
        plugin.name = node.name
        plugin.docString = members.count == 1
            ? "TPAT plugin \(r.pluginName) for \(node.opType) node '\(node.name)'"
            : "TPAT plugin \(r.pluginName) for \(members.count) nodes: " + members.map { "\($0.opType) '\($0.name)'" }.joined(separator: ", ")
        plugin.opType = r.pluginName
        plugin.domain = Self.pluginDomain
        let base = sanitizedValueSuffix(node.name.isEmpty ? r.pluginName : node.name)
        plugin.input = r.inputs.enumerated().map { i, port in
            guard let pluginType = port.pluginType, pluginType != port.originalType else { return port.value }
            let cast = "\(port.value)__tpat_\(base)_in\(i)_\(pluginType.rawValue)"
            before.append(castNode(name: "\(node.name)/tpat_cast_in\(i)", from: port.value, to: cast, type: pluginType))
            return cast
        }
        plugin.output = r.outputs.enumerated().map { j, port in
            guard let pluginType = port.pluginType, pluginType != port.originalType else { return port.value }
            let raw = "\(port.value)__tpat_\(base)_out\(j)_\(pluginType.rawValue)"
            after.append(castNode(name: "\(node.name)/tpat_cast_out\(j)", from: raw, to: port.value, type: port.originalType))
            return raw
        }
        plugin.attribute = Self.pluginAttributes(r).map { stringAttribute($0.name, $0.value) }
        return (before, plugin, after)
    }

    private func castNode(name: String, from input: String, to output: String, type: ElementType) -> Onnx_NodeProto {
        var cast = Onnx_NodeProto()
        cast.name = name
        cast.opType = "Cast"
        cast.input = [input]
        cast.output = [output]
        var to = Onnx_AttributeProto()
        to.name = "to"
        to.type = .int
        to.i = Int64(type.onnxValue)
        cast.attribute = [to]
        return cast
    }

    private func stringAttribute(_ name: String, _ value: String) -> Onnx_AttributeProto {
        var attribute = Onnx_AttributeProto()
        attribute.name = name
        attribute.type = .string
        attribute.s = Data(value.utf8)
        return attribute
    }

    private func sanitizedValueSuffix(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }
}
