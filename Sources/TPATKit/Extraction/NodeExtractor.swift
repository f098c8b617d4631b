import Foundation

/// A part of a model (one node, or a connected ``Subgraph``) cut out into a standalone model that
/// TVM can compile, with what the later stages need to put one plugin node back in its place.
public struct ExtractedSubgraph: Sendable, Equatable {
    /// The part's nodes' indices in their graph, in graph order.
    public var nodeIndices: [Int]
    /// The graph it is in (the main graph, or an `If`/`Loop`/`Scan` body).
    public var path: GraphPath
    /// The domain of its (first) node.
    public var domain: String
    /// The name the part is known by (``Subgraph/name``: the node's name for one node).
    public var name: String
    /// The names of its nodes, in graph order.
    public var nodeNames: [String]
    /// The names of a fused part's nodes; nil for a single node (what a failure report lists).
    public var fusedNodeNames: [String]? { nodeNames.count > 1 ? nodeNames : nil }
    /// The op type, or for several nodes their op types joined by `+`.
    public var opType: String
    /// The standalone model: the part's non-constant entering values are graph inputs
    /// (`input0`, ...), its constant ones initializers (`const0`, ...), its leaving values
    /// `output0`, ...; values only its own nodes read are `t0`, `t1`, ... inside.
    /// BOOL inputs and outputs (and INT64 for TensorRT 8) are carried as INT32, UINT8 as FLOAT,
    /// with Casts inside the model (``PluginTarget/boundaryCarriers``).
    public var subModel: Onnx_ModelProto
    /// The plugin's inputs, in the order of the sub-model's graph inputs.
    public var inputs: [PluginPort]
    /// The plugin's outputs, in the order of the sub-model's graph outputs.
    public var outputs: [PluginPort]
    /// Symbolic dim names the sub-model uses.
    public var symbols: [String]
    /// The model's dim each of ``symbols`` stands for: a name of the model's inputs (`batch`),
    /// or the dim as shape inference wrote it (`past_sequence + sequence`, `unk__7`).
    public var symbolOrigins: [String: String] = [:]
    /// Identical parts (ops, attributes, wiring, shapes, dtypes, constant values) have equal
    /// signatures and share one plugin: the canonical sub-model's bytes.
    public var signature: Data
}

/// The extraction stage: a ``Subgraph`` (one node is its smallest case) in, an ``ExtractedSubgraph`` out.
public struct NodeExtractor: Sendable {
    let model: ONNXModel
    let graphs: ModelGraphs
    let carriers: [ElementType: ElementType]
    /// The symbolic dims of the model's own inputs (`batch`, `sequence`): the names a user knows.
    let modelSymbols: Set<String>

    /// Creates an extractor over a model's graphs; inputs and outputs of the types in
    /// `carriers` are converted to their carrier type at the plugin's boundary.
    public init(model: ONNXModel, graphs: ModelGraphs, carriers: [ElementType: ElementType] = TensorRTTarget().boundaryCarriers) {
        self.model = model
        self.graphs = graphs
        self.carriers = carriers
        var symbols = Set<String>()
        for input in graphs.main.inputNames {
            for case .symbolic(let symbol) in graphs.main.types[input]?.shape ?? [] { symbols.insert(symbol) }
        }
        modelSymbols = symbols
    }

    /// Creates an extractor over a model's main graph.
    public init(model: ONNXModel, index: GraphIndex, carriers: [ElementType: ElementType] = TensorRTTarget().boundaryCarriers) {
        self.init(model: model, graphs: ModelGraphs(model: model), carriers: carriers)
    }

    /// Extracts one node into a standalone model.
    public func extract(_ selected: SelectedNode) throws(TPATError) -> ExtractedSubgraph {
        guard let index = graphs.entry(at: selected.path)?.index else {
            throw .node(name: selected.name, reason: "its graph (\(selected.path)) is not in the model")
        }
        return try extract(Subgraph(node: selected, index: index))
    }

