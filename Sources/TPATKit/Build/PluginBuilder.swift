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
    /// True when the kernels and self-test came from the build cache.
    public var cached: Bool = false
}

/// The build stage: compiles each plugin with nvcc through the generated Makefile (the same
/// rules `make -C out` uses on any CUDA machine), one translation unit per plugin, plugins in
/// parallel, each with its own log.
public struct PluginBuilder: Sendable {
    let nvcc: URL
    /// How to link the CUDA runtime: nvcc arguments, each one word.
    let cudartArguments: [String]
    let tensorRTDirectory: URL?

    /// Built objects and self-tests from earlier runs, if kept.
    let cache: BuildCache?

    /// The nvcc and runtime arguments the generated Makefile defaults to.
    public var makefileNVCC: MakefileNVCC { MakefileNVCC(path: nvcc.path, cudartArguments: cudartArguments) }

    /// Why the TensorRT plugin libraries are not built, or nil when they are.
    public var pluginLibrariesSkippedReason: String? {
        tensorRTDirectory == nil
            ? "no TensorRT was given (--tensorrt DIR or TENSORRT_DIR): built the kernels and self-tests; the plugin libraries need TensorRT's headers and libnvinfer"
            : nil
    }

    /// Creates a builder; fails when no nvcc can be found.
    public init(toolchain: Toolchain, tensorRTDirectory: URL?, cache: BuildCache? = nil) throws(TPATError) {
        guard let nvcc = toolchain.nvcc else {
            throw .installation("nvcc not found: run `make setup` (it installs nvcc from pip), or set TPAT_NVCC or CUDA_HOME")
        }
        self.nvcc = nvcc
        self.cache = cache
        // nvcc from the pip wheel has no libcudart next to the system's: link it by its soname
        // from the wheel and record where it is.
        let lib = nvcc.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("lib")
        if FileManager.default.fileExists(atPath: lib.appendingPathComponent("libcudart.so.13").path) {
            cudartArguments = ["-L\(lib.path)", "-l:libcudart.so.13", "-Xlinker", "-rpath=\(lib.path)"]
        } else {
            cudartArguments = []
        }
        if let dir = tensorRTDirectory {
            guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("include/NvInfer.h").path) else {
                throw .usage("\(dir.path) is not a TensorRT installation: include/NvInfer.h is missing")
            }
        }
        self.tensorRTDirectory = tensorRTDirectory
    }

    /// Builds every plugin under `root/plugins/` with `root/Makefile`; with a cache, a plugin
    /// built before is restored from it instead of compiled.
    public func build(plugins: [String], in root: URL) async -> [String: PluginBuildResult] {
        let parallelism = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let keys = await cacheKeys(plugins: plugins, in: root)
        return await withTaskGroup(of: (String, PluginBuildResult).self) { group in
            var pending = plugins[...]
            var results: [String: PluginBuildResult] = [:]
            for _ in 0..<parallelism { if let p = pending.popFirst() { group.addTask { (p, await self.build(p, root: root, key: keys[p])) } } }
            while let (name, result) = await group.next() {
                results[name] = result
                if let p = pending.popFirst() { group.addTask { (p, await self.build(p, root: root, key: keys[p])) } }
            }
            return results
        }
    }

    /// Each plugin's build-cache key (none without a cache, or when nvcc cannot tell its version).
    private func cacheKeys(plugins: [String], in root: URL) async -> [String: String] {
        guard let cache, let makefile = try? String(contentsOf: root.appendingPathComponent("Makefile"), encoding: .utf8) else { return [:] }
        let versionLog = root.appendingPathComponent(".nvcc-version.log")
        defer { try? FileManager.default.removeItem(at: versionLog) }
        guard let run = try? await ToolRunner.run(nvcc, arguments: ["--version"], log: versionLog), run.succeeded,
            let version = try? String(contentsOf: versionLog, encoding: .utf8)
        else { return [:] }
        let toolchain = BuildCache.Toolchain(nvcc: nvcc.path, nvccVersion: version, cudartArguments: cudartArguments)
        var keys: [String: String] = [:]
        for plugin in plugins {
            keys[plugin] = cache.key(plugin: plugin, in: root, makefile: makefile, toolchain: toolchain)
        }
        return keys
    }

    /// A successful build's log keeps nvcc's warnings and drops make's command lines (the
    /// Makefile's rules, tens of KB a plugin): a failed build keeps its whole log.
    static func keepWarningsOnly(_ log: URL) {
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return }
        let warnings = text.split(separator: "\n").filter { $0.localizedCaseInsensitiveContains("warning") }
        var summary = "built with make and nvcc (their command lines are the Makefile's rules); \(warnings.count) warning line(s)\n"
        summary += warnings.map { $0 + "\n" }.joined()
        try? Data(summary.utf8).write(to: log)
    }

    private func build(_ name: String, root: URL, key: String?) async -> PluginBuildResult {
        let dir = root.appendingPathComponent("plugins/\(name)")
        let log = dir.appendingPathComponent("build.log")
        let test = dir.appendingPathComponent("build/\(name)_test")
        let library = root.appendingPathComponent(PluginRenderer.libraryPath(pluginName: name))
        var targets = ["plugins/\(name)/build/\(name)_test"]
        if tensorRTDirectory != nil { targets.append(PluginRenderer.libraryPath(pluginName: name)) }
        let restored = key.map { cache?.restore(key: $0, plugin: name, into: root) ?? false } ?? false
        if restored {
            try? Data("kernels and self-test restored from the build cache (\(cache!.root.path), entry \(key!))\n".utf8).write(to: log)
            // Only the plugin library is left to build: make finds its objects up to date.
            if tensorRTDirectory == nil {
                return PluginBuildResult(succeeded: true, message: "built", log: log, selfTest: test, cached: true)
            }
        }
        // make runs from `root` (an argument, never shell text); NVCC and CUDART_LIBS are pasted
        // into the recipes' shell commands, so each word is shell-quoted; TENSORRT_DIR is read by
        // the recipes from the environment, so it is only kept from make's own expansion.
        var arguments = [
            "-C", root.path,
            MakeCommandLine.variable("NVCC", shellWords: [nvcc.path]),
            MakeCommandLine.variable("CUDART_LIBS", shellWords: cudartArguments),
        ]
        if let trt = tensorRTDirectory { arguments.append(MakeCommandLine.variable("TENSORRT_DIR", literal: trt.path)) }
        do {
            let run = try await ToolRunner.run(URL(fileURLWithPath: "/usr/bin/env"), arguments: ["make"] + arguments + targets, log: log)
            guard run.succeeded else {
                let firstError = run.logTail(lines: 400).split(separator: "\n").first { $0.contains("error") }.map(String.init) ?? "see the log"
                return PluginBuildResult(succeeded: false, message: "nvcc failed for plugin \(name): \(firstError)", log: log)
            }
            if let key, !restored { cache?.store(key: key, plugin: name, from: root) }
            Self.keepWarningsOnly(log)
            return PluginBuildResult(
                succeeded: true, message: "built", log: log, selfTest: test,
                library: tensorRTDirectory == nil ? nil : library, cached: restored)
        } catch {
            return PluginBuildResult(succeeded: false, message: "cannot run make for plugin \(name): \(error.description)", log: log)
        }
    }
}

/// Variables on make's command line (`NAME=value`, one argument: no shell reads it). make expands
/// `$` in the value, and a recipe that pastes the variable hands it to the shell as text.
enum MakeCommandLine {
    /// `NAME=value` for a variable that recipes paste into shell commands: each word single-quoted
    /// for the shell, then `$` doubled for make, so the shell sees exactly `words`.
    static func variable(_ name: String, shellWords words: [String]) -> String {
        "\(name)=" + escapedForMake(words.map(singleQuoted).joined(separator: " "))
    }

    /// `NAME=value` for a variable whose value must reach the recipes' environment unchanged (they
    /// read it as "$$NAME"): only `$` is doubled for make.
    static func variable(_ name: String, literal value: String) -> String {
        "\(name)=" + escapedForMake(value)
    }

    /// `word` in single quotes for sh (a single quote inside becomes '\'').
    static func singleQuoted(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    static func escapedForMake(_ text: String) -> String {
        text.replacingOccurrences(of: "$", with: "$$")
    }
}
