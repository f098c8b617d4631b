import Foundation

/// Where a graph sits in a model: the chain of graph attributes that leads to it from the main
/// graph (an `If` node's `then_branch`, a `Loop`'s `body`, ...). The main graph's path is empty.
public struct GraphPath: Hashable, Sendable, Codable, CustomStringConvertible {
    /// One step down: the node at `node` of the enclosing graph, its graph attribute `attribute`,
    /// and for a `graphs` (list) attribute the position in the list.
    public struct Step: Hashable, Sendable, Codable {
        /// The node's index in the enclosing graph.
        public var node: Int
        /// The name of the graph attribute.
        public var attribute: String
        /// The position in a list-of-graphs attribute; nil for a single graph.
        public var position: Int?
    }

    /// The steps from the main graph.
    public var steps: [Step]

    /// The main graph.
    public static let main = GraphPath(steps: [])

    /// Whether this is the main graph.
    public var isMain: Bool { steps.isEmpty }

    public var description: String {
        isMain ? "main graph" : steps.map { "node \($0.node) \($0.attribute)\($0.position.map { "[\($0)]" } ?? "")" }.joined(separator: " > ")
    }

    /// The path one step further down.
    public func appending(_ step: Step) -> GraphPath { GraphPath(steps: steps + [step]) }

    /// The graph at this path in `graph`, or nil when the path does not lead to one.
    public func graph(in graph: Onnx_GraphProto) -> Onnx_GraphProto? {
        var current = graph
        for step in steps {
            guard current.node.indices.contains(step.node),
                let attribute = current.node[step.node].attribute.first(where: { $0.name == step.attribute })
            else { return nil }
            if let position = step.position {
                guard attribute.graphs.indices.contains(position) else { return nil }
                current = attribute.graphs[position]
            } else {
                guard attribute.hasG else { return nil }
                current = attribute.g
            }
        }
        return current
    }

    /// Applies `body` to the graph at this path inside `graph`, in place.
    public func modify(_ graph: inout Onnx_GraphProto, _ body: (inout Onnx_GraphProto) -> Void) {
        guard let step = steps.first else { return body(&graph) }
        let rest = GraphPath(steps: Array(steps.dropFirst()))
        guard graph.node.indices.contains(step.node),
            let a = graph.node[step.node].attribute.firstIndex(where: { $0.name == step.attribute })
        else { return }
        if let position = step.position {
            guard graph.node[step.node].attribute[a].graphs.indices.contains(position) else { return }
            rest.modify(&graph.node[step.node].attribute[a].graphs[position], body)
        } else {
            rest.modify(&graph.node[step.node].attribute[a].g, body)
        }
    }
}

/// Every graph of a model, the bodies of `If`, `Loop` and `Scan` nodes (recursively) after the
/// main graph, each indexed with what its nodes can see.
///
/// A node in a body can read values of the enclosing graphs (ONNX's outer scope). So a body's
/// index is built over a copy of the body that also declares the types of the outer values it
/// can see and holds their constants (initializers, `Constant` node outputs) as initializers:
/// every stage that asks the index for a type or a constant gets the same answer it gets for a
/// main-graph node. The copy is only read; rewrites go to the model through ``GraphPath``.
public struct ModelGraphs: Sendable {
    /// One graph of the model.
    public struct Entry: Sendable {
        /// Where it is.
        public var path: GraphPath
        /// Its index (over the scoped copy for a body).
        public var index: GraphIndex
        /// What a node's name is prefixed with in this graph: "" for the main graph, else
        /// `<owner node name>::<attribute>::` (the owner's own prefix first).
        public var namePrefix: String
    }

    /// The main graph first, then every body in depth-first order.
    public let entries: [Entry]

    /// Separates the names of a node path: `/roi_heads/If::else_branch::NonMaxSuppression_5`.
    public static let separator = "::"

    /// Indexes every graph of `model`.
    public init(model: ONNXModel) {
        let main = GraphIndex(model: model)
        var entries = [Entry(path: .main, index: main, namePrefix: "")]
        Self.collect(
            parent: main, path: .main, prefix: "", store: model.externalData, opsetImport: model.proto.opsetImport,
            functions: model.proto.functions, into: &entries)
        self.entries = entries
    }

    /// The main graph's index.
    public var main: GraphIndex { entries[0].index }

