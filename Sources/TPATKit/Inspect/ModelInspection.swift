import Foundation

/// One value a node reads or writes, with its type (declared, or inferred when shape inference ran).
public struct ValueSummary: Codable, Sendable, Equatable {
    /// The value's name in the graph ("" for an omitted optional input).
    public var name: String
    /// Element type name, or nil when it is not known.
    public var dtype: String?
    /// The dims; nil when the rank is unknown. In JSON a fixed dim is a number, a symbolic one
    /// its name, an unknown one `null`: `["batch", 3, 224, 224]`.
    public var shape: [TensorDim]?
    /// Whether the value is a constant (initializer or Constant output).
    public var isConstant: Bool

    /// Creates a value summary.
    public init(name: String, dtype: String?, shape: [TensorDim]?, isConstant: Bool) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.isConstant = isConstant
    }

    private enum CodingKeys: String, CodingKey { case name, dtype, shape, isConstant }

    /// One dim as JSON has it: a number, a string or null.
    private struct JSONDim: Codable {
        var dim: TensorDim
        init(_ dim: TensorDim) { self.dim = dim }
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                dim = .unknown
            } else if let value = try? container.decode(Int64.self) {
                dim = .fixed(value)
            } else {
                dim = .symbolic(try container.decode(String.self))
            }
        }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch dim {
            case .fixed(let value): try container.encode(value)
            case .symbolic(let name): try container.encode(name)
            case .unknown: try container.encodeNil()
            }
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        dtype = try container.decodeIfPresent(String.self, forKey: .dtype)
        shape = try container.decodeIfPresent([JSONDim].self, forKey: .shape)?.map(\.dim)
        isConstant = try container.decode(Bool.self, forKey: .isConstant)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encodeIfPresent(dtype, forKey: .dtype)
        try container.encodeIfPresent(shape?.map(JSONDim.init), forKey: .shape)
        try container.encode(isConstant, forKey: .isConstant)
    }
}

/// What `tpat inspect` reports of one node.
public struct NodeInspection: Codable, Sendable, Equatable {
    /// The name `tpat generate --nodes` accepts: the node's own name (or `<OpType>#<index>` when
    /// it has none), after its body's path for a node in an `If`/`Loop`/`Scan` body
    /// (`/roi_heads/If::else_branch::NonMaxSuppression_5`).
    public var name: String
    /// The graph the node is in: "" for the main graph, else the body's path
    /// (`/roi_heads/If::else_branch`).
    public var graph: String
    /// The op type.
    public var opType: String
    /// The op's domain ("" is ONNX's default domain).
    public var domain: String
    /// The inputs.
    public var inputs: [ValueSummary]
    /// The outputs.
    public var outputs: [ValueSummary]
    /// Whether TensorRT's ONNX parser lists the op as supported.
    public var tensorRTNative: Bool
    /// The documented TensorRT limit this node breaks (``TensorRTRestrictions``), if any: TensorRT
    /// lists the op but will not parse this node.
    public var tensorRTLimitBroken: String?
    /// Whether the pinned TVM's ONNX frontend converts the op.
    public var tvmConverts: Bool
    /// Whether an output is shape arithmetic (``ShapeValues``), which must stay native.
    public var shapeArithmetic: Bool
    /// Whether `tpat generate --op-types` with this op type would take the node (not shape
    /// arithmetic, and an op type the selector accepts).
    public var takenByOpTypes: Bool
    /// Whether `tpat generate --auto` would take the node.
    public var takenByAuto: Bool
    /// Whether TPAT can generate a plugin for it, else why not (``TPATSupport``).
    public var tpat: TPATVerdict

    /// The op as the tables show it: `Domain:OpType` outside ONNX's default domain.
    public var qualifiedOpType: String { OpSupportTables.qualifiedName(opType: opType, domain: domain) }
}

