import Foundation
import Testing

@testable import TPATKit

@Suite("Shape profiles (--profile)")
struct ShapeProfileTests {
    @Test("NAME=MIN:OPT:MAX is parsed, one size stands for all three, and bad ranges say what is wrong")
    func parsing() throws {
        #expect(try DimRange.parse("batch=1:8:32").get() == DimRange(name: "batch", min: 1, opt: 8, max: 32))
        #expect(try DimRange.parse(" seq = 128 ").get() == DimRange(name: "seq", min: 128, opt: 128, max: 128))
        // an empty KV cache at the first step: MIN 0, tested at 1
        #expect(try DimRange.parse("past=0:12:64").get() == DimRange(name: "past", min: 0, opt: 12, max: 64))
        #expect(ShapeProfile([DimRange(name: "past", min: 0, opt: 12, max: 64)]).testSizes == ["past": [12, 1]])
        for (text, reason) in [
            ("batch=8:1:32", "MIN <= OPT <= MAX"), ("batch=0:0:2", "OPT and MAX at least 1"), ("batch=1:2", "integers MIN:OPT:MAX"),
            ("=1:2:3", "NAME=MIN:OPT:MAX"), ("batch", "NAME=MIN:OPT:MAX"), ("batch=1:x:3", "integers MIN:OPT:MAX"),
            ("batch=-1:2:3", "MIN at least 0"), ("batch=0", "OPT and MAX at least 1"),
        ] {
            guard case .failure(let error) = DimRange.parse(text) else {
                Issue.record("\(text) was accepted")
                continue
            }
            #expect(error.description.contains(reason), "\(text): \(error)")
            #expect(error.description.hasPrefix("--profile \(text)"))
        }
    }

    /// A model with inputs [batch, seq] (int64), [batch, seq, 768] and a static one, plus a weight.
    private func model(extraSymbol: Bool = false) -> ONNXModel {
        var b = ModelBuilder()
        b.input("ids", .int64, [.symbolic("batch"), .symbolic("seq")])
        b.input("hidden states", .float32, [.symbolic("batch"), extraSymbol ? .symbolic("other") : .symbolic("seq"), .fixed(768)])
        b.input("scale", .float32, [.fixed(4)])
        b.initializer("w", int64: [1, 2], shape: [2])
        b.output("y", .float32, [.symbolic("batch"), .symbolic("seq"), .fixed(768)])
        b.node("Identity", ["hidden states"], ["y"], name: "id")
        return ONNXModel(proto: b.model(), baseDirectory: URL(fileURLWithPath: "/tmp"))
    }

    @Test("trtexec gets min, opt and max shapes of every input with symbolic dims, quoted for the shell where needed")
    func trtexecShapes() {
        let profile = ShapeProfile([DimRange(name: "batch", min: 1, opt: 8, max: 32), DimRange(name: "seq", min: 16, opt: 128, max: 512)])
        let shapes = profile.trtexecShapes(for: model())
        #expect(shapes.inputsWithoutRange.isEmpty)
        #expect(shapes.options == [
            "'--minShapes=ids:1x16,hidden states:1x16x768'",
            "'--optShapes=ids:8x128,hidden states:8x128x768'",
            "'--maxShapes=ids:32x512,hidden states:32x512x768'",
        ])
        // An input whose symbolic dim has no range is left out, and named.
        let partial = profile.trtexecShapes(for: model(extraSymbol: true))
        #expect(partial.inputsWithoutRange == ["hidden states"])
        #expect(partial.options.first == "--minShapes=ids:1x16")
        #expect(profile.unknownNames(in: model()).isEmpty)
        #expect(ShapeProfile([DimRange(name: "batchsize", min: 1, opt: 1, max: 1)]).unknownNames(in: model()) == ["batchsize"])
        // a name with trtexec's separators goes in single quotes inside the shell word
        var b = ModelBuilder()
        b.input("input:0", .float32, [.symbolic("batch"), .fixed(3)])
        b.output("y", .float32, [.symbolic("batch"), .fixed(3)])
        b.node("Relu", ["input:0"], ["y"], name: "r")
        let colon = profile.trtexecShapes(for: ONNXModel(proto: b.model(), baseDirectory: URL(fileURLWithPath: "/tmp")))
        #expect(colon.options.first == "'--minShapes='\\''input:0'\\'':1x3'")
    }

    @Test("a plugin is specialized at the optimum of its inputs' symbolic dims (derived ones evaluated there), only when the profile gives all of them")
    func specialization() throws {
        // attention's scores over a KV cache: the key length is shape inference's
        // `past_sequence + sequence`, a dim the user cannot name in --profile
        var b = ModelBuilder()
        b.input("x", .float32, [.symbolic("batch"), .symbolic("seq"), .fixed(64)])
        b.input("scores", .float32, [.symbolic("batch"), .symbolic("seq"), .symbolic("past + seq")])
        b.output("y", .float32, [.symbolic("batch"), .symbolic("seq"), .fixed(64)])
        b.output("p", .float32, [.symbolic("batch"), .symbolic("seq"), .symbolic("past + seq")])
        b.node("Relu", ["x"], ["y"], name: "r")
        b.node("Softmax", ["scores"], ["p"], name: "s")
        let model = ONNXModel(proto: b.model())
        let extractor = NodeExtractor(model: model, graphs: ModelGraphs(model: model))
        let relu = try extractor.extract(SelectedNode(index: 0, name: "r", node: model.proto.graph.node[0]))
        let softmax = try extractor.extract(SelectedNode(index: 1, name: "s", node: model.proto.graph.node[1]))
        let both = ShapeProfile([DimRange(name: "batch", min: 1, opt: 8, max: 32), DimRange(name: "seq", min: 16, opt: 128, max: 512)])
        #expect(Pipeline.specialization(of: relu, at: both).sizes == ["batch": 8, "seq": 128])
        #expect(Pipeline.specialization(of: relu, at: both, point: \.max).sizes == ["batch": 32, "seq": 512])
        let batchOnly = Pipeline.specialization(of: relu, at: ShapeProfile([DimRange(name: "batch", min: 1, opt: 8, max: 32)]))
        #expect(batchOnly.sizes == nil && batchOnly.missing == "seq")
        #expect(Pipeline.specialization(of: relu, at: ShapeProfile()).sizes == nil)
        // the derived dim: named dyn0 in the plugin, evaluated at the optimum of its terms
        #expect(softmax.symbolOrigins["dyn0"] == "past + seq")
        #expect(Pipeline.specialization(of: softmax, at: both).missing == "past + seq")
        let all = ShapeProfile(both.ranges + [DimRange(name: "past", min: 0, opt: 12, max: 64)])
        #expect(Pipeline.specialization(of: softmax, at: all).sizes == ["batch": 8, "seq": 128, "dyn0": 140])
        #expect(Pipeline.specialization(of: softmax, at: all, point: \.max).sizes == ["batch": 32, "seq": 512, "dyn0": 576])
        #expect(NodeExtractor.size(of: "2*seq - past + 3", sizes: { all.optimum[$0] }) == Int64(247))
        #expect(NodeExtractor.size(of: "floor(seq/2)", sizes: { all.optimum[$0] }) == nil)
        #expect(NodeExtractor.size(of: "seq + ", sizes: { all.optimum[$0] }) == nil)
        // the self-test runs the specialized plan (the optimum) and the generic one (the minimum)
        #expect(both.testSizes == ["batch": [8, 1], "seq": [128, 16]])
    }
}
