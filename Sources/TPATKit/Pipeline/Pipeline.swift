import Foundation
import Logging

/// What `tpat generate` is asked to do.
public struct PipelineRequest: Sendable {
    /// The input ONNX model (never modified).
    public var model: URL
    /// Which nodes become plugins.
    public var criteria: NodeCriteria
    /// Whether each chosen node becomes a plugin of its own, or connected chosen nodes one
    /// plugin together (`--fuse`).
    public var grouping: SubgraphGrouping = .singleNodes
    /// The output folder (`out/`).
    public var outputDirectory: URL
    /// The rewritten model's file name inside the output folder.
    public var outputModelName: String
    /// Kernel options: CUDA arch and tuning.
    public var kernels: KernelOptions
    /// The vendor library and interface the plugins are made for (``PluginTargets``).
    public var target: any PluginTarget
    /// A TensorRT installation (include/, lib/) to build the plugin libraries against; nil skips them.
    public var tensorRTDirectory: URL?
    /// Whether to build with nvcc (kernels, self-tests, and plugin libraries when TensorRT is given).
    public var build: Bool
    /// Replace an existing output folder.
    public var force: Bool
    /// Values each symbolic dim takes in the self-test cases (two cases by default), where a
    /// plugin's inputs cannot come from the model run whole.
    public var symbolicTestValues: [Int64]
    /// Values of the model's own symbolic dims in the self-test cases (`--dim batch=1,4`: case k
    /// takes the k-th value, the last one repeating); dims not given get values that suit them.
    public var sampleDims: [String: [Int64]] = [:]
    /// A `.npz` file of the model's inputs (`--inputs`): one self-test case from exactly these.
    public var sampleInputs: URL? = nil
    /// The ranges of the model's symbolic dims in deployment (`--profile`): each plugin gets a
    /// launch plan compiled (and, with tuning, tuned) for the optimum beside its generic one, its
    /// self-test runs at the optimum and the minimum (where `--dim` does not say), and the
    /// trtexec line gets the profile's shapes.
    public var profile = ShapeProfile()

    /// The self-test sizes of the model's symbolic dims: `--dim`'s, else the profile's.
    var testDims: [String: [Int64]] { profile.testSizes.merging(sampleDims) { _, given in given } }
    /// What the build compiles for when not the kernels' arch (`all-major`: one fatbin for
    /// every major arch, when there is no GPU to read the arch from and no `--arch`).
    public var buildArch: String? = nil
    /// Whether to compute self-test data with ONNX Runtime (off for huge nodes whose data would
    /// not travel, or when the caller supplies its own, as the conformance runner does).
    public var referenceData: Bool

    /// Creates a request.
    public init(
        model: URL, criteria: NodeCriteria, outputDirectory: URL, outputModelName: String = "model.tpat.onnx",
        kernels: KernelOptions, target: any PluginTarget = TensorRTTarget(), tensorRTDirectory: URL? = nil, build: Bool = true,
        force: Bool = false, symbolicTestValues: [Int64] = [3, 8], referenceData: Bool = true
    ) {
        self.referenceData = referenceData
        self.model = model
        self.criteria = criteria
        self.outputDirectory = outputDirectory
        self.outputModelName = outputModelName
        self.kernels = kernels
        self.target = target
        self.tensorRTDirectory = tensorRTDirectory
        self.build = build
        self.force = force
        self.symbolicTestValues = symbolicTestValues
    }
}

/// One generated plugin, as the report gives it.
public struct PluginReport: Codable, Sendable, Equatable {
    public var name: String
    public var opType: String
    /// Every node this plugin replaces (identical nodes, or identical fused parts, share one plugin).
    public var nodes: [String]
    public var directory: String
    public var kernels: Int
    public var launches: Int
    public var constants: Int
    public var generationSeconds: Double
    /// `built`, `failed` or `skipped`.
    public var kernelBuild: String
    /// The TensorRT plugin library, when built.
    public var library: String?
    /// The self-test program, when built.
    public var selfTest: String?
    public var buildLog: String?
    /// Tuning figures (tuned and untuned kernel times), with `--tune`.
    public var tuning: TuningReport? = nil
    /// True when the kernels came from the kernel cache (generated before).
    public var cached: Bool? = nil
    /// True when the kernel object and self-test came from the build cache (built before).
    public var buildCached: Bool? = nil
    /// Why the self-test has no reference data (ONNX Runtime could not run the node, ...); nil
    /// when it has, or when none was asked for (`--no-reference`). The plugin itself is fine.
    public var referenceDataError: String? = nil
    /// The log of the reference-data run that failed (kept in the output folder).
    public var referenceDataLog: String? = nil
}

/// A node (or a fused part) that did not become a plugin, and why.
public struct NodeFailureReport: Codable, Sendable, Equatable {
    /// The node's name, or the part's (``Subgraph/name``).
    public var node: String
    public var opType: String
    public var errorClass: String
    public var message: String
    public var log: String?
    /// A fused part's nodes, in graph order; nil for a single node.
    public var nodes: [String]? = nil
}