    /// Extracts `part` into a standalone model.
    public func extract(_ part: Subgraph) throws(TPATError) -> ExtractedSubgraph {
        guard let index = graphs.entry(at: part.path)?.index else {
            throw .node(name: part.name, reason: "its graph (\(part.path)) is not in the model")
        }
        var graph = Onnx_GraphProto()
        graph.name = "tpat_node"
        var rename: [String: String] = [:]
        var ports: [PluginPort] = []
        var prelude: [Onnx_NodeProto] = []
        var symbols: [String] = []
        for value in part.entering {
            if index.isConstant(value) {
                let tensor: TensorValue?
                do { tensor = try index.constantValue(value, store: model.externalData) } catch {
                    throw .node(name: part.name, reason: "its constant input '\(value)' cannot be read: \(error.description)")
                }
                guard let tensor else { throw .node(name: part.name, reason: "its constant input '\(value)' has no value") }
                let name = "const\(graph.initializer.count)"
                graph.initializer.append(tensor.proto(name: name))
                rename[value] = name
                continue
            }
            let type = try knownType(of: value, in: index, node: part.name, role: "input")
            symbols += type.shape?.compactMap { if case .symbolic(let s) = $0 { s } else { nil } } ?? []
            let name = "input\(ports.count)"
            var carried = type
            var port = PluginPort(value: value, originalType: type.elementType!)
            if let carrier = carriers[type.elementType!] {
                carried.elementType = carrier
                port.pluginType = carrier
                prelude.append(Self.cast(from: name, to: name + "_cast", type: type.elementType!))
                rename[value] = name + "_cast"
            } else {
                rename[value] = name
            }
            ports.append(port)
            graph.input.append(Self.valueInfo(name, carried))
        }
        // Output dims no input gives (Range's length, the target of an Expand or a Tile computed
        // at run time) are read, where the model's shape inference relates them to another tensor,
        // from that tensor's dims: a dim carrier, one more plugin input whose data no kernel reads.
        let produced = Set(part.members.flatMap(\.node.output))
        for member in part.members {
            let carriers = dimCarriers(for: member.node, in: index, before: part.members[0].index, produced: produced, defined: Set(symbols))
            for carrier in carriers where rename[carrier.value] == nil {
                let name = "input\(ports.count)"
                symbols += carrier.type.shape?.compactMap { if case .symbolic(let s) = $0 { s } else { nil } } ?? []
                rename[carrier.value] = name
                ports.append(PluginPort(value: carrier.value, originalType: carrier.type.elementType!))
                graph.input.append(Self.valueInfo(name, carrier.type))
            }
        }
        let leaving = Set(part.leaving)
        // A Constant node of the part is a constant like any other (TVM's frontend reads only
        // some of Constant's attribute forms): its value goes in as an initializer.
        var folded = Set<Int>()
        for member in part.members where member.node.opType == "Constant" && ["", "ai.onnx"].contains(member.node.domain) {
            guard let value = member.node.output.first, !leaving.contains(value),
                  let tensor = try? index.constantValue(value, store: model.externalData) else { continue }
            let name = "const\(graph.initializer.count)"
            graph.initializer.append(tensor.proto(name: name))
            rename[value] = name
            folded.insert(member.index)
        }
        var outputPorts: [PluginPort] = []
        var epilogue: [Onnx_NodeProto] = []
        var body: [Onnx_NodeProto] = []
        var insideValues = 0
        for (m, member) in part.members.enumerated() where !folded.contains(member.index) {
            var inner = member.node
            // A node's identity is what it computes: its name, doc string and metadata (the dynamo
            // exporter attaches source locations to every node) must not keep identical nodes from
            // sharing a plugin.
            inner.name = part.isSingleNode ? "node" : "node\(m)"
            inner.docString = ""
            inner.metadataProps = []
            for a in inner.attribute.indices { inner.attribute[a].docString = "" }
            inner.input = inner.input.map { $0.isEmpty ? "" : rename[$0] ?? $0 }
            for (slot, value) in member.node.output.enumerated() where !value.isEmpty {
                guard leaving.contains(value) else {
                    inner.output[slot] = "t\(insideValues)"
                    rename[value] = inner.output[slot]
                    insideValues += 1
                    // its type where the model knows it: onnx's inliner needs the types of a
                    // function op's inputs (Swish, the losses) to build its body
                    if let type = index.types[value], type.elementType != nil, type.shape != nil {
                        graph.valueInfo.append(Self.valueInfo(inner.output[slot], type))
                    }
                    continue
                }
                let type = try knownType(of: value, in: index, node: member.name, role: "output \(slot)")
                let name = "output\(outputPorts.count)"
                var port = PluginPort(value: value, originalType: type.elementType!)
                var carried = type
                if let carrier = carriers[type.elementType!] {
                    carried.elementType = carrier
                    port.pluginType = carrier
                    inner.output[slot] = name + "_raw"
                    epilogue.append(Self.cast(from: name + "_raw", to: name, type: carrier))
                } else {
                    inner.output[slot] = name
                }
                rename[value] = inner.output[slot]
                outputPorts.append(port)
                graph.output.append(Self.valueInfo(name, carried))
            }
            body.append(inner)
        }
        guard !outputPorts.isEmpty else {
            throw .node(name: part.name, reason: "nothing reads its results (no node, body or graph output); remove its nodes from the model instead of making a plugin")
        }
        guard !ports.isEmpty else {
            throw .node(name: part.name, reason: "all its inputs are constants, so its outputs are constants too; fold it with an ONNX optimizer instead of making a plugin")
        }
        let symbolNames = Self.canonicalSymbols(
            inputs: &graph.input, outputs: &graph.output, inside: &graph.valueInfo, modelSymbols: modelSymbols)
        symbols = symbols.compactMap { symbolNames[$0] }
        let symbolOrigins = Dictionary(symbolNames.map { ($0.value, $0.key) }, uniquingKeysWith: { first, _ in first })
        graph.node = prelude + body + epilogue
        var sub = Onnx_ModelProto()
        sub.irVersion = model.proto.irVersion
        sub.producerName = "tpat"
        let domains = Set(part.members.map(\.node.domain))
        sub.opsetImport = model.proto.opsetImport.filter { $0.domain.isEmpty || $0.domain == "ai.onnx" || domains.contains($0.domain) }
        for member in part.members where !member.node.domain.isEmpty {
            if let function = index.functions["\(member.node.domain):\(member.node.opType)"],
               !sub.functions.contains(where: { $0.domain == function.domain && $0.name == function.name }) {
                sub.functions.append(function)
            }
        }
        sub.graph = graph
        let signature: Data
        do { signature = try sub.serializedBytes() } catch {
            throw .node(name: part.name, reason: "its sub-model cannot be serialized: \(error)")
        }
        var orderedSymbols: [String] = []
        for s in symbols where !orderedSymbols.contains(s) { orderedSymbols.append(s) }
        return ExtractedSubgraph(
            nodeIndices: part.members.map(\.index), path: part.path, domain: part.members[0].node.domain, name: part.name, nodeNames: part.members.map(\.name),
            opType: part.opType, subModel: sub, inputs: ports, outputs: outputPorts, symbols: orderedSymbols, symbolOrigins: symbolOrigins,
            signature: signature)
    }

