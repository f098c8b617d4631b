import Foundation
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Where TPAT finds the tools it drives: the Python interpreter with TVM (the project's .venv),
/// the bridge package, and nvcc. Each can be overridden by an environment variable.
public struct Toolchain: Sendable {
    /// TPAT's installation root (the repository: python/, .venv/).
    public var root: URL
    /// The Python interpreter that has TVM, ONNX and ONNX Runtime (`TPAT_PYTHON`).
    public var python: URL
    /// The folder holding the `tpat_bridge` package.
    public var bridgePath: URL
    /// nvcc (`TPAT_NVCC`, else `$CUDA_HOME/bin/nvcc`, else the pip wheel's in .venv, else PATH).
    public var nvcc: URL?

    /// Finds the toolchain from the environment and the executable's location.
    public static func discover(environment: [String: String] = ProcessInfo.processInfo.environment) throws(TPATError) -> Toolchain {
        let fm = FileManager.default
        var candidates: [URL] = []
        if let home = environment["TPAT_HOME"] { candidates.append(URL(fileURLWithPath: home)) }
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<8 {
            candidates.append(dir)
            dir = dir.deletingLastPathComponent()
        }
        candidates.append(URL(fileURLWithPath: fm.currentDirectoryPath))
        guard let root = candidates.first(where: { fm.fileExists(atPath: $0.appendingPathComponent("python/tpat_bridge/__init__.py").path) }) else {
            throw .installation("cannot find TPAT's Python bridge (python/tpat_bridge); set TPAT_HOME to the TPAT checkout")
        }
        let python = environment["TPAT_PYTHON"].map { URL(fileURLWithPath: $0) } ?? root.appendingPathComponent(".venv/bin/python")
        guard fm.isExecutableFile(atPath: python.path) else {
            throw .installation("no Python with TVM at \(python.path); run `make setup` in \(root.path) (or set TPAT_PYTHON)")
        }
        return Toolchain(root: root, python: python, bridgePath: root.appendingPathComponent("python"), nvcc: findNVCC(root: root, environment: environment))
    }

    static func findNVCC(root: URL, environment: [String: String]) -> URL? {
        let fm = FileManager.default
        if let explicit = environment["TPAT_NVCC"] { return URL(fileURLWithPath: explicit) }
        if let cuda = environment["CUDA_HOME"] ?? environment["CUDA_PATH"] {
            let url = URL(fileURLWithPath: cuda).appendingPathComponent("bin/nvcc")
            if fm.isExecutableFile(atPath: url.path) { return url }
        }
        let lib = root.appendingPathComponent(".venv/lib")
        for entry in (try? fm.contentsOfDirectory(atPath: lib.path)) ?? [] where entry.hasPrefix("python3") {
            let url = lib.appendingPathComponent(entry).appendingPathComponent("site-packages/nvidia/cu13/bin/nvcc")
            if fm.isExecutableFile(atPath: url.path) { return url }
        }
        for dir in (environment["PATH"] ?? "").split(separator: ":") {
            let url = URL(fileURLWithPath: String(dir)).appendingPathComponent("nvcc")
            if fm.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }
}

/// What a finished tool run left: its exit status and its combined output, kept in a log file.
public struct ToolRun: Sendable {
    /// Whether the tool exited with status 0.
    public var succeeded: Bool
    /// The exit status (or signal) as text.
    public var status: String
    /// The log file with the tool's standard output and error.
    public var log: URL

    /// The last `lines` lines of the log, for error messages.
    public func logTail(lines: Int = 20) -> String {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Why the tool failed, in one line: the last meaningful line of its log, else its exit status.
    public var reason: String {
        LogExcerpt.lastMeaningfulLine(ofFile: log) ?? "it exited with \(status) and wrote nothing to its log"
    }
}

/// Runs external tools (Python, nvcc) through swift-subprocess, output to a log file.
///
/// Each tool runs in a process group of its own, registered with ``Cancellation`` while it runs,
/// so that a signal stops the tool and everything it started (make -> nvcc -> cicc/ptxas), and
/// whatever a tool leaves running when it exits is stopped too.
public enum ToolRunner {
    /// Runs `executable` with `arguments`, standard output and error into `log`. Throws
    /// ``TPATError/interrupted(signal:)`` when a signal stopped the run (before or while the tool ran).
    public static func run(
        _ executable: URL, arguments: [String], environment: [String: String] = [:],
        workingDirectory: URL? = nil, log: URL
    ) async throws(TPATError) -> ToolRun {
        let name = executable.lastPathComponent
        let cancellation = Cancellation.shared
        try cancellation.checkCancelled()
        let group: pid_t
        let status: TerminationStatus
        do {
            try FileManager.default.createDirectory(at: log.deletingLastPathComponent(), withIntermediateDirectories: true)
            let fd = try FileDescriptor.open(
                FilePath(log.path), .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite, .groupRead, .otherRead])
            var env: [Environment.Key: String?] = [:]
            for (key, value) in environment { env[Environment.Key(stringLiteral: key)] = value }
            var options = PlatformOptions()
            // 0: a new group whose id is the tool's pid.
            options.processGroupID = 0
            let result = try await Subprocess.run(
                .path(FilePath(executable.path)), arguments: Arguments(arguments),
                environment: .inherit.updating(env),
                workingDirectory: workingDirectory.map { FilePath($0.path) },
                platformOptions: options,
                input: .none,
                output: .fileDescriptor(fd, closeAfterSpawningProcess: true),
                error: .combinedWithOutput
            ) { execution in
                let group = execution.processIdentifier.value
                if !cancellation.track(processGroup: group) {
                    // The signal handler may have looked before this tool registered.
                    _ = kill(-group, SIGKILL)
                }
                return group
            }
            group = result.closureResult
            status = result.terminationStatus
        } catch {
            try cancellation.checkCancelled()
            throw .tool(name: name, reason: "cannot start \(executable.path): \(error)")
        }
        cancellation.processGroupEnded(group)
        try cancellation.checkCancelled()
        return ToolRun(succeeded: status.isSuccess, status: "\(status)", log: log)
    }
}

extension Toolchain {
    /// The CUDA arch of the first GPU on this machine (`sm_90` for compute capability 9.0), read
    /// with nvidia-smi; nil when there is no GPU.
    public static func detectArch() async -> String? {
        for candidate in ["/usr/bin/nvidia-smi", "/usr/local/bin/nvidia-smi"] where FileManager.default.isExecutableFile(atPath: candidate) {
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("tpat-nvidia-smi-\(UUID().uuidString).txt")
            defer { try? FileManager.default.removeItem(at: log) }
            guard let run = try? await ToolRunner.run(
                URL(fileURLWithPath: candidate), arguments: ["--query-gpu=compute_cap", "--format=csv,noheader"], log: log),
                run.succeeded,
                let text = try? String(contentsOf: log, encoding: .utf8),
                let line = text.split(separator: "\n").first
            else { continue }
            let digits = line.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ".", with: "")
            if !digits.isEmpty, digits.allSatisfy(\.isNumber) { return "sm_\(digits)" }
        }
        return nil
    }

    /// `--arch all`: kernels for ``portableKernelArch``, built for every major arch from there up.
    public static let portableArch = "all"

    /// The lowest arch TensorRT 10 and 11 run on: kernels generated for it run on every newer GPU.
    public static let portableKernelArch = "sm_75"

    /// Checks that `arch` names a CUDA arch TPAT can target (`sm_XY`, optionally with `a`).
    public static func validateArch(_ arch: String) throws(TPATError) {
        let body = arch.dropFirst(3)
        guard arch.hasPrefix("sm_"), body.count >= 2, body.first!.isNumber,
            body.allSatisfy({ $0.isNumber || $0 == "a" || $0 == "f" })
        else {
            throw .usage("'\(arch)' is not a CUDA arch; pass e.g. --arch sm_90 (H100/H200), sm_89 (L4/L40), sm_80 (A100), sm_86 (RTX 30xx)")
        }
    }
}
