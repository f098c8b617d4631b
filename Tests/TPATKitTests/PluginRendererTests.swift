import Foundation
import Testing

@testable import TPATKit

/// Fixtures and golden files live next to this file (not in the bundle) so that
/// `TPAT_RECORD_GOLDEN=1 swift test --filter Plugin` can re-record them.
enum PluginFixtures {
    /// Whether an opt-in environment variable is set (and not empty).
    static func isSet(_ variable: String) -> Bool {
        !(ProcessInfo.processInfo.environment[variable] ?? "").isEmpty
    }

    static let goldenDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func manifestDir(_ name: String) -> URL { goldenDir.appendingPathComponent("manifests/\(name)") }

    static func manifest(_ name: String) throws -> KernelManifest {
        try KernelManifest.load(contentsOf: manifestDir(name).appendingPathComponent("manifest.json"))
    }

    static var recording: Bool { ProcessInfo.processInfo.environment["TPAT_RECORD_GOLDEN"] == "1" }

    /// Compares `text` with the golden file `relativePath`, or records it.
    static func checkGolden(_ text: String, _ relativePath: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let url = goldenDir.appendingPathComponent(relativePath)
        if recording {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
            return
        }
        guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
            Issue.record("golden file \(relativePath) is missing; run with TPAT_RECORD_GOLDEN=1 to record it", sourceLocation: sourceLocation)
            return
        }
        if expected != text {
            let a = expected.split(separator: "\n", omittingEmptySubsequences: false)
            let b = text.split(separator: "\n", omittingEmptySubsequences: false)
            let line = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset ?? min(a.count, b.count)
            let want = line < a.count ? String(a[line]) : "<end>"
            let got = line < b.count ? String(b[line]) : "<end>"
            Issue.record(
                "\(relativePath) differs from its golden file at line \(line + 1):\n  golden:   \(want)\n  rendered: \(got)\n(re-record with TPAT_RECORD_GOLDEN=1 if the change is intended)",
                sourceLocation: sourceLocation)
        }
    }

    /// nvcc: $TPAT_NVCC, else the pip wheel's in the package's .venv.
    static func nvcc() -> URL? {
        if let path = ProcessInfo.processInfo.environment["TPAT_NVCC"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let venv = packageRoot.appendingPathComponent(".venv/lib/python3.11/site-packages/nvidia/cu13/bin/nvcc")
        if FileManager.default.isExecutableFile(atPath: venv.path) { return venv }
        // Any python version in the venv.
        let lib = packageRoot.appendingPathComponent(".venv/lib")
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: lib.path)) ?? [] where entry.hasPrefix("python") {
            for cu in ["cu13", "cu12"] {
                let candidate = lib.appendingPathComponent("\(entry)/site-packages/nvidia/\(cu)/bin/nvcc")
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            }
        }
        return nil
    }

    /// Runs a command; returns (status, combined output).
    static func run(_ executable: URL, _ arguments: [String], in directory: URL) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A fresh temporary directory.
    static func temporaryDirectory(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tpat-plugin-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Renders a fixture into `dir/<plugin>/` with its constants, as the pipeline lays a plugin out.
    static func renderInto(_ dir: URL, fixture: String, plugin: String, api: TensorRTAPI) throws -> URL {
        let pluginDir = dir.appendingPathComponent(plugin)
        let sources = try PluginRenderer().render(manifest: try manifest(fixture), pluginName: plugin, options: PluginOptions(tensorrtAPI: api))
        try sources.write(to: pluginDir)
        let constants = manifestDir(fixture).appendingPathComponent("constants")
        if FileManager.default.fileExists(atPath: constants.path) {
            try FileManager.default.copyItem(at: constants, to: pluginDir.appendingPathComponent("constants"))
        }
        return pluginDir
    }
}

/// The golden cases: fixture, plugin name, API.
let pluginGoldenCases: [(fixture: String, plugin: String, api: TensorRTAPI)] = [
    ("abs", "tpat_Abs_0", .v3),
    ("abs", "tpat_Abs_0", .v2),
    ("scatter_nd", "tpat_ScatterND_7", .v3),
    ("nonzero", "tpat_NonZero_3", .v3),
    ("softmax_specialized", "tpat_softmax", .v3),
]

