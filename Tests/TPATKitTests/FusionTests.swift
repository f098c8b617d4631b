import Foundation
import Testing

@testable import TPATKit

/// Plugins for a connected part of a graph (`--fuse`): grouping, extraction, rewrite.
@Suite("Fused subgraphs")
struct FusionTests {
    /// x -> MatMul -> a decomposed GELU (Div, Erf, Add, Mul, Mul) -> Relu, twice in a row, the
    /// second GELU reading the first's Relu.
    static func twoGELUs() -> ModelBuilder {
        var b = ModelBuilder()
        b.input("x", .float32, [.symbolic("batch"), .fixed(8)])
        b.output("z2", .float32, [.symbolic("batch"), .fixed(8)])
        b.constant("sqrt2", 1.4142135)
        b.constant("one", 1)
        b.constant("half", 0.5)
        for k in 1...2 {
            let input = k == 1 ? "x" : "z1"
            for v in ["d", "e", "a", "m", "y"] { b.value("\(v)\(k)", .float32, [.symbolic("batch"), .fixed(8)]) }
            if k == 1 { b.value("z1", .float32, [.symbolic("batch"), .fixed(8)]) }
            b.node("Div", [input, "sqrt2"], ["d\(k)"], name: "gelu\(k)/div")
            b.node("Erf", ["d\(k)"], ["e\(k)"], name: "gelu\(k)/erf")
            b.node("Add", ["e\(k)", "one"], ["a\(k)"], name: "gelu\(k)/add")
            b.node("Mul", [input, "a\(k)"], ["m\(k)"], name: "gelu\(k)/mul")
            b.node("Mul", ["m\(k)", "half"], ["y\(k)"], name: "gelu\(k)/mul_1")
            b.node("Relu", ["y\(k)"], ["z\(k)"], name: "relu\(k)")
        }
        return b
    }

    static func select(_ model: ONNXModel, _ criteria: NodeCriteria, grouping: SubgraphGrouping = .connected) throws -> NodeSelection {
        try NodeSelector(tables: try OpSupportTables.bundled()).select(criteria, grouping: grouping, in: ModelGraphs(model: model))
    }

    @Test("each connected group of chosen nodes is one part; identical parts have one signature")
    func groupsChains() throws {
        let model = ONNXModel(proto: Self.twoGELUs().model())
        let selection = try Self.select(model, .opTypes(["Div", "Erf", "Add", "Mul"]))
        #expect(selection.subgraphs.count == 2)
        let first = selection.subgraphs[0]
        #expect(first.members.map(\.name) == ["gelu1/div", "gelu1/erf", "gelu1/add", "gelu1/mul", "gelu1/mul_1"])
        #expect(first.entering == ["x", "sqrt2", "one", "half"])
        #expect(first.leaving == ["y1"])
        #expect(first.opType == "Div+Erf+Add+Mul+Mul")
        #expect(first.name == "gelu1/div..gelu1/mul_1 (5 nodes)")
        let extractor = NodeExtractor(model: model, graphs: ModelGraphs(model: model))
        let parts = try selection.subgraphs.map { try extractor.extract($0) }
        #expect(parts[0].signature == parts[1].signature)
        #expect(parts[0].nodeNames.count == 5)
        // one plugin input (x), the constants inside, values only the part reads stay inside
        let graph = parts[0].subModel.graph
        #expect(graph.input.map(\.name) == ["input0"])
        #expect(graph.output.map(\.name) == ["output0"])
        #expect(graph.initializer.map(\.name) == ["const0", "const1", "const2"])
        #expect(graph.node.map(\.name) == ["node0", "node1", "node2", "node3", "node4"])
        #expect(graph.node[1].input == ["t0"] && graph.node[3].input == ["input0", "t2"])
        #expect(parts[0].inputs.map(\.value) == ["x"] && parts[0].outputs.map(\.value) == ["y1"])
        // without --fuse the same selection is five single nodes per GELU
        #expect(try Self.select(model, .opTypes(["Div", "Erf", "Add", "Mul"]), grouping: .singleNodes).subgraphs.count == 10)
    }

