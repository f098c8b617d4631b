import Foundation
import Testing

@testable import TPATKit

@Suite("Model rewrite")
struct RewriteTests {
    @Test("BOOL outputs come back through a Cast; weights only plugins used are dropped")
    func boolOutputAndUnusedWeights() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [.fixed(4)])
        b.initializer("k", int64: [2], shape: [1])
        b.output("inf", .bool, [.fixed(4)])
        b.output("t", .float32, [.fixed(2)])
        b.node("IsInf", ["x"], ["inf"], name: "isinf")
        b.node("TopK", ["x", "k"], ["t", "i"], name: "topk")
        let model = ONNXModel(proto: b.model())
        let rewritten = ModelRewriter().rewrite(model, replacements: [
            NodeReplacement(nodeIndex: 0, pluginName: "tpat_isinf", inputs: [PluginPort(value: "x", originalType: .float32)],
                            outputs: [PluginPort(value: "inf", originalType: .bool, pluginType: .int32)]),
            NodeReplacement(nodeIndex: 1, pluginName: "tpat_topk", inputs: [PluginPort(value: "x", originalType: .float32)],
                            outputs: [PluginPort(value: "t", originalType: .float32), PluginPort(value: "i", originalType: .int64)]),
        ])
        let nodes = rewritten.graph.node
        #expect(nodes.map(\.opType) == ["tpat_isinf", "Cast", "tpat_topk"])
        #expect(nodes[1].output == ["inf"])
        #expect(nodes[1].input == nodes[0].output)
        #expect(nodes[1].attribute(named: "to") == .int(Int64(ElementType.bool.onnxValue)))
        // TopK's k is inside the plugin now: the plugin node reads only x, and k is gone.
        #expect(nodes[2].input == ["x"])
        #expect(rewritten.graph.initializer.isEmpty)
        // The input model is a value: unchanged.
        #expect(model.graph.node.map(\.opType) == ["IsInf", "TopK"])
        #expect(model.graph.initializer.count == 1)
    }

    @Test("the rewritten model keeps the original's other nodes, metadata and opsets")
    func keepsTheRest() throws {
        let model = try ONNXModel.load(contentsOf: try TestSupport.fixture("rich.onnx"))
        let rewritten = ModelRewriter().rewrite(model, replacements: [
            NodeReplacement(nodeIndex: 0, pluginName: "tpat_abs", inputs: [PluginPort(value: "x", originalType: .float32)],
                            outputs: [PluginPort(value: "a", originalType: .float32)])
        ])
        #expect(rewritten.proto.metadataProps == model.proto.metadataProps)
        #expect(rewritten.proto.functions == model.proto.functions)
        #expect(rewritten.graph.node[1] == model.graph.node[1])
        #expect(rewritten.graph.node[2] == model.graph.node[2])
        #expect(rewritten.proto.opsetImport.map(\.domain) == ["", "tpat.test", "tpat"])
        #expect(rewritten.graph.initializer.map(\.name) == ["bias"])
    }
}

@Suite("Extraction")
struct ExtractionTests {
    @Test("constants (external data too) become initializers; missing shapes come from ONNX shape inference")
    func constantsBecomeInitializers() async throws {
        let loaded = try ONNXModel.load(contentsOf: try TestSupport.fixture("external/model.onnx"))
        #expect(GraphIndex(model: loaded).types["m"] == nil)
        let model = try await TestSupport.shapeInference().fillMissingTypes(of: loaded)
        #expect(GraphIndex(model: model).types["m"] == TensorType(elementType: .float32, shape: [.fixed(8), .fixed(256)]))
        #expect(model.graph.initializer == loaded.graph.initializer)
        let index = GraphIndex(model: model)
        let extractor = NodeExtractor(model: model, index: index)
        let (i, node) = try index.node(named: "matmul")
        let extracted = try extractor.extract(SelectedNode(index: i, name: "matmul", node: node))
        #expect(extracted.subModel.graph.input.map(\.name) == ["input0"])
        #expect(extracted.subModel.graph.initializer.map(\.name) == ["const0"])
        let w1 = try TensorValue(extracted.subModel.graph.initializer[0])
        #expect(w1.shape == [256, 256])
        #expect(w1 == (try TensorValue(model.graph.initializer.first { $0.name == "w1" }!, store: model.externalData)).withoutName)
        #expect(extracted.inputs == [PluginPort(value: "x", originalType: .float32)])
        #expect(extracted.outputs == [PluginPort(value: "m", originalType: .float32)])
    }