@Suite("Plugin renderer")
struct PluginRendererTests {
    @Test("rendered sources match the golden files", arguments: pluginGoldenCases.indices)
    func golden(_ index: Int) throws {
        let c = pluginGoldenCases[index]
        let sources = try PluginRenderer().render(manifest: try PluginFixtures.manifest(c.fixture), pluginName: c.plugin, options: PluginOptions(tensorrtAPI: c.api))
        #expect(sources.fileNames == PluginRenderer.fileNames(pluginName: c.plugin))
        for name in sources.fileNames {
            try PluginFixtures.checkGolden(sources.files[name]!, "plugins/\(c.fixture)-\(c.api.rawValue)/\(name)")
        }
    }

    @Test("a specialization is a launch plan guarded by its sizes, before the generic one, and compiles")
    func specialization() throws {
        let manifest = try PluginFixtures.manifest("softmax_specialized")
        let special = try #require(manifest.specializations?.first)
        #expect(special.sizes == "N=64")
        #expect(special.when.evaluate(["N": 64]) == 1 && special.when.evaluate(["N": 65]) == 0)
        let sources = try PluginRenderer().render(manifest: manifest, pluginName: "tpat_softmax", options: PluginOptions())
        let cu = try #require(sources.files["tpat_softmax_kernels.cu"])
        let guardLine = try #require(cu.range(of: "if ((int64_t)((N == 64)) != 0) { // the launch plan for N=64"))
        let specialLaunch = try #require(cu.range(of: "tpat_softmax_at_softmax_tpat_kernel<<<"))
        let genericLaunch = try #require(cu.range(of: "tpat_softmax_softmax_tpat_kernel<<<"))
        #expect(guardLine.lowerBound < specialLaunch.lowerBound && specialLaunch.lowerBound < genericLaunch.lowerBound)
        // A manifest whose specialization uses a symbol it does not define is refused.
        var broken = manifest
        broken.specializations![0].when = SizeExpr(cxx: "(M == 3)", tree: .op("eq", [.symbol("M"), .int(3)]))
        #expect(throws: TPATError.self) { try PluginRenderer().render(manifest: broken, pluginName: "tpat_softmax", options: PluginOptions()) }
        guard let nvcc = PluginFixtures.nvcc() else { return }
        let dir = try PluginFixtures.temporaryDirectory("specialization")
        defer { try? FileManager.default.removeItem(at: dir) }
        try sources.write(to: dir)
        let (status, log) = try PluginFixtures.run(nvcc, ["-arch=sm_90", "-std=c++17", "-c", "tpat_softmax_kernels.cu", "-o", "k.o", "-w"], in: dir)
        #expect(status == 0, "nvcc failed:\n\(log)")
    }

    @Test("the top-level Makefile matches its golden file")
    func makefileGolden() throws {
        let text = try PluginRenderer().renderMakefile(plugins: [
            MakefilePlugin(name: "tpat_Abs_0", manifest: try PluginFixtures.manifest("abs")),
            MakefilePlugin(name: "tpat_ScatterND_7", manifest: try PluginFixtures.manifest("scatter_nd")),
        ])
        try PluginFixtures.checkGolden(text, "plugins/Makefile")
        #expect(text.contains("echo \"$$passed passed, $$failed failed\""))
        // No path of the output folder in any command: nvcc runs only in a link folder and names
        // files through it; TensorRT's folder only through the environment.
        #expect(!text.contains("$(ROOT)") && !text.contains("abspath") && !text.contains("$(CURDIR)") && !text.contains("MAKEFILE_LIST"))
        let commands = text.replacingOccurrences(of: "\\\n", with: " ").split(separator: "\n").filter { $0.hasPrefix("\t") }
        let compiles = commands.filter { $0.contains("$(COMPILE)") }
        #expect(compiles.count == 9, "kernels, constants, test, plugin, static plugin, host, custom-op library...")
        for command in compiles {
            #expect(command.contains("$(IN_LINK_FOLDER)"), "nvcc run outside the link folder: \(command)")
            #expect(!command.contains(" $< ") && !command.contains(" $^ ") && !command.contains(" $@ "), "a file named outside the link: \(command)")
        }
        #expect(!text.contains("$(TENSORRT_DIR)/"))
        #expect(text.contains("CUDA_ARCH ?= sm_90"))
        #expect(text.contains("NVCC ?= nvcc"))
    }

