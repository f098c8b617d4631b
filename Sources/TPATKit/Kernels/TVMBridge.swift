import Foundation
import Logging

/// Options for the kernel backend.
public struct KernelOptions: Sendable, Equatable {
    /// The CUDA arch, e.g. `sm_90`.
    public var arch: String
    /// Tuning settings; nil for TVM's default schedules.
    public var tuning: TuningOptions?
    /// The kernel cache folder: an untuned node generated before (same sub-model, name, arch, TVM
    /// and bridge) is taken from it without running TVM. nil: no cache.
    public var cacheDirectory: String?

    /// Creates options.
    public init(arch: String, tuning: TuningOptions? = nil, cacheDirectory: String? = nil) {
        self.arch = arch
        self.tuning = tuning
        self.cacheDirectory = cacheDirectory
    }

    /// The kernel cache's default folder, `~/.cache/tpat/kernels`.
    public static var defaultCacheDirectory: String {
        FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/tpat/kernels").path
    }
}

/// MetaSchedule tuning settings.
public struct TuningOptions: Sendable, Equatable, Codable {
    /// Total trials per node.
    public var trials: Int
    /// Trials per task; nil lets TVM choose.
    public var trialsPerTask: Int?
    /// A wall-clock budget in seconds per node; nil for none.
    public var timeBudgetSeconds: Int?
    /// The tuning database folder.
    public var database: String
    /// `HOST:PORT` of a TVM RPC tracker, for measuring on remote GPUs.
    public var rpcTracker: String?
    /// The device key registered with the tracker.
    public var rpcKey: String?

    /// Creates tuning options.
    public init(trials: Int, trialsPerTask: Int? = nil, timeBudgetSeconds: Int? = nil, database: String, rpcTracker: String? = nil, rpcKey: String? = nil) {
        self.trials = trials
        self.trialsPerTask = trialsPerTask
        self.timeBudgetSeconds = timeBudgetSeconds
        self.database = database
        self.rpcTracker = rpcTracker
        self.rpcKey = rpcKey
    }
}

/// One node for the kernel backend: its standalone model and where its manifest goes.
public struct KernelJob: Sendable, Equatable {
    /// An id unique in the run.
    public var id: String
    /// The standalone single-node model.
    public var subModel: URL
    /// The folder the bridge writes the manifest, constants and log into.
    public var outDir: URL
    /// The prefix for every kernel name of this node.
    public var kernelPrefix: String
    /// The original node: name, op type, domain (recorded in the manifest).
    public var node: KernelManifest.NodeInfo
    /// Sizes of the sub-model's symbolic dims to compile a static launch plan for, beside the
    /// generic one, one map per plan (the manifest's specializations, tried in this order); the
    /// first is the one tuned. Empty for none.
    public var specializations: [[String: Int64]]

    /// Creates a job.
    public init(id: String, subModel: URL, outDir: URL, kernelPrefix: String, node: KernelManifest.NodeInfo, specializations: [[String: Int64]] = []) {
        self.id = id
        self.subModel = subModel
        self.outDir = outDir
        self.kernelPrefix = kernelPrefix
        self.node = node
        self.specializations = specializations
    }
}

/// Why the kernel backend could not produce kernels for one node.
public struct KernelFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// `import`, `build`, `unsupported`, `dtype` or `internal` (docs/manifest.md).
    public var errorClass: String
    /// One line: the op and TVM's reason.
    public var message: String
    /// The full log.
    public var log: String?

    public var description: String { "\(message) [\(errorClass)]" + (log.map { " (log: \($0))" } ?? "") }
}

/// What tuning did for one node (the bridge's RESULT `tuning` object; times in microseconds,
/// measured by MetaSchedule's runner: `untunedUs` with TVM's default schedules, `tunedUs` with
/// the schedules the plugin uses).
public struct TuningReport: Codable, Sendable, Equatable {
    /// One tuning task (a fused TVM function).
    public struct Task: Codable, Sendable, Equatable {
        public var task: String
        public var trials: Int
        public var reused: Bool
        public var untunedUs: Double?
        public var tunedUs: Double?
        /// `tuned` or `default`: the schedule the plugin was built with.
        public var schedule: String
    }
    public var tasks: [Task]?
    /// True when every task came from the database (nothing was measured).
    public var reused: Bool?
    public var trials: Int?
    public var untunedUs: Double?
    public var tunedUs: Double?
    public var database: String?
    public var seconds: Double?
    /// Why tuning failed (the plugin then uses the default schedules).
    public var error: String?
}

/// The kernel backend's answer for one node.
public struct KernelResult: Sendable {
    /// The job's id.
    public var id: String
    /// The manifest and the folder it lies in, or why there is none.
    public var outcome: Result<(manifest: KernelManifest, directory: URL), KernelFailure>
    /// Seconds the bridge spent on the node.
    public var seconds: Double
    /// Tuning figures, when tuning was asked for.
    public var tuning: TuningReport? = nil
    /// True when the manifest came from the kernel cache.
    public var cached: Bool = false
    /// What the bridge warned about for this node (a damaged kernel-cache entry it regenerated, a
    /// damaged tuning database), each already told through the logger.
    public var warnings: [String] = []
}

/// The kernel-backend stage: standalone node models in, kernel manifests out, through one run of
/// the Python bridge to TVM for all nodes (TVM's import is paid once).
public struct TVMBridge: Sendable {
    let toolchain: Toolchain
    /// Tells the user the bridge's warnings (they reach the terminal; the bridge's own stderr only
    /// reaches its log).
    let logger: Logger

