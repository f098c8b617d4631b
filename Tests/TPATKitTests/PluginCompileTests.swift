import Foundation
import Testing

@testable import TPATKit

/// Compiles rendered sources with nvcc (no GPU needed). nvcc: $TPAT_NVCC, else the pip wheel's in
/// .venv (`make test` installs it). The TensorRT checks are opt-in: $TPAT_TENSORRT_INCLUDE (a
/// TensorRT 10/11 include/ folder, for the v3 plugin) and $TPAT_TENSORRT8_INCLUDE (8.6, for v2).
@Suite("Plugin compile", .serialized)
struct PluginCompileTests {
    static let arch = "sm_90"

    func requireNvcc() throws -> URL {
        guard let nvcc = PluginFixtures.nvcc() else {
            Issue.record("nvcc not found: set TPAT_NVCC or install the nvidia-cuda-nvcc wheel into .venv (make test does)")
            throw CancellationError()
        }
        guard FileManager.default.isExecutableFile(atPath: nvcc.path) else {
            Issue.record("nvcc at \(nvcc.path) is not executable (TPAT_NVCC)")
            throw CancellationError()
        }
        return nvcc
    }

    /// cudart from the wheel (../lib next to nvcc) when there is one; else nvcc's default.
    func cudartArguments(_ nvcc: URL) -> [String] {
        let lib = nvcc.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("lib")
        if FileManager.default.fileExists(atPath: lib.appendingPathComponent("libcudart.so.13").path) {
            return ["-L\(lib.path)", "-l:libcudart.so.13", "-Xlinker", "-rpath", "-Xlinker", lib.path, "-cudart", "none"]
        }
        return []
    }

    @Test("kernels and self-test compile and link with nvcc", arguments: ["abs", "scatter_nd", "nonzero"])
    func kernelsAndTest(_ fixture: String) throws {
        let nvcc = try requireNvcc()
        let dir = try PluginFixtures.temporaryDirectory(fixture)
        defer { try? FileManager.default.removeItem(at: dir) }
        let plugin = "tpat_\(fixture)"
        let pluginDir = try PluginFixtures.renderInto(dir, fixture: fixture, plugin: plugin, api: .v3)
        let (status, log) = try PluginFixtures.run(nvcc, [
            "-std=c++17", "-O2", "-arch=\(Self.arch)", "-Xcompiler", "-Wall", "-Xcompiler", "-fvisibility=hidden",
            "\(plugin)_kernels.cu", "\(plugin)_test.cu", "-o", "\(plugin)_test",
        ] + cudartArguments(nvcc), in: pluginDir)
        #expect(status == 0, "nvcc failed for \(fixture):\n\(log)")
        #expect(FileManager.default.isExecutableFile(atPath: pluginDir.appendingPathComponent("\(plugin)_test").path))
        #expect(!log.contains("warning"), "nvcc warned:\n\(log)")
    }

    @Test("the kernel library exports only the C entry points")
    func exports() throws {
        let nvcc = try requireNvcc()
        let dir = try PluginFixtures.temporaryDirectory("exports")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pluginDir = try PluginFixtures.renderInto(dir, fixture: "scatter_nd", plugin: "sc", api: .v3)
        let (status, log) = try PluginFixtures.run(nvcc, [
            "-std=c++17", "-arch=\(Self.arch)", "-shared", "-Xcompiler", "-fPIC", "-Xcompiler", "-fvisibility=hidden",
            "-DTPAT_CONSTANTS_DIR=\"\(pluginDir.appendingPathComponent("constants").path)\"",
            "sc_kernels.cu", "sc_constants.cpp", "-o", "libsc_kernels.so",
        ] + cudartArguments(nvcc), in: pluginDir)
        #expect(status == 0, "nvcc failed:\n\(log)")
        let (nmStatus, symbols) = try PluginFixtures.run(URL(fileURLWithPath: "/usr/bin/env"), ["nm", "-D", "--defined-only", "libsc_kernels.so"], in: pluginDir)
        guard nmStatus == 0 else { return }  // no binutils: nothing more to check
        for entry in ["sc_output_dims", "sc_workspace_size", "sc_constants_create", "sc_constants_destroy", "sc_enqueue"] {
            #expect(symbols.contains(" T \(entry)\n"), "\(entry) is not exported:\n\(symbols)")
        }
        #expect(!symbols.contains("tpat_sc_constant_0"), "the embedded constants must stay local")
        #expect(!symbols.contains("sc_constant_bytes"), "the constants' provider must stay local")
    }

