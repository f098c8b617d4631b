import Foundation

@testable import TPATKit

/// Builds small ONNX models in the tests.
struct ModelBuilder {
    var graph = Onnx_GraphProto()
    var opset: Int64 = 17

    mutating func input(_ name: String, _ type: ElementType, _ shape: [TensorDim]) {
        graph.input.append(valueInfo(name, type, shape))
    }

    mutating func output(_ name: String, _ type: ElementType, _ shape: [TensorDim]) {
        graph.output.append(valueInfo(name, type, shape))
    }

    mutating func value(_ name: String, _ type: ElementType, _ shape: [TensorDim]) {
        graph.valueInfo.append(valueInfo(name, type, shape))
    }

    mutating func initializer(_ name: String, int64 values: [Int64], shape: [Int64]) {
        var data = Data()
        for v in values { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        graph.initializer.append(TensorValue(elementType: .int64, shape: shape, bytes: data).proto(name: name))
    }

    /// A float32 scalar initializer.
    mutating func constant(_ name: String, _ value: Float) {
        var data = Data()
        withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
        graph.initializer.append(TensorValue(elementType: .float32, shape: [], bytes: data).proto(name: name))
    }

    /// A `Constant` node making a float32 scalar through `value_float` (the form TVM's frontend
    /// does not read).
    mutating func constantNode(_ output: String, _ value: Float, name: String) {
        var node = Onnx_NodeProto()
        node.opType = "Constant"
        node.name = name
        node.output = [output]
        var a = Onnx_AttributeProto()
        a.name = "value_float"
        a.type = .float
        a.f = value
        node.attribute = [a]
        graph.node.append(node)
    }

    mutating func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String, domain: String = "", ints: [String: Int64] = [:]) {
        var node = Onnx_NodeProto()
        node.opType = op
        node.name = name
        node.domain = domain
        node.input = inputs
        node.output = outputs
        for (key, value) in ints.sorted(by: { $0.key < $1.key }) {
            var a = Onnx_AttributeProto()
            a.name = key
            a.type = .int
            a.i = value
            node.attribute.append(a)
        }
        graph.node.append(node)
    }

    func model() -> Onnx_ModelProto {
        var model = Onnx_ModelProto()
        model.irVersion = 8
        model.producerName = "tpat-tests"
        var o = Onnx_OperatorSetIdProto()
        o.version = opset
        model.opsetImport = [o]
        var g = graph
        g.name = "test"
        model.graph = g
        return model
    }

    func write(to url: URL) throws {
        try ONNXModel(proto: model(), baseDirectory: url.deletingLastPathComponent()).write(to: url)
    }

    private func valueInfo(_ name: String, _ type: ElementType, _ shape: [TensorDim]) -> Onnx_ValueInfoProto {
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type = TensorType(elementType: type, shape: shape).proto
        return info
    }
}
