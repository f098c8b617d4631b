import ArgumentParser
import Foundation
import Logging
import TPATKit

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn chosen nodes into TensorRT plugins and write a rewritten model.",
        discussion: """
            Writes OUT/model.tpat.onnx, OUT/plugins/<name>/ (sources, manifest.json, CMakeLists.txt, \
            build/, test/), OUT/Makefile (`make -C OUT check` runs every plugin's self-test on a GPU) \
            and OUT/report.json.

            Exit codes: 0 every chosen node became a plugin with its self-test data; 1 bad input \
            or no node became a plugin (nothing written; the logs are in OUT.failed/ when a run \
            got that far); 3 some nodes failed or a plugin has no self-test data (the rest is \
            written; report.json and the summary say why); 64 a malformed command line; 130 and 143 interrupted by SIGINT or \
            SIGTERM (nothing written).
            """)

    @Argument(help: "The ONNX model (never modified).")
    var model: String

    @Option(name: .shortAndLong, help: "The output folder.")
    var output: String

    @OptionGroup(title: "Which nodes")
    var choice: NodeChoiceOptions

    @OptionGroup(title: "Target")
    var target: TargetOptions

    @OptionGroup(title: "Tuning")
    var tuningOptions: TuningArguments

    @OptionGroup(title: "Kernel cache")
    var cache: CacheArguments

    @Flag(name: .customLong("no-build"), help: "Render sources only; do not run nvcc.")
    var noBuild = false

    @Flag(name: .customLong("no-reference"), help: "Skip the self-test data (ONNX Runtime on the CPU); `make check` then has nothing to compare with.")
    var noReference = false

    @Option(
        name: .customLong("dim"),
        help: "A symbolic dim of the model's inputs in the self-test data: NAME=V, or NAME=V1,V2 for the two cases (repeatable; others get sizes that suit them).")
    var sampleDims: [String] = []

    @Option(name: .customLong("inputs"), help: "A .npz file of the model's inputs (by input name) for the self-test data: one case from exactly these.")
    var sampleInputs: String?

    @Option(
        name: .customLong("profile"),
        help: ArgumentHelp(
            "A symbolic dim's range in deployment, as TensorRT's optimization profile gives it: NAME=MIN:OPT:MAX (repeatable).",
            discussion: "Each plugin gets a launch plan compiled (and, with --tune, tuned) for OPT beside its generic one, chosen at enqueue from the actual sizes; the self-tests run at OPT and MIN unless --dim says otherwise; the trtexec line gets --minShapes/--optShapes/--maxShapes."))
    var profiles: [String] = []

    @Flag(help: "Replace the output folder if it exists.")
    var force = false

    @Flag(name: .shortAndLong, help: "Only warnings and errors on the terminal.")
    var quiet = false

    func run() async throws {
        // SIGINT/SIGTERM stop the tools, remove the staging folder and exit 130/143 (Cancellation).
        Cancellation.shared.installSignalHandlers()
        LoggingSystem.bootstrap { label in
            var handler = TerminalSafeLogHandler(StreamLogHandler.standardError(label: label))
            handler.logLevel = quiet ? .warning : .info
            return handler
        }
        let logger = Logger(label: "tpat")
        do {
            let report = try await Pipeline(toolchain: try Toolchain.discover(), logger: logger).run(try request())
            print(Summary(report: report).text, terminator: "")
            if report.outputModel == nil { throw ExitCode(1) }
            if !report.failures.isEmpty || report.plugins.contains(where: { $0.referenceDataError != nil }) { throw ExitCode(3) }
        } catch let error as TPATError {
            // After a signal the handler prints the one line and exits; nothing more is said here.
            if Cancellation.shared.isCancelled { await Cancellation.shared.waitForExit() }
            fail(TerminalText.sanitized(error.description))
        }
    }

    func validate() throws {
        _ = try parsedSampleDims()
        _ = try parsedProfile()
        if let sampleInputs, !FileManager.default.isReadableFile(atPath: sampleInputs) {
            throw ValidationError("--inputs \(sampleInputs): no such file (give a .npz of the model's inputs, by input name)")
        }
    }

    /// `--dim batch=1,4 --dim seq=7` as [batch: [1, 4], seq: [7]].
    private func parsedSampleDims() throws(ValidationError) -> [String: [Int64]] {
        var dims: [String: [Int64]] = [:]
        for item in sampleDims {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            let values = parts.count == 2 ? parts[1].split(separator: ",").map { Int64($0.trimmingCharacters(in: .whitespaces)) } : []
            guard parts.count == 2, !parts[0].isEmpty, !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else {
                throw ValidationError("--dim \(item): write NAME=SIZE or NAME=SIZE1,SIZE2 with positive sizes, e.g. --dim batch=1,4")
            }
            dims[parts[0]] = values.compactMap { $0 }
        }
        return dims
    }

    /// `--profile batch=1:8:32 --profile seq=16:128:512`; one range per name.
    private func parsedProfile() throws(ValidationError) -> ShapeProfile {
        var ranges: [DimRange] = []
        for item in profiles {
            switch DimRange.parse(item) {
            case .success(let range):
                guard !ranges.contains(where: { $0.name == range.name }) else {
                    throw ValidationError("--profile \(item): \(range.name) has a range already; give each dim once")
                }
                ranges.append(range)
            case .failure(let error):
                throw ValidationError(error.description)
            }
        }
        return ShapeProfile(ranges)
    }

    private func request() async throws(TPATError) -> PipelineRequest {
        let criteria: NodeCriteria
        switch (choice.nodes, choice.opTypes, choice.auto) {
        case (let names?, nil, false): criteria = .names(split(names))
        case (nil, let types?, false): criteria = .opTypes(split(types))
        case (nil, nil, true): criteria = .auto
        default: throw .usage("choose the nodes with exactly one of --nodes, --op-types or --auto")
        }
        let chosenArch: String
        var buildArch: String?
        let arch = target.arch
        if let arch, arch != Toolchain.portableArch {
            chosenArch = arch
        } else if arch == nil, let detected = await Toolchain.detectArch() {
            chosenArch = detected
        } else {
            // No GPU here and no --arch (or --arch all): kernels for the lowest arch TensorRT
            // 10/11 runs on, built into one fatbin for every major arch from there up.
            chosenArch = Toolchain.portableKernelArch
            buildArch = "all-major"
            if arch == nil {
                Logger(label: "tpat").info("no GPU found and no --arch: kernels for \(chosenArch), built for every major arch from there up (one fatbin); pass --arch sm_XY for one GPU's code")
            }
        }
        try Toolchain.validateArch(chosenArch)
        var tuning: TuningOptions?
        let t = tuningOptions
        if t.tune {
            let db = t.tuningDB ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/tpat/tuning").path
            tuning = TuningOptions(trials: t.trials, trialsPerTask: t.trialsPerTask, timeBudgetSeconds: t.timeBudget, database: db, rpcTracker: t.rpcTracker, rpcKey: t.rpcKey)
        }
        let trt = (target.tensorRT ?? ProcessInfo.processInfo.environment["TENSORRT_DIR"]).map { URL(fileURLWithPath: $0) }
        var request = PipelineRequest(
            model: URL(fileURLWithPath: model), criteria: criteria, outputDirectory: URL(fileURLWithPath: output),
            kernels: KernelOptions(arch: chosenArch, tuning: tuning, cacheDirectory: kernelCacheDirectory()), target: PluginTargets.target(vendor: target.vendor, tensorRTAPI: target.tensorRTAPI), tensorRTDirectory: trt,
            build: !noBuild, force: force, referenceData: !noReference)
        request.sampleDims = (try? parsedSampleDims()) ?? [:]
        request.profile = (try? parsedProfile()) ?? ShapeProfile()
        request.sampleInputs = sampleInputs.map { URL(fileURLWithPath: $0) }
        request.buildArch = buildArch
        request.grouping = choice.fuse ? SubgraphGrouping.connected : .singleNodes
        return request
    }

    /// `--kernel-cache`, else $TPAT_KERNEL_CACHE (`off` turns it off), else ~/.cache/tpat/kernels.
    private func kernelCacheDirectory() -> String? {
        if cache.noKernelCache { return nil }
        if let dir = cache.kernelCache { return dir }
        switch ProcessInfo.processInfo.environment["TPAT_KERNEL_CACHE"] {
        case "off", "0", "": return nil
        case let dir?: return dir
        case nil: return KernelOptions.defaultCacheDirectory
        }
    }

    private func split(_ list: String) -> [String] {
        list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

/// The closing summary of `tpat generate`.
struct Summary {
    let report: PipelineReport

    var text: String {
        var lines: [String] = []
        // Node names, op types and the reasons that quote them come from the model: escaped, so
        // that no control character of theirs reaches the terminal.
        let e = TerminalText.escaped
        for p in report.plugins {
            let nodes = p.nodes.count == 1 ? e(p.nodes[0]) : "\(p.nodes.count) nodes: \(p.nodes.map(e).joined(separator: ", "))"
            lines.append("  \(p.name)  \(e(p.opType)) (\(nodes))  \(p.kernels) kernel(s), \(p.launches) step(s), \(String(format: "%.2f", p.generationSeconds)) s\(p.cached == true ? " (cached)" : ""), build: \(p.kernelBuild)")
            if let reason = p.referenceDataError {
                lines.append("    self-test has no reference data: \(e(reason))" + (p.referenceDataLog.map { " log: \(e($0))" } ?? ""))
            }
        }
        // Each reason once, with the nodes it stopped (report.json has every node's own message):
        // a 451-node run of one exported model fails for a handful of reasons.
        for group in FailureGroup.grouping(report.failures) {
            let f = group.failures[0]
            let nodes = group.failures.map(\.node)
            let shown = nodes.prefix(3).map(e).joined(separator: ", ") + (nodes.count > 3 ? ", and \(nodes.count - 3) more" : "")
            lines.append(
                "  FAILED \(nodes.count) node(s) (\(e(f.opType))) [\(e(f.errorClass))]: \(e(f.message))\n    \(shown)"
                    + (f.log.map { "\n    log: \(e($0))" } ?? ""))
        }
        let withoutData = report.plugins.filter { $0.referenceDataError != nil }.count
        var text = "tpat: \(report.plugins.count) plugin(s) for \(report.plugins.reduce(0) { $0 + $1.nodes.count }) node(s), \(report.failures.count) node(s) failed"
        if withoutData > 0 { text += ", \(withoutData) plugin(s) without self-test data" }
        text += ", \(String(format: "%.1f", report.totalSeconds)) s\n"
        text += lines.joined(separator: "\n") + "\n"
        if let model = report.outputModel { text += "model: \(e(model))\n" }
        if let logs = report.failureLogs { text += "nothing written; the report and the logs are in \(e(logs))\n" }
        if let reason = report.pluginLibrariesSkipped { text += "plugin libraries skipped: \(e(reason))\n" }
        if let trtexec = report.trtexecCommand { text += "TensorRT: \(e(trtexec))\n" }
        if let model = report.outputModel, !report.plugins.isEmpty {
            text += "check on a GPU: make -C \(e(URL(fileURLWithPath: model).deletingLastPathComponent().path)) check\n"
        }
        return text
    }
}

/// Failures that share a reason: the same op type, error class and message once the names it
/// quotes are set aside ('/model/rpn/Gather_4_output_0' and '/model/rpn/Gather_5_output_0' are
/// one reason).
struct FailureGroup {
    var failures: [NodeFailureReport]

    /// The groups, largest first, in report order among equals.
    static func grouping(_ failures: [NodeFailureReport]) -> [FailureGroup] {
        var order: [String] = []
        var groups: [String: [NodeFailureReport]] = [:]
        for f in failures {
            let key = [f.opType, f.errorClass, reason(f.message)].joined(separator: "\u{0}")
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(f)
        }
        return order.map { FailureGroup(failures: groups[$0]!) }.enumerated()
            .sorted { ($0.element.failures.count, -$0.offset) > ($1.element.failures.count, -$1.offset) }.map(\.element)
    }

    /// A message with its quoted names and numbers replaced, so that equal reasons compare equal.
    static func reason(_ message: String) -> String {
        var out = ""
        var quoted = false
        for ch in message {
            if ch == "'" {
                quoted.toggle()
                out.append(quoted ? "'…" : "'")
            } else if !quoted {
                out.append(ch.isNumber ? "#" : ch)
            }
        }
        return out
    }
}

/// A log handler that prints through another one with every control character of the message
/// escaped (TerminalText): log lines quote node names and tool output, which come from the model.
struct TerminalSafeLogHandler: LogHandler {
    var wrapped: StreamLogHandler

    init(_ wrapped: StreamLogHandler) {
        self.wrapped = wrapped
    }

    var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        event.message = "\(TerminalText.sanitized(event.message.description))"
        wrapped.log(event: event)
    }
}