    @Test("v3 plugin compiles against TensorRT 10/11 headers ($TPAT_TENSORRT_INCLUDE)",
          .enabled(if: PluginFixtures.isSet("TPAT_TENSORRT_INCLUDE"), "set TPAT_TENSORRT_INCLUDE to TensorRT's include/ folder"),
          arguments: ["abs", "scatter_nd", "nonzero"])
    func pluginV3(_ fixture: String) throws {
        try compilePlugin(fixture, api: .v3, includeVariable: "TPAT_TENSORRT_INCLUDE")
    }

    @Test("v2 plugin compiles against TensorRT 8.6 headers ($TPAT_TENSORRT8_INCLUDE)",
          .enabled(if: PluginFixtures.isSet("TPAT_TENSORRT8_INCLUDE"), "set TPAT_TENSORRT8_INCLUDE to TensorRT 8.6's include/ folder"))
    func pluginV2() throws {
        try compilePlugin("abs", api: .v2, includeVariable: "TPAT_TENSORRT8_INCLUDE")
    }

    @Test("the plugin library, built by the generated Makefile, exports TensorRT's entry points alone and needs no libnvinfer",
          .enabled(if: PluginFixtures.isSet("TPAT_TENSORRT_INCLUDE") && PluginFixtures.isSet("TPAT_TENSORRT8_INCLUDE"),
                   "set TPAT_TENSORRT_INCLUDE and TPAT_TENSORRT8_INCLUDE to TensorRT's include/ folders"),
          arguments: [TensorRTAPI.v3, .v2])
    func pluginLibraryExports(_ api: TensorRTAPI) throws {
        let variable = api == .v3 ? "TPAT_TENSORRT_INCLUDE" : "TPAT_TENSORRT8_INCLUDE"
        let include = URL(fileURLWithPath: try #require(ProcessInfo.processInfo.environment[variable]))
        let nvcc = try requireNvcc()
        let dir = try PluginFixtures.temporaryDirectory("library-\(api.rawValue)")
        defer { try? FileManager.default.removeItem(at: dir) }
        // The Makefile reaches headers as $TENSORRT_DIR/include: a folder of ours with that layout.
        let tensorRT = dir.appendingPathComponent("tensorrt")
        try FileManager.default.createDirectory(at: tensorRT, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: tensorRT.appendingPathComponent("include"), withDestinationURL: include)
        let out = dir.appendingPathComponent("out")
        _ = try PluginFixtures.renderInto(out.appendingPathComponent("plugins"), fixture: "abs", plugin: "tpat_abs", api: api)
        let makefile = try PluginRenderer().renderMakefile(plugins: [MakefilePlugin(name: "tpat_abs", manifest: try PluginFixtures.manifest("abs"))], tensorRTAPI: api)
        try Data(makefile.utf8).write(to: out.appendingPathComponent("Makefile"))
        let (status, log) = try PluginFixtures.run(URL(fileURLWithPath: "/usr/bin/env"), [
            "make", "NVCC=\(nvcc.path)", "CUDA_ARCH=\(Self.arch)", "TENSORRT_DIR=\(tensorRT.path)",
            "CUDART_LIBS=\(cudartArguments(nvcc).joined(separator: " "))", "plugins/tpat_abs/build/libtpat_abs.so",
        ], in: out)
        #expect(status == 0, "make failed:\n\(log)")
        let library = "plugins/tpat_abs/build/libtpat_abs.so"
        let (nmStatus, defined) = try PluginFixtures.run(URL(fileURLWithPath: "/usr/bin/env"), ["nm", "-D", "--defined-only", library], in: out)
        guard nmStatus == 0 else { return }  // no binutils: nothing more to check
        let exported = defined.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            return fields.count == 3 && fields[1] == "T" ? String(fields[2]) : nil
        }
        #expect(exported.sorted() == api.libraryEntryPoints.sorted(), "exported: \(exported)")
        // Nothing of TensorRT's is left to resolve at load time: libnvinfer is not needed.
        let (_, undefined) = try PluginFixtures.run(URL(fileURLWithPath: "/usr/bin/env"), ["nm", "-D", "--undefined-only", library], in: out)
        #expect(!undefined.contains("nvinfer") && !undefined.contains("getPluginRegistry"), "undefined:\n\(undefined)")
        let (_, needed) = try PluginFixtures.run(URL(fileURLWithPath: "/usr/bin/env"), ["readelf", "-d", library], in: out)
        #expect(!needed.contains("libnvinfer"), "\(needed)")
    }

