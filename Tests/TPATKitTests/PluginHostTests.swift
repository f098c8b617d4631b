import Foundation
import Testing

@testable import TPATKit

/// The plugin host (host/tpat_plugin_host.cpp) and its list (host/plugins.json). Without a GPU the
/// host runs with --build-only: every TensorRT call up to the runtime plugin (creation from the
/// node's fields, output types and shapes through its IExprBuilder, formats, configure, workspace,
/// clones, serialization). The GPU half (attach, shape change, enqueue against the reference) runs
/// on the device: docs/plugin-host.md.
@Suite("Plugin host", .serialized)
struct PluginHostTests {
    @Test("the host list carries the creator's key, the node's creator fields and the dims the kernels were generated for")
    func list() throws {
        let manifest = try PluginFixtures.manifest("nonzero")
        let replacement = NodeReplacement(
            nodeIndex: 0, pluginName: "tpat_nz", pluginVersion: "1", pluginNamespace: "tpat_ns", kernelsID: "0123456789abcdef", inputs: [], outputs: [])
        let list = try PluginHostList(plugins: [("tpat_nz", manifest), ("tpat_not_rewritten", manifest)], replacements: [replacement], api: .v3)
        #expect(list.schema == PluginHostList.schemaVersion)
        #expect(list.plugins.map(\.name) == ["tpat_nz"], "a plugin no node names is not checked")
        let plugin = try #require(list.plugins.first)
        #expect(plugin.namespace == "tpat_ns" && plugin.version == "1" && plugin.tensorrtAPI == .v3)
        #expect(plugin.library == "plugins/tpat_nz/build/libtpat_nz.so" && plugin.reference == "plugins/tpat_nz/test/reference.json")
        // The parser reads plugin_version/plugin_namespace itself; the rest are the creator's fields.
        #expect(plugin.fields == [PluginHostList.Field(name: "tpat_kernels_id", value: "0123456789abcdef", identifiesKernels: true)])
        #expect(plugin.inputs.map(\.dims) == [[nil, 5, 7]])
        #expect(plugin.inputs[0].trtType == TensorRTDataType.float.rawValue && plugin.inputs[0].trtTypeName == "kFLOAT")
        #expect(plugin.outputs[0].trtType == 8 && plugin.outputs[0].dataDependent == [KernelManifest.DataDependentDim(dim: 1, sizeOutput: 1)] && plugin.outputs[0].onnxType == 7 && plugin.outputs[0].sizeOutput == nil)
        #expect(plugin.outputs[1].sizeOutput == true && plugin.outputs[1].dims.isEmpty && plugin.outputs[1].trtTypeName == "kINT32")
        // The list and the node carry the same attributes: one owner, the rewriter.
        #expect(ModelRewriter.pluginAttributes(replacement).map(\.name) == ["plugin_version", "plugin_namespace", "tpat_kernels_id"])
        // TensorRT 8's plugins take no INT64.
        #expect(throws: TPATError.self) { try PluginHostList(plugins: [("tpat_nz", manifest)], replacements: [replacement], api: .v2) }
    }

    @Test("TensorRT's DataType values are TensorRT's ABI and the plugin sources name the same enumerators")
    func dataTypes() {
        #expect(TensorRTDataType.allCases.map(\.rawValue) == [0, 1, 2, 3, 4, 5, 7, 8])
        #expect(TensorRTDataType(.float16, api: .v3)?.cxx == "nvinfer1::DataType::kHALF")
        #expect(TensorRTDataType(.int64, api: .v2) == nil && TensorRTDataType(.bfloat16, api: .v2) == nil)
        #expect(PluginModel.trtType(.uint8, .v3) == "nvinfer1::DataType::kUINT8")
    }

    /// The fixtures each API's libraries are built from, with the reference shapes of one case.
    static func referenceTensors(_ fixture: String, n: Int) -> (inputs: [(String, String, [Int], Int)], outputs: [(String, String, [Int], Int)]) {
        switch fixture {
        case "nonzero":
            // K = N*35 - 1 non-zeros: within the declared upper bound N*5*7.
            return ([("x", "float32", [n, 5, 7], 4)], [("y", "int64", [3, n * 35 - 1], 8), ("y__tpat_size1", "int32", [], 4)])
        default:
            return ([("x", "float32", [n, 64], 4)], [("y", "float32", [n, 64], 4)])
        }
    }

    /// Writes reference data of zeros (shapes only matter without a GPU) for cases N = 2 and 5.
    static func writeReference(_ fixture: String, into pluginDir: URL) throws {
        let test = pluginDir.appendingPathComponent("test")
        var cases: [[String: Any]] = []
        for n in [2, 5] {
            let tensors = referenceTensors(fixture, n: n)
            let caseDir = test.appendingPathComponent("n\(n)")
            try FileManager.default.createDirectory(at: caseDir, withIntermediateDirectories: true)
            func entries(_ list: [(String, String, [Int], Int)]) throws -> [[String: Any]] {
                try list.map { name, dtype, shape, width in
                    try Data(count: shape.reduce(width, *)).write(to: caseDir.appendingPathComponent("\(name).bin"))
                    return ["name": name, "dtype": dtype, "shape": shape, "file": "n\(n)/\(name).bin"]
                }
            }
            cases.append(["name": "n\(n)", "inputs": try entries(tensors.inputs), "outputs": try entries(tensors.outputs)])
        }
        try JSONSerialization.data(withJSONObject: ["cases": cases]).write(to: test.appendingPathComponent("reference.json"))
    }

