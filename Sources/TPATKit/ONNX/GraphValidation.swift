import Foundation

/// The structural rules of ONNX that every later step relies on, checked once when a model is
/// loaded (``ONNXModel/load(contentsOf:)``) so that `tpat inspect` and `tpat generate` refuse the
/// same models before doing any work.
///
/// The rules follow `onnx.checker.check_model` of the pinned onnx (1.23.2), which is strict: nodes
/// must be listed in topological order (an input is defined only by a graph input, an
/// initializer, or an earlier node; inside If/Loop/Scan bodies also by the enclosing graphs'
/// values defined before the node holding the body), every value has one producer (SSA), and
/// graph outputs are defined in their own graph. Empty input and output names are ONNX's
/// "optional, not given" and are skipped. The first problem found is reported, naming the node
/// or value.
enum GraphValidation {
    /// The highest IR version onnx 1.23.2 knows (`onnx.IR_VERSION`).
    static let maxIRVersion: Int64 = 14
    /// The highest opset version onnx 1.23.2 knows per domain ("" is the default ONNX domain;
    /// `onnx.defs.onnx_opset_version()` gives 28). Other domains are custom ops: any version.
    static let maxOpsetVersions: [String: Int64] = ["": 28, "ai.onnx.ml": 5, "ai.onnx.preview.training": 1, "ai.onnx.preview": 1]

    /// Throws ``ONNXError/invalidModel(path:problem:)`` for the first rule `model` breaks.
    static func validate(_ model: Onnx_ModelProto, path: String) throws(ONNXError) {
        do {
            try checkVersions(model)
            var checker = ScopeChecker()
            try checker.check(model.graph, context: "the main graph")
            for function in model.functions {
                var functionChecker = ScopeChecker()
                try functionChecker.check(function)
            }
        } catch {
            throw .invalidModel(path: path, problem: error.problem)
        }
    }

    /// One broken rule, in the user's words, with what to do.
    struct Violation: Error {
        var problem: String
    }

    private static func checkVersions(_ model: Onnx_ModelProto) throws(Violation) {
        if model.irVersion > maxIRVersion {
            throw Violation(problem: "its ir_version is \(model.irVersion), but the ONNX TPAT uses (1.23.2) knows IR versions up to \(maxIRVersion); export the model with an ONNX release TPAT supports, or check that the file is not damaged")
        }
        var hasDefaultDomain = false
        for opset in model.opsetImport {
            let domain = opset.domain == "ai.onnx" ? "" : opset.domain
            let shown = domain.isEmpty ? "the default ONNX domain" : "domain '\(domain)'"
            if domain.isEmpty { hasDefaultDomain = true }
            if let known = maxOpsetVersions[domain], opset.version > known {
                throw Violation(problem: "it imports opset \(opset.version) of \(shown), but the ONNX TPAT uses (1.23.2) knows opsets up to \(known); export the model with opset \(known) or lower (onnx.version_converter can convert it)")
            }
            if maxOpsetVersions[domain] != nil, opset.version < 1 {
                throw Violation(problem: "it imports opset \(opset.version) of \(shown); opset versions start at 1")
            }
        }
        if !hasDefaultDomain {
            throw Violation(problem: "it imports no opset of the default ONNX domain (opset_import has no entry with domain \"\"); every ONNX model with IR version 3 or later must name one")
        }
    }

    /// Walks a graph and its subgraphs with the values each point can see.
    private struct ScopeChecker {
        /// Values defined by the enclosing graphs, innermost last, each as seen by the node
        /// holding the subgraph.
        var outer: [Set<String>] = []

        func isOuter(_ name: String) -> Bool { outer.contains { $0.contains(name) } }

        mutating func check(_ graph: Onnx_GraphProto, context: String) throws(Violation) {
            var defined = Set<String>()
            var inputNames = Set<String>()
            for input in graph.input where !input.name.isEmpty {
                if defined.contains(input.name) {
                    throw Violation(problem: "\(context) declares the input '\(input.name)' twice; give each graph input its own name")
                }
                if isOuter(input.name) {
                    throw Violation(problem: "\(context) declares the input '\(input.name)', a name the enclosing graph already defines; ONNX forbids shadowing outer values, rename one")
                }
                defined.insert(input.name)
                inputNames.insert(input.name)
            }
            var initializerNames = Set<String>()
            let initializers = graph.initializer.map(\.name) + graph.sparseInitializer.map(\.values.name)
            for name in initializers where !name.isEmpty {
                if initializerNames.contains(name) {
                    throw Violation(problem: "\(context) has two initializers named '\(name)'; initializer names must be unique")
                }
                if isOuter(name), !inputNames.contains(name) {
                    throw Violation(problem: "\(context) has an initializer '\(name)', a name the enclosing graph already defines; ONNX forbids shadowing outer values, rename one")
                }
                initializerNames.insert(name)
                defined.insert(name)
            }
            try checkNodes(graph.node, defined: &defined, inputs: inputNames, initializers: initializerNames, context: context)
            for output in graph.output where !output.name.isEmpty && !defined.contains(output.name) {
                throw Violation(problem: "\(context) has the output '\(output.name)', which no node, graph input or initializer of that graph defines; remove the output or add the node that computes it")
            }
        }