    /// Creates the stage over a toolchain.
    public init(toolchain: Toolchain, logger: Logger = Logger(label: "tpat")) {
        self.toolchain = toolchain
        self.logger = logger
    }

    /// Compiles every job; a failing node does not stop the others.
    public func compile(_ jobs: [KernelJob], options: KernelOptions, workDirectory: URL) async throws(TPATError) -> [KernelResult] {
        guard !jobs.isEmpty else { return [] }
        struct Request: Encodable {
            struct Node: Encodable {
                var id, model, outDir, kernelPrefix: String
                var node: KernelManifest.NodeInfo
                var specializations: [[String: Int64]]
            }
            var arch: String
            var nodes: [Node]
            var tuning: TuningOptions?
            var cacheDirectory: String?
        }
        struct Response: Decodable {
            struct Node: Decodable {
                var id: String
                var status: String
                var manifest: String?
                var errorClass: String?
                var message: String?
                var log: String?
                var seconds: Double?
                var tuning: TuningReport?
                var cached: Bool?
                var warnings: [String]?
            }
            var nodes: [Node]
        }
        let requestURL = workDirectory.appendingPathComponent("bridge-request.json")
        let resultURL = workDirectory.appendingPathComponent("bridge-result.json")
        let request = Request(
            arch: options.arch,
            nodes: jobs.map {
                .init(id: $0.id, model: $0.subModel.path, outDir: $0.outDir.path, kernelPrefix: $0.kernelPrefix, node: $0.node, specializations: $0.specializations)
            },
            tuning: options.tuning, cacheDirectory: options.cacheDirectory)
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try encoder.encode(request).write(to: requestURL)
            try? FileManager.default.removeItem(at: resultURL)
        } catch {
            throw .tool(name: "TVM bridge", reason: "cannot write its request in \(workDirectory.path): \(error)")
        }
        let logURL = workDirectory.appendingPathComponent("bridge.log")
        // Tuning takes minutes: show the bridge's progress lines ("tpat-tune: ...") as they come.
        let follower = options.tuning == nil ? nil : Task.detached { await Self.follow(logURL) }
        let run: ToolRun
        do {
            run = try await ToolRunner.run(
                toolchain.python, arguments: ["-m", "tpat_bridge", "manifests", requestURL.path, resultURL.path],
                environment: ["PYTHONPATH": toolchain.bridgePath.path, "PYTHONUNBUFFERED": "1"],
                log: logURL)
        } catch {
            follower?.cancel()
            throw error
        }
        follower?.cancel()
        _ = await follower?.value
        guard let data = try? Data(contentsOf: resultURL), let response = try? JSONDecoder().decode(Response.self, from: data) else {
            // The log lies in the staging folder: the pipeline keeps it (OUT.failed/) and names
            // its final place in this message; the reason is quoted so the message stands alone.
            throw .tool(name: "TVM bridge", reason: "it exited (\(run.status)) without a result: \(run.reason) (log \(run.log.path))")
        }
        let byID = Dictionary(response.nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var results: [KernelResult] = []
        for job in jobs {
            guard let node = byID[job.id] else {
                results.append(KernelResult(id: job.id, outcome: .failure(KernelFailure(errorClass: "internal", message: "the bridge returned nothing for this node (its log ends: \(run.reason))", log: run.log.path)), seconds: 0))
                continue
            }
            let warnings = node.warnings ?? []
            for warning in warnings { logger.warning("node \(job.node.name): \(warning)") }
            if node.status == "ok", let path = node.manifest {
                let url = URL(fileURLWithPath: path)
                do {
                    let manifest = try KernelManifest.load(contentsOf: url)
                    results.append(KernelResult(id: job.id, outcome: .success((manifest, url.deletingLastPathComponent())), seconds: node.seconds ?? 0, tuning: node.tuning, cached: node.cached ?? false, warnings: warnings))
                } catch {
                    results.append(KernelResult(id: job.id, outcome: .failure(KernelFailure(errorClass: "internal", message: error.description, log: node.log)), seconds: node.seconds ?? 0))
                }
            } else {
                results.append(KernelResult(
                    id: job.id,
                    outcome: .failure(KernelFailure(errorClass: node.errorClass ?? "internal", message: node.message ?? "no reason given", log: node.log)),
                    seconds: node.seconds ?? 0))
            }
        }
        return results
    }

    /// Prints the `tpat-tune:` lines the bridge appends to `log` to standard error until cancelled
    /// (then once more, for the last lines).
    static func follow(_ log: URL) async {
        var offset: UInt64 = 0
        var pending = Data()
        func drain() {
            guard let handle = try? FileHandle(forReadingFrom: log) else { return }
            defer { try? handle.close() }
            guard (try? handle.seek(toOffset: offset)) != nil, let data = try? handle.readToEnd(), !data.isEmpty else { return }
            offset += UInt64(data.count)
            pending.append(data)
            while let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...newline)
                if line.hasPrefix("tpat-tune: ") {
                    // Task names quote the model's ops and values: escaped like every model string.
                    FileHandle.standardError.write(Data((TerminalText.escaped(line) + "\n").utf8))
                }
            }
        }
        while !Task.isCancelled {
            drain()
            try? await Task.sleep(nanoseconds: 500_000_000)
        }
        drain()
    }
}