/// Which nodes become plugins, and whether connected ones make one plugin together.
struct NodeChoiceOptions: ParsableArguments {
    @Option(help: "Nodes to replace, by the names `tpat inspect` shows (comma-separated); a name with * or ? is a pattern for every node it matches (`/encoder/layer.0/act/*`).")
    var nodes: String?

    @Option(name: .customLong("op-types"), help: "Replace every node of these op types (comma-separated).")
    var opTypes: String?

    @Flag(help: "Replace every node TensorRT's ONNX parser cannot run natively and TVM can.")
    var auto = false

    @Flag(help: "Make one plugin of each connected group of the chosen nodes (a decomposed GELU or LayerNorm: its Div, Erf, Add and Mul nodes), whose kernels TVM fuses, instead of one plugin per node.")
    var fuse = false
}

/// The GPU the kernels are for and the vendor library the plugins are for.
struct TargetOptions: ParsableArguments {
    @Option(help: "CUDA arch, e.g. sm_90; `all` for one fatbin that runs on every GPU TensorRT 10/11 runs on (sm_75 and newer); default: the GPU on this machine, else `all`.")
    var arch: String?

    @Option(help: "The vendor library the plugins are for.")
    var vendor: VendorLibrary = .tensorrt

    @Option(name: .customLong("tensorrt-api"), help: "v3 (IPluginV3, TensorRT 10/11) or v2 (IPluginV2DynamicExt, TensorRT 8.x).")
    var tensorRTAPI: TensorRTAPI = .v3