    @Test("templates hold no HTML escaping and every launch is rendered")
    func renderedContent() throws {
        let sources = try PluginRenderer().render(manifest: try PluginFixtures.manifest("scatter_nd"), pluginName: "sc")
        let cu = try #require(sources.files["sc_kernels.cu"])
        #expect(!cu.contains("&lt;") && !cu.contains("&amp;") && !cu.contains("&quot;"))
        #expect(cu.contains("tpat_scatter_nd_7_copy_scale_kernel<<<tpat_grid, tpat_block, (size_t)tpat_shmem, tpat_stream>>>("))
        #expect(cu.contains("tpat_scatter_nd_7_scatter_kernel<<<tpat_grid, tpat_block, (size_t)tpat_shmem, tpat_stream>>>("))
        #expect(cu.contains("cudaMemcpyAsync((char*)tpat_outputs[0], tpat_ws, (size_t)tpat_bytes, cudaMemcpyDeviceToDevice, tpat_stream)"))
        #expect(cu.contains("cudaMemsetAsync((tpat_ws + (int64_t)((tpat_ceildiv((N * 64), 256) * 256))), 0, (size_t)tpat_bytes, tpat_stream)"))
        // The constants are embedded by the file only the plugin library links; the kernels ask for them.
        let embedding = try #require(sources.files["sc_constants.cpp"])
        #expect(embedding.contains(".incbin \\\"\" TPAT_CONSTANTS_DIR \"/c0.bin\\\"\\n\""))
        #expect(!cu.contains(".incbin") && cu.contains("sc_constant_bytes(k, c.file, &tpat_data, &tpat_bytes)"))
        #expect(!cu.contains("cudaMalloc(&tpat") || cu.contains("constants_create"))
        // No allocation or synchronisation in enqueue.
        let enqueue = try #require(cu.range(of: "TPAT_EXPORT int sc_enqueue(")).lowerBound
        let body = String(cu[enqueue...])
        for forbidden in ["cudaMalloc", "cudaFree", "Synchronize", "exit(", "cudaMemcpy("] {
            #expect(!body.contains(forbidden), "enqueue must not call \(forbidden)")
        }
        let plugin = try #require(sources.files["sc_plugin.cpp"])
        #expect(plugin.contains("class Plugin : public IPluginV3, public IPluginV3OneCore, public IPluginV3OneBuild, public IPluginV3OneRuntime"))
        // Static registration names the plugin's namespace (REGISTER_TENSORRT_PLUGIN would use "").
        #expect(plugin.contains("getPluginRegistry()->registerCreator(sCreator, kDefaultNamespace)"))
        #expect(!plugin.contains("REGISTER_TENSORRT_PLUGIN(Creator);"))
        // Each fixed input dim is checked at build and run time, and constants are made ready in enqueue too.
        #expect(plugin.contains("constexpr int64_t kFixedDims[][3] = { { 0, 1, 16 }, { 1, 0, 4 }, { 1, 1, 1 }, { 2, 0, 4 }, { 2, 1, 16 }, { -1, -1, -1 } };"))
        #expect(plugin.contains("inputsMatch(\"configurePlugin\"") && plugin.contains("inputsMatch(\"onShapeChange\""))
        let pluginEnqueue = try #require(plugin.range(of: "int32_t enqueue(")).lowerBound
        #expect(String(plugin[pluginEnqueue...]).prefix(400).contains("mConstants->ensure(stream)"))
        // In an execution context the constants come from the context's allocator, uploaded on
        // the enqueue's stream; attachToContext hands the allocator over and uploads nothing.
        #expect(plugin.contains("context->getGpuAllocator()") && plugin.contains("mAllocator->allocateAsync(") && plugin.contains("mAllocator->deallocateAsync("))
        #expect(plugin.contains("sc_constants_upload(mPointers, stream)"))
        let attach = try #require(plugin.range(of: "IPluginV3* attachToContext(")).lowerBound
        #expect(!String(plugin[attach...]).prefix(300).contains("ensure("))
        #expect(plugin.contains("getCreators(int32_t& nbCreators)"))
        #expect(plugin.contains("nvinfer1::DataType::kINT64"))
    }

