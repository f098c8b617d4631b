import Foundation
import Testing

@testable import TPATKit

/// The extraction stage: the symbols of a sub-model.
@Suite struct SymbolTests {
    /// x[batch, 64, height, width] -> (Relu -> MaxPool) x 4 -> NonZero, with the spatial dims as
    /// shape inference writes them (the model's symbols, expressions of them, unrelated `unk__N`).
    static func model() -> ONNXModel {
        var b = ModelBuilder()
        b.input("x", .float32, [.symbolic("batch"), .fixed(64), .symbolic("height"), .symbolic("width")])
        let spatial = [("height", "width"), ("floor(height/2 - 1/2) + 1", "floor(width/2 - 1/2) + 1"), ("unk__7", "unk__8"), ("unk__9", "unk__9")]
        var previous = "x"
        for (k, (h, w)) in spatial.enumerated() {
            let dims: [TensorDim] = [.symbolic("batch"), .fixed(64), .symbolic(h), .symbolic(w)]
            if k > 0 {
                b.node("MaxPool", [previous], ["p\(k)"], name: "/layer\(k)/MaxPool")
                b.value("p\(k)", .float32, dims)
                previous = "p\(k)"
            }
            b.node("Relu", [previous], ["r\(k)"], name: "/layer\(k)/Relu")
            b.value("r\(k)", .float32, dims)
            previous = "r\(k)"
        }
        b.node("NonZero", [previous], ["nz"], name: "/NonZero")
        b.output("nz", .int64, [.fixed(4), .symbolic("unk__0")])
        return ONNXModel(proto: b.model(), baseDirectory: FileManager.default.temporaryDirectory)
    }

    /// Extracts a main-graph node of `model` by name.
    static func extractor(of model: ONNXModel) -> (String) throws -> ExtractedSubgraph {
        let index = GraphIndex(model: model)
        let extractor = NodeExtractor(model: model, index: index)
        return { name in
            let k = try #require(index.nodeByName[name])
            return try extractor.extract(SelectedNode(index: k, name: name, node: index.graph.node[k]))
        }
    }

    @Test func symbolsNameWhatTheNodeComputesNotWhereItSits() throws {
        let extract = Self.extractor(of: Self.model())
        let relus = try (0..<4).map { try extract("/layer\($0)/Relu") }
        // the model's own symbols keep their names
        #expect(relus[0].symbols == ["batch", "height", "width"])
        // expressions and unrelated unknowns become dyn0, dyn1 by first appearance...
        #expect(relus[1].symbols == ["batch", "dyn0", "dyn1"])
        #expect(relus[2].symbols == ["batch", "dyn0", "dyn1"])
        // ...so the same Relu at two depths of the network is one plugin
        #expect(relus[1].signature == relus[2].signature)
        #expect(relus[1].signature != relus[0].signature)
        // a dim that equals another stays equal (a square feature map)
        let square = try #require(TensorType(relus[3].subModel.graph.input[0].type))
        #expect(square.shape == [.symbolic("batch"), .fixed(64), .symbolic("dyn0"), .symbolic("dyn0")])
        #expect(relus[3].signature != relus[2].signature)
        // an output dim no input defines (a pooled size, a data-dependent count) is left to TVM
        let pooled = try #require(TensorType(try extract("/layer1/MaxPool").subModel.graph.output[0].type))
        #expect(pooled.shape == [.symbolic("batch"), .fixed(64), .unknown, .unknown])
        let nonZero = try #require(TensorType(try extract("/NonZero").subModel.graph.output[0].type))
        #expect(nonZero.shape == [.fixed(4), .unknown])
    }

