import Foundation
import Testing

@testable import TPATKit

/// End-to-end runs of `tpat generate`: real TVM, real nvcc (no GPU needed to build).
@Suite("tpat generate end to end", .serialized)
struct PipelineTests {
    /// Hostile node names, a BOOL input (Casts), two identical nodes (one shared plugin), a
    /// symbolic batch dim.
    static func hostileModel() -> ModelBuilder {
        var b = ModelBuilder()
        b.input("x", .float32, [.symbolic("batch size"), .fixed(64)])
        b.input("mask", .bool, [.symbolic("batch size"), .fixed(64)])
        b.value("a", .float32, [.symbolic("batch size"), .fixed(64)])
        b.value("n", .float32, [.symbolic("batch size"), .fixed(64)])
        b.value("b", .float32, [.symbolic("batch size"), .fixed(64)])
        b.output("y", .float32, [.symbolic("batch size"), .fixed(64)])
        b.output("z", .float32, [.symbolic("batch size"), .fixed(64)])
        b.node("Abs", ["x"], ["a"], name: "../../etc/passwd")
        b.node("Neg", ["x"], ["n"], name: "a b\"c;rm -rf $HOME")
        b.node("Abs", ["n"], ["b"], name: "节点/🙂")
        b.node("Where", ["mask", "a", "b"], ["y"], name: "select")
        b.node("Add", ["a", "b"], ["z"], name: "add")
        return b
    }