    @Test("a build holds each weight once: the plugin library embeds the constants, the self-test and the kernel object do not",
          .enabled(if: PluginFixtures.isSet("TPAT_TENSORRT_INCLUDE"), "set TPAT_TENSORRT_INCLUDE to TensorRT's include/ folder"))
    func constantsEmbeddedOnce() throws {
        let include = URL(fileURLWithPath: try #require(ProcessInfo.processInfo.environment["TPAT_TENSORRT_INCLUDE"]))
        let nvcc = try requireNvcc()
        let dir = try PluginFixtures.temporaryDirectory("constants-once")
        defer { try? FileManager.default.removeItem(at: dir) }
        let tensorRT = dir.appendingPathComponent("tensorrt")
        try FileManager.default.createDirectory(at: tensorRT, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: tensorRT.appendingPathComponent("include"), withDestinationURL: include)
        let out = dir.appendingPathComponent("out")
        let pluginDir = try PluginFixtures.renderInto(out.appendingPathComponent("plugins"), fixture: "scatter_nd", plugin: "tpat_sc", api: .v3)
        let makefile = try PluginRenderer().renderMakefile(plugins: [MakefilePlugin(name: "tpat_sc", manifest: try PluginFixtures.manifest("scatter_nd"))])
        try Data(makefile.utf8).write(to: out.appendingPathComponent("Makefile"))
        let (status, log) = try PluginFixtures.run(URL(fileURLWithPath: "/usr/bin/env"), [
            "make", "NVCC=\(nvcc.path)", "CUDA_ARCH=\(Self.arch)", "TENSORRT_DIR=\(tensorRT.path)",
            "CUDART_LIBS=\(cudartArguments(nvcc).joined(separator: " "))", "plugins/tpat_sc/build/libtpat_sc.so", "plugins/tpat_sc/build/tpat_sc_test",
        ], in: out)
        #expect(status == 0, "make failed:\n\(log)")
        // The constant (16 floats 0.5, 0.75, ...: no accident of code) is in the library, once.
        let constant = try Data(contentsOf: pluginDir.appendingPathComponent("constants/c0.bin"))
        func occurrences(_ file: String) throws -> Int {
            let data = try Data(contentsOf: pluginDir.appendingPathComponent(file))
            var count = 0
            var start = data.startIndex
            while let range = data.range(of: constant, in: start..<data.endIndex) { count += 1; start = range.upperBound }
            return count
        }
        #expect(try occurrences("build/libtpat_sc.so") == 1)
        #expect(try occurrences("build/tpat_sc_test") == 0)
        #expect(try occurrences("build/tpat_sc_kernels.o") == 0)
        // The self-test reads the file the manifest names, relative to the plugin's folder.
        let test = try String(contentsOf: pluginDir.appendingPathComponent("tpat_sc_test.cu"), encoding: .utf8)
        #expect(test.contains("gPluginFolder = base + \"../\";") && test.contains("std::string path = gPluginFolder + file;"))
    }

    func compilePlugin(_ fixture: String, api: TensorRTAPI, includeVariable: String) throws {
        let include = try #require(ProcessInfo.processInfo.environment[includeVariable], "\(includeVariable) is not set")
        let nvcc = try requireNvcc()
        let dir = try PluginFixtures.temporaryDirectory("\(fixture)-\(api.rawValue)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let plugin = "tpat_\(fixture)"
        let pluginDir = try PluginFixtures.renderInto(dir, fixture: fixture, plugin: plugin, api: api)
        for registration in ["0", "1"] {
            let (status, log) = try PluginFixtures.run(nvcc, [
                "-std=c++17", "-I\(include)", "-I.", "-Xcompiler", "-Wall", "-Xcompiler", "-Wno-deprecated-declarations",
                "-DTPAT_STATIC_REGISTRATION=\(registration)", "-c", "\(plugin)_plugin.cpp", "-o", "\(plugin)_plugin_\(registration).o",
            ], in: pluginDir)
            #expect(status == 0, "\(api.rawValue) plugin for \(fixture) (TPAT_STATIC_REGISTRATION=\(registration)) does not compile against \(include):\n\(log)")
            #expect(!log.contains("warning"), "warnings:\n\(log)")
        }
    }

    /// Opt-in: every `*/manifest.json` under $TPAT_REAL_MANIFESTS (written by the bridge's
    /// `manifests` command) renders, and its kernels + self-test compile and link; with
    /// $TPAT_TENSORRT_INCLUDE its v3 plugin compiles too, with $TPAT_TENSORRT8_INCLUDE its v2 plugin
    /// (where TensorRT 8 can take its dtypes).
    @Test("real bridge manifests render and compile ($TPAT_REAL_MANIFESTS)",
          .enabled(if: PluginFixtures.isSet("TPAT_REAL_MANIFESTS"), "set TPAT_REAL_MANIFESTS to a folder of bridge outputs"))
    func realManifests() throws {
        let root = try #require(ProcessInfo.processInfo.environment["TPAT_REAL_MANIFESTS"], "TPAT_REAL_MANIFESTS is not set")
        let nvcc = try requireNvcc()
        let environment = ProcessInfo.processInfo.environment
        let rootURL = URL(fileURLWithPath: root)
        let entries = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
        let renderer = try PluginRenderer()
        var count = 0
        for entry in entries {
            let source = rootURL.appendingPathComponent(entry)
            let manifestURL = source.appendingPathComponent("manifest.json")
            guard FileManager.default.fileExists(atPath: manifestURL.path) else { continue }
            count += 1
            let manifest = try KernelManifest.load(contentsOf: manifestURL)
            let dir = try PluginFixtures.temporaryDirectory("real-\(entry)")
            defer { try? FileManager.default.removeItem(at: dir) }
            let plugin = "tpat_real_\(entry)"
            let constants = source.appendingPathComponent("constants")
            if FileManager.default.fileExists(atPath: constants.path) {
                try FileManager.default.copyItem(at: constants, to: dir.appendingPathComponent("constants"))
            }
            try renderer.render(manifest: manifest, pluginName: plugin, options: PluginOptions(tensorrtAPI: .v3)).write(to: dir)
            let (status, log) = try PluginFixtures.run(nvcc, [
                "-std=c++17", "-O2", "-arch=\(manifest.target.arch)", "-Xcompiler", "-fvisibility=hidden",
                "\(plugin)_kernels.cu", "\(plugin)_test.cu", "-o", "\(plugin)_test",
            ] + cudartArguments(nvcc), in: dir)
            #expect(status == 0, "\(entry): kernels + self-test do not compile:\n\(log)")
            if let include = environment["TPAT_TENSORRT_INCLUDE"], !include.isEmpty {
                let (status, log) = try PluginFixtures.run(nvcc, [
                    "-std=c++17", "-I\(include)", "-I.", "-Xcompiler", "-Wno-deprecated-declarations", "-c", "\(plugin)_plugin.cpp", "-o", "p3.o",
                ], in: dir)
                #expect(status == 0, "\(entry): v3 plugin does not compile against \(include):\n\(log)")
            }
            if let include = environment["TPAT_TENSORRT8_INCLUDE"], !include.isEmpty,
                let v2 = try? renderer.render(manifest: manifest, pluginName: plugin, options: PluginOptions(tensorrtAPI: .v2))
            {
                try v2.write(to: dir)
                let (status, log) = try PluginFixtures.run(nvcc, [
                    "-std=c++17", "-I\(include)", "-I.", "-Xcompiler", "-Wno-deprecated-declarations", "-c", "\(plugin)_plugin.cpp", "-o", "p2.o",
                ], in: dir)
                #expect(status == 0, "\(entry): v2 plugin does not compile against \(include):\n\(log)")
            }
        }
        #expect(count > 0, "no */manifest.json under \(root)")

        // $TPAT_REAL_RENDER_OUT: also lay out every plugin folder there has (plugins/<name>/) as
        // the pipeline does, plus the top-level Makefile, for `make -C <out> check` on a GPU.
        if let out = environment["TPAT_REAL_RENDER_OUT"], !out.isEmpty {
            let outURL = URL(fileURLWithPath: out)
            var made: [MakefilePlugin] = []
            for entry in try FileManager.default.contentsOfDirectory(atPath: outURL.appendingPathComponent("plugins").path).sorted() {
                let dir = outURL.appendingPathComponent("plugins/\(entry)")
                let manifestURL = dir.appendingPathComponent("manifest.json")
                guard FileManager.default.fileExists(atPath: manifestURL.path) else { continue }
                let manifest = try KernelManifest.load(contentsOf: manifestURL)
                try renderer.render(manifest: manifest, pluginName: entry).write(to: dir)
                made.append(MakefilePlugin(name: entry, manifest: manifest))
            }
            try Data(try renderer.renderMakefile(plugins: made).utf8).write(to: outURL.appendingPathComponent("Makefile"))
        }
    }
}