    @Option(name: .customLong("tensorrt"), help: "TensorRT folder (include/, lib/) to build the plugin libraries; default $TENSORRT_DIR.")
    var tensorRT: String?
}

/// MetaSchedule tuning on the local GPU or on TVM's RPC servers.
struct TuningArguments: ParsableArguments {
    @Flag(help: "Tune each node with TVM MetaSchedule on the local GPU.")
    var tune = false

    @Option(help: "Tuning: total trials per node.")
    var trials: Int = 2000

    @Option(name: .customLong("trials-per-task"), help: "Tuning: trials per task.")
    var trialsPerTask: Int?

    @Option(name: .customLong("time-budget"), help: "Tuning: seconds per node at most.")
    var timeBudget: Int?

    @Option(name: .customLong("tuning-db"), help: "Tuning database folder; default ~/.cache/tpat/tuning.")
    var tuningDB: String?

    @Option(name: .customLong("rpc-tracker"), help: "Tuning: HOST:PORT of a TVM RPC tracker.")
    var rpcTracker: String?

    @Option(name: .customLong("rpc-key"), help: "Tuning: device key at the RPC tracker.")
    var rpcKey: String?
}

/// Where generated kernels are kept for later runs.
struct CacheArguments: ParsableArguments {
    @Option(name: .customLong("kernel-cache"), help: "Kernel cache folder (nodes generated before, tuned ones with the same tuning database, are reused without TVM); default $TPAT_KERNEL_CACHE or ~/.cache/tpat/kernels.")
    var kernelCache: String?

    @Flag(name: .customLong("no-kernel-cache"), help: "Run TVM for every node, neither reading nor filling the kernel cache.")
    var noKernelCache = false
}

extension TensorRTAPI: ExpressibleByArgument {}
extension VendorLibrary: ExpressibleByArgument {}