    @Test("hostile names, Casts for BOOL, shared plugins, symbolic dims; the input is untouched")
    func generatesPlugins() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let input = dir.appendingPathComponent("model.onnx")
        try Self.hostileModel().write(to: input)
        let before = try Data(contentsOf: input)
        let out = dir.appendingPathComponent("out")
        let result = try TestSupport.runTPAT([
            "generate", input.path, "-o", out.path, "--arch", "sm_90", "-q",
            "--nodes", "../../etc/passwd,节点/🙂,select",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try Data(contentsOf: input) == before)

        let report = try JSONDecoder().decode(PipelineReport.self, from: Data(contentsOf: out.appendingPathComponent("report.json")))
        #expect(report.failures.isEmpty)
        // The two Abs nodes are identical: one plugin serves both.
        #expect(report.plugins.count == 2)
        let abs = try #require(report.plugins.first { $0.opType == "Abs" })
        #expect(abs.nodes == ["../../etc/passwd", "节点/🙂"])
        for plugin in report.plugins {
            #expect(plugin.name.hasPrefix("tpat_"))
            #expect(plugin.name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
            #expect(!plugin.name.contains("__"))
            #expect(plugin.directory.hasPrefix(out.path + "/plugins/"))
            #expect(plugin.kernelBuild == "built")
            let folder = URL(fileURLWithPath: plugin.directory)
            for file in ["manifest.json", "\(plugin.name)_kernels.cu", "\(plugin.name)_plugin.cpp", "\(plugin.name)_test.cu", "CMakeLists.txt", "test/reference.json", "build/\(plugin.name)_test"] {
                #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path), "\(plugin.name): \(file)")
            }
            // OUT's manifest keeps TVM's CUDA source once: in the kernel source it names.
            let manifest = try JSONDecoder().decode(KernelManifest.self, from: Data(contentsOf: folder.appendingPathComponent("manifest.json")))
            #expect(manifest.cudaSource == nil && manifest.cudaSourceFile == "\(plugin.name)_kernels.cu")
            let kernelSource = try String(contentsOf: folder.appendingPathComponent("\(plugin.name)_kernels.cu"), encoding: .utf8)
            #expect(manifest.kernels.allSatisfy { kernelSource.contains("__global__") && kernelSource.contains($0.name) })
            // An output folder's copy cannot be rendered again (it has no source), and says so.
            #expect(throws: TPATError.self) { try PluginModel(manifest: manifest, pluginName: plugin.name, options: PluginOptions()) }
            // Symbolic batch: two self-test cases at two sizes.
            let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("test/reference.json"))) as? [String: Any]
            #expect((reference?["cases"] as? [Any])?.count == 2)
        }
        #expect(report.trtexecCommand?.hasPrefix("trtexec --onnx=\(out.path)/model.tpat.onnx --dynamicPlugins=") == true)
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("Makefile").path))
        // The whole-model check's files, and the model inputs the self-tests' data came from (two
        // cases: the batch at two sizes), for host/verify_model.py to run both models on.
        for file in ["host/plugins.json", "host/tpat_ort_ops.cpp", "host/verify_model.py", "host/plugins.mk", "host/inputs/case0.npz", "host/inputs/case1.npz"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), "\(file)")
        }
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent(".capture").path), "the capture's scratch folder is removed")

        // The rewritten model: plugin nodes, a Cast pair around the BOOL input, the tpat opset.
        let rewritten = try ONNXModel.load(contentsOf: out.appendingPathComponent("model.tpat.onnx"))
        let ops = rewritten.graph.node.map(\.opType)
        #expect(ops.filter { $0 == abs.name }.count == 2)
        #expect(ops.contains("Neg") && ops.contains("Add"))
        #expect(!ops.contains("Abs") && !ops.contains("Where"))
        let select = try #require(rewritten.graph.node.first { $0.name == "select" })
        #expect(select.domain == ModelRewriter.pluginDomain)
        #expect(select.attribute(named: "plugin_version") == .string("1"))
        // One namespace of the output's own content for every plugin node, and each node names
        // the kernels its plugin was built from.
        guard case .string(let namespace)? = select.attribute(named: "plugin_namespace") else {
            Issue.record("no plugin_namespace on the plugin node"); return
        }
        #expect(namespace.hasPrefix("tpat_") && namespace.count == 21 && namespace.dropFirst(5).allSatisfy(\.isHexDigit))
        for node in rewritten.graph.node where node.domain == ModelRewriter.pluginDomain {
            #expect(node.attribute(named: "plugin_namespace") == .string(namespace))
            guard case .string(let id)? = node.attribute(named: ModelRewriter.kernelsIDAttribute) else {
                Issue.record("\(node.name) has no \(ModelRewriter.kernelsIDAttribute)"); continue
            }
            #expect(id.count == 16 && id.allSatisfy(\.isHexDigit))
        }
        #expect(report.trtexecCommand?.contains("--dynamicPlugins=") == true)
        let cast = try #require(rewritten.graph.node.first { $0.opType == "Cast" })
        #expect(cast.input == ["mask"])
        #expect(cast.attribute(named: "to") == .int(Int64(ElementType.int32.onnxValue)))
        #expect(select.input[0] == cast.output[0])
        #expect(rewritten.proto.opsetImport.contains { $0.domain == "tpat" && $0.version == 1 })
        // Topological order holds: every input is produced before it is read.
        var known = Set(rewritten.graph.input.map(\.name))
        for node in rewritten.graph.node {
            for value in node.input where !value.isEmpty { #expect(known.contains(value), "\(node.name) reads \(value) before it exists") }
            known.formUnion(node.output)
        }
    }

    /// Abs (becomes a plugin) then CumSum over symbolic dims along an axis computed at run time
    /// (TPAT refuses it: the axis decides the kernel).
    static func absCumSumModel() -> ModelBuilder {
        var b = ModelBuilder()
        b.input("x", .float32, [.fixed(4), .symbolic("L")])
        b.input("axis", .int64, [])
        b.value("a", .float32, [.fixed(4), .symbolic("L")])
        b.output("c", .float32, [.fixed(4), .symbolic("L")])
        b.node("Abs", ["x"], ["a"], name: "abs")
        b.node("CumSum", ["a", "axis"], ["c"], name: "cumsum")
        return b
    }

    @Test("a node TVM cannot express fails alone; the others become plugins")
    func perNodeFailure() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let input = dir.appendingPathComponent("model.onnx")
        try Self.absCumSumModel().write(to: input)
        let out = dir.appendingPathComponent("out")
        let result = try TestSupport.runTPAT(["generate", input.path, "-o", out.path, "--arch", "sm_90", "-q", "--no-build", "--op-types", "Abs,CumSum"])
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stdout.contains("FAILED 1 node(s) (CumSum) [unsupported]: CumSum: "), "\(result.stdout)")
        #expect(result.stdout.contains("\n    cumsum\n"), "\(result.stdout)")
        let report = try JSONDecoder().decode(PipelineReport.self, from: Data(contentsOf: out.appendingPathComponent("report.json")))
        #expect(report.plugins.map(\.opType) == ["Abs"])
        #expect(report.failures.map(\.errorClass) == ["unsupported"])
        let log = try #require(report.failures.first?.log)
        #expect(FileManager.default.fileExists(atPath: log))
        let rewritten = try ONNXModel.load(contentsOf: out.appendingPathComponent("model.tpat.onnx"))
        #expect(rewritten.graph.node.map(\.opType) == ["tpat_abs", "CumSum"])
    }

    @Test("--fuse: each decomposed GELU becomes one plugin with one fused kernel, the two identical ones share it")
    func fusedChains() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let input = dir.appendingPathComponent("model.onnx")
        try FusionTests.twoGELUs().write(to: input)
        let out = dir.appendingPathComponent("out")
        let result = try TestSupport.runTPAT([
            "generate", input.path, "-o", out.path, "--arch", "sm_90", "-q", "--fuse", "--nodes", "gelu*",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONDecoder().decode(PipelineReport.self, from: Data(contentsOf: out.appendingPathComponent("report.json")))
        let plugin = try #require(report.plugins.first)
        #expect(report.plugins.count == 1)
        #expect(plugin.opType == "Div+Erf+Add+Mul+Mul")
        #expect(plugin.nodes.count == 10)
        // TVM fuses the five elementwise ops into one kernel
        #expect(plugin.kernels == 1)
        #expect(plugin.kernelBuild == "built")
        #expect(plugin.referenceDataError == nil)
        let folder = URL(fileURLWithPath: plugin.directory)
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("test/reference.json"))) as? [String: Any]
        #expect((reference?["cases"] as? [Any])?.count == 2)
        let rewritten = try ONNXModel.load(contentsOf: out.appendingPathComponent("model.tpat.onnx"))
        #expect(rewritten.graph.node.map(\.opType) == [plugin.name, "Relu", plugin.name, "Relu"])
        #expect(rewritten.graph.node[2].input == ["z1"] && rewritten.graph.node[2].output == ["y2"])
    }

    @Test("--profile: launch plans for the optimum and the maximum beside the generic one, self-tests at OPT and MIN, shapes in the trtexec line")
    func profile() throws {
        let dir = try TestSupport.temporaryDirectory()
        let input = dir.appendingPathComponent("model.onnx")
        var b = ModelBuilder()
        b.input("scores", .float32, [.symbolic("batch"), .fixed(4), .symbolic("seq"), .symbolic("seq")])
        b.output("probs", .float32, [.symbolic("batch"), .fixed(4), .symbolic("seq"), .symbolic("seq")])
        b.node("Softmax", ["scores"], ["probs"], name: "softmax", ints: ["axis": -1])
        try b.write(to: input)
        let out = dir.appendingPathComponent("out")
        let result = try TestSupport.runTPAT([
            "generate", input.path, "-o", out.path, "--arch", "sm_90", "-q", "--nodes", "softmax",
            "--profile", "batch=1:2:8", "--profile", "seq=16:64:128",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONDecoder().decode(PipelineReport.self, from: Data(contentsOf: out.appendingPathComponent("report.json")))
        let plugin = try #require(report.plugins.first)
        #expect(plugin.kernelBuild == "built")
        // the generic plan's three (rows of a run-time length up to 128, up to 512, longer) and one per specialization
        #expect(plugin.kernels == 5)
        let trtexec = try #require(report.trtexecCommand)
        #expect(trtexec.hasSuffix(" --minShapes=scores:1x4x16x16 --optShapes=scores:2x4x64x64 --maxShapes=scores:8x4x128x128"), "\(trtexec)")
        let folder = URL(fileURLWithPath: plugin.directory)
        let manifest = try KernelManifest.load(contentsOf: folder.appendingPathComponent("manifest.json"))
        #expect(manifest.specializations?.map(\.sizes) == ["batch=2, seq=64", "batch=8, seq=128"])
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("test/reference.json"))) as? [String: Any]
        let cases = (reference?["cases"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(cases == ["case0 (batch=2,seq=64)", "case1 (batch=1,seq=16)"])

        // A range for a dim the model does not have, and a malformed one: refused, nothing written.
        let unknown = try TestSupport.runTPAT(["generate", input.path, "-o", out.path + "2", "--arch", "sm_90", "--nodes", "softmax", "--profile", "batchsize=1:2:8"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("--profile names 'batchsize', which no input of the model has as a dim; its inputs' symbolic dims are batch, seq"), "\(unknown.stderr)")
        let malformed = try TestSupport.runTPAT(["generate", input.path, "-o", out.path + "2", "--arch", "sm_90", "--nodes", "softmax", "--profile", "batch=8:1:2"])
        #expect(malformed.status == 64)
        #expect(malformed.stderr.contains("--profile batch=8:1:2: MIN <= OPT <= MAX must hold"), "\(malformed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path + "2"))
    }

    @Test("a second run takes untuned kernels from the kernel cache, the same sources; failures are not cached")
    func kernelCache() throws {
        let dir = try TestSupport.temporaryDirectory()
        let input = dir.appendingPathComponent("model.onnx")
        try Self.absCumSumModel().write(to: input)
        let cache = dir.appendingPathComponent("cache")
        func generate(_ name: String) throws -> (PipelineReport, URL) {
            let out = dir.appendingPathComponent(name)
            let result = try TestSupport.runTPAT(
                ["generate", input.path, "-o", out.path, "--arch", "sm_90", "-q", "--no-build", "--no-reference", "--op-types", "Abs,CumSum"],
                environment: ["TPAT_KERNEL_CACHE": cache.path])
            #expect(result.status == 3, "\(result.stderr)")
            return (try JSONDecoder().decode(PipelineReport.self, from: Data(contentsOf: out.appendingPathComponent("report.json"))), out)
        }
        let (first, firstOut) = try generate("first")
        let (second, secondOut) = try generate("second")
        #expect(first.plugins.map(\.cached) == [nil])
        #expect(second.plugins.map(\.cached) == [true])
        #expect(second.failures.map(\.node) == ["cumsum"])
        let name = try #require(second.plugins.first?.name)
        let kernels = "plugins/\(name)/\(name)_kernels.cu"
        #expect(try Data(contentsOf: firstOut.appendingPathComponent(kernels)) == Data(contentsOf: secondOut.appendingPathComponent(kernels)))
    }

    @Test("bad requests give one clear message, a non-zero exit and no output")
    func badRequests() throws {
        let dir = try TestSupport.temporaryDirectory()
        let input = dir.appendingPathComponent("model.onnx")
        var b = Self.hostileModel()
        b.node("Relu", ["z"], ["r"], name: "custom", domain: "com.example")
        try b.write(to: input)
        let out = dir.appendingPathComponent("out")
        let cases: [([String], String)] = [
            (["--nodes", "nope"], "no node named 'nope'"),
            (["--op-types", "Conv"], "the model has no node of op type 'Conv'"),
            (["--nodes", "custom"], "not supported by TVM's ONNX frontend"),
            (["--nodes", "add", "--op-types", "Abs"], "exactly one of --nodes, --op-types or --auto"),
            (["--nodes", "add", "--arch", "gpu9000"], "is not a CUDA arch"),
            (["--nodes", "add", "--tensorrt-api", "v9"], "The value 'v9' is invalid for '--tensorrt-api"),
            (["--nodes", "add", "--vendor", "qnn"], "The value 'qnn' is invalid for '--vendor"),
        ]
        for (arguments, message) in cases {
            var args = ["generate", input.path, "-o", out.path] + arguments
            if !arguments.contains("--arch") { args += ["--arch", "sm_90"] }
            let result = try TestSupport.runTPAT(args)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            // a value outside an option's choices is the argument parser's usage error (exit 64)
            let parserError = message.hasPrefix("The value")
            #expect(result.stderr.hasPrefix(parserError ? "Error: " : "tpat: error: "), "\(arguments)")
            #expect(!parserError || result.status == 64, "\(arguments)")
            #expect(!FileManager.default.fileExists(atPath: out.path), "\(arguments) left output behind")
        }
        #expect(TestSupport.listing(dir) == ["model.onnx"])

        // An existing, non-empty output folder is kept unless --force.
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: out.appendingPathComponent("mine.txt"))
        let refused = try TestSupport.runTPAT(["generate", input.path, "-o", out.path, "--nodes", "add", "--arch", "sm_90"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("--force"))
        #expect(TestSupport.listing(out) == ["mine.txt"])
        // The output folder may not be the input's folder.
        let inPlace = try TestSupport.runTPAT(["generate", input.path, "-o", dir.path, "--nodes", "add", "--arch", "sm_90", "--force"])
        #expect(inPlace.status != 0)
        #expect(inPlace.stderr.contains("holds the input model"))
        #expect(FileManager.default.fileExists(atPath: input.path))
    }

    @Test("plugin names are C++ identifiers, unique, and never an op name")
    func naming() {
        var naming = PluginNaming()
        #expect(naming.name(for: "Conv") == "tpat_Conv")
        #expect(naming.name(for: "conv") == "tpat_conv_2")
        #expect(naming.name(for: "../../etc/passwd") == "tpat_etc_passwd")
        #expect(naming.name(for: "🙂") == "tpat_node")
        #expect(naming.name(for: "") == "tpat_node_2")
        #expect(naming.name(for: "a__b--c") == "tpat_a_b_c")
        #expect(naming.name(for: String(repeating: "x", count: 300)).count <= PluginNaming.maximumLength)
    }

    @Test("the plugin namespace follows the plugins' names and kernels, not their order")
    func namespaceIdentity() {
        let a = PluginNaming.namespace(plugins: [("tpat_Conv", "0123456789abcdef"), ("tpat_Abs", "fedcba9876543210")])
        let reordered = PluginNaming.namespace(plugins: [("tpat_Abs", "fedcba9876543210"), ("tpat_Conv", "0123456789abcdef")])
        let otherKernels = PluginNaming.namespace(plugins: [("tpat_Conv", "0123456789abcdee"), ("tpat_Abs", "fedcba9876543210")])
        let otherName = PluginNaming.namespace(plugins: [("tpat_Conv2", "0123456789abcdef"), ("tpat_Abs", "fedcba9876543210")])
        #expect(a == reordered)
        #expect(a != otherKernels && a != otherName)
        #expect(a.hasPrefix("tpat_") && a.count == 21)
        // Name/id boundaries are kept: moving a character from one to the other changes it.
        #expect(PluginNaming.namespace(plugins: [("ab", "c")]) != PluginNaming.namespace(plugins: [("a", "bc")]))
    }
}

@Suite("Library API")
struct LibraryAPITests {
    @Test("TPAT.pipeline returns the rewritten model and the plugin folders")
    func pipelineFunction() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let input = dir.appendingPathComponent("model.onnx")
        try PipelineTests.hostileModel().write(to: input)
        setenv("TPAT_HOME", TestSupport.root.path, 1)
        let out = dir.appendingPathComponent("out/model.plugins.onnx")
        let (model, plugins) = try await TPAT.pipeline(onnxFile: input.path, nodeNames: ["add"], outputONNX: out.path, arch: "sm_90")
        #expect(model == out.path)
        #expect(plugins == [dir.appendingPathComponent("out/plugins/tpat_add").path])
        let rewritten = try ONNXModel.load(contentsOf: out)
        #expect(rewritten.graph.node.contains { $0.opType == "tpat_add" })
        // The folder is not empty any more: a second run refuses instead of replacing it.
        await #expect(throws: TPATError.self) {
            _ = try await TPAT.pipeline(onnxFile: input.path, nodeNames: ["add"], outputONNX: out.path, arch: "sm_90")
        }
    }
}