/// What `tpat generate` produced; also written as `report.json`.
public struct PipelineReport: Codable, Sendable, Equatable {
    public var inputModel: String
    /// The rewritten model; nil when no node became a plugin.
    public var outputModel: String?
    public var arch: String
    /// The plugin interface of the target's vendor library (`v3`, `v2`).
    public var tensorRTAPI: String
    /// The vendor library the plugins are for (`tensorrt`).
    public var vendor: String? = nil
    public var plugins: [PluginReport]
    public var failures: [NodeFailureReport]
    /// Nodes the criteria matched that stay native (shape arithmetic), with the reason.
    public var skipped: [SkippedNode] = []
    /// Why the TensorRT plugin libraries were not built, if they were not.
    public var pluginLibrariesSkipped: String?
    /// The trtexec command that builds an engine from the new model with the plugins.
    public var trtexecCommand: String?
    /// Wall-clock seconds of each phase: `kernels` (the TVM bridge, its import included),
    /// `reference` (ONNX Runtime self-test data), `render`, `build` (nvcc), `rewrite`.
    public var phaseSeconds: [String: Double]
    public var totalSeconds: Double
    /// When no node became a plugin: the folder (`OUT.failed/`) that holds this report and the
    /// logs of the failed nodes; OUT itself is then left as it was.
    public var failureLogs: String? = nil

    /// The plugins' folders.
    public var pluginPaths: [String] { plugins.map(\.directory) }
}

/// The whole pipeline: load -> select -> extract -> kernels (TVM) -> render -> build -> rewrite.
///
/// Everything is written into a temporary folder beside the output folder and moved into place
/// at the end, so a failure leaves no half-written output.
public struct Pipeline: Sendable {
    let toolchain: Toolchain
    let logger: Logger

    /// Creates a pipeline over a toolchain.
    public init(toolchain: Toolchain, logger: Logger = Logger(label: "tpat")) {
        self.toolchain = toolchain
        self.logger = logger
    }

    /// Runs the pipeline. Throws for bad input (nothing written); per-node failures are in the report.
    public func run(_ request: PipelineRequest) async throws(TPATError) -> PipelineReport {
        let start = Date()
        let cancellation = Cancellation.shared
        // The output rules are checked before any work: a refused OUT costs nothing, and nothing
        // of the user's is ever at risk (OutputFolder says which rules).
        try OutputFolder.checkRequested(request.outputDirectory.standardizedFileURL, force: request.force)
        var model: ONNXModel
        do { model = try ONNXModel.load(contentsOf: request.model) } catch { throw .usage(error.description) }
        let unknownDims = request.profile.unknownNames(in: model)
        if !unknownDims.isEmpty {
            let known = ShapeProfile.symbolNames(in: model)
            throw .usage(
                "--profile names \(unknownDims.map { "'\(TerminalText.escaped($0))'" }.joined(separator: ", ")), which no input of the model has as a dim; "
                    + (known.isEmpty ? "the model's inputs have no named symbolic dims" : "its inputs' symbolic dims are \(known.map(TerminalText.escaped).joined(separator: ", "))"))
        }
        let output = try OutputFolder(request.outputDirectory, protecting: OutputFolder.protectedFiles(of: model, at: request.model))
        let tables = try OpSupportTables.bundled()
        var graphs = ModelGraphs(model: model)
        let selection = try NodeSelector(tables: tables).select(request.criteria, grouping: request.grouping, in: graphs)
        let selected = selection.nodes
        var parts = selection.subgraphs
        for warning in selection.warnings { logger.warning("\(warning)") }
        if let first = selection.skipped.first {
            // report.json lists each one; the terminal gets one line
            logger.info("left out \(selection.skipped.count) node(s) that must stay native in TensorRT (e.g. \(TerminalText.escaped(first.node)): \(first.reason); report.json lists them)")
        }
        guard !parts.isEmpty else {
            if !selection.skipped.isEmpty {
                throw .usage("nothing to replace: each of the \(selection.skipped.count) matching node(s) must stay native in TensorRT (\(selection.skipped[0].node): \(selection.skipped[0].reason)); name nodes with --nodes to replace them anyway")
            }
            throw .usage("nothing to replace: TensorRT's ONNX parser runs every node of this model natively, within its documented limits; to replace nodes anyway, name them with --nodes or --op-types")
        }
        logger.info("selected \(selected.count) node(s): \(selected.map { TerminalText.escaped($0.name) }.joined(separator: ", "))")
        for part in parts where !part.isSingleNode {
            logger.info("fusing \(TerminalText.escaped(part.name)) (\(TerminalText.escaped(part.opType))) into one plugin")
        }
        if ShapeInference.isNeeded(for: selected, in: graphs) {
            logger.info("relating the dims of the model: running shape inference")
            model = try await ShapeInference(toolchain: toolchain).fillMissingTypes(of: model, source: request.model)
            graphs = ModelGraphs(model: model)
            parts = parts.map { part in
                var refreshed = part
                for m in refreshed.members.indices {
                    let node = refreshed.members[m]
                    refreshed.members[m].node = graphs.entry(at: node.path)?.index.graph.node[node.index] ?? node.node
                }
                return refreshed
            }
        }

        try cancellation.checkCancelled()
        // The staging folder is registered before it exists: a signal from then on removes it.
        let (work, createdParents) = output.plannedStaging()
        try cancellation.track(stagingFolder: work, createdParents: createdParents)
        // Whatever is still in the staging folder at the end (nothing after a commit) goes, and so
        // do the parent folders this run created, if it left them empty.
        defer { cancellation.removeStagingFolder(work) }
        try output.createStaging(work)
        do {
            return try await produce(
                request, model: model, graphs: graphs, parts: parts, skipped: selection.skipped, output: output, work: work, start: start)
        } catch {
            throw keepingEvidence(of: error, output: output, staging: work)
        }
    }