        mutating func check(_ function: Onnx_FunctionProto) throws(Violation) {
            let context = "the function '\(function.domain.isEmpty ? "" : function.domain + ":")\(function.name)'"
            var defined = Set<String>()
            for input in function.input where !input.isEmpty {
                if defined.contains(input) {
                    throw Violation(problem: "\(context) declares the input '\(input)' twice; give each input its own name")
                }
                defined.insert(input)
            }
            let inputs = defined
            try checkNodes(function.node, defined: &defined, inputs: inputs, initializers: [], context: context)
            for output in function.output where !output.isEmpty && !defined.contains(output) {
                throw Violation(problem: "\(context) has the output '\(output)', which none of its nodes or inputs defines; fix the function's body")
            }
        }

        /// The nodes of one graph (or function body), in order: each input defined before, each
        /// output defined once, subgraphs checked with what is visible at their node.
        private mutating func checkNodes(
            _ nodes: [Onnx_NodeProto], defined: inout Set<String>, inputs: Set<String>, initializers: Set<String>, context: String
        ) throws(Violation) {
            // The first node producing each value, to tell "later" and "cycle" from "nowhere".
            var firstProducer: [String: Int] = [:]
            for (index, node) in nodes.enumerated() {
                for output in node.output where !output.isEmpty && firstProducer[output] == nil { firstProducer[output] = index }
            }
            let location = context == "the main graph" ? "" : " in \(context)"
            for (index, node) in nodes.enumerated() {
                let name = Self.describe(node, index: index)
                for input in node.input where !input.isEmpty && !defined.contains(input) && !isOuter(input) {
                    guard let producer = firstProducer[input] else {
                        throw Violation(problem: "node \(name)\(location) reads '\(input)', which no graph input, initializer or earlier node defines; add the missing input or initializer, or fix the node's input name")
                    }
                    if let cycle = Self.cycle(from: index, to: producer, in: nodes) {
                        // Name a long cycle by its first few nodes: the message stays one line.
                        let shown = cycle.prefix(8).map { Self.describe(nodes[$0], index: $0) }
                        let names = shown + [cycle.count > 8 ? "... (\(cycle.count) nodes)" : Self.describe(nodes[cycle[0]], index: cycle[0])]
                        throw Violation(problem: "the nodes\(location) form a cycle: \(names.joined(separator: " -> ")) (each feeds the next); ONNX graphs must be acyclic, so the model cannot be run as it is")
                    }
                    throw Violation(problem: "node \(name)\(location) reads '\(input)' before node \(Self.describe(nodes[producer], index: producer)) produces it; ONNX requires nodes in topological order: sort them (for instance by saving the model again with onnx's tools after a topological sort)")
                }
                for attribute in node.attribute {
                    let graphs = (attribute.hasG ? [attribute.g] : []) + attribute.graphs
                    guard !graphs.isEmpty else { continue }
                    outer.append(defined)
                    for subgraph in graphs {
                        try check(subgraph, context: "the subgraph '\(attribute.name)' of node \(name)\(location)")
                    }
                    outer.removeLast()
                }
                for output in node.output where !output.isEmpty {
                    if inputs.contains(output) {
                        throw Violation(problem: "node \(name)\(location) writes '\(output)', which is a graph input; a node may not overwrite an input (ONNX values are assigned once), rename the node's output")
                    }
                    if initializers.contains(output) {
                        throw Violation(problem: "node \(name)\(location) writes '\(output)', which is an initializer; a node may not overwrite one (ONNX values are assigned once), rename the node's output")
                    }
                    if defined.contains(output), let first = firstProducer[output], first != index {
                        throw Violation(problem: "the value '\(output)'\(location) is produced by two nodes, \(Self.describe(nodes[first], index: first)) and \(name); each ONNX value has one producer, rename one of the outputs")
                    }
                    if defined.contains(output) {
                        throw Violation(problem: "node \(name)\(location) lists '\(output)' twice among its outputs; each output needs its own name")
                    }
                    if isOuter(output) {
                        throw Violation(problem: "node \(name)\(location) writes '\(output)', a name the enclosing graph already defines; ONNX forbids shadowing outer values, rename the output")
                    }
                    defined.insert(output)
                }
            }
        }

        /// A node as messages name it: `'name' (OpType)`, or `#index (OpType)` when unnamed.
        static func describe(_ node: Onnx_NodeProto, index: Int) -> String {
            node.name.isEmpty ? "#\(index) (\(node.opType))" : "'\(node.name)' (\(node.opType))"
        }

        /// A path of nodes from `start` to `end` along value edges (a node feeds every node that
        /// reads one of its outputs), which together with `end` feeding `start` is a cycle; nil
        /// when `end` is merely listed after `start`. Breadth-first, so the cycle named is short.
        static func cycle(from start: Int, to end: Int, in nodes: [Onnx_NodeProto]) -> [Int]? {
            if start == end { return [start] }
            var readers: [String: [Int]] = [:]
            for (index, node) in nodes.enumerated() {
                for input in Set(node.input) where !input.isEmpty { readers[input, default: []].append(index) }
            }
            var previous: [Int: Int] = [start: start]
            var queue = [start]
            var head = 0
            while head < queue.count {
                let current = queue[head]
                head += 1
                for output in nodes[current].output where !output.isEmpty {
                    for next in readers[output] ?? [] where previous[next] == nil {
                        previous[next] = current
                        if next == end {
                            var path = [end]
                            var step = end
                            while step != start {
                                step = previous[step]!
                                path.append(step)
                            }
                            return Array(path.reversed())
                        }
                        queue.append(next)
                    }
                }
            }
            return nil
        }
    }
}
