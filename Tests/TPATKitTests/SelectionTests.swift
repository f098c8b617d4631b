import Foundation
import Testing

@testable import TPATKit

/// The selection stage on graphs shaped like exported PyTorch models.
@Suite struct SelectionTests {
    let selector: NodeSelector

    init() throws {
        selector = NodeSelector(tables: try OpSupportTables.bundled())
    }

    /// x[N,4,8] -> Shape -> Gather(0) -> Unsqueeze -> Concat(-1) -> Reshape(x): the legacy
    /// exporter's way of flattening; plus a data Gather (an embedding look-up) and a data Concat.
    static func shapeArithmeticModel() -> ModelGraphs {
        var b = ModelBuilder()
        b.input("x", .float32, [.symbolic("N"), .fixed(4), .fixed(8)])
        b.input("ids", .int64, [.symbolic("N"), .fixed(3)])
        b.initializer("zero", int64: [0], shape: [])
        b.initializer("axes0", int64: [0], shape: [1])
        b.initializer("minus1", int64: [-1], shape: [1])
        b.initializer("table", int64: Array(0..<40), shape: [10, 4])
        b.node("Shape", ["x"], ["x_shape"], name: "/Shape")
        b.node("Gather", ["x_shape", "zero"], ["batch"], name: "/Gather_shape", ints: ["axis": 0])
        b.node("Unsqueeze", ["batch", "axes0"], ["batch1"], name: "/Unsqueeze")
        b.node("Concat", ["batch1", "minus1"], ["new_shape"], name: "/Concat_shape", ints: ["axis": 0])
        b.node("Reshape", ["x", "new_shape"], ["flat"], name: "/Reshape")
        b.node("Gather", ["table", "ids"], ["embedded"], name: "/embed/Gather", ints: ["axis": 0])
        b.node("Concat", ["embedded", "embedded"], ["both"], name: "/Concat_data", ints: ["axis": 1])
        b.value("x_shape", .int64, [.fixed(3)])
        b.value("batch", .int64, [])
        b.value("batch1", .int64, [.fixed(1)])
        b.value("new_shape", .int64, [.fixed(2)])
        b.output("flat", .float32, [.symbolic("N"), .fixed(32)])
        b.output("both", .int64, [.symbolic("N"), .fixed(6), .fixed(4)])
        return Self.graphs(b)
    }

    static func graphs(_ builder: ModelBuilder) -> ModelGraphs {
        ModelGraphs(model: ONNXModel(proto: builder.model(), baseDirectory: FileManager.default.temporaryDirectory))
    }

    @Test func shapeArithmeticIsFound() {
        let shapes = ShapeValues(index: Self.shapeArithmeticModel().main)
        #expect(shapes.values == ["new_shape", "batch1", "batch", "zero", "axes0", "minus1", "x_shape"])
    }

    @Test func opTypesLeaveShapeArithmeticNative() throws {
        let selection = try selector.select(.opTypes(["Gather", "Concat"]), in: Self.shapeArithmeticModel())
        #expect(selection.nodes.map(\.name) == ["/embed/Gather", "/Concat_data"])
        #expect(selection.skipped.map(\.node) == ["/Gather_shape", "/Concat_shape"])
        #expect(selection.skipped.allSatisfy { $0.reason.contains("shape arithmetic") })
        #expect(selection.warnings.isEmpty)
    }

    @Test func namedNodesAreTakenWithAWarning() throws {
        let selection = try selector.select(.names(["/Gather_shape"]), in: Self.shapeArithmeticModel())
        #expect(selection.nodes.map(\.name) == ["/Gather_shape"])
        #expect(selection.skipped.isEmpty)
        #expect(selection.warnings.count == 1)
        #expect(selection.warnings[0].contains("'/Gather_shape'") && selection.warnings[0].contains("shape arithmetic"))
    }

    @Test func anAbsentOpTypeIsAWarning() throws {
        let selection = try selector.select(.opTypes(["Gather", "NonMaxSuppression"]), in: Self.shapeArithmeticModel())
        #expect(selection.nodes.map(\.name) == ["/embed/Gather"])
        #expect(selection.warnings == ["the model has no node of op type 'NonMaxSuppression'"])
    }