    /// GPT-2 with a cache, as exporters write it: positions `Range(0, past + sequence)` and a
    /// mask expanded to a run-time shape, both with output dims their own inputs do not have.
    static func cachedDecoder() -> ONNXModel {
        var b = ModelBuilder()
        b.input("ids", .int64, [.symbolic("batch"), .symbolic("sequence")])
        b.input("past", .float32, [.symbolic("batch"), .fixed(12), .symbolic("past_sequence"), .fixed(64)])
        b.input("mask", .float32, [.fixed(1), .fixed(1), .symbolic("sequence"), .symbolic("sequence")])
        b.input("total", .int64, [])
        b.input("target", .int64, [.fixed(4)])
        b.initializer("zero", int64: [0], shape: [])
        b.initializer("one", int64: [1], shape: [])
        b.node("Range", ["zero", "total", "one"], ["positions"], name: "/positions")
        b.output("positions", .int64, [.symbolic("past_sequence + sequence")])
        b.node("Expand", ["mask", "target"], ["expanded"], name: "/mask/Expand")
        b.output("expanded", .float32, [.symbolic("batch"), .fixed(1), .symbolic("sequence"), .symbolic("sequence")])
        b.node("Relu", ["past"], ["relu"], name: "/relu")
        b.output("relu", .float32, [.symbolic("batch"), .fixed(12), .symbolic("past_sequence"), .fixed(64)])
        return ONNXModel(proto: b.model(), baseDirectory: FileManager.default.temporaryDirectory)
    }

    @Test func outputDimsOnlyAnotherTensorHasComeFromADimCarrier() throws {
        let extract = Self.extractor(of: Self.cachedDecoder())
        // Range's length past_sequence + sequence: one carrier per symbol, the sum kept whole
        let positions = try extract("/positions")
        #expect(positions.inputs.map(\.value) == ["total", "past", "ids"])
        let length = try #require(TensorType(positions.subModel.graph.output[0].type))
        #expect(length.shape == [.symbolic("past_sequence + sequence")])
        #expect(positions.subModel.graph.node.count == 1)
        #expect(positions.subModel.graph.node[0].input == ["const0", "input0", "const1"])  // the node itself reads no carrier
        // the mask's batch comes from the first model input that has it
        let expanded = try extract("/mask/Expand")
        #expect(expanded.inputs.map(\.value) == ["mask", "target", "ids"])
        #expect(try #require(TensorType(expanded.subModel.graph.output[0].type)).shape
                == [.symbolic("batch"), .fixed(1), .symbolic("sequence"), .symbolic("sequence")])
        // a node without a shape operand never gets one
        #expect(try extract("/relu").inputs.map(\.value) == ["past"])
    }

    @Test func sumsOfProductsAreTheOnlyExpressionsKept() {
        #expect(NodeExtractor.sumOfProductsTerms("past_sequence + sequence") == ["past_sequence", "sequence"])
        #expect(NodeExtractor.sumOfProductsTerms("2*height - 1") == ["height"])
        #expect(NodeExtractor.sumOfProductsTerms("sequence") == nil)
        #expect(NodeExtractor.sumOfProductsTerms("floor(height/2 - 1/2) + 1") == nil)
        #expect(NodeExtractor.renamingTerms(of: "2*unk__3 + sequence", ["unk__3": "dyn0"]) == "2*dyn0 + sequence")
        // a Range's length over a feature map's width is that width
        #expect(NodeExtractor.clampedSize("Max(0, floor(W/2 - 1/2) + 1)") == "floor(W/2 - 1/2) + 1")
        #expect(NodeExtractor.clampedSize("Max(0, a) + Max(0, b)") == nil)
        #expect(NodeExtractor.clampedSize("Max(1, a)") == nil)
    }

    @Test func symbolicDimsAskForShapeInference() {
        let index = GraphIndex(model: Self.model())
        #expect(ShapeInference.isNeeded(for: ["r0"], in: index))
        var b = ModelBuilder()
        b.input("x", .float32, [.fixed(2)])
        b.node("Relu", ["x"], ["y"], name: "relu")
        b.output("y", .float32, [.fixed(2)])
        #expect(!ShapeInference.isNeeded(for: ["x", "y"], in: GraphIndex(graph: b.model().graph)))
    }
}
