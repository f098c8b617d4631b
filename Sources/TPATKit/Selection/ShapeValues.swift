import Foundation

/// Which values of a graph are shape arithmetic: small integer tensors that end up in an input
/// that ONNX reads as a shape, a size, an axis list or a count (Reshape's `shape`, Slice's
/// `starts`, Range's bounds, ...). Exported PyTorch graphs compute these at run time
/// (Shape -> Gather -> Unsqueeze -> Concat -> Reshape); TensorRT evaluates them as shape tensors
/// while it builds the engine, and a plugin output can never be one. So a node that produces
/// such a value must stay a native node, whatever its op type.
public struct ShapeValues: Sendable {
    /// The inputs of each op (by position) that ONNX reads as a shape, size, count or axis list.
    /// A value reaching one of these decides tensor shapes, not tensor contents.
    public static let shapeInputSlots: [String: Set<Int>] = [
        "Reshape": [1], "Expand": [1], "Tile": [1], "ConstantOfShape": [0], "Range": [0, 1, 2],
        "Slice": [1, 2, 3, 4], "Pad": [1, 3], "Resize": [1, 2, 3], "Upsample": [1],
        "Unsqueeze": [1], "Squeeze": [1], "Split": [1], "TopK": [1], "OneHot": [1],
        "ReduceSum": [1], "ReduceMean": [1], "ReduceMax": [1], "ReduceMin": [1], "ReduceProd": [1],
        "ReduceL1": [1], "ReduceL2": [1], "ReduceLogSum": [1], "ReduceLogSumExp": [1], "ReduceSumSquare": [1],
        "CumSum": [1], "NonMaxSuppression": [2],
        "CenterCropPad": [1], "Col2Im": [1, 2], "DFT": [1, 2], "STFT": [1, 3], "AffineGrid": [1],
        "MelWeightMatrix": [0, 1, 2], "BlackmanWindow": [0], "HannWindow": [0], "HammingWindow": [0],
    ]

    /// Values (by name) that are shape arithmetic.
    public let values: Set<String>

    /// Finds the shape values of an indexed graph: every value consumed at a shape input, and,
    /// walking backwards, every integer value of rank 0 or 1 that feeds a node producing one.
    /// Larger or non-integer tensors stop the walk: they are data, even when a shape is derived
    /// from them (a Shape node's input is not itself shape arithmetic).
    public init(index: GraphIndex) {
        var found = Set<String>()
        var pending: [String] = []
        func mark(_ value: String) {
            guard !value.isEmpty, !found.contains(value), Self.canBeShapeTensor(index.types[value]) else { return }
            found.insert(value)
            pending.append(value)
        }
        for node in index.graph.node where node.domain.isEmpty || node.domain == "ai.onnx" {
            for slot in Self.shapeInputSlots[node.opType] ?? [] where slot < node.input.count {
                mark(node.input[slot])
            }
        }
        while let value = pending.popLast() {
            guard let p = index.producer[value] else { continue }
            let node = index.graph.node[p]
            // A Shape or Size node ends the chain: its input is the data whose shape is taken.
            if node.opType == "Shape" || node.opType == "Size" { continue }
            for input in node.input { mark(input) }
        }
        values = found
    }

    /// Whether the node at `nodeIndex` produces a shape value; the first such output.
    public func shapeOutput(of node: Onnx_NodeProto) -> String? {
        node.output.first { values.contains($0) }
    }

    /// Shape tensors in TensorRT are 0-D or 1-D INT32/INT64; a value whose type is unknown may
    /// be one (exported graphs often leave shape arithmetic untyped).
    private static func canBeShapeTensor(_ type: TensorType?) -> Bool {
        guard let type else { return true }
        if let element = type.elementType, element != .int64 && element != .int32 { return false }
        if let shape = type.shape, shape.count > 1 { return false }
        return true
    }
}