    @Test("a group with a path out and back in through an unchosen node is split into convex parts")
    func splitsNonConvexGroups() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [.fixed(4)])
        b.output("y", .float32, [.fixed(4)])
        for v in ["a", "n"] { b.value(v, .float32, [.fixed(4)]) }
        b.node("Abs", ["x"], ["a"], name: "abs")
        b.node("Neg", ["a"], ["n"], name: "neg")  // not chosen: a path abs -> neg -> add
        b.node("Add", ["a", "n"], ["y"], name: "add")
        let model = ONNXModel(proto: b.model())
        let selection = try Self.select(model, .names(["abs", "add"]))
        #expect(selection.subgraphs.map { $0.members.map(\.name) } == [["abs"], ["add"]])
        // with the middle node chosen too, the three are one part
        #expect(try Self.select(model, .names(["abs", "neg", "add"])).subgraphs.map(\.members.count) == [3])
    }

    @Test("a value read inside and outside the part leaves it; a Constant node goes in as an initializer")
    func leavingValuesAndConstants() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [.fixed(4)])
        b.output("y", .float32, [.fixed(4)])
        b.output("s", .float32, [.fixed(4)])
        for v in ["a", "c"] { b.value(v, .float32, [.fixed(4)]) }
        b.node("Abs", ["x"], ["a"], name: "abs")
        b.node("Sigmoid", ["a"], ["s"], name: "outside")
        b.constantNode("c", 2, name: "two")
        b.node("Mul", ["a", "c"], ["y"], name: "mul")
        let model = ONNXModel(proto: b.model())
        let part = try #require(try Self.select(model, .names(["abs", "two", "mul"])).subgraphs.first)
        #expect(part.members.count == 3)
        #expect(part.entering == ["x"])
        #expect(part.leaving == ["a", "y"])
        let extracted = try NodeExtractor(model: model, graphs: ModelGraphs(model: model)).extract(part)
        #expect(extracted.subModel.graph.node.map(\.opType) == ["Abs", "Mul"])
        #expect(extracted.subModel.graph.initializer.count == 1)
        #expect(extracted.outputs.map(\.value) == ["a", "y"])

        // The plugin takes the part's last node's place; 'outside', which reads the part's 'a'
        // and sat between its nodes, moves after it.
        let rewritten = ModelRewriter().rewrite(model, replacements: [
            NodeReplacement(nodeIndices: [0, 2, 3], pluginName: "tpat_part", inputs: extracted.inputs, outputs: extracted.outputs)
        ])
        #expect(rewritten.graph.node.map(\.opType) == ["tpat_part", "Sigmoid"])
        #expect(rewritten.graph.node[0].input == ["x"] && rewritten.graph.node[0].output == ["a", "y"])
        #expect(rewritten.graph.node[0].name == "abs")
    }

    @Test("Shape or Constant nodes that join no other chosen node are left out when fusing, refused alone otherwise")
    func loneShapeNodes() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [.fixed(4)])
        b.output("y", .float32, [.fixed(4)])
        b.output("s", .int64, [.fixed(1)])
        b.node("Abs", ["x"], ["y"], name: "abs")
        b.node("Shape", ["x"], ["s"], name: "shape")
        let model = ONNXModel(proto: b.model())
        let selection = try Self.select(model, .names(["abs", "shape"]))
        #expect(selection.subgraphs.map(\.name) == ["abs"])
        #expect(selection.skipped.map(\.node) == ["shape"])
        #expect(throws: TPATError.self) { try Self.select(model, .names(["abs", "shape"]), grouping: .singleNodes) }
    }

    @Test("the topological sort keeps the given order and pulls a producer before its readers")
    func topologicalSort() {
        func node(_ name: String, _ inputs: [String], _ outputs: [String]) -> Onnx_NodeProto {
            var n = Onnx_NodeProto()
            n.name = name
            n.input = inputs
            n.output = outputs
            return n
        }
        let nodes = [node("a", ["x"], ["a"]), node("reader", ["p"], ["r"]), node("other", ["x"], ["o"]), node("plugin", ["a"], ["p"])]
        #expect(ModelRewriter.topologicallySorted(nodes).map(\.name) == ["a", "plugin", "reader", "other"])
    }
}
