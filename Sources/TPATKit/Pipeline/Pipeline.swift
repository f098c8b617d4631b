import Foundation
import Logging

/// What `tpat generate` is asked to do.
public struct PipelineRequest: Sendable {
    /// The input ONNX model (never modified).
    public var model: URL
    /// Which nodes become plugins.
    public var criteria: NodeCriteria
    /// The output folder (`out/`).
    public var outputDirectory: URL
    /// The rewritten model's file name inside the output folder.
    public var outputModelName: String
    /// Kernel options: CUDA arch and tuning.
    public var kernels: KernelOptions
    /// The TensorRT plugin interface.
    public var tensorRTAPI: TensorRTAPI
    /// A TensorRT installation (include/, lib/) to build the plugin libraries against; nil skips them.
    public var tensorRTDirectory: URL?
    /// Whether to build with nvcc (kernels, self-tests, and plugin libraries when TensorRT is given).
    public var build: Bool
    /// Replace an existing output folder.
    public var force: Bool
    /// Values each symbolic dim takes in the self-test cases (two cases by default).
    public var symbolicTestValues: [Int64]
    /// Whether to compute self-test data with ONNX Runtime (off for huge nodes whose data would
    /// not travel, or when the caller supplies its own, as the conformance runner does).
    public var referenceData: Bool

    /// Creates a request.
    public init(
        model: URL, criteria: NodeCriteria, outputDirectory: URL, outputModelName: String = "model.tpat.onnx",
        kernels: KernelOptions, tensorRTAPI: TensorRTAPI = .v3, tensorRTDirectory: URL? = nil, build: Bool = true,
        force: Bool = false, symbolicTestValues: [Int64] = [3, 8], referenceData: Bool = true
    ) {
        self.referenceData = referenceData
        self.model = model
        self.criteria = criteria
        self.outputDirectory = outputDirectory
        self.outputModelName = outputModelName
        self.kernels = kernels
        self.tensorRTAPI = tensorRTAPI
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
    /// Every node this plugin replaces (identical nodes share one plugin).
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
}

/// A node that did not become a plugin, and why.
public struct NodeFailureReport: Codable, Sendable, Equatable {
    public var node: String
    public var opType: String
    public var errorClass: String
    public var message: String
    public var log: String?
}

/// What `tpat generate` produced; also written as `report.json`.
public struct PipelineReport: Codable, Sendable, Equatable {
    public var inputModel: String
    /// The rewritten model; nil when no node became a plugin.
    public var outputModel: String?
    public var arch: String
    public var tensorRTAPI: String
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
        let fm = FileManager.default
        let out = request.outputDirectory.standardizedFileURL
        if fm.fileExists(atPath: out.path), !request.force, !((try? fm.contentsOfDirectory(atPath: out.path))?.isEmpty ?? true) {
            throw .usage("the output folder \(out.path) exists and is not empty; pass --force to replace it")
        }
        var model: ONNXModel
        do { model = try ONNXModel.load(contentsOf: request.model) } catch { throw .usage(error.description) }
        if out.path == model.baseDirectory.standardizedFileURL.path || model.baseDirectory.path.hasPrefix(out.path + "/") {
            throw .usage("the output folder \(out.path) holds the input model; choose another (TPAT never modifies its input)")
        }
        let tables = try OpSupportTables.bundled()
        var index = GraphIndex(model: model)
        let selection = try NodeSelector(tables: tables).select(request.criteria, in: index)
        var selected = selection.nodes
        for warning in selection.warnings { logger.warning("\(warning)") }
        for skip in selection.skipped { logger.info("left out \(skip.node) (\(skip.opType)): \(skip.reason)") }
        guard !selected.isEmpty else {
            if !selection.skipped.isEmpty {
                throw .usage("nothing to replace: each of the \(selection.skipped.count) matching node(s) computes shape arithmetic, which must stay native in TensorRT (\(selection.skipped[0].node): \(selection.skipped[0].reason)); name nodes with --nodes to replace them anyway")
            }
            throw .usage("nothing to replace: TensorRT's ONNX parser runs every node of this model natively, within its documented limits; to replace nodes anyway, name them with --nodes or --op-types")
        }
        logger.info("selected \(selected.count) node(s): \(selected.map(\.name).joined(separator: ", "))")
        let values = Set(selected.flatMap { $0.node.input + $0.node.output }.filter { !$0.isEmpty })
        if values.contains(where: { !index.isConstant($0) && !(index.types[$0]?.isFullyKnown ?? false) }) {
            logger.info("some shapes are not declared: running ONNX shape inference")
            model = try await ShapeInference(toolchain: toolchain).fillMissingTypes(of: model)
            index = GraphIndex(model: model)
            selected = selected.map { SelectedNode(index: $0.index, name: $0.name, node: index.graph.node[$0.index], tensorRTRestriction: $0.tensorRTRestriction) }
        }

