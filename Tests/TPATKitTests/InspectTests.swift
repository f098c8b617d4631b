import Foundation
import Testing

@testable import TPATKit

@Suite("tpat inspect")
struct InspectTests {
    @Test("the op tables name their sources and know the usual ops")
    func tables() throws {
        let tables = try OpSupportTables.bundled()
        #expect(tables.tensorRTSource.contains("onnx-tensorrt"))
        #expect(tables.tvmSource.contains("apache-tvm==0.27.0.post1"))
        #expect(tables.tensorRTRunsNatively(opType: "Conv", domain: ""))
        #expect(!tables.tensorRTRunsNatively(opType: "Unique", domain: ""))
        #expect(!tables.tensorRTRunsNatively(opType: "Conv", domain: "com.example"))
        #expect(tables.tvmConverts(opType: "GatherND", domain: "ai.onnx"))
        #expect(!tables.tvmConverts(opType: "NoSuchOp", domain: ""))
    }

    @Test("the report lists every node with shapes and support")
    func reportsTheDemo() throws {
        let url = try TestSupport.demoModel()
        let report = ModelInspector(tables: try OpSupportTables.bundled()).inspect(try ONNXModel.load(contentsOf: url), path: "demo.onnx")
        #expect(report.nodes.count == 12)
        let topk = try #require(report.nodes.first { $0.name == "head/topk" })
        #expect(topk.inputs.map(\.shape) == [["1", "32", "32"], ["1"]])
        #expect(topk.inputs[1].isConstant)
        #expect(topk.outputs.map(\.dtype) == ["float32", "int64"])
        #expect(report.summaryLine == "12 nodes, 0 that TensorRT cannot run natively, 0 plugin candidates (TensorRT cannot, TVM can).")
        let table = report.renderTable()
        #expect(table.split(separator: "\n").count == 14)
        #expect(table.contains("head/scatter      ScatterND"))
    }

    @Test("ops TensorRT lacks are plugin candidates; custom domains are not TensorRT's")
    func candidates() throws {
        var proto = TestSupport.smallModel()
        proto.graph.node[0].opType = "Unique"
        proto.graph.node[1].domain = "com.example"
        let report = ModelInspector(tables: try OpSupportTables.bundled()).inspect(ONNXModel(proto: proto), path: "m")
        #expect(report.nodes.map(\.tensorRTNative) == [false, false])
        #expect(report.nodes.map(\.tvmConverts) == [true, false])
        #expect(report.nodes.map(\.pluginCandidate) == [true, false])
        #expect(report.nodes[1].name == "Add#1")
    }

    @Test("the command prints a table, JSON, and clear errors")
    func command() throws {
        let demo = try TestSupport.demoModel().path
        let table = try TestSupport.runTPAT(["inspect", demo])
        #expect(table.status == 0)
        #expect(table.stdout.hasSuffix("plugin candidates (TensorRT cannot, TVM can).\n"))
        let json = try TestSupport.runTPAT(["inspect", demo, "--json"])
        #expect(json.status == 0)
        let decoded = try JSONDecoder().decode(ModelInspection.self, from: Data(json.stdout.utf8))
        #expect(decoded.nodes.count == 12)

        let missing = try TestSupport.runTPAT(["inspect", "/nonexistent.onnx"])
        #expect(missing.status != 0)
        #expect(missing.stderr == "tpat: error: /nonexistent.onnx: no such file. Check the path to the ONNX model.\n")
        let notModel = try TestSupport.temporaryDirectory().appendingPathComponent("x.onnx")
        try Data("not a model".utf8).write(to: notModel)
        let bad = try TestSupport.runTPAT(["inspect", notModel.path])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("not an ONNX model"))
        #expect(!bad.stderr.contains("Fatal error"))
    }
}
