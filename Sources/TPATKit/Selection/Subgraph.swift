import Foundation

/// A connected part of one graph that becomes one plugin: its nodes, the values entering it and
/// the values leaving it. One node is its smallest case.
///
/// The values are computed once, here, from the graph's producer and consumer maps, and every
/// later stage reads them from here: which of a member's inputs come from outside (plugin inputs
/// or constants held inside the plugin) and which outputs someone outside reads (plugin outputs).
public struct Subgraph: Sendable, Equatable {
    /// The graph it is in (the main graph, or an `If`/`Loop`/`Scan` body).
    public var path: GraphPath
    /// Its nodes in graph order (a topological order of the part).
    public var members: [SelectedNode]
    /// The values its nodes read that no member produces, in order of first use: graph inputs,
    /// other nodes' outputs, initializers and constants.
    public var entering: [String]
    /// The values its members produce that are read outside it (by another node, a body of
    /// another node, or as a graph output), in graph order; a single node's outputs that nobody
    /// reads leave too (the plugin computes what the node did). A value only members read, or
    /// that a member of several produces and nobody reads, stays inside the plugin.
    public var leaving: [String]

    /// The name the part is known by in messages and reports: its node's name, or for several
    /// nodes the first and last node's names and the count.
    public var name: String {
        guard members.count > 1 else { return members[0].name }
        return "\(members[0].name)..\(members[members.count - 1].name) (\(members.count) nodes)"
    }

    /// The op types of its nodes, for messages: `Erf`, or `Div+Erf+Add+Mul+Mul`; for more than
    /// six nodes each op type once, in order of appearance.
    public var opType: String {
        let types = members.map(\.node.opType)
        guard types.count > 6 else { return types.joined(separator: "+") }
        var distinct: [String] = []
        for type in types where !distinct.contains(type) { distinct.append(type) }
        return distinct.joined(separator: "+")
    }

    /// Whether it is a single node.
    public var isSingleNode: Bool { members.count == 1 }

    /// The part made of `members` (nodes of the graph `index` indexes, at `path`).
    public init(members: [SelectedNode], path: GraphPath, index: GraphIndex) {
        let ordered = members.sorted { $0.index < $1.index }
        self.path = path
        self.members = ordered
        let memberSet = Set(ordered.map(\.index))
        var produced = Set<String>()
        var entering: [String] = []
        var seen = Set<String>()
        for member in ordered {
            for value in member.node.input where !value.isEmpty && !produced.contains(value) && seen.insert(value).inserted {
                entering.append(value)
            }
            produced.formUnion(member.node.output.filter { !$0.isEmpty })
        }
        self.entering = entering
        let outerReaders = Self.bodyReads(of: index.graph)
        let graphOutputs = Set(index.outputNames)
        var leaving: [String] = []
        for member in ordered {
            for value in member.node.output where !value.isEmpty {
                let readers = index.consumers[value] ?? []
                let readOutside = readers.contains { !memberSet.contains($0) } || graphOutputs.contains(value)
                    || outerReaders[value].map { !$0.isSubset(of: memberSet) } == true
                let unread = readers.isEmpty && outerReaders[value] == nil
                if readOutside || (unread && ordered.count == 1) { leaving.append(value) }
            }
        }
        self.leaving = leaving
    }

    /// The one-node part.
    public init(node: SelectedNode, index: GraphIndex) {
        self.init(members: [node], path: node.path, index: index)
    }

    /// Values of `graph` that a node's bodies (`If` branches, `Loop`/`Scan` bodies) read from
    /// the enclosing scope, with the nodes owning those bodies: ONNX lists them nowhere in the
    /// node's inputs.
    static func bodyReads(of graph: Onnx_GraphProto) -> [String: Set<Int>] {
        var reads: [String: Set<Int>] = [:]
        for (k, node) in graph.node.enumerated() {
            for value in node.valuesReadInBodies { reads[value, default: []].insert(k) }
        }
        return reads
    }
}

/// How selected nodes are grouped into plugins: each node alone, or (`--fuse`) the connected
/// selected nodes of a graph together.
public enum SubgraphGrouping: String, Sendable, CaseIterable, Codable {
    /// One plugin per node (nodes computing the same thing still share one).
    case singleNodes
    /// One plugin per connected part of the selection: selected nodes joined by a value one
    /// produces and another reads, within one graph.
    case connected

