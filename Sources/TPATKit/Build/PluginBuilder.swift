import Foundation

/// The outcome of building one plugin.
public struct PluginBuildResult: Sendable, Equatable {
    /// Whether everything asked for built.
    public var succeeded: Bool
    /// One line: what failed, or what was built.
    public var message: String
    /// The full compiler log.
    public var log: URL
    /// The self-test program, when built.
    public var selfTest: URL?
    /// The TensorRT plugin library, when built.
    public var library: URL?
}

/// The build stage: compiles each plugin with nvcc through the generated Makefile (the same
/// rules `make -C out` uses on any CUDA machine), one translation unit per plugin, plugins in
/// parallel, each with its own log.
public struct PluginBuilder: Sendable {
    let nvcc: URL
    let cudartFlags: String
    let tensorRTDirectory: URL?

    /// Why the TensorRT plugin libraries are not built, or nil when they are.
    public var pluginLibrariesSkippedReason: String? {
        tensorRTDirectory == nil
            ? "no TensorRT was given (--tensorrt DIR or TENSORRT_DIR): built the kernels and self-tests; the plugin libraries need TensorRT's headers and libnvinfer"
            : nil
    }

    /// Creates a builder; fails when no nvcc can be found.
    public init(toolchain: Toolchain, tensorRTDirectory: URL?) throws(TPATError) {
        guard let nvcc = toolchain.nvcc else {
            throw .installation("nvcc not found: run `make setup` (it installs nvcc from pip), or set TPAT_NVCC or CUDA_HOME")
        }
        self.nvcc = nvcc
        // nvcc from the pip wheel has no libcudart next to the system's: link it by its soname
        // from the wheel and record where it is.
        let lib = nvcc.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("lib")
        if FileManager.default.fileExists(atPath: lib.appendingPathComponent("libcudart.so.13").path) {
            cudartFlags = "-L\(lib.path) -l:libcudart.so.13 -Xlinker -rpath=\(lib.path)"
        } else {
            cudartFlags = ""
        }
        if let dir = tensorRTDirectory {
            guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("include/NvInfer.h").path) else {
                throw .usage("\(dir.path) is not a TensorRT installation: include/NvInfer.h is missing")
            }
        }
        self.tensorRTDirectory = tensorRTDirectory
    }

    /// Builds every plugin under `root/plugins/` with `root/Makefile`.
    public func build(plugins: [String], in root: URL) async -> [String: PluginBuildResult] {
        let parallelism = max(1, ProcessInfo.processInfo.activeProcessorCount)
        return await withTaskGroup(of: (String, PluginBuildResult).self) { group in
            var pending = plugins[...]
            var results: [String: PluginBuildResult] = [:]
            for _ in 0..<parallelism { if let p = pending.popFirst() { group.addTask { (p, await self.build(p, root: root)) } } }
            while let (name, result) = await group.next() {
                results[name] = result
                if let p = pending.popFirst() { group.addTask { (p, await self.build(p, root: root)) } }
            }
            return results
        }
    }

    private func build(_ name: String, root: URL) async -> PluginBuildResult {
        let dir = root.appendingPathComponent("plugins/\(name)")
        let log = dir.appendingPathComponent("build.log")
        let test = dir.appendingPathComponent("build/\(name)_test")
        let library = dir.appendingPathComponent("build/lib\(name).so")
        var targets = ["plugins/\(name)/build/\(name)_test"]
        if tensorRTDirectory != nil { targets.append("plugins/\(name)/build/lib\(name).so") }
        var arguments = ["-C", root.path, "NVCC=\(nvcc.path)", "CUDART_LIBS=\(cudartFlags)"]
        if let trt = tensorRTDirectory { arguments.append("TENSORRT_DIR=\(trt.path)") }
        do {
            let run = try await ToolRunner.run(URL(fileURLWithPath: "/usr/bin/env"), arguments: ["make"] + arguments + targets, log: log)
            guard run.succeeded else {
                let firstError = run.logTail(lines: 400).split(separator: "\n").first { $0.contains("error") }.map(String.init) ?? "see the log"
                return PluginBuildResult(succeeded: false, message: "nvcc failed for plugin \(name): \(firstError)", log: log)
            }
            return PluginBuildResult(
                succeeded: true, message: "built", log: log, selfTest: test,
                library: tensorRTDirectory == nil ? nil : library)
        } catch {
            return PluginBuildResult(succeeded: false, message: "cannot run make for plugin \(name): \(error.description)", log: log)
        }
    }
}
