import Foundation
import Testing

@testable import TPATKit

@Suite("tpat inspect")
struct InspectTests {
    /// The toolchain of this checkout (its .venv has ONNX Runtime for the shape inference).
    static func toolchain() throws(TPATError) -> Toolchain {
        try Toolchain.discover(environment: ["TPAT_HOME": TestSupport.root.path])
    }

    /// A legacy export in miniature: x[batch,3,8] -> Relu -> Softmax -> y, the intermediate value
    /// undeclared and the output's dims unknown.
    static func legacyModel() -> ONNXModel {
        var b = ModelBuilder()
        b.input("x", .float32, [.symbolic("batch"), .fixed(3), .fixed(8)])
        b.node("Relu", ["x"], ["r"], name: "/relu")
        b.node("Softmax", ["r"], ["y"], name: "/softmax", ints: ["axis": -1])
        b.output("y", .float32, [.unknown, .unknown, .unknown])
        return ONNXModel(proto: b.model(), baseDirectory: FileManager.default.temporaryDirectory)
    }

    /// Shape arithmetic beside data: x[batch,6] -> Shape -> Gather(0) -> Unsqueeze -> Concat ->
    /// Reshape(x); a data Gather of x; a Range up to the computed batch and one between constants;
    /// a TopK whose K breaks TensorRT's limit.
    static func shapeModel(computedK: Bool = false) -> ONNXModel {
        var b = ModelBuilder()
        b.input("x", .float32, [.symbolic("batch"), .fixed(6)])
        b.input("wide", .float32, [.symbolic("batch"), .fixed(5000)])
        b.initializer("zero", int64: [0], shape: [])
        b.initializer("one", int64: [1], shape: [])
        b.initializer("five", int64: [5], shape: [])
        b.initializer("axes", int64: [0], shape: [1])
        b.initializer("tail", int64: [3, 2], shape: [2])
        b.initializer("columns", int64: [0, 1], shape: [2])
        if computedK {
            b.input("k", .int64, [.fixed(1)])
        } else {
            b.initializer("k", int64: [4000], shape: [1])
        }
        b.node("Shape", ["x"], ["shape"], name: "/Shape")
        b.node("Gather", ["shape", "zero"], ["batch"], name: "/Gather_shape")
        b.node("Unsqueeze", ["batch", "axes"], ["batch1"], name: "/Unsqueeze")
        b.node("Concat", ["batch1", "tail"], ["new_shape"], name: "/Concat", ints: ["axis": 0])
        b.node("Reshape", ["x", "new_shape"], ["reshaped"], name: "/Reshape")
        b.node("Gather", ["x", "columns"], ["picked"], name: "/Gather_data", ints: ["axis": 1])
        b.node("Range", ["zero", "batch", "one"], ["positions"], name: "/Range")
        b.node("Range", ["zero", "five", "one"], ["fixed_positions"], name: "/Range_constant")
        b.node("TopK", ["wide", "k"], ["top", "top_indices"], name: "/TopK")
        b.output("reshaped", .float32, [.symbolic("batch"), .fixed(3), .fixed(2)])
        b.output("picked", .float32, [.symbolic("batch"), .fixed(2)])
        b.output("positions", .int64, [.unknown])
        b.output("fixed_positions", .int64, [.fixed(5)])
        b.output("top", .float32, [.symbolic("batch"), .fixed(4000)])
        return ONNXModel(proto: b.model(), baseDirectory: FileManager.default.temporaryDirectory)
    }

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
        // another domain's op only through its ONNX function body, named with its domain
        #expect(tables.tvmConverts(opType: "FlexAttention", domain: "ai.onnx.preview"))
        #expect(!tables.tvmConverts(opType: "FlexAttention", domain: ""))
        #expect(!tables.tvmConverts(opType: "GatherND", domain: "com.example"))
        // or through TPAT's own converter (python/tpat_bridge/ml.py)
        #expect(tables.tvmConverts(opType: "Binarizer", domain: "ai.onnx.ml"))
    }

    @Test("the report lists every node with shapes and support")
    func reportsTheDemo() throws {
        let url = try TestSupport.demoModel()
        let report = ModelInspector(tables: try OpSupportTables.bundled()).inspect(try ONNXModel.load(contentsOf: url), path: "demo.onnx")
        #expect(report.nodes.count == 12)
        let topk = try #require(report.nodes.first { $0.name == "head/topk" })
        #expect(topk.inputs.map(\.shape) == [[.fixed(1), .fixed(32), .fixed(32)], [.fixed(1)]])
        #expect(topk.inputs[1].isConstant)
        #expect(topk.outputs.map(\.dtype) == ["float32", "int64"])
        #expect(topk.graph == "")
        #expect(report.summaryLine.hasPrefix("12 nodes: 0 that TensorRT cannot run natively, 0 that --auto would take, "))
        let nodeTable = report.renderNodes()
        #expect(nodeTable.split(separator: "\n").count == 13)
        #expect(nodeTable.contains("head/scatter      ScatterND"))
        #expect(report.renderTable().hasPrefix(nodeTable + "\n" + "OP "))
        #expect(report.renderTable().hasSuffix(report.summaryLine + "\n"))
    }

    @Test("ops TensorRT lacks and custom domains: the TPAT column says what TPAT can do with them")
    func customAndMissingOps() throws {
        var proto = TestSupport.smallModel()
        proto.graph.node[0].opType = "Unique"
        proto.graph.node[1].domain = "com.example"
        let report = ModelInspector(tables: try OpSupportTables.bundled()).inspect(ONNXModel(proto: proto), path: "m")
        #expect(report.nodes.map(\.tensorRTNative) == [false, false])
        #expect(report.nodes.map(\.tvmConverts) == [true, false])
        #expect(report.nodes.map(\.tpat) == [.sizeTensor, .noConverter])
        #expect(report.nodes.map(\.tpat.text) == ["yes: data-dependent size as a size tensor (v3)", "no: TVM's frontend has no converter"])
        #expect(report.nodes[1].name == "Add#1")
        #expect(report.summary.first { $0.opType == "com.example:Add" }?.takenByOpTypes == 0)
    }

    @Test("the TPAT column: data-dependent sizes, shape arithmetic, constants, TensorRT's limits")
    func tpatVerdicts() throws {
        let report = ModelInspector(tables: try OpSupportTables.bundled()).inspect(Self.shapeModel(), path: "m")
        let byName = Dictionary(uniqueKeysWithValues: report.nodes.map { ($0.name, $0) })
        #expect(byName["/Range"]?.tpat == .runTimeSize)
        #expect(byName["/Range_constant"]?.tpat == .constantInputs)
        for name in ["/Shape", "/Gather_shape", "/Unsqueeze", "/Concat"] {
            #expect(byName[name]?.tpat == .shapeArithmetic, "\(name)")
            #expect(byName[name]?.shapeArithmetic == true, "\(name)")
            #expect(byName[name]?.takenByOpTypes == false, "\(name)")
        }
        #expect(byName["/Gather_data"]?.tpat == .generates)
        #expect(byName["/Gather_data"]?.takenByOpTypes == true)
        #expect(byName["/Reshape"]?.tpat == .generates)
        let topK = try #require(byName["/TopK"])
        #expect(topK.tpat == .generates)
        #expect(topK.tensorRTLimitBroken == "K = 4000 (TensorRT needs K < 3840)")
        #expect(topK.takenByAuto)
        #expect(report.nodes.filter(\.takenByAuto).map(\.name) == ["/TopK"])
        let topKRow = try #require(report.renderNodes().split(separator: "\n").first { $0.hasPrefix("/TopK ") })
        #expect(topKRow.hasSuffix("  no (limit)  yes   yes"))
        // a computed K is data-dependent: a size tensor
        let computedK = ModelInspector(tables: try OpSupportTables.bundled()).inspect(Self.shapeModel(computedK: true), path: "m")
        #expect(computedK.nodes.first { $0.name == "/TopK" }?.tpat == .sizeTensor)
        // NonMaxSuppression's row count always depends on the boxes: a size tensor, from the op
        // table (the bridge's converter records)
        var b = ModelBuilder()
        b.input("boxes", .float32, [.fixed(1), .symbolic("n"), .fixed(4)])
        b.input("scores", .float32, [.fixed(1), .fixed(1), .symbolic("n")])
        b.node("NonMaxSuppression", ["boxes", "scores"], ["selected"], name: "nms")
        b.output("selected", .int64, [.symbolic("k"), .fixed(3)])
        let nms = ModelInspector(tables: try OpSupportTables.bundled()).inspect(ONNXModel(proto: b.model()), path: "m")
        #expect(nms.nodes.first?.tpat == .sizeTensor)
    }

    @Test("the summary counts each op type: TensorRT, --op-types, --auto, TPAT")
    func summaryCounts() throws {
        let report = ModelInspector(tables: try OpSupportTables.bundled()).inspect(Self.shapeModel(), path: "m")
        let rows = Dictionary(uniqueKeysWithValues: report.summary.map { ($0.opType, $0) })
        #expect(report.summary.map(\.nodes).reduce(0, +) == report.nodes.count)
        #expect(report.summary.prefix(2).map(\.opType) == ["Gather", "Range"])
        let gather = try #require(rows["Gather"])
        #expect((gather.nodes, gather.inBodies, gather.takenByOpTypes, gather.takenByAuto) == (2, 0, 1, 0))
        #expect(gather.tpat == [.generates: 1, .shapeArithmetic: 1])
        let range = try #require(rows["Range"])
        #expect(range.tpat == [.runTimeSize: 1, .constantInputs: 1])
        let topK = try #require(rows["TopK"])
        #expect((topK.beyondTensorRTLimits, topK.takenByAuto, topK.takenByOpTypes) == (1, 1, 1))
        #expect(topK.tensorRTRestrictions.contains("3840"))
        #expect(rows["Shape"]?.takenByOpTypes == 0)
        let text = report.renderSummary()
        let gatherLine = try #require(text.split(separator: "\n").first { $0.hasPrefix("Gather ") })
        #expect(gatherLine.split(separator: " ", omittingEmptySubsequences: true).prefix(5) == ["Gather", "2", "yes", "1", "0"])
        #expect(gatherLine.hasSuffix("1 yes; 1 no: shape arithmetic (stays native)"))
        #expect(text.split(separator: "\n").first { $0.hasPrefix("TopK ") }?.contains("yes, 1 beyond limits") == true)
        #expect(text.hasSuffix("9 nodes: 1 that TensorRT cannot run natively, 1 that --auto would take, 3 that TPAT can generate.\n"))
    }

    @Test("nodes in If bodies are listed by the path names --nodes accepts, and counted")
    func bodyNodes() throws {
        let model = SubgraphTests.model()
        let report = ModelInspector(tables: try OpSupportTables.bundled()).inspect(model, path: "m")
        let not = try #require(report.nodes.first { $0.name == "/roi_heads/If::else_branch::inner_if::else_branch::not" })
        #expect(not.opType == "Not")
        #expect(not.graph == "/roi_heads/If::else_branch::inner_if::else_branch")
        #expect(not.inputs.first?.shape == [.symbolic("N"), .fixed(4)])
        let graphs = ModelGraphs(model: model)
        #expect(report.nodes.map(\.name) == graphs.allNodeNames)
        for node in report.nodes { #expect(graphs.node(named: node.name) != nil, "\(node.name)") }
        let softmax = try #require(report.summary.first { $0.opType == "Softmax" })
        #expect((softmax.nodes, softmax.inBodies, softmax.takenByOpTypes) == (2, 2, 2))
        #expect(report.summaryLine.hasPrefix("9 nodes (7 in If/Loop/Scan bodies): "))
        #expect(report.renderNodes().contains("/roi_heads/If::then_branch::softmax"))
    }

    @Test("undeclared shapes of a legacy export come from the shape inference generate runs")
    func inferredShapes() async throws {
        let inspector = ModelInspector(tables: try OpSupportTables.bundled())
        let model = Self.legacyModel()
        #expect(ModelInspector.needsShapeInference(model))
        let (inferred, warning) = await inspector.inspect(model, path: "m", inferShapes: true, toolchain: Self.toolchain)
        #expect(warning == nil)
        #expect(inferred.shapes == .inferred)
        #expect(inferred.nodes[0].outputs[0].shape == [.symbolic("batch"), .fixed(3), .fixed(8)])
        #expect(inferred.nodes[1].outputs[0].shape == [.symbolic("batch"), .fixed(3), .fixed(8)])
        #expect(!inferred.renderTable().contains("?"))

        let (declared, none) = await inspector.inspect(model, path: "m", inferShapes: false, toolchain: Self.toolchain)
        #expect(none == nil)
        #expect(declared.shapes == .declaredIncomplete)
        #expect(declared.nodes[0].outputs[0].shape == nil)
        #expect(declared.renderNodes().contains("?[?]"))

        let (fallback, missing) = await inspector.inspect(model, path: "m", inferShapes: true) { () throws(TPATError) -> Toolchain in
            throw .installation("no Python with TVM at /nowhere/python; run `make setup`")
        }
        #expect(fallback.shapes == .declaredIncomplete)
        #expect(fallback.nodes[0].outputs[0].shape == nil)
        #expect(missing == "shape inference did not run (no Python with TVM at /nowhere/python; run `make setup`); showing the model's declared shapes, '?' where it declares none")

        // a model whose every dim is declared and fixed needs no toolchain
        let (demo, quiet) = await inspector.inspect(
            try ONNXModel.load(contentsOf: try TestSupport.demoModel()), path: "demo", inferShapes: true
        ) { () throws(TPATError) -> Toolchain in
            Issue.record("the toolchain was asked for")
            throw .installation("unused")
        }
        #expect(demo.shapes == .declared)
        #expect(quiet == nil)
    }

    @Test("long names and shapes are cut in the table and whole in JSON")
    func widthStaysSane() throws {
        var b = ModelBuilder()
        let long = "/encoder/layers." + String(repeating: "very_long_module_name.", count: 10) + "Concat"
        for i in 0..<30 { b.input("input_\(i)", .float32, [.symbolic("batch_size_of_the_model"), .fixed(768)]) }
        b.node("Concat", (0..<30).map { "input_\($0)" }, ["joined"], name: long, ints: ["axis": 1])
        b.output("joined", .float32, [.symbolic("batch_size_of_the_model"), .fixed(23040)])
        let report = ModelInspector(tables: try OpSupportTables.bundled()).inspect(ONNXModel(proto: b.model()), path: "m")
        let table = report.renderNodes()
        #expect(table.split(separator: "\n").allSatisfy { $0.count <= 200 })
        let row = try #require(table.split(separator: "\n").last)
        #expect(row.hasPrefix("/encoder/layer…"))
        #expect(row.contains("_name.Concat  Concat"))
        #expect(report.nodes[0].name == long)
        #expect(report.nodes[0].inputs.count == 30)
    }

    @Test("the command prints a table, a summary, JSON with numeric dims, and clear errors")
    func command() throws {
        let demo = try TestSupport.demoModel().path
        let table = try TestSupport.runTPAT(["inspect", demo])
        #expect(table.status == 0)
        #expect(table.stdout.hasSuffix("that TPAT can generate.\n"))
        #expect(table.stdout.contains("head/topk"))

        let url = try TestSupport.temporaryDirectory().appendingPathComponent("shapes.onnx")
        try Self.shapeModel().write(to: url)
        let summary = try TestSupport.runTPAT(["inspect", url.path, "--summary", "--no-shape-inference"])
        #expect(summary.status == 0)
        #expect(summary.stderr == "")
        #expect(summary.stdout.hasPrefix("OP "))
        #expect(!summary.stdout.contains("/Gather_data"))
        #expect(summary.stdout.contains("1 yes; 1 no: shape arithmetic (stays native)"))

        let json = try TestSupport.runTPAT(["inspect", url.path, "--json", "--no-shape-inference"])
        #expect(json.status == 0)
        let decoded = try JSONDecoder().decode(ModelInspection.self, from: Data(json.stdout.utf8))
        let expected = ModelInspector(tables: try OpSupportTables.bundled()).inspect(Self.shapeModel(), path: url.path, shapes: .declaredIncomplete)
        #expect(decoded == expected)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let nodes = try #require(object["nodes"] as? [[String: Any]])
        let reshape = try #require(nodes.first { $0["name"] as? String == "/Reshape" })
        let dims = try #require((reshape["inputs"] as? [[String: Any]])?.first?["shape"] as? [Any])
        #expect(dims.count == 2)
        #expect(dims[0] as? String == "batch")
        #expect(!(dims[1] is String))
        #expect((dims[1] as? NSNumber)?.intValue == 6)
        #expect(reshape["graph"] as? String == "")
        #expect(reshape["tpat"] as? String == "yes")
        let range = try #require(nodes.first { $0["name"] as? String == "/Range" })
        #expect(range["tpat"] as? String == "run-time-size")
        let rangeOutput = try #require((range["outputs"] as? [[String: Any]])?.first?["shape"] as? [Any])
        #expect(rangeOutput.count == 1 && rangeOutput[0] is NSNull)
        let gather = try #require(nodes.first { $0["name"] as? String == "/Gather_shape" })
        #expect(gather["shapeArithmetic"] as? Bool == true)
        #expect(gather["tpat"] as? String == "shape-arithmetic")
        #expect((object["summary"] as? [Any])?.isEmpty == false)

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
