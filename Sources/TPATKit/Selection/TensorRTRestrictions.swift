import Foundation

/// The documented limits of ops that TensorRT's ONNX parser runs only in some forms
/// (onnx-tensorrt's operators.md, the "restrictions" column of the bundled table), checked
/// against one node. A node that breaks one fails TensorRT's parse, while a TPAT plugin has no
/// such limit: `--auto` offers it, saying which limit it breaks.
public enum TensorRTRestrictions {
    /// The restriction `node` breaks, in the user's terms, or nil when TensorRT runs it as it is
    /// (as far as the node alone tells).
    public static func brokenRestriction(of node: Onnx_NodeProto, in index: GraphIndex) -> String? {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else { return nil }
        func input(_ slot: Int) -> String? { slot < node.input.count && !node.input[slot].isEmpty ? node.input[slot] : nil }
        func notConstant(_ slot: Int) -> Bool { input(slot).map { !index.isConstant($0) } ?? false }
        func rank(_ slot: Int) -> Int? { input(slot).flatMap { index.types[$0]?.shape?.count } }
        func outputUsed(_ slot: Int) -> Bool {
            guard slot < node.output.count, !node.output[slot].isEmpty else { return false }
            let value = node.output[slot]
            return index.consumers[value] != nil || index.outputNames.contains(value)
        }
        switch node.opType {
        case "CumSum" where notConstant(1):
            return "its axis is computed at run time (TensorRT needs an initializer)"
        case "Pad" where notConstant(3):
            return "its axes are computed at run time (TensorRT needs an initializer)"
        case let op where op.hasPrefix("Reduce") && notConstant(1):
            return "its axes are computed at run time (TensorRT needs an initializer)"
        case "OneHot" where notConstant(1):
            return "its depth is computed at run time (TensorRT needs a build-time constant)"
        case "TopK":
            if case .int(0)? = node.attribute(named: "sorted") { return "sorted=0 (TensorRT runs only sorted=1)" }
            if let k = input(1), let value = try? index.constantValue(k, store: nil), let count = (try? value.integers())?.first, count >= 3840 {
                return "K = \(count) (TensorRT needs K < 3840)"
            }
            return nil
        case "ScatterND":
            if case .string(let reduction)? = node.attribute(named: "reduction"), reduction != "none" {
                return "reduction='\(reduction)' (TensorRT's ScatterND has no reduction)"
            }
            return nil
        case "MaxPool" where outputUsed(1):
            return "its Indices output is used (TensorRT does not produce it)"
        case "MaxPool", "AveragePool", "LpPool":
            if let r = rank(0), r == 3 { return "it pools over one spatial dim (TensorRT pools 2-D or 3-D only)" }
            if case .ints(let d)? = node.attribute(named: "dilations"), d.contains(where: { $0 != 1 }) {
                return "its dilations are not all 1 (TensorRT pools without dilation)"
            }
            return nil
        case "LayerNormalization" where outputUsed(1) || outputUsed(2):
            return "its Mean or InvStdDev output is used (TensorRT produces only Y)"
        case "EyeLike":
            if let shape = input(0).flatMap({ index.types[$0]?.shape }), shape.contains(where: { $0.fixedValue == nil }) {
                return "its input's dims are not static (TensorRT needs static dims)"
            }
            return nil
        default:
            return nil
        }
    }
}