    @Test("a declared static shape stays where the symbolic inference disagrees")
    func declaredStaticShapesStay() async throws {
        // ONNX Runtime's symbolic inference ignores GatherND's batch_dims ([1, 600, 64, 224]);
        // the model declares the right [1, 600, 224]. A symbolic input makes the symbolic engine run.
        var b = ModelBuilder()
        b.input("data", .float32, [.fixed(1), .fixed(64), .fixed(64), .fixed(224)])
        b.input("indices", .int64, [.fixed(1), .fixed(600), .fixed(2)])
        b.input("x", .float32, [.symbolic("batch")])
        b.node("GatherND", ["data", "indices"], ["y"], name: "gathernd", ints: ["batch_dims": 1])
        b.output("y", .float32, [.fixed(1), .fixed(600), .fixed(224)])
        b.node("Relu", ["x"], ["r"], name: "relu")
        b.output("r", .float32, [.unknown])
        let dir = try TestSupport.temporaryDirectory()
        let file = dir.appendingPathComponent("model.onnx")
        try b.write(to: file)
        let model = try await TestSupport.shapeInference().fillMissingTypes(of: try ONNXModel.load(contentsOf: file))
        let types = GraphIndex(model: model).types
        #expect(types["y"] == TensorType(elementType: .float32, shape: [.fixed(1), .fixed(600), .fixed(224)]))
        #expect(types["r"] == TensorType(elementType: .float32, shape: [.symbolic("batch")]))
    }

    @Test("If bodies take the inferred types: all of them from the symbolic inference, the missing ones from ONNX's")
    func bodyTypesFromEitherInference() throws {
        // torchvision's NonMaxSuppression sits in an If's else branch; where the symbolic
        // inference gives up (sympy on a detector's box arithmetic), ONNX's types the body.
        func info(_ name: String, _ shape: [TensorDim]) -> Onnx_ValueInfoProto {
            var b = ModelBuilder()
            b.value(name, .float32, shape)
            return b.graph.valueInfo[0]
        }
        func ifGraph(body valueInfo: [Onnx_ValueInfoProto]) -> Onnx_GraphProto {
            var body = ModelBuilder()
            body.node("Unsqueeze", ["x", "axes"], ["batched"], name: "unsqueeze")
            body.node("Relu", ["batched"], ["out"], name: "relu")
            body.graph.valueInfo = valueInfo
            var b = ModelBuilder()
            b.node("If", ["cond"], ["picked"], name: "if")
            b.graph.node[0].attribute = [ReliabilityONNXTests.graphAttribute("else_branch", body.graph)]
            return b.graph
        }
        let declared = ifGraph(body: [info("out", [.fixed(1), .symbolic("n"), .fixed(4)])])
        let inferred = ifGraph(body: [info("batched", [.fixed(1), .symbolic("unk__3"), .fixed(4)]),
                                      info("out", [.fixed(1), .symbolic("unk__4"), .fixed(4)])])
        func body(_ graph: Onnx_GraphProto) -> [String: [TensorDim]] {
            Dictionary(uniqueKeysWithValues: graph.node[0].attribute[0].g.valueInfo.map { ($0.name, TensorType($0.type)?.shape ?? []) })
        }
        var fromONNX = declared
        ShapeInference.takeBodyTypes(into: &fromONNX, from: inferred, replacing: false)
        #expect(body(fromONNX) == ["batched": [.fixed(1), .symbolic("unk__3"), .fixed(4)], "out": [.fixed(1), .symbolic("n"), .fixed(4)]])
        var fromSymbolic = declared
        ShapeInference.takeBodyTypes(into: &fromSymbolic, from: inferred)
        #expect(body(fromSymbolic) == ["batched": [.fixed(1), .symbolic("unk__3"), .fixed(4)], "out": [.fixed(1), .symbolic("unk__4"), .fixed(4)]])
    }

    @Test("a value whose shape is unknown is named, with what to do")
    func unknownShape() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [.fixed(4)])
        b.output("y", .float32, [.fixed(4)])
        b.node("Abs", ["x"], ["a"], name: "abs")
        b.node("Neg", ["a"], ["y"], name: "neg")
        let model = ONNXModel(proto: b.model())
        let index = GraphIndex(model: model)
        let (i, node) = try index.node(named: "abs")
        #expect(throws: TPATError.node(name: "abs", reason: "the type of its output 0 'a' is unknown; run ONNX shape inference on the model or give the model's inputs fixed shapes")) {
            try NodeExtractor(model: model, index: index).extract(SelectedNode(index: i, name: "abs", node: node))
        }
    }
}

@Suite("Carried types")
struct CarriedTypeTests {
    /// A node reading UINT8 and INT64 and writing BOOL: a quantized image path of a detector.
    static func model() throws -> (ONNXModel, GraphIndex, SelectedNode) {
        var b = ModelBuilder()
        b.input("pixels", .uint8, [.fixed(4)])
        b.input("limit", .int64, [.fixed(4)])
        b.output("keep", .bool, [.fixed(4)])
        b.node("Cast", ["pixels"], ["wide"], name: "widen", ints: ["to": Int64(ElementType.int64.onnxValue)])
        b.value("wide", .int64, [.fixed(4)])
        b.node("Less", ["wide", "limit"], ["keep"], name: "less")
        let model = ONNXModel(proto: b.model())
        let index = GraphIndex(model: model)
        let (i, node) = try index.node(named: "widen")
        return (model, index, SelectedNode(index: i, name: "widen", node: node))
    }

