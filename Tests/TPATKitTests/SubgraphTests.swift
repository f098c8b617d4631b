import Foundation
import Testing

@testable import TPATKit

/// Nodes inside `If` bodies (as torchvision's detection models keep NonMaxSuppression): listed
/// with a path name, selected by name and op type, extracted with the outer values they read,
/// and rewritten in place inside the body.
@Suite struct SubgraphTests {
    /// x[N,4], flag -> If(flag) { then: Softmax(x) -> Relu; else: If(flag) { then: Softmax(x); else: Not(mask) ... } }
    static func model() -> ONNXModel {
        func body(_ name: String, _ nodes: [Onnx_NodeProto], output: String) -> Onnx_GraphProto {
            var g = Onnx_GraphProto()
            g.name = name
            g.node = nodes
            var out = Onnx_ValueInfoProto()
            out.name = output
            out.type = TensorType(elementType: .float32, shape: [.symbolic("N"), .fixed(4)]).proto
            g.output = [out]
            return g
        }
        func node(_ op: String, _ inputs: [String], _ outputs: [String], _ name: String) -> Onnx_NodeProto {
            var n = Onnx_NodeProto()
            n.opType = op
            n.input = inputs
            n.output = outputs
            n.name = name
            return n
        }
        func ifNode(_ name: String, then thenBranch: Onnx_GraphProto, else elseBranch: Onnx_GraphProto, output: String) -> Onnx_NodeProto {
            var n = node("If", ["flag"], [output], name)
            var t = Onnx_AttributeProto()
            t.name = "then_branch"
            t.type = .graph
            t.g = thenBranch
            var e = Onnx_AttributeProto()
            e.name = "else_branch"
            e.type = .graph
            e.g = elseBranch
            n.attribute = [t, e]
            return n
        }
        var typedMask = Onnx_ValueInfoProto()
        typedMask.name = "not_mask"
        typedMask.type = TensorType(elementType: .bool, shape: [.symbolic("N"), .fixed(4)]).proto
        var inner = body("inner_else", [
            node("Not", ["mask"], ["not_mask"], "not"),
            node("Cast", ["not_mask"], ["inner_else_out"], "cast"),
        ], output: "inner_else_out")
        inner.valueInfo = [typedMask]
        inner.node[1].attribute = [{ var a = Onnx_AttributeProto(); a.name = "to"; a.type = .int; a.i = 1; return a }()]
        let nested = ifNode(
            "inner_if", then: body("inner_then", [node("Softmax", ["x"], ["inner_then_out"], "softmax")], output: "inner_then_out"),
            else: inner, output: "inner_out")
        var thenBranch = body("then", [node("Softmax", ["x"], ["s"], "softmax"), node("Relu", ["s"], ["then_out"], "relu")], output: "then_out")
        var typedS = Onnx_ValueInfoProto()
        typedS.name = "s"
        typedS.type = TensorType(elementType: .float32, shape: [.symbolic("N"), .fixed(4)]).proto
        thenBranch.valueInfo = [typedS]
        let outer = ifNode(
            "/roi_heads/If",
            then: thenBranch,
            else: body("else", [nested, node("Identity", ["inner_out"], ["else_out"], "identity")], output: "else_out"),
            output: "y")
        var b = ModelBuilder()
        b.input("x", .float32, [.symbolic("N"), .fixed(4)])
        b.input("mask", .bool, [.symbolic("N"), .fixed(4)])
        b.input("flag", .bool, [])
        b.node("Neg", ["x"], ["before"], name: "neg")
        b.output("before", .float32, [.symbolic("N"), .fixed(4)])
        var proto = b.model()
        proto.graph.node.append(outer)
        var y = Onnx_ValueInfoProto()
        y.name = "y"
        y.type = TensorType(elementType: .float32, shape: [.symbolic("N"), .fixed(4)]).proto
        proto.graph.output.append(y)
        return ONNXModel(proto: proto, baseDirectory: FileManager.default.temporaryDirectory)
    }