    /// Renames the sub-model's symbolic dims so that a plugin depends on what the node computes,
    /// not on where it sits: a symbol of the model's inputs (`batch`, `sequence`) keeps its name,
    /// any other (shape inference's `floor(height/2 - 1/2) + 1`, `unk__7`) becomes `dyn0`,
    /// `dyn1`, ... by first appearance (not `dimN`: CUDA has a type `dim3`), equal expressions getting equal names. An output (or inside) dim no
    /// input dim defines (a data-dependent size) is left unnamed: TVM computes output shapes
    /// from the inputs. Returns the old-to-new names of the inputs' symbols.
    static func canonicalSymbols(
        inputs: inout [Onnx_ValueInfoProto], outputs: inout [Onnx_ValueInfoProto], inside: inout [Onnx_ValueInfoProto],
        modelSymbols: Set<String>
    ) -> [String: String] {
        var names: [String: String] = [:]
        var taken = Set<String>()
        func rename(_ info: inout Onnx_ValueInfoProto, defining: Bool) {
            guard var type = TensorType(info.type), let shape = type.shape else { return }
            type.shape = shape.map { dim in
                guard case .symbolic(let symbol) = dim else { return dim }
                if let known = names[symbol] { return .symbolic(known) }
                if !defining, let size = Self.clampedSize(symbol), let known = names[size] { return .symbolic(known) }
                guard defining else {
                    // An output dim that is a sum or product of the inputs' symbols stays one, in
                    // their new names (the bridge reads it as TVM's shape expressions do).
                    guard let terms = Self.sumOfProductsTerms(symbol), terms.allSatisfy({ names[$0] != nil }) else { return .unknown }
                    return .symbolic(Self.renamingTerms(of: symbol, names))
                }
                var name = symbol
                if !modelSymbols.contains(symbol) || !Self.isPlainName(symbol) || taken.contains(symbol) {
                    var k = 0
                    repeat { name = "dyn\(k)"; k += 1 } while taken.contains(name) || modelSymbols.contains(name)
                }
                names[symbol] = name
                taken.insert(name)
                return .symbolic(name)
            }
            info.type = type.proto
        }
        for i in inputs.indices { rename(&inputs[i], defining: true) }
        for i in outputs.indices { rename(&outputs[i], defining: false) }
        for i in inside.indices { rename(&inside[i], defining: false) }
        return names
    }