/// One row of `tpat inspect --summary`: the nodes of one op type.
public struct OpTypeSummary: Codable, Sendable, Equatable {
    /// The op type (`Domain:OpType` outside ONNX's default domain).
    public var opType: String
    /// How many nodes have it, bodies included.
    public var nodes: Int
    /// How many of them are in `If`/`Loop`/`Scan` bodies.
    public var inBodies: Int
    /// Whether TensorRT's ONNX parser lists the op as supported.
    public var tensorRTNative: Bool
    /// The limits TensorRT documents for the op ("" when none).
    public var tensorRTRestrictions: String
    /// How many of the nodes break one of those limits.
    public var beyondTensorRTLimits: Int
    /// How many nodes `--op-types` with this op type would take (none when it refuses the op
    /// type; else all but shape arithmetic).
    public var takenByOpTypes: Int
    /// How many nodes `--auto` would take.
    public var takenByAuto: Int
    /// How many nodes get each verdict.
    public var tpat: [TPATVerdict: Int]

    /// One row per op type, the most frequent first.
    public static func rows(for nodes: [NodeInspection], tables: OpSupportTables) -> [OpTypeSummary] {
        let byType = Dictionary(grouping: nodes, by: \.qualifiedOpType)
        return byType.map { opType, group in
            let first = group[0]
            let documented = first.tensorRTNative ? tables.tensorRT[first.opType]?.restrictions ?? "" : ""
            return OpTypeSummary(
                opType: opType, nodes: group.count, inBodies: group.filter { !$0.graph.isEmpty }.count,
                tensorRTNative: first.tensorRTNative, tensorRTRestrictions: documented,
                beyondTensorRTLimits: group.filter { $0.tensorRTLimitBroken != nil }.count,
                takenByOpTypes: group.filter(\.takenByOpTypes).count, takenByAuto: group.filter(\.takenByAuto).count,
                tpat: Dictionary(grouping: group, by: \.tpat).mapValues(\.count))
        }.sorted { ($0.nodes, $1.opType) > ($1.nodes, $0.opType) }
    }
}

/// Where the types in a report come from.
public enum ShapeSource: String, Codable, Sendable {
    /// The model's declarations, which were complete: nothing needed inference.
    case declared
    /// The shape inference `tpat generate` runs (ONNX Runtime's symbolic shape inference).
    case inferred
    /// The model's declarations, incomplete: inference was turned off or could not run, so
    /// some dims are unknown.
    case declaredIncomplete = "declared-incomplete"
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
    /// Where the shapes come from.
    public var shapes: ShapeSource
    /// Every node: the main graph's in graph order, then each body's (depth first).
    public var nodes: [NodeInspection]
    /// One row per op type (`--summary`).
    public var summary: [OpTypeSummary]
    /// Where the op tables come from.
    public var tableSources: [String]

    /// How many nodes are in bodies.
    public var bodyNodeCount: Int { nodes.filter { !$0.graph.isEmpty }.count }
    /// How many nodes TensorRT's ONNX parser cannot run: ops it lacks, and nodes beyond its limits.
    public var tensorRTUnsupportedCount: Int { nodes.filter { !$0.tensorRTNative || $0.tensorRTLimitBroken != nil }.count }
    /// How many nodes `--auto` would take.
    public var autoCount: Int { nodes.filter(\.takenByAuto).count }
    /// How many nodes TPAT can generate a plugin for (those of a run-time size only where shape
    /// inference relates their dims, which `generate` finds out: not counted).
    public var generatableCount: Int { nodes.filter { $0.tpat == .generates || $0.tpat == .sizeTensor }.count }

    /// The closing summary line.
    public var summaryLine: String {
        let bodies = bodyNodeCount == 0 ? "" : " (\(bodyNodeCount) in If/Loop/Scan bodies)"
        return "\(nodes.count) nodes\(bodies): \(tensorRTUnsupportedCount) that TensorRT cannot run natively, \(autoCount) that --auto would take, \(generatableCount) that TPAT can generate."
    }
}

/// The `inspect` stage: reads a model (every graph, bodies included) and reports every node's
/// shapes and support.
public struct ModelInspector: Sendable {
    /// The op tables to consult.
    public var tables: OpSupportTables

    /// Creates an inspector over the given tables (``OpSupportTables/bundled()`` are the ones TPAT ships).
    public init(tables: OpSupportTables) {
        self.tables = tables
    }

    /// Whether some value of `model` (in any graph) has an unknown or symbolic dim, so that the
    /// shape inference `generate` runs would change what `inspect` shows.
    public static func needsShapeInference(_ model: ONNXModel) -> Bool {
        ModelGraphs(model: model).entries.contains { entry in
            ShapeInference.isNeeded(for: Set(entry.index.graph.node.flatMap { $0.input + $0.output }), in: entry.index)
        }
    }

