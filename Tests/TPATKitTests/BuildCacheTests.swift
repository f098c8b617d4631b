import Foundation
import Testing

@testable import TPATKit

@Suite("Output cost: weights once, built objects cached, the Makefile's nvcc")
struct OutputCostTests {
    /// x @ W (a 64x64 weight, 16 KiB) then Abs: a weight TVM embeds unchanged, and a second plugin.
    static func weightModel() -> ModelBuilder {
        var b = ModelBuilder()
        b.input("x", .float32, [.symbolic("batch"), .fixed(64)])
        var weights = Data()
        for k in 0..<(64 * 64) { withUnsafeBytes(of: Float(k % 97) / 97) { weights.append(contentsOf: $0) } }
        b.graph.initializer.append(TensorValue(elementType: .float32, shape: [64, 64], bytes: weights).proto(name: "W"))
        b.value("h", .float32, [.symbolic("batch"), .fixed(64)])
        b.output("y", .float32, [.symbolic("batch"), .fixed(64)])
        b.node("MatMul", ["x", "W"], ["h"], name: "matmul")
        b.node("Abs", ["h"], ["y"], name: "abs")
        return b
    }

    @Test("a second run restores every kernel object and self-test from the build cache; a damaged entry is rebuilt, never used")
    func buildCache() throws {
        let dir = try TestSupport.temporaryDirectory()
        let input = dir.appendingPathComponent("model.onnx")
        try Self.weightModel().write(to: input)
        let cache = dir.appendingPathComponent("cache")
        func generate(_ name: String) throws -> (PipelineReport, URL) {
            let out = dir.appendingPathComponent(name)
            let result = try TestSupport.runTPAT(
                ["generate", input.path, "-o", out.path, "--arch", "sm_90", "-q", "--op-types", "MatMul,Abs"],
                environment: ["TPAT_KERNEL_CACHE": cache.path])
            #expect(result.status == 0, "\(result.stderr)")
            return (try JSONDecoder().decode(PipelineReport.self, from: Data(contentsOf: out.appendingPathComponent("report.json"))), out)
        }
        let (first, firstOut) = try generate("first")
        #expect(first.plugins.count == 2)
        #expect(first.plugins.allSatisfy { $0.kernelBuild == "built" && $0.buildCached == nil })

        let (second, secondOut) = try generate("second")
        #expect(second.plugins.allSatisfy { $0.kernelBuild == "built" && $0.buildCached == true }, "\(second.plugins)")
        for plugin in second.plugins {
            let test = "plugins/\(plugin.name)/build/\(plugin.name)_test"
            #expect(FileManager.default.isExecutableFile(atPath: secondOut.appendingPathComponent(test).path))
            #expect(try Data(contentsOf: secondOut.appendingPathComponent(test)) == Data(contentsOf: firstOut.appendingPathComponent(test)))
            let log = try String(contentsOf: secondOut.appendingPathComponent("plugins/\(plugin.name)/build.log"), encoding: .utf8)
            #expect(log.contains("restored from the build cache"))
        }

        // Damage one entry's self-test: the third run rebuilds that plugin and replaces the entry.
        let builds = cache.appendingPathComponent(BuildCache.folderName)
        let entries = try FileManager.default.subpathsOfDirectory(atPath: builds.path).filter { $0.hasSuffix("/test") }
        #expect(entries.count == 2)
        let damaged = builds.appendingPathComponent(try #require(entries.first))
        var bytes = try Data(contentsOf: damaged)
        bytes[bytes.count / 2] ^= 0xff
        try bytes.write(to: damaged)
        let (third, _) = try generate("third")
        #expect(third.plugins.filter { $0.buildCached == true }.count == 1, "\(third.plugins)")
        #expect(third.plugins.allSatisfy { $0.kernelBuild == "built" })
        let repaired = try Data(contentsOf: damaged)
        let digest = try #require(BuildCache.readDigest(damaged.deletingLastPathComponent()))
        #expect(BuildCache.sha256(repaired) == digest["test"])
    }

    @Test("node.onnx keeps no second copy of a weight its kernels embed: it points at the constant file")
    func weightsOnce() throws {
        let dir = try TestSupport.temporaryDirectory()
        let input = dir.appendingPathComponent("model.onnx")
        try Self.weightModel().write(to: input)
        let out = dir.appendingPathComponent("out")
        let result = try TestSupport.runTPAT(["generate", input.path, "-o", out.path, "--arch", "sm_90", "-q", "--no-build", "--nodes", "matmul"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONDecoder().decode(PipelineReport.self, from: Data(contentsOf: out.appendingPathComponent("report.json")))
        let plugin = try #require(report.plugins.first)
        #expect(plugin.referenceDataError == nil)
        let folder = URL(fileURLWithPath: plugin.directory)
        let node = try ONNXModel.load(contentsOf: folder.appendingPathComponent("node.onnx"))
        let weight = try #require(node.graph.initializer.first { $0.dims == [64, 64] })
        #expect(weight.dataLocation == .external)
        let location = try #require(weight.externalData.first { $0.key == "location" }?.value)
        #expect(location.hasPrefix("constants/"))
        // The file it names holds exactly the weight, and node.onnx is small.
        let original = try ONNXModel.load(contentsOf: input)
        #expect(try Data(contentsOf: folder.appendingPathComponent(location)) == original.graph.initializer[0].rawData)
        let size = try FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent("node.onnx").path)[.size] as? Int
        #expect((size ?? .max) < 4096)
    }

    @Test("a Gemm weight TVM transposes is kept once: node.onnx reads the transposed constant through a Transpose node, and its reference data still comes")
    func transposedWeightOnce() throws {
        let dir = try TestSupport.temporaryDirectory()
        let input = dir.appendingPathComponent("model.onnx")
        var b = ModelBuilder()
        b.input("x", .float32, [.symbolic("batch"), .fixed(48)])
        var weights = Data()
        // [40, 48], not symmetric, so a transposed copy differs from the original.
        for k in 0..<(40 * 48) { withUnsafeBytes(of: Float(k % 89) / 89 - 0.5) { weights.append(contentsOf: $0) } }
        b.graph.initializer.append(TensorValue(elementType: .float32, shape: [40, 48], bytes: weights).proto(name: "W"))
        b.output("y", .float32, [.symbolic("batch"), .fixed(40)])
        b.node("Gemm", ["x", "W"], ["y"], name: "fc", ints: ["transB": 1])
        try b.write(to: input)
        let out = dir.appendingPathComponent("out")
        let result = try TestSupport.runTPAT(["generate", input.path, "-o", out.path, "--arch", "sm_90", "-q", "--no-build", "--nodes", "fc"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONDecoder().decode(PipelineReport.self, from: Data(contentsOf: out.appendingPathComponent("report.json")))
        let plugin = try #require(report.plugins.first)
        #expect(plugin.referenceDataError == nil)
        let folder = URL(fileURLWithPath: plugin.directory)
        let node = try ONNXModel.load(contentsOf: folder.appendingPathComponent("node.onnx"))
        let stored = try #require(node.graph.initializer.first { $0.dims == [48, 40] }, "\(node.graph.initializer.map(\.dims))")
        #expect(stored.dataLocation == .external && stored.rawData.isEmpty)
        let location = try #require(stored.externalData.first { $0.key == "location" }?.value)
        let file = try Data(contentsOf: folder.appendingPathComponent(location))
        #expect(SharedWeights.isTranspose(file, of: weights, rows: 40, columns: 48, element: 4))
        #expect(file != weights)
        let transpose = try #require(node.graph.node.first)
        #expect(transpose.opType == "Transpose" && transpose.input == [stored.name] && transpose.output.count == 1)
        let gemm = try #require(node.graph.node.first { $0.opType == "Gemm" })
        #expect(gemm.input.count == 2 && gemm.input[1] == transpose.output[0])
        let size = try FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent("node.onnx").path)[.size] as? Int
        #expect((size ?? .max) < 4096)
    }

    @Test("isTranspose compares element-wise, multi-byte elements whole")
    func transposeCheck() {
        // 2 x 3 int16 matrix [[1,2,3],[4,5,6]] and its transpose [[1,4],[2,5],[3,6]].
        func data(_ values: [Int16]) -> Data { values.withUnsafeBytes { Data($0) } }
        #expect(SharedWeights.isTranspose(data([1, 4, 2, 5, 3, 6]), of: data([1, 2, 3, 4, 5, 6]), rows: 2, columns: 3, element: 2))
        #expect(!SharedWeights.isTranspose(data([1, 2, 3, 4, 5, 6]), of: data([1, 2, 3, 4, 5, 6]), rows: 2, columns: 3, element: 2))
        #expect(!SharedWeights.isTranspose(data([1, 4, 2, 5, 3, 7]), of: data([1, 2, 3, 4, 5, 6]), rows: 2, columns: 3, element: 2))
        #expect(!SharedWeights.isTranspose(data([1, 4, 2, 5]), of: data([1, 2, 3, 4, 5, 6]), rows: 2, columns: 3, element: 2))
    }

    @Test("the Makefile defaults to tpat's nvcc where it is, nvcc on PATH elsewhere; a path it cannot write plainly is left out")
    func makefileNVCC() throws {
        let renderer = try PluginRenderer()
        let plugins = [MakefilePlugin(name: "tpat_Abs_0", manifest: try PluginFixtures.manifest("abs"))]
        let plain = try renderer.renderMakefile(
            plugins: plugins, nvcc: MakefileNVCC(path: "/opt/tpat/.venv/bin/nvcc", cudartArguments: ["-L/opt/lib", "-l:libcudart.so.13"]))
        #expect(plain.contains("ifneq ($(wildcard /opt/tpat/.venv/bin/nvcc),)\nNVCC ?= /opt/tpat/.venv/bin/nvcc\nCUDART_LIBS ?= -L/opt/lib -l:libcudart.so.13\nendif\nNVCC ?= nvcc\n"))
        let odd = try renderer.renderMakefile(plugins: plugins, nvcc: MakefileNVCC(path: "/home/a b/$(x)/nvcc", cudartArguments: []))
        #expect(!odd.contains("/home/a b") && odd.contains("\nNVCC ?= nvcc\n"))
        #expect(try renderer.renderMakefile(plugins: plugins) == odd)
    }

    @Test("a plugin's build key covers its own rules, not the plugin list or other plugins' rules")
    func rulesOfOnePlugin() throws {
        let renderer = try PluginRenderer()
        let abs = MakefilePlugin(name: "tpat_Abs_0", manifest: try PluginFixtures.manifest("abs"))
        let scatter = MakefilePlugin(name: "tpat_ScatterND_7", manifest: try PluginFixtures.manifest("scatter_nd"))
        let alone = try renderer.renderMakefile(plugins: [abs])
        let together = try renderer.renderMakefile(plugins: [abs, scatter])
        #expect(BuildCache.rules(of: "tpat_Abs_0", in: alone) == BuildCache.rules(of: "tpat_Abs_0", in: together))
        let rules = BuildCache.rules(of: "tpat_Abs_0", in: together)
        #expect(rules.contains("plugins/tpat_Abs_0/build/tpat_Abs_0_kernels.o:") && rules.contains("COMPILE :="))
        #expect(!rules.contains("ScatterND"))
        // The shared rules after the last plugin still count.
        #expect(rules.contains("check:"))
        // Another arch is another key.
        let sm80 = try renderer.renderMakefile(plugins: [abs], buildArch: "sm_80")
        #expect(BuildCache.rules(of: "tpat_Abs_0", in: sm80) != BuildCache.rules(of: "tpat_Abs_0", in: alone))
    }
}