    /// Tensors whose dims give the symbols of `node`'s outputs that its inputs (`defined`) do not:
    /// for each such symbol, the smallest tensor that has it as a dim, of a type that crosses the
    /// plugin boundary as it is, and that is computed before the node (the model's inputs, then
    /// outputs of earlier nodes of the node's own graph, which ONNX orders topologically), so the
    /// plugin node never waits on its own results.
    private func dimCarriers(
        for node: Onnx_NodeProto, in index: GraphIndex, before first: Int, produced: Set<String>, defined: Set<String>
    ) -> [(value: String, type: TensorType)] {
        var missing: [String] = []
        for output in node.output where !output.isEmpty {
            for case .symbolic(let s) in index.types[output]?.shape ?? [] where !defined.contains(s) && !missing.contains(s) {
                missing.append(s)
            }
        }
        // Only a node with a shape-like operand computed at run time (an integer scalar or vector:
        // Expand's shape, Range's limit, Tile's repeats) has output dims its inputs' dims cannot
        // give; for any other node (a pooled size, a data-dependent count) they are TVM's to compute.
        let shapeOperand = node.input.contains { value in
            guard !value.isEmpty, !index.isConstant(value), let type = index.types[value], let shape = type.shape else { return false }
            return [.int64, .int32].contains(type.elementType) && shape.count <= 1
        }
        guard !missing.isEmpty, shapeOperand else { return [] }
        var candidates: [(String, TensorType)] = graphs.main.inputNames.compactMap { name in graphs.main.types[name].map { (name, $0) } }
        // before the part's first node: a tensor computed between its nodes may depend on them
        for earlier in index.graph.node.prefix(first) {
            for value in earlier.output where !value.isEmpty {
                if let type = index.types[value] { candidates.append((value, type)) }
            }
        }
        var chosen: [(value: String, type: TensorType)] = []
        var covered = defined
        // A sum or product of symbols (`past_sequence + sequence`) is carried symbol by symbol
        // when no tensor has it whole.
        var wanted: [String] = []
        for symbol in missing {
            wanted.append(symbol)
            if let size = Self.clampedSize(symbol) { wanted.append(size) }
            wanted += Self.sumOfProductsTerms(symbol) ?? []
        }
        for symbol in wanted where !covered.contains(symbol) {
            if let terms = Self.sumOfProductsTerms(symbol), terms.allSatisfy(covered.contains) { continue }
            if let size = Self.clampedSize(symbol), covered.contains(size) { continue }
            let usable = candidates.enumerated().filter { _, candidate in
                let (value, type) = candidate
                guard type.isFullyKnown, let element = type.elementType, carriers[element] == nil,
                      !index.isConstant(value), !node.input.contains(value), !produced.contains(value) else { return false }
                return type.shape!.contains(.symbolic(symbol))
            }
            // The smallest such tensor: its data is never read, but the self-test stores it and
            // TensorRT keeps it alive until the plugin runs (a feature map's 960 channels, or 3).
            func size(_ type: TensorType) -> (Int64, Int) {
                let shape = type.shape ?? []
                let fixed = shape.reduce(Int64(1)) { product, dim in product.multipliedReportingOverflow(by: max(dim.fixedValue ?? 1, 1)).partialValue }
                return (fixed, shape.count)
            }
            let found = usable.min { a, b in
                let (sa, sb) = (size(a.element.1), size(b.element.1))
                return sa != sb ? sa < sb : a.offset < b.offset
            }?.element
            guard let (value, type) = found else { continue }
            chosen.append((value, type))
            for case .symbolic(let s) in type.shape ?? [] { covered.insert(s) }
        }
        return chosen
    }

