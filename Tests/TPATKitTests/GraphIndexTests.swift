import Foundation
import Testing

@testable import TPATKit

@Suite("Graph index")
struct GraphIndexTests {
    @Test("producers, consumers, initializers, shapes and names")
    func indexesTheDemo() throws {
        let model = try ONNXModel.load(contentsOf: try TestSupport.demoModel())
        let index = GraphIndex(model: model)
        #expect(index.nodeNames.count == 12)
        #expect(index.producer["scores"] == index.nodeByName["head/softmax"])
        #expect(index.consumers["scores"]?.map { index.nodeNames[$0] } == ["head/topk", "head/confident", "head/select"])
        #expect(index.inputNames == ["image", "labels", "picks"])
        #expect(index.isConstant("conv.weight"))
        #expect(!index.isConstant("image"))
        #expect(index.types["pooled"] == TensorType(elementType: .float32, shape: [.fixed(1), .fixed(32), .fixed(32)]))
        #expect(index.types["top_indices"]?.elementType == .int64)
        #expect(index.opsets[""] == 17)
        let k = try #require(try index.constantValue("topk.k", store: model.externalData))
        #expect(try k.integers() == [4])
    }

    @Test("unnamed and duplicate node names get unique names")
    func namesEveryNode() {
        var proto = TestSupport.smallModel()
        var dup = proto.graph.node[0]
        dup.output = ["r2"]
        proto.graph.node.append(dup)  // a second node named "relu"
        let index = GraphIndex(model: ONNXModel(proto: proto))
        #expect(index.nodeNames == ["Relu#0", "Add#1", "Relu#2"])
        #expect(Set(index.nodeNames).count == 3)
    }

    @Test("symbolic dims and model-local functions")
    func symbolicDimsAndFunctions() throws {
        let model = try ONNXModel.load(contentsOf: try TestSupport.fixture("rich.onnx"))
        let index = GraphIndex(model: model)
        #expect(index.types["x"]?.shape == [.symbolic("batch"), .fixed(64)])
        #expect(index.functions["tpat.test:Swish"] != nil)
        #expect(index.opsetVersion(of: model.graph.node[1]) == 1)
    }

    @Test("Constant nodes are constants")
    func constantNodes() throws {
        var proto = TestSupport.smallModel()
        var constant = Onnx_NodeProto()
        constant.opType = "Constant"
        constant.output = ["k"]
        var attribute = Onnx_AttributeProto()
        attribute.name = "value_ints"
        attribute.type = .ints
        attribute.ints = [3, 4]
        constant.attribute = [attribute]
        proto.graph.node.insert(constant, at: 0)
        let index = GraphIndex(model: ONNXModel(proto: proto))
        #expect(index.isConstant("k"))
        #expect(try index.constantValue("k", store: nil)?.integers() == [3, 4])
    }
}