    @Test("output dims become IExprBuilder operations")
    func trtExpressions() throws {
        let symbols: [String: (input: Int, dim: Int)] = ["N": (0, 0), "M": (1, 2)]
        func render(_ node: SizeExpr.Node) throws -> String { try PluginModel.trtExpr(node, symbols, .v3, "n") }
        #expect(try render(.symbol("N")) == "tpat_in[0].d[0]")
        #expect(try render(.op("mul", [.int(2), .int(3)])) == "tpat_eb.constant(6)")
        #expect(try render(.op("add", [.symbol("N"), .int(1)])) == "tpat_eb.operation(nvinfer1::DimensionOperation::kSUM, *tpat_in[0].d[0], *tpat_eb.constant(1))")
        #expect(try render(.op("ceildiv", [.symbol("M"), .int(4)])) == "tpat_eb.operation(nvinfer1::DimensionOperation::kCEIL_DIV, *tpat_in[1].d[2], *tpat_eb.constant(4))")
        #expect(try render(.op("gt", [.symbol("N"), .symbol("M")])) == "tpat_eb.operation(nvinfer1::DimensionOperation::kLESS, *tpat_in[1].d[2], *tpat_in[0].d[0])")
        let floormod = try render(.op("floormod", [.symbol("N"), .int(8)]))
        #expect(floormod.hasPrefix("tpat_eb.operation(nvinfer1::DimensionOperation::kSUB, *tpat_in[0].d[0], *tpat_eb.operation(nvinfer1::DimensionOperation::kPROD, *tpat_eb.operation(nvinfer1::DimensionOperation::kFLOOR_DIV"))
        let select = try render(.op("select", [.op("lt", [.symbol("N"), .int(4)]), .symbol("N"), .int(4)]))
        #expect(select.hasPrefix("tpat_eb.operation(nvinfer1::DimensionOperation::kSUM, *tpat_eb.operation(nvinfer1::DimensionOperation::kPROD, *tpat_eb.operation(nvinfer1::DimensionOperation::kLESS"))
        #expect(throws: TPATError.self) { try render(.op("pow", [.symbol("N"), .int(2)])) }
        #expect(throws: TPATError.self) { try PluginModel.trtExpr(.op("mul", [.int(1 << 20), .int(1 << 20)]), symbols, .v2, "n") }
    }