        let work = out.deletingLastPathComponent().appendingPathComponent(".\(out.lastPathComponent).tpat-\(UUID().uuidString.prefix(8))")
        do { try fm.createDirectory(at: work.appendingPathComponent("plugins"), withIntermediateDirectories: true) } catch {
            throw .usage("cannot create the output folder beside \(out.path): \(error.localizedDescription)")
        }
        var committed = false
        defer { if !committed { try? fm.removeItem(at: work) } }

        // Extract, and group identical nodes into one plugin.
        let extractor = NodeExtractor(
            model: model, index: index,
            carriedAsInt32: request.tensorRTAPI == .v2 ? NodeExtractor.typesCarriedAsInt32ForTensorRT8 : NodeExtractor.typesCarriedAsInt32)
        var groups: [(name: String, nodes: [ExtractedNode])] = []
        var groupBySignature: [Data: Int] = [:]
        var naming = PluginNaming()
        for node in selected {
            let extracted = try extractor.extract(node)
            if let g = groupBySignature[extracted.signature] {
                groups[g].nodes.append(extracted)
            } else {
                groupBySignature[extracted.signature] = groups.count
                groups.append((naming.name(for: node.name), [extracted]))
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
                throw .tool(name: "extraction", reason: "cannot write \(subModel.path): \(error)")
            }
            let first = group.nodes[0]
            jobs.append(KernelJob(
                id: group.name, subModel: subModel, outDir: dir, kernelPrefix: group.name + "_",
                node: KernelManifest.NodeInfo(name: first.nodeName, opType: first.opType, domain: index.graph.node[first.nodeIndex].domain)))
        }
        logger.info("generating kernels with TVM for \(jobs.count) plugin(s), arch \(request.kernels.arch)")
        var phases: [String: Double] = [:]
        var phaseStart = Date()
        func endPhase(_ name: String) {
            phases[name] = Date().timeIntervalSince(phaseStart)
            phaseStart = Date()
        }
        let results = try await TVMBridge(toolchain: toolchain).compile(jobs, options: request.kernels, workDirectory: work)

        var made: [(name: String, nodes: [ExtractedNode], manifest: KernelManifest, directory: URL, seconds: Double, tuning: TuningReport?, cached: Bool)] = []
        var failures: [NodeFailureReport] = []
        for (group, result) in zip(groups, results) {
            switch result.outcome {
            case .success(let (manifest, directory)):
                made.append((group.name, group.nodes, manifest, directory, result.seconds, result.tuning, result.cached))
            case .failure(let failure):
                let log = failure.log.map { relocate($0, from: work, to: out) }
                for node in group.nodes {
                    failures.append(NodeFailureReport(node: node.nodeName, opType: node.opType, errorClass: failure.errorClass, message: failure.message, log: log))
                }
                logger.warning("node \(group.nodes.map(\.nodeName).joined(separator: ", ")) (\(group.nodes[0].opType)): \(failure.message)")
            }
        }