    /// The symbols of a dim that is a sum, difference or product of symbols and integers
    /// (`past_sequence + sequence`, shape inference's form), or nil for any other dim.
    static func sumOfProductsTerms(_ dim: String) -> [String]? {
        let parts = dim.split(whereSeparator: { "+-*".contains($0) }).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count > 1, !parts.contains(where: \.isEmpty) else { return nil }
        var symbols: [String] = []
        for part in parts where !part.allSatisfy(\.isNumber) {
            guard isIdentifier(part) else { return nil }
            symbols.append(part)
        }
        return symbols.isEmpty ? nil : symbols
    }

    /// The size of a dim that is a name or a sum, difference or product of names and integers
    /// (``sumOfProductsTerms(_:)``'s form, `*` binding tighter), given each name's size; nil for
    /// any other dim or a name without a size.
    static func size(of dim: String, sizes: (String) -> Int64?) -> Int64? {
        var total: Int64 = 0
        var term: Int64 = 1
        var sign: Int64 = 1
        var factor = ""
        func close() -> Bool {
            let text = factor.trimmingCharacters(in: .whitespaces)
            factor = ""
            if let number = Int64(text) {
                term *= number
            } else if isIdentifier(text), let size = sizes(text) {
                term *= size
            } else {
                return false
            }
            return true
        }
        for character in dim {
            switch character {
            case "*":
                guard close() else { return nil }
            case "+", "-":
                guard close() else { return nil }
                total += sign * term
                term = 1
                sign = character == "+" ? 1 : -1
            default:
                factor.append(character)
            }
        }
        guard close() else { return nil }
        return total + sign * term
    }

    /// `E` for shape inference's `Max(0, E)` (a Range's length over a tensor's size `E`): where
    /// `E` is another tensor's dim it is never negative, so the two are equal.
    static func clampedSize(_ dim: String) -> String? {
        guard dim.hasPrefix("Max(0, "), dim.hasSuffix(")") else { return nil }
        let inner = dim.dropFirst("Max(0, ".count).dropLast()
        // the parenthesis `Max(` opens must be the one that closes the dim
        var depth = 0
        for character in inner {
            if character == "(" { depth += 1 } else if character == ")" { depth -= 1 }
            if depth < 0 { return nil }
        }
        return depth == 0 ? inner.trimmingCharacters(in: .whitespaces) : nil
    }

    /// `dim` (a ``sumOfProductsTerms(_:)`` dim) with each symbol renamed.
    static func renamingTerms(of dim: String, _ names: [String: String]) -> String {
        var result = ""
        var token = ""
        for character in dim + " " {
            if character == "_" || character.isLetter || character.isNumber {
                token.append(character)
                continue
            }
            result += names[token] ?? token
            token = ""
            result.append(character)
        }
        return String(result.dropLast())
    }

    private static func isIdentifier(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil)) }
    }

    /// A symbol name that reads as a name (a C identifier not of TPAT's `dynN` form).
    private static func isPlainName(_ symbol: String) -> Bool {
        guard isIdentifier(symbol) else { return false }
        return !(symbol.hasPrefix("dyn") && symbol.dropFirst(3).allSatisfy(\.isNumber) && symbol.count > 3)
    }

    private func knownType(of value: String, in index: GraphIndex, node: String, role: String) throws(TPATError) -> TensorType {
        guard let type = index.types[value], type.elementType != nil else {
            throw .node(name: node, reason: "the type of its \(role) '\(value)' is unknown; run ONNX shape inference on the model or give the model's inputs fixed shapes")
        }
        guard let shape = type.shape, let rankKnown = Optional(shape), !rankKnown.contains(.unknown) else {
            throw .node(name: node, reason: "the shape of its \(role) '\(value)' is not fully known (\(type)); give the model's inputs fixed or named (dim_param) dims and run shape inference")
        }
        return type
    }

    private static func valueInfo(_ name: String, _ type: TensorType) -> Onnx_ValueInfoProto {
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type = type.proto
        return info
    }

    private static func cast(from input: String, to output: String, type: ElementType) -> Onnx_NodeProto {
        var cast = Onnx_NodeProto()
        cast.opType = "Cast"
        // The bridge recognises its own and TPAT's Casts by this suffix.
        cast.name = "\(output)__tpat_cast"
        cast.input = [input]
        cast.output = [output]
        var to = Onnx_AttributeProto()
        to.name = "to"
        to.type = .int
        to.i = Int64(type.onnxValue)
        cast.attribute = [to]
        return cast
    }
}