    @Test("the host drives the libraries through TensorRT's build phase and serialization, and fails a node made for other kernels",
          .enabled(if: PluginFixtures.isSet("TPAT_TENSORRT_INCLUDE") && PluginFixtures.isSet("TPAT_TENSORRT8_INCLUDE"),
                   "set TPAT_TENSORRT_INCLUDE and TPAT_TENSORRT8_INCLUDE to TensorRT's include/ folders"),
          arguments: [TensorRTAPI.v3, .v2])
    func buildOnly(_ api: TensorRTAPI) throws {
        let variable = api == .v3 ? "TPAT_TENSORRT_INCLUDE" : "TPAT_TENSORRT8_INCLUDE"
        let include = URL(fileURLWithPath: try #require(ProcessInfo.processInfo.environment[variable]))
        let compile = PluginCompileTests()
        let nvcc = try compile.requireNvcc()
        let dir = try PluginFixtures.temporaryDirectory("host-\(api.rawValue)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let tensorRT = dir.appendingPathComponent("tensorrt")
        try FileManager.default.createDirectory(at: tensorRT, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: tensorRT.appendingPathComponent("include"), withDestinationURL: include)
        let out = dir.appendingPathComponent("out")
        let fixtures = api == .v3 ? ["abs", "nonzero"] : ["abs"]
        var plugins: [(name: String, manifest: KernelManifest)] = []
        var replacements: [NodeReplacement] = []
        for fixture in fixtures {
            let name = "tpat_\(fixture)"
            let manifest = try PluginFixtures.manifest(fixture)
            let pluginDir = try PluginFixtures.renderInto(out.appendingPathComponent("plugins"), fixture: fixture, plugin: name, api: api)
            try Self.writeReference(fixture, into: pluginDir)
            plugins.append((name, manifest))
            replacements.append(NodeReplacement(nodeIndex: replacements.count, pluginName: name, kernelsID: PluginModel.fingerprint(manifest), inputs: [], outputs: []))
        }
        var list = try PluginHostList(plugins: plugins, replacements: replacements, api: api)
        let renderer = try PluginRenderer()
        try list.write(into: out, renderer: renderer, modelName: "model.tpat.onnx")
        let makefile = try PluginRenderer().renderMakefile(plugins: plugins.map { MakefilePlugin(name: $0.name, manifest: $0.manifest) }, tensorRTAPI: api)
        try Data(makefile.utf8).write(to: out.appendingPathComponent("Makefile"))
        let (status, log) = try PluginFixtures.run(URL(fileURLWithPath: "/usr/bin/env"), [
            "make", "NVCC=\(nvcc.path)", "CUDA_ARCH=\(PluginCompileTests.arch)", "TENSORRT_DIR=\(tensorRT.path)",
            "CUDART_LIBS=\(compile.cudartArguments(nvcc).joined(separator: " "))", "HOST_FLAGS=--build-only", "check-plugins",
        ], in: out)
        #expect(status == 0, "make check-plugins failed:\n\(log)")
        #expect(log.contains("\(fixtures.count) passed, 0 failed"), "\(log)")
        for fixture in fixtures { #expect(log.contains("PASS tpat_\(fixture) \(api.rawValue) 2 cases"), "\(log)") }

        // A stale pair of model and library: the node names other kernels, the creator refuses it.
        list.plugins[0].fields[0].value = String(repeating: "0", count: 16)
        try list.write(into: out, renderer: renderer, modelName: "model.tpat.onnx")
        let host = out.appendingPathComponent("host/build/tpat_plugin_host")
        let (staleStatus, staleLog) = try PluginFixtures.run(host, ["--build-only", "host/plugins.json"], in: out)
        #expect(staleStatus == 1 && staleLog.contains("FAIL tpat_abs \(api.rawValue) createPlugin"), "\(staleLog)")
        #expect(staleLog.contains("the model was made for kernels 0000000000000000"), "the plugin says why: \(staleLog)")

        // A namespace the library's creator does not register under: TensorRT's registry lookup fails.
        list.plugins[0].fields[0].value = PluginModel.fingerprint(plugins[0].manifest)
        list.plugins[0].namespace = "tpat_other"
        try list.write(into: out, renderer: renderer, modelName: "model.tpat.onnx")
        let (lookupStatus, lookupLog) = try PluginFixtures.run(host, ["--build-only", "host/plugins.json"], in: out)
        #expect(lookupStatus == 1 && lookupLog.contains("the library has no creator tpat_abs/1/tpat_other"), "\(lookupLog)")
    }

    /// ONNX Runtime's headers: $TPAT_ONNXRUNTIME_DIR, else what `make test`'s set-up fetched.
    static var onnxRuntimeDir: URL? {
        if let path = ProcessInfo.processInfo.environment["TPAT_ONNXRUNTIME_DIR"], !path.isEmpty { return URL(fileURLWithPath: path) }
        let fetched = PluginFixtures.packageRoot.appendingPathComponent(".venv/onnxruntime")
        return FileManager.default.fileExists(atPath: fetched.appendingPathComponent("include/onnxruntime_c_api.h").path) ? fetched : nil
    }

    @Test("the whole-model check's custom-op library loads into ONNX Runtime, refuses a stale model, and a failing kernel is the run's error",
          .enabled(if: onnxRuntimeDir != nil, "needs ONNX Runtime's headers: make test's set-up fetches them, or set TPAT_ONNXRUNTIME_DIR"))
    func ortOps() throws {
        let ortDir = try #require(Self.onnxRuntimeDir)
        let compile = PluginCompileTests()
        let nvcc = try compile.requireNvcc()
        let dir = try PluginFixtures.temporaryDirectory("ortops")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out")
        let manifest = try PluginFixtures.manifest("abs")
        _ = try PluginFixtures.renderInto(out.appendingPathComponent("plugins"), fixture: "abs", plugin: "tpat_abs", api: .v3)
        let kernelsID = PluginModel.fingerprint(manifest)
        let replacement = NodeReplacement(nodeIndex: 0, pluginName: "tpat_abs", kernelsID: kernelsID, inputs: [], outputs: [])
        let list = try PluginHostList(plugins: [("tpat_abs", manifest)], replacements: [replacement], api: .v3)
        try list.write(into: out, renderer: try PluginRenderer(), modelName: "model.tpat.onnx")
        let makefile = try PluginRenderer().renderMakefile(plugins: [MakefilePlugin(name: "tpat_abs", manifest: manifest)], tensorRTAPI: .v3)
        try Data(makefile.utf8).write(to: out.appendingPathComponent("Makefile"))
        let (status, log) = try PluginFixtures.run(URL(fileURLWithPath: "/usr/bin/env"), [
            "make", "NVCC=\(nvcc.path)", "CUDA_ARCH=\(PluginCompileTests.arch)", "ONNXRUNTIME_DIR=\(ortDir.path)",
            "CUDART_LIBS=\(compile.cudartArguments(nvcc).joined(separator: " "))", "ortops",
        ], in: out)
        #expect(status == 0, "make ortops failed:\n\(log)")

        // A model of one TPAT node as the rewriter writes it; ONNX Runtime creates the kernel when
        // the session is made, so the stale id is refused there. Without a GPU the run itself fails
        // in the kernel, and that failure must reach the caller as the run's error.
        let script = """
            import os, sys, numpy as np, onnx, onnxruntime as ort
            from onnx import helper, TensorProto
            os.environ["TPAT_PLUGIN_LIST"] = "host/plugins.json"
            def model(kernels_id):
                node = helper.make_node("tpat_abs", ["x"], ["y"], domain="\(ModelRewriter.pluginDomain)", plugin_version="1", plugin_namespace="", tpat_kernels_id=kernels_id)
                graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
                                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 64])])
                m = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("\(ModelRewriter.pluginDomain)", 1)])
                return m.SerializeToString()
            def session(kernels_id):
                options = ort.SessionOptions()
                options.register_custom_ops_library("host/build/libtpat_ort_ops.so")
                return ort.InferenceSession(model(kernels_id), options, providers=["CPUExecutionProvider"])
            try:
                session("0" * 16)
                print("STALE-ACCEPTED")
            except Exception as e:
                print("STALE-REFUSED", e)
            s = session("\(kernelsID)")
            x = np.random.default_rng(0).standard_normal((3, 64)).astype(np.float32)
            try:
                y = s.run(None, {"x": x})[0]
                print("RUN-MATCHES" if np.array_equal(y, np.abs(x)) else "RUN-WRONG")
            except Exception as e:
                print("RUN-ERROR", e)
            """
        let python = PluginFixtures.packageRoot.appendingPathComponent(".venv/bin/python")
        let (pyStatus, pyLog) = try PluginFixtures.run(python, ["-c", script], in: out)
        #expect(pyStatus == 0, "\(pyLog)")
        #expect(pyLog.contains("STALE-REFUSED") && pyLog.contains("the node was rewritten for kernels 0000000000000000"), "\(pyLog)")
        // With a GPU the node computes |x|; without one the kernel's CUDA failure is the run's error.
        #expect(pyLog.contains("RUN-MATCHES") || (pyLog.contains("RUN-ERROR") && pyLog.contains("TPAT op tpat_abs")), "\(pyLog)")
    }
}