    /// The run from the staging folder on: extraction, kernels, reference data, rendering, build,
    /// rewrite, and the move into place (OUT, or OUT.failed/ when no node became a plugin).
    private func produce(
        _ request: PipelineRequest, model: ONNXModel, graphs: ModelGraphs, parts: [Subgraph], skipped: [SkippedNode],
        output: OutputFolder, work: URL, start: Date
    ) async throws(TPATError) -> PipelineReport {
        let fm = FileManager.default
        let out = output.url
        let cancellation = Cancellation.shared
        // Extract, and give identical parts one plugin.
        let extractor = NodeExtractor(
            model: model, graphs: graphs,
            carriers: request.target.boundaryCarriers)
        var groups: [(name: String, nodes: [ExtractedSubgraph])] = []
        var groupBySignature: [Data: Int] = [:]
        var naming = PluginNaming()
        // A node that cannot be cut out (a type shape inference could not find) fails alone.
        var extractionFailures: [NodeFailureReport] = []
        for part in parts {
            let extracted: ExtractedSubgraph
            do { extracted = try extractor.extract(part) } catch {
                let reason: String = if case .node(_, let why) = error { why } else { error.description }
                extractionFailures.append(NodeFailureReport(
                    node: part.name, opType: part.opType, errorClass: "extraction", message: reason, log: nil,
                    nodes: part.isSingleNode ? nil : part.members.map(\.name)))
                logger.debug("node \(TerminalText.escaped(part.name)) (\(TerminalText.escaped(part.opType))): \(TerminalText.escaped(reason))")
                continue
            }
            if let g = groupBySignature[extracted.signature] {
                groups[g].nodes.append(extracted)
            } else {
                groupBySignature[extracted.signature] = groups.count
                groups.append((naming.name(for: part.members[0].name), [extracted]))
            }
        }

        // Kernels from TVM, one bridge process for all plugins.
        var jobs: [KernelJob] = []
        for group in groups {
            let dir = work.appendingPathComponent("plugins/\(group.name)")
            let subModel = dir.appendingPathComponent("node.onnx")
            do {
                try fm.createDirectory(at: dir, withIntermediateDirectories: true)
                try ONNXModel(proto: group.nodes[0].subModel, baseDirectory: dir).write(to: subModel)
            } catch {
                throw .tool(name: "extraction", reason: "cannot write plugins/\(group.name)/node.onnx: \(error)")
            }
            let first = group.nodes[0]
            let specialization = Self.specialization(of: first, at: request.profile)
            if let missing = specialization.missing {
                logger.info("plugin \(group.name) gets no specialized launch plan: its dim '\(TerminalText.escaped(missing))' has no size at the --profile optimum")
            }
            // The optimum, then the maximum (a sequence padded to its longest); the minimum keeps
            // the generic plan, which the self-test's second size then runs.
            var points: [[String: Int64]] = []
            for sizes in [specialization.sizes, Self.specialization(of: first, at: request.profile, point: \.max).sizes] {
                if let sizes, !points.contains(sizes) { points.append(sizes) }
            }
            jobs.append(KernelJob(
                id: group.name, subModel: subModel, outDir: dir, kernelPrefix: group.name + "_",
                node: KernelManifest.NodeInfo(name: first.name, opType: first.opType, domain: first.domain),
                specializations: points))
        }
        logger.info("generating kernels with TVM for \(jobs.count) plugin(s), arch \(request.kernels.arch)")
        var phases: [String: Double] = [:]
        var phaseStart = Date()
        func endPhase(_ name: String) {
            phases[name] = Date().timeIntervalSince(phaseStart)
            phaseStart = Date()
        }
        let results = try await TVMBridge(toolchain: toolchain).compile(jobs, options: request.kernels, workDirectory: work)

        var made: [(name: String, nodes: [ExtractedSubgraph], manifest: KernelManifest, directory: URL, seconds: Double, tuning: TuningReport?, cached: Bool)] = []
        var failures = extractionFailures
        for (group, result) in zip(groups, results) {
            switch result.outcome {
            case .success(let (manifest, directory)):
                made.append((group.name, group.nodes, manifest, directory, result.seconds, result.tuning, result.cached))
            case .failure(let failure):
                let log = failure.log.map { relocate($0, from: work, to: out) }
                for node in group.nodes {
                    failures.append(NodeFailureReport(node: node.name, opType: node.opType, errorClass: failure.errorClass, message: failure.message, log: log, nodes: node.fusedNodeNames))
                }
                // the closing summary gives each failure once, grouped by reason
                logger.debug("node \(group.nodes.map { TerminalText.escaped($0.name) }.joined(separator: ", ")) (\(TerminalText.escaped(group.nodes[0].opType))): \(failure.message)")
            }
        }

        // Each weight once in OUT: node.onnx points at the constant files its kernels embed.
        for plugin in made {
            guard let shared = SharedWeights.sharing(plugin.nodes[0].subModel, constants: plugin.manifest.constants, in: plugin.directory) else { continue }
            do {
                try ONNXModel(proto: shared, baseDirectory: plugin.directory).serializedData()
                    .write(to: plugin.directory.appendingPathComponent("node.onnx"), options: .atomic)
            } catch {
                throw .tool(name: "extraction", reason: "cannot write plugins/\(plugin.name)/node.onnx: \(error)")
            }
        }
        endPhase("kernels")
        try cancellation.checkCancelled()
        // Self-test data (ONNX Runtime on the CPU), plugin sources, Makefile. A plugin whose data
        // cannot be made is still generated: its self-test has no reference data, and says why.
        let renderer = try PluginRenderer()
        let kernelsIDs = Dictionary(made.map { ($0.name, PluginModel.fingerprint($0.manifest)) }, uniquingKeysWith: { a, _ in a })
        let pluginNamespace = PluginNaming.namespace(plugins: kernelsIDs.map { ($0.key, $0.value) })
        var referenceFailures: [String: ReferenceFailure] = [:]
        if request.referenceData {
            let captured = await captureInputs(
                request, plugins: made.map { ($0.name, $0.nodes[0].inputs.map(\.value)) }, work: work)
            referenceFailures = try await writeReferences(
                for: made.map {
                    ($0.name, $0.directory, $0.nodes[0].symbols, $0.nodes[0].subModel.graph.input.compactMap { TensorType($0.type) },
                     $0.manifest.sizeOutputs.map { ReferenceBatch.Job.SizeOutput(output: $0.output, dim: $0.dim) })
                },
                values: request.symbolicTestValues, sampleDims: request.testDims, captured: captured)
            keepModelInputs(captured, in: work)
            try? fm.removeItem(at: work.appendingPathComponent(Self.captureFolder))
            for plugin in made {
                guard let failure = referenceFailures[plugin.name] else { continue }
                logger.debug(
                    "plugin \(plugin.name) (\(plugin.nodes.map { TerminalText.escaped($0.name) }.joined(separator: ", "))): its self-test has no reference data: \(failure.reason)")
            }
        }
        try cancellation.checkCancelled()
        endPhase("reference")
        var rendered = made
        rendered.removeAll()
        for plugin in made {
            do {
                let files = try request.target.renderPlugin(
                    plugin.manifest, name: plugin.name, namespace: pluginNamespace, buildArch: request.buildArch, renderer: renderer)
                try files.write(to: plugin.directory)
                try Self.writePlacedManifest(plugin.manifest, kernelSource: PluginRenderer.kernelSourceName(pluginName: plugin.name), in: plugin.directory)
                rendered.append(plugin)
            } catch {
                // A manifest the chosen plugin API cannot express fails this plugin alone.
                for node in plugin.nodes {
                    failures.append(NodeFailureReport(node: node.name, opType: node.opType, errorClass: "render", message: error.description, log: nil, nodes: node.fusedNodeNames))
                }
                logger.debug("plugin \(plugin.name): \(error.description)")
            }
        }
        made = rendered
        if !made.isEmpty {
            let makefile = try request.target.renderMakefile(
                made.map { MakefilePlugin(name: $0.name, manifest: $0.manifest) }, buildArch: request.buildArch,
                nvcc: (try? PluginBuilder(toolchain: toolchain, tensorRTDirectory: nil))?.makefileNVCC, renderer: renderer)
            do { try Data(makefile.utf8).write(to: work.appendingPathComponent("Makefile")) } catch {
                throw .tool(name: "render", reason: "cannot write the Makefile: \(error)")
            }
        }

        endPhase("render")
        // Build.
        var builds: [String: PluginBuildResult] = [:]
        var librariesSkipped: String?
        if request.build, !made.isEmpty {
            let builder = try PluginBuilder(
                toolchain: toolchain, tensorRTDirectory: request.tensorRTDirectory,
                cache: request.kernels.cacheDirectory.map { BuildCache(root: URL(fileURLWithPath: $0).appendingPathComponent(BuildCache.folderName)) })
            librariesSkipped = builder.pluginLibrariesSkippedReason
            builds = await builder.build(plugins: made.map(\.name), in: work)
            // make reports a build it could not finish when a signal stopped it: not a build failure.
            try cancellation.checkCancelled()
            for (name, build) in builds where !build.succeeded {
                builds[name]?.message = Self.buildFailureMessage(build, plugin: name)
            }
            for (name, build) in builds.sorted(by: { $0.key < $1.key }) where !build.succeeded {
                // The log's final place (OUT or OUT.failed/) is known only at the end: the summary names it.
                logger.debug("plugin \(name) failed to build: \(build.message)")
            }
        } else if !request.build {
            librariesSkipped = "the build was turned off (--no-build)"
        }

        endPhase("build")
        // Rewrite the model: every node of a successfully generated plugin (and built, when building).
        var replacements: [NodeReplacement] = []
        var plugins: [PluginReport] = []
        for plugin in made {
            let build = builds[plugin.name]
            let buildFailed = build.map { !$0.succeeded } ?? false
            if !buildFailed {
                for node in plugin.nodes {
                    replacements.append(NodeReplacement(
                        nodeIndices: node.nodeIndices, path: node.path, pluginName: plugin.name, pluginVersion: PluginOptions().pluginVersion,
                        pluginNamespace: pluginNamespace, kernelsID: kernelsIDs[plugin.name], inputs: node.inputs, outputs: node.outputs))
                }
            } else {
                for node in plugin.nodes {
                    failures.append(NodeFailureReport(
                        node: node.name, opType: node.opType, errorClass: "compile", message: build?.message ?? "build failed",
                        log: build.map { relocate($0.log.path, from: work, to: out) }, nodes: node.fusedNodeNames))
                }
            }
            let rel = "plugins/\(plugin.name)"
            plugins.append(PluginReport(
                name: plugin.name, opType: plugin.nodes[0].opType, nodes: plugin.nodes.flatMap(\.nodeNames),
                directory: out.appendingPathComponent(rel).path, kernels: plugin.manifest.kernels.count,
                launches: plugin.manifest.launches.count, constants: plugin.manifest.constants.count,
                generationSeconds: plugin.seconds,
                kernelBuild: build.map { $0.succeeded ? "built" : "failed" } ?? "skipped",
                library: build?.library.map { relocate($0.path, from: work, to: out) },
                selfTest: build?.selfTest.map { relocate($0.path, from: work, to: out) },
                buildLog: build.map { relocate($0.log.path, from: work, to: out) }, tuning: plugin.tuning,
                cached: plugin.cached ? true : nil, buildCached: build?.cached == true ? true : nil,
                referenceDataError: referenceFailures[plugin.name]?.reason,
                referenceDataLog: referenceFailures[plugin.name]?.log.map { relocate($0.path, from: work, to: out) }))
        }
        var outputModel: URL?
        if !replacements.isEmpty {
            let rewritten = ModelRewriter().rewrite(model, replacements: replacements)
            let target = work.appendingPathComponent(request.outputModelName)
            do { try rewritten.write(to: target) } catch { throw .tool(name: "rewrite", reason: error.description) }
            // The plugin host checks the libraries with the fields these nodes carry.
            try request.target.writeHostCheck(
                plugins: made.map { ($0.name, $0.manifest) }, replacements: replacements, into: work, renderer: renderer,
                modelName: request.outputModelName)
            outputModel = out.appendingPathComponent(request.outputModelName)
        }
        endPhase("rewrite")
        let libraries = plugins.compactMap(\.library)
        let shapes = request.profile.isEmpty ? (options: [], inputsWithoutRange: []) : request.profile.trtexecShapes(for: model)
        if !shapes.inputsWithoutRange.isEmpty {
            logger.warning("the trtexec line gives no shapes for \(shapes.inputsWithoutRange.map(TerminalText.escaped).joined(separator: ", ")): a symbolic dim of theirs has no --profile range")
        }
        let trtexec = outputModel.map { model in
            Self.trtexecCommand(model: model.path, libraries: libraries, pluginNames: plugins.map(\.name)) +
                shapes.options.map { " " + $0 }.joined()
        }
        var report = PipelineReport(
            inputModel: request.model.path, outputModel: outputModel?.path, arch: request.kernels.arch,
            tensorRTAPI: request.target.interface, vendor: request.target.vendor.rawValue, plugins: plugins, failures: failures, skipped: skipped,
            pluginLibrariesSkipped: librariesSkipped, trtexecCommand: trtexec, phaseSeconds: phases, totalSeconds: 0)
        report.totalSeconds = Date().timeIntervalSince(start)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try cancellation.checkCancelled()
        guard outputModel != nil else {
            // No node became a plugin: OUT stays as it was (an earlier good run's output is not
            // replaced by nothing); the report and the logs go to OUT.failed/.
            let destination = output.evidenceDestination()
            report = report.replacingPathPrefix(out.path, with: destination.path)
            report.failureLogs = destination.path
            let data: Data
            do { data = try encoder.encode(report) } catch { throw .tool(name: "output", reason: "cannot encode report.json: \(error)") }
            _ = try cancellation.commit(stagingFolder: work, destination: destination) { () throws(TPATError) -> URL? in
                try output.keepEvidence(from: work, at: destination, files: ["report.json": data], evenWithoutLogs: true)
            }
            return report
        }
        do { try encoder.encode(report).write(to: work.appendingPathComponent("report.json")) } catch {
            throw .tool(name: "output", reason: "cannot write report.json: \(error.localizedDescription)")
        }
        try cancellation.commit(stagingFolder: work, destination: out) { () throws(TPATError) in try output.replace(with: work) }
        return report
    }