    /// The entry of the graph at `path`.
    public func entry(at path: GraphPath) -> Entry? {
        entries.first { $0.path == path }
    }

    /// The full name of node `k` of the graph at `entry`.
    public func name(of k: Int, in entry: Entry) -> String {
        entry.namePrefix + entry.index.nodeNames[k]
    }

    /// The node known by a full name (`inspect` shows them), its graph and index. A body's
    /// names are its prefix and the node's own name; the longest prefix that fits wins.
    public func node(named name: String) -> (entry: Entry, index: Int)? {
        var found: (entry: Entry, index: Int)?
        for entry in entries where name.hasPrefix(entry.namePrefix) {
            guard let k = entry.index.nodeByName[String(name.dropFirst(entry.namePrefix.count))] else { continue }
            if found == nil || entry.namePrefix.count > found!.entry.namePrefix.count { found = (entry, k) }
        }
        return found
    }

    /// Every node's full name, graph by graph.
    public var allNodeNames: [String] {
        entries.flatMap { entry in entry.index.nodeNames.map { entry.namePrefix + $0 } }
    }

    private static func collect(
        parent: GraphIndex, path: GraphPath, prefix: String, store: ExternalDataStore,
        opsetImport: [Onnx_OperatorSetIdProto], functions: [Onnx_FunctionProto], into entries: inout [Entry]
    ) {
        for (k, node) in parent.graph.node.enumerated() {
            for attribute in node.attribute {
                let bodies: [(Onnx_GraphProto, Int?)] =
                    attribute.hasG ? [(attribute.g, nil)] : attribute.graphs.enumerated().map { ($1, $0) }
                for (body, position) in bodies {
                    let bodyPath = path.appending(.init(node: k, attribute: attribute.name, position: position))
                    let bodyPrefix = prefix + parent.nodeNames[k] + separator + attribute.name
                        + (position.map { "[\($0)]" } ?? "") + separator
                    let scoped = Self.scoped(body, outer: parent, store: store)
                    let index = GraphIndex(graph: scoped, opsetImport: opsetImport, functions: functions)
                    entries.append(Entry(path: bodyPath, index: index, namePrefix: bodyPrefix))
                    collect(
                        parent: index, path: bodyPath, prefix: bodyPrefix, store: store, opsetImport: opsetImport,
                        functions: functions, into: &entries)
                }
            }
        }
    }

    /// The body with the outer values it reads declared (types) and their constants held.
    private static func scoped(_ body: Onnx_GraphProto, outer: GraphIndex, store: ExternalDataStore) -> Onnx_GraphProto {
        var scoped = body
        var defined = Set(body.input.map(\.name) + body.initializer.map(\.name))
        for node in body.node { defined.formUnion(node.output) }
        var read = Set<String>()
        for node in body.node { read.formUnion(node.input.filter { !$0.isEmpty } + node.valuesReadInBodies) }
        let declared = Set(body.valueInfo.map(\.name))
        for value in read.subtracting(defined).sorted() {
            if outer.isConstant(value) {
                // an initializer travels as it is (external data stays a reference); a Constant
                // node's value is small
                if let tensor = outer.initializers[value] {
                    scoped.initializer.append(tensor)
                    continue
                }
                if let constant = try? outer.constantValue(value, store: store) {
                    scoped.initializer.append(constant.proto(name: value))
                    continue
                }
            }
            if !declared.contains(value), let type = outer.types[value] {
                var info = Onnx_ValueInfoProto()
                info.name = value
                info.type = type.proto
                scoped.valueInfo.append(info)
            }
        }
        return scoped
    }
}

extension Onnx_NodeProto {
    /// The values this node's bodies (`If` branches, `Loop`/`Scan` bodies, and theirs) read, in
    /// any scope: ONNX lists the ones from the enclosing graphs nowhere in the node's inputs.
    var valuesReadInBodies: [String] {
        var values: [String] = []
        func collect(_ graph: Onnx_GraphProto) {
            for node in graph.node {
                values += node.input.filter { !$0.isEmpty }
                for attribute in node.attribute {
                    if attribute.hasG { collect(attribute.g) }
                    attribute.graphs.forEach(collect)
                }
            }
        }
        for attribute in attribute {
            if attribute.hasG { collect(attribute.g) }
            attribute.graphs.forEach(collect)
        }
        return values
    }
}