        endPhase("kernels")
        // Self-test data (ONNX Runtime on the CPU), plugin sources, Makefile.
        let renderer = try PluginRenderer()
        let options = PluginOptions(tensorrtAPI: request.tensorRTAPI)
        if request.referenceData {
            try await writeReferences(for: made.map { ($0.name, $0.directory, $0.nodes[0].symbols) }, values: request.symbolicTestValues)
        }
        endPhase("reference")
        var rendered = made
        rendered.removeAll()
        for plugin in made {
            do {
                try renderer.render(manifest: plugin.manifest, pluginName: plugin.name, options: options).write(to: plugin.directory)
                rendered.append(plugin)
            } catch {
                // A manifest the chosen plugin API cannot express fails this plugin alone.
                for node in plugin.nodes {
                    failures.append(NodeFailureReport(node: node.nodeName, opType: node.opType, errorClass: "render", message: error.description, log: nil))
                }
                logger.warning("plugin \(plugin.name): \(error.description)")
            }
        }
        made = rendered
        if !made.isEmpty {
            let makefile = try renderer.renderMakefile(plugins: made.map { MakefilePlugin(name: $0.name, manifest: $0.manifest) })
            do { try Data(makefile.utf8).write(to: work.appendingPathComponent("Makefile")) } catch {
                throw .tool(name: "render", reason: "cannot write the Makefile: \(error)")
            }
        }