    /// A thrown error after the staging folder was made: the logs written so far (the bridge's,
    /// ONNX Runtime's, nvcc's) are moved to OUT.failed/ with the message in `error.txt`, and the
    /// message names their new place; it never names a path in the staging folder, which is removed.
    private func keepingEvidence(of error: TPATError, output: OutputFolder, staging: URL) -> TPATError {
        let cancellation = Cancellation.shared
        if case .interrupted = error { return error }
        if let signal = cancellation.signal { return .interrupted(signal: signal) }
        let destination = output.evidenceDestination()
        do throws(TPATError) {
            let message = error.replacingPath(staging.path, with: destination.path).description
            let kept = try cancellation.commit(stagingFolder: staging, destination: destination) { () throws(TPATError) -> URL? in
                try output.keepEvidence(from: staging, at: destination, files: ["error.txt": Data((message + "\n").utf8)], evenWithoutLogs: false)
            }
            if let kept {
                logger.info("the logs of this run are in \(kept.path)")
                return error.replacingPath(staging.path, with: kept.path)
            }
        } catch {
            if case .interrupted = error { return error }
            return error.replacingPath(staging.path, with: output.url.path + " (not kept: \(error.description))")
        }
        // Nothing to keep: a path in the staging folder is named as where it was to be in OUT.
        return error.replacingPath(staging.path, with: output.url.path)
    }