    @Test("UINT8 travels as FLOAT (TensorRT plugins have no UINT8 format); BOOL as INT32")
    func tensorRT10Carriers() throws {
        let (model, index, selected) = try Self.model()
        let extracted = try NodeExtractor(model: model, index: index).extract(selected)
        #expect(extracted.inputs.map(\.pluginType) == [.float32])
        #expect(extracted.inputs.map(\.originalType) == [.uint8])
        // INT64 is a TensorRT 10 plugin format: it stays (no plugin type of its own).
        #expect(extracted.outputs.map(\.pluginType) == [nil])
        // The standalone model converts back at once, so the node sees its own types.
        let sub = extracted.subModel.graph
        #expect(sub.input[0].type.tensorType.elemType == Int32(ElementType.float32.onnxValue))
        let cast = try #require(sub.node.first)
        #expect(cast.opType == "Cast" && cast.attribute(named: "to") == .int(Int64(ElementType.uint8.onnxValue)))

        let (i, less) = try index.node(named: "less")
        let boolOut = try NodeExtractor(model: model, index: index).extract(SelectedNode(index: i, name: "less", node: less))
        #expect(boolOut.outputs.map(\.pluginType) == [.int32])
        #expect(boolOut.inputs.map(\.pluginType) == [nil, nil])
    }

    @Test("INT8 travels as FLOAT: a kINT8 port is a quantized tensor to TensorRT, not an integer")
    func int8Carrier() throws {
        var b = ModelBuilder()
        b.input("codes", .int8, [.fixed(4)])
        b.output("magnitude", .int8, [.fixed(4)])
        b.node("Abs", ["codes"], ["magnitude"], name: "abs")
        let model = ONNXModel(proto: b.model())
        let index = GraphIndex(model: model)
        let (i, node) = try index.node(named: "abs")
        let extracted = try NodeExtractor(model: model, index: index).extract(SelectedNode(index: i, name: "abs", node: node))
        #expect(extracted.inputs.map(\.pluginType) == [.float32] && extracted.outputs.map(\.pluginType) == [.float32])
        #expect(extracted.inputs.map(\.originalType) == [.int8])
        let sub = extracted.subModel.graph
        #expect(sub.input[0].type.tensorType.elemType == Int32(ElementType.float32.onnxValue))
        #expect(sub.output[0].type.tensorType.elemType == Int32(ElementType.float32.onnxValue))
    }

    @Test("DOUBLE travels as FLOAT, as TensorRT's ONNX parser casts it down; the node inside computes in DOUBLE")
    func doubleCarrier() throws {
        var b = ModelBuilder()
        b.input("x", .float64, [.fixed(4)])
        b.output("y", .float64, [.fixed(4)])
        b.node("CumSum", ["x", "axis"], ["y"], name: "cumsum")
        b.initializer("axis", int64: [0], shape: [])
        let model = ONNXModel(proto: b.model())
        let index = GraphIndex(model: model)
        let (i, node) = try index.node(named: "cumsum")
        let extracted = try NodeExtractor(model: model, index: index).extract(SelectedNode(index: i, name: "cumsum", node: node))
        #expect(extracted.inputs.map(\.pluginType) == [.float32] && extracted.outputs.map(\.pluginType) == [.float32])
        let sub = extracted.subModel.graph
        #expect(sub.input[0].type.tensorType.elemType == Int32(ElementType.float32.onnxValue))
        #expect(sub.node.first?.opType == "Cast" && sub.node.first?.attribute(named: "to") == .int(Int64(ElementType.float64.onnxValue)))
        #expect(sub.output[0].type.tensorType.elemType == Int32(ElementType.float32.onnxValue))
    }

    @Test("for TensorRT 8 (no INT64 plugin format) INT64 travels as INT32")
    func tensorRT8Carriers() throws {
        let (model, index, _) = try Self.model()
        let (i, less) = try index.node(named: "less")
        let extracted = try NodeExtractor(model: model, index: index, carriers: TensorRTTarget(api: .v2).boundaryCarriers)
            .extract(SelectedNode(index: i, name: "less", node: less))
        #expect(extracted.inputs.map(\.pluginType) == [.int32, .int32])
        #expect(extracted.outputs.map(\.pluginType) == [.int32])
    }
}

extension TensorValue {
    /// The value itself (TensorValue carries no name); reads better in expectations.
    var withoutName: TensorValue { self }
}