    /// Inspects `model` with the types `tpat generate` would see: when the model needs it and
    /// `inferShapes` is on, the shape inference generate runs. A missing toolchain or a failed
    /// inference is not an error: the report shows the declared types, and `warning` says why.
    public func inspect(
        _ model: ONNXModel, path: String, inferShapes: Bool, toolchain: () throws(TPATError) -> Toolchain
    ) async -> (report: ModelInspection, warning: String?) {
        guard Self.needsShapeInference(model) else { return (inspect(model, path: path, shapes: .declared), nil) }
        guard inferShapes else { return (inspect(model, path: path, shapes: .declaredIncomplete), nil) }
        let inferred: ONNXModel
        do {
            inferred = try await ShapeInference(toolchain: try toolchain()).fillMissingTypes(of: model, source: URL(fileURLWithPath: path))
        } catch {
            let reason = LogExcerpt.lastMeaningfulLine(of: error.description, limit: 200) ?? error.description
            let warning = "shape inference did not run (\(reason)); showing the model's declared shapes, '?' where it declares none"
            return (inspect(model, path: path, shapes: .declaredIncomplete), warning)
        }
        return (inspect(inferred, path: path, shapes: .inferred), nil)
    }

    /// Inspects every node of `model` (bodies of `If`, `Loop` and `Scan` included) with the
    /// types it declares; `shapes` says where those come from.
    public func inspect(_ model: ONNXModel, path: String, shapes: ShapeSource = .declared) -> ModelInspection {
        let graphs = ModelGraphs(model: model)
        let selector = NodeSelector(tables: tables)
        func keys(_ selection: NodeSelection) -> [NodeKey] { selection.nodes.map { NodeKey(path: $0.path, index: $0.index) } }
        // `--auto` never refuses what it chooses (it chooses only ops TVM converts and that
        // compute data), so it has no error to report here.
        let auto = Set((try? selector.select(.auto, in: graphs)).map(keys) ?? [])
        // What `--op-types T` takes, op type by op type; a type the selector refuses (Constant,
        // an op TVM cannot convert) takes nothing.
        let opTypes = Set(graphs.entries.flatMap { $0.index.graph.node.map(\.opType) })
        let takenByOpTypes = Set(opTypes.flatMap { type in (try? selector.select(.opTypes([type]), in: graphs)).map(keys) ?? [] })
        let support = TPATSupport(tables: tables)
        var nodes: [NodeInspection] = []
        for entry in graphs.entries {
            let index = entry.index
            let shapeValues = ShapeValues(index: index)
            func summary(_ name: String) -> ValueSummary {
                let type = index.types[name]
                return ValueSummary(
                    name: name, dtype: type?.elementType?.rawValue, shape: type?.shape, isConstant: !name.isEmpty && index.isConstant(name))
            }
            for (k, node) in index.graph.node.enumerated() {
                let native = tables.tensorRTRunsNatively(opType: node.opType, domain: node.domain)
                nodes.append(
                    NodeInspection(
                        name: graphs.name(of: k, in: entry), graph: String(entry.namePrefix.dropLast(ModelGraphs.separator.count)),
                        opType: node.opType, domain: node.domain, inputs: node.input.map(summary), outputs: node.output.map(summary),
                        tensorRTNative: native, tensorRTLimitBroken: native ? TensorRTRestrictions.brokenRestriction(of: node, in: index) : nil,
                        tvmConverts: tables.tvmConverts(opType: node.opType, domain: node.domain),
                        shapeArithmetic: shapeValues.shapeOutput(of: node) != nil,
                        takenByOpTypes: takenByOpTypes.contains(NodeKey(path: entry.path, index: k)),
                        takenByAuto: auto.contains(NodeKey(path: entry.path, index: k)),
                        tpat: support.verdict(of: node, in: index, shapeValues: shapeValues)))
            }
        }
        return ModelInspection(
            model: path, irVersion: model.proto.irVersion, producer: model.proto.producerName, opsets: graphs.main.opsets,
            shapes: shapes, nodes: nodes, summary: OpTypeSummary.rows(for: nodes, tables: tables),
            tableSources: [tables.tensorRTSource, tables.tvmSource])
    }

    /// A node by its graph and its index there.
    private struct NodeKey: Hashable {
        var path: GraphPath
        var index: Int
    }
}