    @Test("a data-dependent dim becomes a size tensor in v3; v2 and inconsistent size outputs are refused with the reason")
    func dataDependent() throws {
        let renderer = try PluginRenderer()
        let nonzero = try PluginFixtures.manifest("nonzero")
        #expect(nonzero.outputs.count == 2 && nonzero.outputs[0].dataDependent == [.init(dim: 1, sizeOutput: 1)])
        #expect(nonzero.sizeOutputs.map(\.output) == [0] && nonzero.sizeOutputs.map(\.dim) == [1])
        let v3 = try renderer.render(manifest: nonzero, pluginName: "tpat_nz", options: PluginOptions(tensorrtAPI: .v3))
        let plugin = try #require(v3.files["tpat_nz_plugin.cpp"])
        #expect(plugin.contains("tpat_out[0].d[1] = tpat_eb.declareSizeTensor(1, *"))
        #expect(plugin.contains("tpat_out[1].nbDims = 0;"))
        #expect(plugin.contains("kIOTypes[] = { nvinfer1::DataType::kFLOAT, nvinfer1::DataType::kINT64, nvinfer1::DataType::kINT32 }"))
        let test = try #require(v3.files["tpat_nz_test.cu"])
        #expect(test.contains("{\"y\", \"int64\", 2, 8, 2u, false}") && test.contains(", 0, 4, 0u, true}"), "\(test.prefix(3000))")

        func expectError(_ m: KernelManifest, api: TensorRTAPI = .v3, _ needle: String, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                _ = try renderer.render(manifest: m, pluginName: "tpat_nz", options: PluginOptions(tensorrtAPI: api))
                Issue.record("expected an error containing '\(needle)'", sourceLocation: sourceLocation)
            } catch {
                #expect(error.description.contains(needle), "\(error.description)", sourceLocation: sourceLocation)
            }
        }
        // (TensorRT 8 has no INT64: TPAT's v2 sub-models cast the indices to int32.)
        var m = nonzero
        m.outputs[0].dtype = .int32
        expectError(m, api: .v2, "TensorRT 8's IPluginV2 cannot declare it")
        m = nonzero
        m.outputs[1].dtype = .int64
        expectError(m, "must be a 0-D int32")
        m = nonzero
        m.outputs[0].dataDependent = [.init(dim: 1, sizeOutput: 0)]
        expectError(m, "does not exist or is taken")
        m = nonzero
        m.outputs[0].dataDependent = [.init(dim: 2, sizeOutput: 1)]
        expectError(m, "has no dim 2")
    }

    @Test("inconsistent manifests are refused with the node's name")
    func errors() throws {
        let renderer = try PluginRenderer()
        let good = try PluginFixtures.manifest("scatter_nd")
        func expectError(_ m: KernelManifest, name: String = "p", api: TensorRTAPI = .v3, _ needle: String, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                _ = try renderer.render(manifest: m, pluginName: name, options: PluginOptions(tensorrtAPI: api))
                Issue.record("expected an error containing '\(needle)'", sourceLocation: sourceLocation)
            } catch {
                #expect(error.description.contains("ScatterND_7"), sourceLocation: sourceLocation)
                #expect(error.description.contains(needle), "\(error.description)", sourceLocation: sourceLocation)
            }
        }
        expectError(good, api: .v2, "int64")
        expectError(good, name: "bad-name", "not a C identifier")
        var m = good
        m.symbols[0].name = "tpat_N"
        expectError(m, "reserved")
        m = good
        m.symbols[0].dim = 5
        expectError(m, "does not exist")
        m = good
        m.outputs[0].shape[0] = SizeExpr(cxx: "M", tree: .symbol("M"))
        expectError(m, "symbols M")
        m = good
        if case .kernel(var launch) = m.launches[1] {
            launch.args.removeLast()
            m.launches[1] = .kernel(launch)
        }
        expectError(m, "passes 3 arguments")
        m = good
        if case .kernel(var launch) = m.launches[1] {
            launch.kernel = "nope"
            m.launches[1] = .kernel(launch)
        }
        expectError(m, "'nope'")
        m = good
        m.launches[3] = .copy(src: .init(kind: .workspace, index: 7, byteOffset: nil), dst: .init(kind: .output, index: 0, byteOffset: nil), bytes: SizeExpr(4))
        expectError(m, "workspace region 7")
        m = good
        for file in ["../etc/passwd", "constants/../../x", "constants/", "constants/a\"b.bin", "constants/a\\b", "constants/a\nb", "constants/.hidden"] {
            m.constants[0].file = file
            expectError(m, "not a plain file name under constants/")
        }
        m = good
        m.outputs[0].dtype = .float64
        expectError(m, "float64")
        m = good
        m.workspace.alignment = 100
        expectError(m, "power of two")
    }

    @Test("the Makefile refuses bad and duplicate plugin names")
    func makefileErrors() throws {
        let renderer = try PluginRenderer()
        #expect(throws: TPATError.self) { try renderer.renderMakefile(plugins: [MakefilePlugin(name: "a b", arch: "sm_90")]) }
        #expect(throws: TPATError.self) { try renderer.renderMakefile(plugins: [MakefilePlugin(name: "a", arch: "sm_90"), MakefilePlugin(name: "a", arch: "sm_90")]) }
    }
}