    /// A build failure's message with its reason in it: the builder's own, unless that points at
    /// the log without quoting it, then the log's last meaningful line.
    /// Replaces the bridge's manifest.json in a plugin folder by the output folder's copy: the
    /// same document without the CUDA source, which the rendered `kernelSource` already holds
    /// (for a large model, the second copy was about 6% of OUT).
    static func writePlacedManifest(_ manifest: KernelManifest, kernelSource: String, in directory: URL) throws(TPATError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            try encoder.encode(manifest.placed(sourceIn: kernelSource))
                .write(to: directory.appendingPathComponent("manifest.json"), options: .atomic)
        } catch {
            throw .installation("cannot write \(directory.appendingPathComponent("manifest.json").path): \(error.localizedDescription)")
        }
    }

    static func buildFailureMessage(_ build: PluginBuildResult, plugin: String) -> String {
        guard build.message.hasSuffix("see the log") else { return build.message }
        return "nvcc failed for plugin \(plugin): " + (LogExcerpt.lastMeaningfulLine(ofFile: build.log) ?? "make stopped and its log says nothing more")
    }

    /// The sizes to compile a plugin's specialized launch plan for: the profile's `point` (its
    /// optimum unless told) of every symbolic dim of its sub-model's inputs, where a dim shape
    /// inference derived from the model's dims (`past_sequence + sequence`) gets its value at
    /// that point; nil, with the dim that stops it, when the profile leaves one of them out (the
    /// plan would not be static) or the inputs have none.
    static func specialization(of part: ExtractedSubgraph, at profile: ShapeProfile,
                               point: KeyPath<DimRange, Int64> = \.opt) -> (sizes: [String: Int64]?, missing: String?) {
        guard !profile.isEmpty else { return (nil, nil) }
        var sizes: [String: Int64] = [:]
        for input in ShapeProfile.symbolicInputs(of: part.subModel.graph) {
            for dim in input.dims {
                guard case .symbolic(let name) = dim else {
                    if case .unknown = dim { return (nil, "an unnamed dim of \(input.name)") }
                    continue
                }
                let origin = part.symbolOrigins[name] ?? name
                guard let size = NodeExtractor.size(of: origin, sizes: { profile.range(of: $0)?[keyPath: point] }) else {
                    return (nil, origin)
                }
                sizes[name] = size
            }
        }
        return sizes.isEmpty ? (nil, nil) : (sizes, nil)
    }

    /// The trtexec command line for the rewritten model and its plugin libraries.
    static func trtexecCommand(model: String, libraries: [String], pluginNames: [String]) -> String {
        var parts = ["trtexec", "--onnx=\(model)"]
        // Both APIs' libraries register through their entry points (getCreators /
        // getPluginCreators), which trtexec calls only for --dynamicPlugins (8.6's --plugins and
        // 10's --staticPlugins merely dlopen the library).
        let flag = "--dynamicPlugins"
        if libraries.isEmpty {
            let out = URL(fileURLWithPath: model).deletingLastPathComponent().path
            parts += pluginNames.map { "\(flag)=\(out)/\(PluginRenderer.libraryPath(pluginName: $0))" }
        } else {
            parts += libraries.map { "\(flag)=\($0)" }
        }
        return parts.joined(separator: " ")
    }

    private func relocate(_ path: String, from work: URL, to out: URL) -> String {
        path.hasPrefix(work.path) ? out.path + path.dropFirst(work.path.count) : path
    }

    /// Why a plugin's self-test has no reference data, and the log that tells more.
    struct ReferenceFailure {
        var reason: String
        var log: URL?
    }

    /// Runs the bridge's `reference` command for each plugin: one case per symbolic value (one
    /// case when the node has no symbolic dims), then writes `test/reference.json` listing them.
    /// Returns the plugins whose data could not be made, with why; throws only when interrupted.
    /// The staging folder's scratch folder for the values captured from the model (removed once
    /// the reference data is written: only the plugins' own test data stays in OUT).
    static let captureFolder = ".capture"

    /// The most bytes of captured inputs one self-test case of a plugin carries.
    static let capturedInputBudget = 16 << 20

    /// The bytes of a plugin's inputs with every symbolic dim at `symbolValue`.
    static func inputBytes(_ inputs: [TensorType], symbolValue: Int64) -> Int {
        inputs.reduce(0) { total, type in
            let elements = (type.shape ?? []).reduce(Int64(1)) { n, dim in
                switch dim {
                case .fixed(let size): n.multipliedReportingOverflow(by: max(size, 0)).overflow ? .max : n * max(size, 0)
                case .symbolic, .unknown: n.multipliedReportingOverflow(by: symbolValue).overflow ? .max : n * symbolValue
                }
            }
            let bytes = type.elementType?.byteCount(elements: Int(clamping: elements)) ?? Int(clamping: elements)
            return total.addingReportingOverflow(bytes).overflow ? .max : total + bytes
        }
    }

    /// The folder of the output's model inputs (`<case>.npz`): the inputs the self-tests' data
    /// came from, which the whole-model check (host/verify_model.py) runs both models on.
    static let modelInputsFolder = "host/inputs"

    /// Moves the model inputs of each captured case into ``modelInputsFolder``, each at most
    /// ``capturedInputBudget`` bytes (a model of huge inputs keeps none: the check then draws).
    private func keepModelInputs(_ captured: CaptureResult?, in work: URL) {
        let fm = FileManager.default
        let folder = work.appendingPathComponent(Self.modelInputsFolder)
        for (caseName, path) in (captured?.modelInputs ?? [:]).sorted(by: { $0.key < $1.key }) {
            let source = URL(fileURLWithPath: path)
            guard let size = (try? fm.attributesOfItem(atPath: source.path))?[.size] as? Int, size <= Self.capturedInputBudget else { continue }
            do {
                try fm.createDirectory(at: folder, withIntermediateDirectories: true)
                try fm.moveItem(at: source, to: folder.appendingPathComponent("\(caseName).npz"))
            } catch {
                logger.info("whole-model check: cannot keep the inputs of \(caseName): \(error.localizedDescription); the check draws its inputs")
            }
        }
    }

    /// Runs the original model in ONNX Runtime, once per self-test case, and keeps each plugin's
    /// real inputs. nil when the model cannot run there (the self-tests then draw their inputs).
    private func captureInputs(
        _ request: PipelineRequest, plugins: [(name: String, values: [String])], work: URL
    ) async -> CaptureResult? {
        let caseCount = max(1, request.symbolicTestValues.count)
        let cases = (0..<caseCount).map { k in
            CaptureRequest.Case(name: "case\(k)", dims: request.testDims.compactMapValues { $0.isEmpty ? nil : $0[min(k, $0.count - 1)] })
        }
        let capture = CaptureRequest(
            model: request.model.standardizedFileURL.path, seed: 1000, cases: cases, inputs: request.sampleInputs?.standardizedFileURL.path,
            plugins: plugins.map { CaptureRequest.Plugin(id: $0.name, values: $0.values) })
        do {
            let result = try await ModelCapture(toolchain: toolchain).run(capture, in: work.appendingPathComponent(Self.captureFolder))
            for failed in result.cases where failed.error != nil {
                logger.info("self-test data: ONNX Runtime could not run the whole model (\(failed.name)): \(failed.error!); those self-tests draw their inputs")
            }
            return result
        } catch {
            logger.info("self-test data: \(error.description); the self-tests draw their inputs")
            return nil
        }
    }

    private func writeReferences(
        for plugins: [(name: String, directory: URL, symbols: [String], inputs: [TensorType], sizeOutputs: [ReferenceBatch.Job.SizeOutput])],
        values: [Int64], sampleDims: [String: [Int64]], captured: CaptureResult?
    ) async throws(TPATError) -> [String: ReferenceFailure] {
        struct Job: Sendable {
            var plugin: String; var directory: URL; var caseName: String; var dims: [String: Int64]; var inputs: URL?; var seed: Int
            var sizeOutputs: [ReferenceBatch.Job.SizeOutput]
        }
        var jobs: [Job] = []
        for plugin in plugins {
            // Inputs captured from the model where there are some: consistent sizes, valid
            // indices, real value ranges. A plugin with no symbolic dim needs one case.
            // Real data can be large (a detection head's 1000 proposals of 256x7x7): a case over
            // the budget is drawn at the small test sizes instead, so OUT stays small.
            let capturedCases = (captured?.cases ?? []).compactMap { c -> (String, URL)? in
                guard (captured?.bytes[plugin.name]?[c.name] ?? .max) <= Self.capturedInputBudget else { return nil }
                return captured?.inputs(of: plugin.name, in: c.name).map { (c.name, $0) }
            }
            if !capturedCases.isEmpty {
                for (name, folder) in plugin.symbols.isEmpty ? Array(capturedCases.prefix(1)) : capturedCases {
                    jobs.append(Job(plugin: plugin.name, directory: plugin.directory, caseName: name, dims: [:], inputs: folder, seed: 0, sizeOutputs: plugin.sizeOutputs))
                }
                continue
            }
            // Drawn inputs: each case's symbol value is halved until the inputs fit the budget
            // (a whisper attention's 6x1500x1500 scores at batch 8 would be 432 MB); cases that
            // end at the same value are one case.
            var cases: [Int64] = []
            for value in plugin.symbols.isEmpty ? [Int64(0)] : values {
                var v = value
                while v > 1, Self.inputBytes(plugin.inputs, symbolValue: v) > Self.capturedInputBudget { v = max(1, v / 2) }
                if !cases.contains(v) { cases.append(v) }
            }
            for (k, value) in cases.enumerated() {
                // A size the user gave with --dim holds here too (ONNX Runtime could not run the
                // whole model, so the node's inputs are drawn at these sizes).
                let dims = Dictionary(plugin.symbols.map { symbol in
                    (symbol, sampleDims[symbol].flatMap { $0.isEmpty ? nil : $0[min(k, $0.count - 1)] } ?? value)
                }, uniquingKeysWith: { a, _ in a })
                jobs.append(Job(
                    plugin: plugin.name, directory: plugin.directory, caseName: "case\(k)", dims: dims, inputs: nil, seed: 1000 + k,
                    sizeOutputs: plugin.sizeOutputs))
            }
        }
        // One bridge process per core, each making its share of the cases.
        let parallelism = max(1, min(jobs.count, ProcessInfo.processInfo.activeProcessorCount))
        let shares = (0..<parallelism).map { p in Array(stride(from: p, to: jobs.count, by: parallelism)) }
        let toolchain = self.toolchain
        let scratch = plugins.first.map { $0.directory.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(Self.captureFolder) }
        let outcomes: [(Int, String?)] = await withTaskGroup(of: [(Int, String?)].self) { group in
            for (p, share) in shares.enumerated() where !share.isEmpty {
                let batch = ReferenceBatch(jobs: share.map { k in
                    let job = jobs[k]
                    return ReferenceBatch.Job(
                        model: job.directory.appendingPathComponent("node.onnx").path,
                        outDir: job.directory.appendingPathComponent("test/\(job.caseName)").path, seed: job.seed,
                        dims: job.dims, inputs: job.inputs?.path, sizeOutputs: job.sizeOutputs.isEmpty ? nil : job.sizeOutputs)
                })
                group.addTask {
                    do throws(TPATError) {
                        let result = try await batch.run(with: toolchain, in: scratch!, name: "references-\(p)")
                        return zip(share, result.jobs).map { ($0, $1.error) }
                    } catch {
                        if case .interrupted = error { return [] }
                        return share.map { ($0, error.description) }
                    }
                }
            }
            var all: [(Int, String?)] = []
            for await part in group { all += part }
            return all
        }
        try Cancellation.shared.checkCancelled()
        var failures: [String: ReferenceFailure] = [:]
        for (k, error) in outcomes.sorted(by: { ($0.0) < ($1.0) }) {
            let job = jobs[k]
            guard failures[job.plugin] == nil, let error else { continue }
            let log = job.directory.appendingPathComponent("test/\(job.caseName).log")
            failures[job.plugin] = ReferenceFailure(
                reason: "ONNX Runtime could not run the node (\(job.caseName)): \(error)",
                log: FileManager.default.fileExists(atPath: log.path) ? log : nil)
        }
        for plugin in plugins where failures[plugin.name] == nil {
            let test = plugin.directory.appendingPathComponent("test")
            let caseNames = jobs.filter { $0.plugin == plugin.name }.map(\.caseName)
            var cases: [[String: Any]] = []
            for name in caseNames {
                guard let data = try? Data(contentsOf: test.appendingPathComponent("\(name)/reference.json")),
                    let doc = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
                else {
                    failures[plugin.name] = ReferenceFailure(
                        reason: "ONNX Runtime ran the node but wrote no test/\(name)/reference.json", log: test.appendingPathComponent("\(name).log"))
                    break
                }
                func entries(_ key: String) -> [[String: Any]] {
                    ((doc[key] as? [[String: Any]]) ?? []).map { entry in
                        var e = entry
                        if let file = e["file"] as? String { e["file"] = "\(name)/\(file)" }
                        return e
                    }
                }
                let dimValues = (doc["dims"] as? [String: Any]) ?? [:]
                let dims = dimValues.keys.sorted().map { key in "\(key)=\(dimValues[key]!)" }.joined(separator: ",")
                cases.append(["name": dims.isEmpty ? name : "\(name) (\(dims))", "inputs": entries("inputs"), "outputs": entries("outputs")])
            }
            if failures[plugin.name] != nil { continue }
            do {
                let data = try JSONSerialization.data(withJSONObject: ["cases": cases], options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                try data.write(to: test.appendingPathComponent("reference.json"))
            } catch {
                failures[plugin.name] = ReferenceFailure(reason: "cannot write test/reference.json: \(error.localizedDescription)", log: nil)
            }
        }
        return failures
    }
}