    /// Groups `nodes` (in graph order, as the selection gives them).
    ///
    /// A part must be convex: no path may leave it and come back (a node outside reading one
    /// member's output and feeding another member), or the plugin node would depend on itself.
    /// Each connected group of selected nodes is one part when it is convex; a group that is not
    /// is split: its nodes are added in graph order to a part they read from as long as that part
    /// stays convex, and a node that fits none starts a part of its own.
    public func subgraphs(of nodes: [SelectedNode], in graphs: ModelGraphs) -> [Subgraph] {
        guard self == .connected else {
            return nodes.compactMap { node in graphs.entry(at: node.path).map { Subgraph(node: node, index: $0.index) } }
        }
        var result: [Subgraph] = []
        let byGraph = Dictionary(grouping: nodes, by: \.path)
        for entry in graphs.entries {
            guard let chosen = byGraph[entry.path] else { continue }
            let index = entry.index
            let successors = Self.successors(in: index)
            for group in Self.connectedGroups(chosen.sorted { $0.index < $1.index }) {
                if Self.isConvex(Set(group.map(\.index)), successors: successors) {
                    result.append(Subgraph(members: group, path: entry.path, index: index))
                } else {
                    result += Self.convexParts(of: group, successors: successors).map { Subgraph(members: $0, path: entry.path, index: index) }
                }
            }
        }
        return result
    }

    /// The selected nodes joined by a value one produces and another reads, in order of their
    /// first node.
    static func connectedGroups(_ nodes: [SelectedNode]) -> [[SelectedNode]] {
        var parent = Array(nodes.indices)
        func root(_ i: Int) -> Int {
            var i = i
            while parent[i] != i {
                parent[i] = parent[parent[i]]
                i = parent[i]
            }
            return i
        }
        var producerOf: [String: Int] = [:]
        for (i, node) in nodes.enumerated() {
            for value in node.node.output where !value.isEmpty { producerOf[value] = i }
        }
        for (i, node) in nodes.enumerated() {
            for value in node.node.input where !value.isEmpty {
                guard let p = producerOf[value] else { continue }
                let (a, b) = (root(p), root(i))
                if a != b { parent[max(a, b)] = min(a, b) }
            }
        }
        var groups: [Int: [SelectedNode]] = [:]
        var order: [Int] = []
        for (i, node) in nodes.enumerated() {
            let r = root(i)
            if groups[r] == nil { order.append(r) }
            groups[r, default: []].append(node)
        }
        return order.map { groups[$0]! }
    }

    /// A connected group that is not convex, split greedily into convex connected parts.
    static func convexParts(of group: [SelectedNode], successors: [[Int]]) -> [[SelectedNode]] {
        var parts: [[SelectedNode]] = []
        var partOfProducer: [String: Int] = [:]
        for node in group {
            var candidates: [Int] = []
            for value in node.node.input where !value.isEmpty {
                if let p = partOfProducer[value], !candidates.contains(p) { candidates.append(p) }
            }
            let joined = candidates.sorted(by: >).first { p in
                isConvex(Set(parts[p].map(\.index) + [node.index]), successors: successors)
            }
            let p: Int
            if let joined {
                parts[joined].append(node)
                p = joined
            } else {
                parts.append([node])
                p = parts.count - 1
            }
            for value in node.node.output where !value.isEmpty { partOfProducer[value] = p }
        }
        return parts
    }

    /// Each node's readers (by value or through a body reading it from the outer scope).
    static func successors(in index: GraphIndex) -> [[Int]] {
        let bodyReads = Subgraph.bodyReads(of: index.graph)
        return index.graph.node.enumerated().map { k, node in
            var next = Set<Int>()
            for value in node.output where !value.isEmpty {
                next.formUnion(index.consumers[value] ?? [])
                next.formUnion(bodyReads[value] ?? [])
            }
            next.remove(k)
            return next.sorted()
        }
    }

    /// Whether no path from a member through non-members reaches a member again.
    static func isConvex(_ members: Set<Int>, successors: [[Int]]) -> Bool {
        // Nodes reachable from a member's outside reader without passing a member.
        var stack = members.flatMap { successors[$0].filter { !members.contains($0) } }
        var visited = Set(stack)
        let last = members.max() ?? 0
        while let k = stack.popLast() {
            // graph order is topological: a node after the last member reaches none
            guard k < last else { continue }
            for next in successors[k] {
                if members.contains(next) { return false }
                if visited.insert(next).inserted { stack.append(next) }
            }
        }
        return true
    }
}
