import Foundation

/// Whether TPAT can turn one node into a plugin, and if not, the first reason it cannot.
///
/// The raw values are what `tpat inspect --json` writes; ``text`` is what its table shows.
public enum TPATVerdict: String, Codable, CodingKeyRepresentable, Sendable, CaseIterable, Comparable {
    /// TPAT generates a plugin for it (as far as the node and its graph tell before TVM runs).
    case generates = "yes"
    /// Its output size depends on input values (NonZero, Unique, Compress, a TopK with a
    /// computed K), which TPAT's plugin declares as a TensorRT size tensor: IPluginV3 only.
    case sizeTensor = "size-tensor"
    /// Its output size is computed at run time (an Expand, Range or Tile of a computed size):
    /// TPAT generates it where the model's shape inference relates the output's dims to a tensor
    /// computed before it (a dim carrier), and says so otherwise.
    case runTimeSize = "run-time-size"
    /// The pinned TVM's ONNX frontend has no converter for the op.
    case noConverter = "no-converter"
    /// Its output size depends on input values in a way TPAT cannot size (NonMaxSuppression, a
    /// Resize to computed sizes): TVM needs sizes it can express in the plugin's input shapes.
    case dataDependentShape = "data-dependent-shape"
    /// Its outputs are shape arithmetic (``ShapeValues``): TensorRT needs them as shape tensors,
    /// which a plugin cannot produce, so `--op-types` and `--auto` leave it native.
    case shapeArithmetic = "shape-arithmetic"
    /// It computes no data on the GPU (Constant, Shape, ...: ``NodeSelector/opsWithoutKernels``).
    case noKernel = "no-kernel"
    /// Every input is a constant, so its outputs are constants: an ONNX optimizer folds it.
    case constantInputs = "constant-inputs"

    /// The verdict as the TPAT column shows it.
    public var text: String {
        switch self {
        case .generates: "yes"
        case .sizeTensor: "yes: data-dependent size as a size tensor (v3)"
        case .runTimeSize: "yes if shape inference relates its dims"
        case .noConverter: "no: TVM's frontend has no converter"
        case .dataDependentShape: "no: data-dependent output shape"
        case .shapeArithmetic: "no: shape arithmetic (stays native)"
        case .noKernel: "no: computes no data (stays native)"
        case .constantInputs: "no: constant inputs only (fold it)"
        }
    }

    /// Orders verdicts as they are declared ("yes" first), for stable summaries.
    public static func < (a: TPATVerdict, b: TPATVerdict) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Decides what TPAT can generate, node by node: the one place `inspect`'s TPAT column comes from.
///
/// The checks follow what makes `tpat generate` fail on a node, most fundamental first: no TVM
/// converter, an output size that depends on values TVM cannot see, an output TensorRT needs as
/// a shape tensor, no device computation at all, nothing but constants in.
public struct TPATSupport: Sendable {
    /// The op tables (TVM's converters).
    public var tables: OpSupportTables

    /// Creates the decision over the op tables.
    public init(tables: OpSupportTables) {
        self.tables = tables
    }

    /// Ops sized by a computed input that TPAT handles: TopK's K as a size tensor; Expand, Range
    /// and Tile at the shape the model's shape inference declares.
    static let runTimeSizedOps: [String: TPATVerdict] = ["TopK": .sizeTensor, "Expand": .runTimeSize, "Range": .runTimeSize, "Tile": .runTimeSize]

    /// Ops whose output size is set by a size, count or shape input (which one: the op's slots
    /// in ``ShapeValues/shapeInputSlots``). A constant there fixes the size when TVM converts the
    /// node; a computed one reaches the plugin as a tensor, and TVM cannot size an output by a
    /// tensor's values.
    public static let sizedByInputOps: Set<String> = ["Range", "TopK", "Expand", "Tile", "Resize", "Upsample", "ConstantOfShape", "OneHot"]

    /// The verdict for `node` of the graph `index` indexes; `shapeValues` are that graph's.
    public func verdict(of node: Onnx_NodeProto, in index: GraphIndex, shapeValues: ShapeValues) -> TPATVerdict {
        guard tables.tvmConverts(opType: node.opType, domain: node.domain) else { return .noConverter }
        if tables.sizeTensorOps.contains(node.opType), node.domain.isEmpty || node.domain == "ai.onnx" { return .sizeTensor }
        if Self.hasDataDependentShape(node, in: index) {
            guard node.domain.isEmpty || node.domain == "ai.onnx" else { return .dataDependentShape }
            return Self.runTimeSizedOps[node.opType] ?? .dataDependentShape
        }
        if shapeValues.shapeOutput(of: node) != nil { return .shapeArithmetic }
        if NodeSelector.opsWithoutKernels.contains(node.opType) { return .noKernel }
        if node.input.allSatisfy({ $0.isEmpty || index.isConstant($0) }) { return .constantInputs }
        return .generates
    }

    /// Whether the size of one of `node`'s outputs is set by a size, count or shape input computed
    /// at run time (ops whose size always depends on their values: ``OpSupportTables/sizeTensorOps``).
    public static func hasDataDependentShape(_ node: Onnx_NodeProto, in index: GraphIndex) -> Bool {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else { return false }
        guard sizedByInputOps.contains(node.opType) else { return false }
        var slots = ShapeValues.shapeInputSlots[node.opType] ?? []
        // From opset 11 on, Resize's input 1 is `roi`, which moves the samples, not the size.
        if node.opType == "Resize", (index.opsetVersion(of: node) ?? 11) >= 11 { slots.remove(1) }
        return slots.contains { slot in
            slot < node.input.count && !node.input[slot].isEmpty && !index.isConstant(node.input[slot])
        }
    }
}