    /// An op of another domain is taken by its name or as `domain:op`, the name `inspect` gives it.
    @Test func anOpOfAnotherDomainIsTakenByItsQualifiedName() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [.fixed(2), .fixed(4)])
        b.node("FlexAttention", ["x", "x", "x"], ["y"], name: "flex", domain: "ai.onnx.preview")
        b.output("y", .float32, [.fixed(2), .fixed(4)])
        let model = ModelGraphs(model: ONNXModel(proto: b.model(), baseDirectory: FileManager.default.temporaryDirectory))
        for name in ["ai.onnx.preview:FlexAttention", "FlexAttention"] {
            let selection = try selector.select(.opTypes([name]), in: model)
            #expect(selection.nodes.map(\.name) == ["flex"], "\(name)")
        }
    }

    @Test func anUnknownOpTypeOrNoMatchIsAnError() throws {
        #expect(throws: TPATError.self) { try selector.select(.opTypes(["Gather", "gather"]), in: Self.shapeArithmeticModel()) }
        do {
            _ = try selector.select(.opTypes(["gather"]), in: Self.shapeArithmeticModel())
            Issue.record("a misspelt op type was accepted")
        } catch {
            #expect(error.description.contains("'gather' is not an ONNX op type"))
        }
        do {
            _ = try selector.select(.opTypes(["TopK", "NonZero"]), in: Self.shapeArithmeticModel())
            Issue.record("a selection matching nothing was accepted")
        } catch {
            #expect(error.description.contains("no node of op type 'TopK', 'NonZero'"))
        }
    }

    /// TensorRT runs TopK, ReduceSum and CumSum, but not with a K of 5000, axes computed at run
    /// time, or an axis that is a graph input: `--auto` offers those and says why.
    @Test func autoOffersNodesBeyondTensorRTsLimits() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [.symbolic("N"), .fixed(8192)])
        b.input("axis", .int64, [])
        b.initializer("k_big", int64: [5000], shape: [1])
        b.initializer("k_small", int64: [10], shape: [1])
        b.initializer("one", int64: [1], shape: [1])
        b.node("TopK", ["x", "k_big"], ["v1", "i1"], name: "topk_big")
        b.node("TopK", ["x", "k_small"], ["v2", "i2"], name: "topk_small")
        b.node("ReduceSum", ["x", "one"], ["s1"], name: "sum_const_axes")
        b.node("Relu", ["x"], ["r"], name: "relu")
        b.node("CumSum", ["x", "axis"], ["c"], name: "cumsum_input_axis")
        for out in ["v1", "i1", "v2", "i2", "s1", "r", "c"] { b.output(out, .float32, []) }
        b.opset = 18
        let selection = try selector.select(.auto, in: Self.graphs(b))
        #expect(selection.nodes.map(\.name) == ["topk_big", "cumsum_input_axis"])
        #expect(selection.nodes[0].tensorRTRestriction == "K = 5000 (TensorRT needs K < 3840)")
        #expect(selection.nodes[1].tensorRTRestriction?.contains("axis is computed at run time") == true)
    }

    @Test func autoSaysWhenThereIsNothingToReplace() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [.fixed(4)])
        b.node("Relu", ["x"], ["y"], name: "relu")
        b.output("y", .float32, [.fixed(4)])
        let selection = try selector.select(.auto, in: Self.graphs(b))
        #expect(selection.nodes.isEmpty && selection.skipped.isEmpty)
    }

    /// The dynamo exporter attaches metadata (source locations) to every node; two nodes that
    /// compute the same thing still share one plugin.
    @Test func metadataDoesNotSplitIdenticalNodes() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [.symbolic("N"), .fixed(4)])
        b.node("Softmax", ["x"], ["a"], name: "/layer0/Softmax", ints: ["axis": -1])
        b.node("Softmax", ["a"], ["y"], name: "/layer1/Softmax", ints: ["axis": -1])
        b.value("a", .float32, [.symbolic("N"), .fixed(4)])
        b.output("y", .float32, [.symbolic("N"), .fixed(4)])
        var proto = b.model()
        for (i, stack) in ["model.py:10", "model.py:20"].enumerated() {
            var entry = Onnx_StringStringEntryProto()
            entry.key = "pkg.torch.onnx.stack_trace"
            entry.value = stack
            proto.graph.node[i].metadataProps = [entry]
            proto.graph.node[i].docString = "layer \(i)"
            proto.graph.node[i].attribute[0].docString = "axis of layer \(i)"
        }
        let model = ONNXModel(proto: proto, baseDirectory: FileManager.default.temporaryDirectory)
        let graphs = ModelGraphs(model: model)
        let selection = try selector.select(.opTypes(["Softmax"]), in: graphs)
        let extractor = NodeExtractor(model: model, graphs: graphs)
        let signatures = try selection.nodes.map { try extractor.extract($0).signature }
        #expect(signatures.count == 2)
        #expect(signatures[0] == signatures[1])
    }
}