    @Test func bodiesAreListedWithPathNames() {
        let graphs = ModelGraphs(model: Self.model())
        #expect(graphs.entries.count == 5)
        #expect(graphs.allNodeNames == [
            "neg", "/roi_heads/If",
            "/roi_heads/If::then_branch::softmax", "/roi_heads/If::then_branch::relu",
            "/roi_heads/If::else_branch::inner_if", "/roi_heads/If::else_branch::identity",
            "/roi_heads/If::else_branch::inner_if::then_branch::softmax",
            "/roi_heads/If::else_branch::inner_if::else_branch::not", "/roi_heads/If::else_branch::inner_if::else_branch::cast",
        ])
    }

    @Test func bodyNodesAreSelectedByOpTypeAndName() throws {
        let selector = NodeSelector(tables: try OpSupportTables.bundled())
        let graphs = ModelGraphs(model: Self.model())
        let byType = try selector.select(.opTypes(["Softmax"]), in: graphs)
        #expect(byType.nodes.map(\.name) == ["/roi_heads/If::then_branch::softmax", "/roi_heads/If::else_branch::inner_if::then_branch::softmax"])
        #expect(byType.nodes[1].path.steps.map(\.attribute) == ["else_branch", "then_branch"])
        let byName = try selector.select(.names(["/roi_heads/If::else_branch::inner_if::else_branch::not"]), in: graphs)
        #expect(byName.nodes.map(\.node.opType) == ["Not"])
        #expect(throws: TPATError.self) { try selector.select(.names(["/roi_heads/If::else_branch::nothing"]), in: graphs) }
    }

    @Test func bodyNodesAreExtractedAndRewrittenInPlace() throws {
        let model = Self.model()
        let graphs = ModelGraphs(model: model)
        let selector = NodeSelector(tables: try OpSupportTables.bundled())
        let selected = try selector.select(.opTypes(["Softmax", "Not"]), in: graphs).nodes
        let extractor = NodeExtractor(model: model, graphs: graphs)
        let extracted = try selected.map { try extractor.extract($0) }
        // the two Softmax nodes read the outer x and compute the same thing: one plugin
        #expect(extracted[0].signature == extracted[1].signature)
        #expect(extracted[0].inputs.map(\.value) == ["x"])
        // Not reads the model's BOOL mask: carried as INT32 through a Cast inside the body
        #expect(extracted[2].inputs.map(\.pluginType) == [.int32])
        let replacements = extracted.enumerated().map { k, node in
            NodeReplacement(nodeIndices: node.nodeIndices, path: node.path, pluginName: "tpat_p\(k)", inputs: node.inputs, outputs: node.outputs)
        }
        let rewritten = ModelRewriter().rewrite(model, replacements: replacements)
        let after = ModelGraphs(model: rewritten)
        let names = Dictionary(uniqueKeysWithValues: after.entries.flatMap { e in e.index.graph.node.enumerated().map { (e.namePrefix + e.index.nodeNames[$0], $1.opType) } })
        #expect(names["/roi_heads/If::then_branch::softmax"] == "tpat_p0")
        #expect(names["/roi_heads/If::then_branch::relu"] == "Relu")
        #expect(names["/roi_heads/If::else_branch::inner_if::then_branch::softmax"] == "tpat_p1")
        #expect(names["/roi_heads/If::else_branch::inner_if::else_branch::not"] == "tpat_p2")
        let innerElse = try #require(after.entries.first { $0.namePrefix.hasSuffix("inner_if::else_branch::") })
        #expect(innerElse.index.graph.node.map(\.opType) == ["Cast", "tpat_p2", "Cast", "Cast"])
        // the main graph is untouched but for the If that holds the bodies
        #expect(rewritten.graph.node.map(\.opType) == ["Neg", "If"])
        #expect(model.graph.node[1].attribute[0].g.node[0].opType == "Softmax")
    }
}