        endPhase("render")
        // Build.
        var builds: [String: PluginBuildResult] = [:]
        var librariesSkipped: String?
        if request.build, !made.isEmpty {
            let builder = try PluginBuilder(toolchain: toolchain, tensorRTDirectory: request.tensorRTDirectory)
            librariesSkipped = builder.pluginLibrariesSkippedReason
            builds = await builder.build(plugins: made.map(\.name), in: work)
            for (name, build) in builds.sorted(by: { $0.key < $1.key }) where !build.succeeded {
                logger.error("plugin \(name) failed to build: \(build.message) (log \(relocate(build.log.path, from: work, to: out)))")
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
                    replacements.append(NodeReplacement(nodeIndex: node.nodeIndex, pluginName: plugin.name, inputs: node.inputs, outputs: node.outputs))
                }
            } else {
                for node in plugin.nodes {
                    failures.append(NodeFailureReport(
                        node: node.nodeName, opType: node.opType, errorClass: "compile", message: build?.message ?? "build failed",
                        log: build.map { relocate($0.log.path, from: work, to: out) }))
                }
            }
            let rel = "plugins/\(plugin.name)"
            plugins.append(PluginReport(
                name: plugin.name, opType: plugin.nodes[0].opType, nodes: plugin.nodes.map(\.nodeName),
                directory: out.appendingPathComponent(rel).path, kernels: plugin.manifest.kernels.count,
                launches: plugin.manifest.launches.count, constants: plugin.manifest.constants.count,
                generationSeconds: plugin.seconds,
                kernelBuild: build.map { $0.succeeded ? "built" : "failed" } ?? "skipped",
                library: build?.library.map { relocate($0.path, from: work, to: out) },
                selfTest: build?.selfTest.map { relocate($0.path, from: work, to: out) },
                buildLog: build.map { relocate($0.log.path, from: work, to: out) }, tuning: plugin.tuning,
                cached: plugin.cached ? true : nil))
        }
        var outputModel: URL?
        if !replacements.isEmpty {
            let rewritten = ModelRewriter().rewrite(model, replacements: replacements)
            let target = work.appendingPathComponent(request.outputModelName)
            do { try rewritten.write(to: target) } catch { throw .tool(name: "rewrite", reason: error.description) }
            outputModel = out.appendingPathComponent(request.outputModelName)
        }
        endPhase("rewrite")
        let libraries = plugins.compactMap(\.library)
        let trtexec = outputModel.map { model in
            Self.trtexecCommand(model: model.path, libraries: libraries, api: request.tensorRTAPI, pluginNames: plugins.map(\.name))
        }
        var report = PipelineReport(
            inputModel: request.model.path, outputModel: outputModel?.path, arch: request.kernels.arch,
            tensorRTAPI: request.tensorRTAPI.rawValue, plugins: plugins, failures: failures, skipped: selection.skipped,
            pluginLibrariesSkipped: librariesSkipped, trtexecCommand: trtexec, phaseSeconds: phases, totalSeconds: 0)
        report.totalSeconds = Date().timeIntervalSince(start)
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try encoder.encode(report).write(to: work.appendingPathComponent("report.json"))
            if fm.fileExists(atPath: out.path) { try fm.removeItem(at: out) }
            try fm.moveItem(at: work, to: out)
            committed = true
        } catch {
            throw .tool(name: "output", reason: "cannot move the results into \(out.path): \(error.localizedDescription)")
        }
        return report
    }

    /// The trtexec command line for the rewritten model and its plugin libraries.
    static func trtexecCommand(model: String, libraries: [String], api: TensorRTAPI, pluginNames: [String]) -> String {
        var parts = ["trtexec", "--onnx=\(model)"]
        let flag = api == .v3 ? "--dynamicPlugins" : "--plugins"
        if libraries.isEmpty {
            let out = URL(fileURLWithPath: model).deletingLastPathComponent().path
            parts += pluginNames.map { "\(flag)=\(out)/plugins/\($0)/build/lib\($0).so" }
        } else {
            parts += libraries.map { "\(flag)=\($0)" }
        }
        return parts.joined(separator: " ")
    }

    private func relocate(_ path: String, from work: URL, to out: URL) -> String {
        path.hasPrefix(work.path) ? out.path + path.dropFirst(work.path.count) : path
    }

    /// Runs the bridge's `reference` command for each plugin: one case per symbolic value (one
    /// case when the node has no symbolic dims), then writes `test/reference.json` listing them.
    private func writeReferences(for plugins: [(name: String, directory: URL, symbols: [String])], values: [Int64]) async throws(TPATError) {
        struct Job: Sendable { var plugin: String; var directory: URL; var caseName: String; var dims: String; var seed: Int }
        var jobs: [Job] = []
        for plugin in plugins {
            let cases = plugin.symbols.isEmpty ? [Int64(0)] : values
            for (k, value) in cases.enumerated() {
                let dims = plugin.symbols.map { "\($0)=\(value)" }.joined(separator: ",")
                jobs.append(Job(plugin: plugin.name, directory: plugin.directory, caseName: "case\(k)", dims: dims, seed: 1000 + k))
            }
        }
        let toolchain = self.toolchain
        let outcomes: [(Job, ToolRun?, String?)] = await withTaskGroup(of: (Job, ToolRun?, String?).self) { group in
            var pending = jobs[...]
            var results: [(Job, ToolRun?, String?)] = []
            func launch(_ job: Job) {
                group.addTask {
                    do {
                        let test = job.directory.appendingPathComponent("test")
                        let run = try await ToolRunner.run(
                            toolchain.python,
                            arguments: ["-m", "tpat_bridge", "reference", job.directory.appendingPathComponent("node.onnx").path,
                                        test.appendingPathComponent(job.caseName).path, "--seed", String(job.seed)]
                                + (job.dims.isEmpty ? [] : ["--dims", job.dims]),
                            environment: ["PYTHONPATH": toolchain.bridgePath.path],
                            log: test.appendingPathComponent("\(job.caseName).log"))
                        return (job, run, nil)
                    } catch let error as TPATError {
                        return (job, nil, error.description)
                    } catch {
                        return (job, nil, "\(error)")
                    }
                }
            }
            let parallelism = max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))
            for _ in 0..<parallelism { if let job = pending.popFirst() { launch(job) } }
            while let result = await group.next() {
                results.append(result)
                if let job = pending.popFirst() { launch(job) }
            }
            return results
        }
        for (job, run, error) in outcomes {
            if let error { throw .tool(name: "reference data for \(job.plugin)", reason: error) }
            if let run, !run.succeeded {
                throw .tool(name: "reference data for \(job.plugin)", reason: "ONNX Runtime could not run the node (log \(run.log.path)):\n\(run.logTail(lines: 5))")
            }
        }
        for plugin in plugins {
            let test = plugin.directory.appendingPathComponent("test")
            let caseNames = jobs.filter { $0.plugin == plugin.name }.map(\.caseName)
            var cases: [[String: Any]] = []
            for name in caseNames {
                guard let data = try? Data(contentsOf: test.appendingPathComponent("\(name)/reference.json")),
                    let doc = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
                else { throw .tool(name: "reference data for \(plugin.name)", reason: "test/\(name)/reference.json is missing") }
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
            do {
                let data = try JSONSerialization.data(withJSONObject: ["cases": cases], options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                try data.write(to: test.appendingPathComponent("reference.json"))
            } catch {
                throw .tool(name: "reference data for \(plugin.name)", reason: "cannot write test/reference.json: \(error)")
            }
        }
    }
}
