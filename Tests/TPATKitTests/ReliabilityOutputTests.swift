import Foundation
import SwiftProtobuf
import Testing

@testable import TPATKit

/// Issue 11, part B: the output folder never costs the user a file, signals stop everything and
/// leave nothing behind, failures keep their logs, and model strings reach the terminal escaped.
/// Every case runs the built `tpat` on a model and paths made here, and checks the exit code, the
/// message, that the input's bytes are unchanged and that nothing was written outside OUT.
@Suite("Reliability: output folder, signals, logs", .serialized)
struct ReliabilityOutputTests {
    /// Every entry under `root` (links not followed): relative path -> what it is (a file's bytes,
    /// a link's target, or a folder).
    static func tree(_ root: URL) -> [String: String] {
        var result: [String: String] = [:]
        let fm = FileManager.default
        func visit(_ relative: String) {
            let path = relative.isEmpty ? root.path : root.path + "/" + relative
            for name in (try? fm.contentsOfDirectory(atPath: path)) ?? [] {
                let child = relative.isEmpty ? name : relative + "/" + name
                let full = path + "/" + name
                if let target = try? fm.destinationOfSymbolicLink(atPath: full) {
                    result[child] = "link -> \(target)"
                    continue
                }
                var isDirectory: ObjCBool = false
                _ = fm.fileExists(atPath: full, isDirectory: &isDirectory)
                if isDirectory.boolValue {
                    result[child] = "folder"
                    visit(child)
                } else {
                    let data = (try? Data(contentsOf: URL(fileURLWithPath: full))) ?? Data()
                    result[child] = "file \(data.count) \(data.hashValue)"
                }
            }
        }
        visit("")
        return result
    }

    /// `tree` without the entries under `excluded` (OUT, OUT.failed: where a run may write).
    static func tree(_ root: URL, excluding excluded: [String]) -> [String: String] {
        tree(root).filter { entry in !excluded.contains { entry.key == $0 || entry.key.hasPrefix($0 + "/") } }
    }

    /// x[4,3] -> Abs -> y: one node TVM turns into a plugin in a few seconds.
    static func absModel(name: String = "abs") -> ModelBuilder {
        var b = ModelBuilder()
        b.input("x", .float32, [.fixed(4), .fixed(3)])
        b.output("y", .float32, [.fixed(4), .fixed(3)])
        b.node("Abs", ["x"], ["y"], name: name)
        return b
    }

    /// A folder `models/` holding `m.onnx` and its external data `data/w.bin`: x[4] + w[4] -> y.
    static func modelWithExternalData(in dir: URL) throws -> (model: URL, data: URL) {
        let folder = dir.appendingPathComponent("models")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("data"), withIntermediateDirectories: true)
        var b = ModelBuilder()
        b.input("x", .float32, [.fixed(4)])
        b.output("y", .float32, [.fixed(4)])
        b.node("Add", ["x", "w"], ["y"], name: "add")
        var proto = b.model()
        var weight = TensorValue(elementType: .float32, shape: [4], bytes: Data(count: 16)).proto(name: "w")
        weight.rawData = Data()
        weight.dataLocation = .external
        var location = Onnx_StringStringEntryProto()
        location.key = "location"
        location.value = "data/w.bin"
        weight.externalData = [location]
        proto.graph.initializer = [weight]
        let model = folder.appendingPathComponent("m.onnx")
        let data = folder.appendingPathComponent("data/w.bin")
        try Data((0..<16).map { UInt8($0) }).write(to: data)
        try proto.serializedData().write(to: model)
        return (model, data)
    }

    /// The arguments of a quick generate: no nvcc, a fixed arch, only warnings on the terminal.
    static func generate(_ model: URL, _ out: String, _ extra: [String]) -> [String] {
        ["generate", model.path, "-o", out, "--no-build", "--arch", "sm_90", "-q"] + extra
    }

    // MARK: - Output folder

    @Test("-o naming the model file, or any other existing file, is refused and the file kept, --force or not")
    func outputIsAFile() throws {
        let dir = try TestSupport.temporaryDirectory()
        let model = dir.appendingPathComponent("m.onnx")
        try Self.absModel().write(to: model)
        let notes = dir.appendingPathComponent("notes.txt")
        try Data("my notes\n".utf8).write(to: notes)
        let before = Self.tree(dir)
        for target in [model, notes] {
            for force in [false, true] {
                let result = try TestSupport.runTPAT(Self.generate(model, target.path, ["--nodes", "abs"] + (force ? ["--force"] : [])))
                #expect(result.status == 1, "\(target.lastPathComponent) force=\(force): \(result.stderr)")
                #expect(result.stderr == "tpat: error: the output path \(target.path) exists and is a file, not a folder; TPAT writes a folder there and never removes a file: choose a new path\n")
                #expect(Self.tree(dir) == before, "\(target.lastPathComponent) force=\(force) changed the folder")
            }
        }
    }

    @Test("-o a symbolic link (to the model's folder, or anywhere) is refused, --force or not; the link and its target stay")
    func outputIsASymbolicLink() throws {
        let dir = try TestSupport.temporaryDirectory()
        let (model, _) = try Self.modelWithExternalData(in: dir)
        let toModels = dir.appendingPathComponent("out-link")
        try FileManager.default.createSymbolicLink(atPath: toModels.path, withDestinationPath: "models")
        let elsewhere = dir.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: elsewhere.appendingPathComponent("mine.txt"))
        let toOther = dir.appendingPathComponent("other-link")
        try FileManager.default.createSymbolicLink(atPath: toOther.path, withDestinationPath: elsewhere.path)
        let before = Self.tree(dir)
        for (link, target) in [(toModels, "models"), (toOther, elsewhere.path)] {
            for spelling in [link.path, link.path + "/", link.path + "/."] {
                let result = try TestSupport.runTPAT(Self.generate(model, spelling, ["--nodes", "add", "--force"]))
                #expect(result.status == 1, "\(spelling): \(result.stderr)")
                #expect(
                    result.stderr == "tpat: error: the output path \(link.path) is a symbolic link (to \(target)); TPAT replaces the output folder as a whole and never removes through a link: name the real folder, or a new path\n",
                    "\(spelling)")
                #expect(Self.tree(dir) == before, "\(spelling) changed the folder")
            }
        }
    }

    @Test("-o the folder holding the model, a parent of it, a path reaching it through a link, or the data's folder: refused with --force")
    func outputHoldsTheModel() throws {
        let dir = try TestSupport.temporaryDirectory()
        let (model, data) = try Self.modelWithExternalData(in: dir)
        let linkToDir = dir.appendingPathComponent("alias")
        try FileManager.default.createSymbolicLink(atPath: linkToDir.path, withDestinationPath: dir.path)
        let before = Self.tree(dir)
        let modelBytes = try Data(contentsOf: model)
        let dataBytes = try Data(contentsOf: data)
        let folder = model.deletingLastPathComponent().path
        // The data file is named: it sorts before the model, and every case holds it.
        let cases: [(out: String, real: String, holds: String)] = [
            (folder, folder, data.path),
            (dir.path, dir.path, data.path),
            (linkToDir.path + "/models", folder, data.path),
            (folder + "/data", folder + "/data", data.path),
        ]
        for (out, real, holds) in cases {
            let result = try TestSupport.runTPAT(Self.generate(model, out, ["--nodes", "add", "--force"]))
            #expect(result.status == 1, "\(out): \(result.stderr)")
            let link = real == out ? "" : " (it is \(real), links resolved)"
            #expect(
                result.stderr == "tpat: error: the output folder \(out)\(link) holds the input model or its data (\(holds)); TPAT never removes its input: choose another output folder\n",
                "\(out): \(result.stderr)")
            #expect(try Data(contentsOf: model) == modelBytes)
            #expect(try Data(contentsOf: data) == dataBytes)
            #expect(Self.tree(dir) == before, "\(out) changed the folder")
        }
    }

    @Test("--force replaces an earlier OUT as a whole; a link inside it is removed, never what it points to")
    func forceReplacesOnlyTheOutput() throws {
        let dir = try TestSupport.temporaryDirectory()
        let (model, data) = try Self.modelWithExternalData(in: dir)
        let out = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("old".utf8).write(to: out.appendingPathComponent("old.txt"))
        try FileManager.default.createSymbolicLink(atPath: out.appendingPathComponent("models-link").path, withDestinationPath: model.deletingLastPathComponent().path)
        let modelBytes = try Data(contentsOf: model)
        let outside = Self.tree(dir, excluding: ["out"])
        let result = try TestSupport.runTPAT(Self.generate(model, out.path, ["--nodes", "add", "--force", "--no-reference"]))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        #expect(try Data(contentsOf: model) == modelBytes)
        #expect(try Data(contentsOf: data).count == 16)
        #expect(Self.tree(dir, excluding: ["out"]) == outside)
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("model.tpat.onnx").path))
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("old.txt").path))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: out.appendingPathComponent("models-link").path)) == nil)
    }

    // MARK: - Failures keep their evidence

    /// x[4, L] -> CumSum along an axis computed at run time: TPAT refuses it (the axis decides the kernel).
    static func cumSumModel() -> ModelBuilder {
        var b = ModelBuilder()
        b.input("x", .float32, [.fixed(4), .symbolic("L")])
        b.input("axis", .int64, [])
        b.output("c", .float32, [.fixed(4), .symbolic("L")])
        b.node("CumSum", ["x", "axis"], ["c"], name: "cumsum")
        return b
    }

    @Test("no node became a plugin: OUT is left as it was; the report and the bridge's log go to OUT.failed/, the message quotes the reason")
    func nothingWrittenKeepsEvidence() throws {
        let dir = try TestSupport.temporaryDirectory()
        let model = dir.appendingPathComponent("m.onnx")
        try Self.cumSumModel().write(to: model)
        let modelBytes = try Data(contentsOf: model)
        let out = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("an earlier run's output".utf8).write(to: out.appendingPathComponent("model.tpat.onnx"))
        let before = Self.tree(dir)
        let result = try TestSupport.runTPAT(Self.generate(model, out.path, ["--nodes", "cumsum", "--force"]))
        #expect(result.status == 1, "\(result.stderr)")
        let failed = dir.appendingPathComponent("out.failed")
        #expect(result.stdout.contains("nothing written; the report and the logs are in \(failed.path)"), "\(result.stdout)")
        // The reason itself, not only a pointer to a log.
        #expect(result.stdout.contains("FAILED 1 node(s) (CumSum) [unsupported]: CumSum: "), "\(result.stdout)")
        #expect(try Data(contentsOf: model) == modelBytes)
        #expect(Self.tree(dir, excluding: ["out.failed"]) == before)
        let report = try JSONDecoder().decode(PipelineReport.self, from: Data(contentsOf: failed.appendingPathComponent("report.json")))
        #expect(report.outputModel == nil)
        #expect(report.failureLogs == failed.path)
        let log = try #require(report.failures.first?.log)
        #expect(log.hasPrefix(failed.path + "/"), "\(log)")
        #expect(FileManager.default.fileExists(atPath: log))
        #expect(!result.stdout.contains(".tpat-") && !result.stderr.contains(".tpat-"), "a message names the staging folder")
        // A second failed run replaces TPAT's own evidence folder.
        let again = try TestSupport.runTPAT(Self.generate(model, out.path, ["--nodes", "cumsum", "--force"]))
        #expect(again.status == 1)
        #expect(TestSupport.listing(dir) == ["m.onnx", "out", "out.failed"])
    }

    @Test("the bridge dies: its log goes to OUT.failed/, the message quotes its last line and names the log there")
    func bridgeCrashKeepsItsLog() throws {
        let dir = try TestSupport.temporaryDirectory()
        let model = dir.appendingPathComponent("m.onnx")
        try Self.absModel().write(to: model)
        let modelBytes = try Data(contentsOf: model)
        // TPAT_PYTHON names the interpreter TPAT runs the bridge with: one that fails as a broken
        // TVM installation would, after a traceback.
        let tools = try TestSupport.temporaryDirectory()
        let python = tools.appendingPathComponent("python")
        try Data("""
            #!/bin/sh
            echo 'Traceback (most recent call last):'
            echo '  File "<frozen runpy>", line 198, in _run_module_as_main'
            echo 'ImportError: libtvm.so: cannot open shared object file'
            exit 1

            """.utf8).write(to: python)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: python.path)
        let out = dir.appendingPathComponent("out")
        let before = Self.tree(dir)
        let result = try TestSupport.runTPAT(Self.generate(model, out.path, ["--nodes", "abs"]), environment: ["TPAT_PYTHON": python.path])
        let failed = dir.appendingPathComponent("out.failed")
        #expect(result.status == 1, "\(result.stderr)")
        #expect(
            result.stderr
                == "tpat: error: TVM bridge failed: it exited (exited(1)) without a result: ImportError: libtvm.so: cannot open shared object file (log \(failed.path)/bridge.log)\n")
        #expect(try Data(contentsOf: model) == modelBytes)
        #expect(Self.tree(dir, excluding: ["out.failed"]) == before)
        #expect(TestSupport.listing(failed) == [".tpat-failed", "bridge.log", "error.txt"])
        #expect(try String(contentsOf: failed.appendingPathComponent("bridge.log"), encoding: .utf8).contains("ImportError: libtvm.so"))
        #expect(try String(contentsOf: failed.appendingPathComponent("error.txt"), encoding: .utf8).contains("(log \(failed.path)/bridge.log)"))
    }

    /// x[4,3] -> Gather(indices = [7]) on axis 0: TVM generates it; ONNX Runtime refuses to run it
    /// (an index outside the data), so its self-test data cannot be made.
    static func outOfRangeGatherModel() -> ModelBuilder {
        var b = ModelBuilder()
        b.input("x", .float32, [.fixed(4), .fixed(3)])
        b.initializer("indices", int64: [7], shape: [1])
        b.output("y", .float32, [.fixed(1), .fixed(3)])
        b.node("Gather", ["x", "indices"], ["y"], name: "gather", ints: ["axis": 0])
        b.output("z", .float32, [.fixed(4), .fixed(3)])
        b.node("Abs", ["x"], ["z"], name: "abs")
        return b
    }

    @Test("a node whose reference data cannot be made still becomes a plugin; report and summary say why; its log is in OUT")
    func referenceFailureIsPerNode() throws {
        let dir = try TestSupport.temporaryDirectory()
        let model = dir.appendingPathComponent("m.onnx")
        try Self.outOfRangeGatherModel().write(to: model)
        let modelBytes = try Data(contentsOf: model)
        let out = dir.appendingPathComponent("out")
        let result = try TestSupport.runTPAT(Self.generate(model, out.path, ["--nodes", "gather,abs"]))
        #expect(result.status == 3, "\(result.stderr)")
        #expect(try Data(contentsOf: model) == modelBytes)
        #expect(TestSupport.listing(dir) == ["m.onnx", "out"])
        let report = try JSONDecoder().decode(PipelineReport.self, from: Data(contentsOf: out.appendingPathComponent("report.json")))
        #expect(report.failures.isEmpty)
        #expect(report.outputModel == out.appendingPathComponent("model.tpat.onnx").path)
        let gather = try #require(report.plugins.first { $0.opType == "Gather" })
        let abs = try #require(report.plugins.first { $0.opType == "Abs" })
        #expect(abs.referenceDataError == nil)
        let reason = try #require(gather.referenceDataError)
        #expect(reason.hasPrefix("ONNX Runtime could not run the node (case0): "), "\(reason)")
        #expect(reason.contains("out of"), "the reason quotes ONNX Runtime: \(reason)")
        let log = try #require(gather.referenceDataLog)
        #expect(log.hasPrefix(out.path + "/plugins/"))
        #expect(FileManager.default.fileExists(atPath: log))
        #expect(!FileManager.default.fileExists(atPath: gather.directory + "/test/reference.json"))
        #expect(FileManager.default.fileExists(atPath: abs.directory + "/test/reference.json"))
        #expect(result.stdout.contains("1 plugin(s) without self-test data"), "\(result.stdout)")
        #expect(result.stdout.contains("    self-test has no reference data: \(reason) log: \(log)"), "\(result.stdout)")
        // said once, in the summary: not also as a warning while the run goes on
        #expect(!result.stderr.contains("its self-test has no reference data"), "\(result.stderr)")
    }

    // MARK: - Terminal output

    /// Every byte a terminal would act on: C0 controls other than the line feed, DEL, and the
    /// UTF-8 forms of C1 controls.
    static func rawControls(_ text: String) -> [Unicode.Scalar] {
        text.unicodeScalars.filter { $0 != "\n" && TerminalText.needsEscape($0) }
    }

    @Test("node names with control characters are printed escaped: log lines, summary, errors")
    func controlCharactersAreEscaped() throws {
        let dir = try TestSupport.temporaryDirectory()
        let model = dir.appendingPathComponent("m.onnx")
        let name = "evil\u{1B}[2J\r\u{0}\u{7}\u{9B}\u{202E}name\nFAKE"
        try Self.absModel(name: name).write(to: model)
        let modelBytes = try Data(contentsOf: model)
        let out = dir.appendingPathComponent("out")
        // Not quiet: the "selected" log line names the node too.
        let result = try TestSupport.runTPAT(["generate", model.path, "-o", out.path, "--no-build", "--arch", "sm_90", "--no-reference", "--op-types", "Abs"])
        #expect(result.status == 0, "\(result.stderr)")
        let escaped = "evil\\e[2J\\r\\0\\u{7}\\u{9B}\\u{202E}name\\nFAKE"
        #expect(Self.rawControls(result.stdout).isEmpty, "\(Array(result.stdout.unicodeScalars))")
        #expect(Self.rawControls(result.stderr).isEmpty, "\(Array(result.stderr.unicodeScalars))")
        #expect(result.stdout.contains("Abs (\(escaped))"), "\(result.stdout)")
        #expect(result.stderr.contains("selected 1 node(s): \(escaped)"), "\(result.stderr)")
        #expect(try Data(contentsOf: model) == modelBytes)
        #expect(TestSupport.listing(dir) == ["m.onnx", "out"])
        // The report keeps the real name (JSON escapes it).
        let report = try JSONDecoder().decode(PipelineReport.self, from: Data(contentsOf: out.appendingPathComponent("report.json")))
        #expect(report.plugins.first?.nodes == [name])

        // An error that quotes what the user typed.
        let other = dir.appendingPathComponent("other")
        let error = try TestSupport.runTPAT(Self.generate(model, other.path, ["--nodes", "no\u{1B}]0;title\u{7}such"]))
        #expect(error.status != 0)
        #expect(error.stderr.hasPrefix("tpat: error: "))
        #expect(error.stderr.contains("no\\e]0;title\\u{7}such"), "\(error.stderr)")
        #expect(Self.rawControls(error.stderr).isEmpty)
        #expect(TestSupport.listing(dir) == ["m.onnx", "out"])
    }

    @Test("TerminalText escapes controls and bidi overrides and leaves ordinary names alone; LogExcerpt finds the reason")
    func terminalTextAndLogExcerpt() {
        #expect(TerminalText.escaped("节点/🙂 a_b-c.d") == "节点/🙂 a_b-c.d")
        #expect(TerminalText.escaped("a\u{1B}b\rc\nd\te\u{0}f\u{7F}\u{2028}\u{202E}") == "a\\eb\\rc\\nd\\te\\0f\\u{7F}\\u{2028}\\u{202E}")
        #expect(TerminalText.sanitized("one \u{1B}[31m\ntwo\r") == "one \\e[31m\ntwo\\r")
        let traceback = """
            Traceback (most recent call last):
              File "x.py", line 3, in <module>
                run()
            onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument: indices element out of data bounds
            
            """
        #expect(LogExcerpt.lastMeaningfulLine(of: traceback) == "onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument: indices element out of data bounds")
        let make = """
            k.cu(12): error: identifier "foo" is undefined
            1 error detected in the compilation of "k.cu".
            make: *** [Makefile:20: build/k.o] Error 2
            """
        #expect(LogExcerpt.lastMeaningfulLine(of: make) == "k.cu(12): error: identifier \"foo\" is undefined")
        #expect(LogExcerpt.lastMeaningfulLine(of: "\n\n  \n") == nil)
    }

    // MARK: - Signals

    /// Starts `tpat` with `arguments`, waits until `ready` says the run got far enough (polled every
    /// 50 ms, at most `timeout` seconds), sends `signal`, and waits for it to exit.
    static func interrupt(
        _ arguments: [String], signal: Int32, timeout: TimeInterval = 240, ready: () -> Bool
    ) throws -> (status: Int32, reason: Process.TerminationReason, stderr: String, readyInTime: Bool) {
        let process = Process()
        process.executableURL = TestSupport.tpatBinary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["TPAT_KERNEL_CACHE": "off"]) { $1 }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        var readyInTime = false
        while process.isRunning, Date() < deadline {
            if ready() {
                readyInTime = true
                break
            }
            usleep(50_000)
        }
        kill(process.processIdentifier, signal)
        let data = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason, String(decoding: data, as: UTF8.self), readyInTime)
    }

    /// The staging folder of `out` in `dir`, if one is there.
    static func stagingFolder(of out: String, in dir: URL) -> URL? {
        TestSupport.listing(dir).first { $0.hasPrefix(".\(out).tpat-") }.map { dir.appendingPathComponent($0) }
    }

    /// A living process, as /proc tells it.
    struct LivingProcess: CustomStringConvertible {
        var pid: String
        var group: String
        var name: String
        var workingFolder: String
        var commandLine: String

        var description: String { "\(pid) \(name) (group \(group)): \(commandLine)" }
    }

    /// Every process that is alive (zombies run nothing and are not listed).
    static func livingProcesses() -> [LivingProcess] {
        let fm = FileManager.default
        var found: [LivingProcess] = []
        for entry in (try? fm.contentsOfDirectory(atPath: "/proc")) ?? [] where entry.allSatisfy(\.isNumber) {
            guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // After "pid (comm) ": state ppid pgrp ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, fields[0] != "Z", fields[0] != "X" else { continue }
            let commandLine = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(entry)/cmdline"))).map {
                String(decoding: $0.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            } ?? ""
            found.append(LivingProcess(
                pid: entry, group: String(fields[2]),
                name: (try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?",
                workingFolder: (try? fm.destinationOfSymbolicLink(atPath: "/proc/\(entry)/cwd")) ?? "", commandLine: commandLine))
        }
        return found
    }

    /// The processes working on `folder`, and every process of their process groups (a tool's
    /// whole tree: make's nvcc runs in a temporary folder that links to the staging folder): whose
    /// command line names the folder (what `pgrep -f` finds), whose working folder lies in it, or
    /// that share a process group with one of those or with one of `knownGroups`.
    static func processes(touching folder: URL, knownGroups: Set<String> = []) -> [LivingProcess] {
        let all = livingProcesses()
        let direct = all.filter { p in
            p.workingFolder == folder.path || p.workingFolder.hasPrefix(folder.path + "/") || p.workingFolder.hasPrefix(folder.path + " ")
                || p.commandLine.contains(folder.lastPathComponent)
        }
        let groups = knownGroups.union(direct.map(\.group))
        return all.filter { p in groups.contains(p.group) && p.group != String(getpgrp()) || direct.contains { $0.pid == p.pid } }
    }

    /// After tpat exited: no process works on the staging folder or lives in a group seen working
    /// on it, and for a while nothing appears or changes in `dir` (a child left running would go on
    /// writing there).
    static func expectNothingLeft(
        staging: URL, in dir: URL, before: [String: String], groups: Set<String>, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        #expect(!groups.isEmpty, "no tool was seen", sourceLocation: sourceLocation)
        let left = processes(touching: staging, knownGroups: groups)
        #expect(left.isEmpty, "children still running: \(left)", sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: staging.path), "the staging folder is still there", sourceLocation: sourceLocation)
        #expect(tree(dir) == before, "the folder changed", sourceLocation: sourceLocation)
        sleep(2)
        #expect(processes(touching: staging, knownGroups: groups).isEmpty, "children still running", sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: staging.path), "the staging folder came back", sourceLocation: sourceLocation)
        #expect(tree(dir) == before, "something was written after tpat exited", sourceLocation: sourceLocation)
    }

    @Test("SIGINT while the TVM bridge runs: the bridge is stopped, the staging folder removed, exit 130, one line")
    func sigintDuringBridge() throws {
        let dir = try TestSupport.temporaryDirectory()
        let model = dir.appendingPathComponent("m.onnx")
        try Self.absModel().write(to: model)
        let before = Self.tree(dir)
        var staging: URL?
        var groups: Set<String> = []
        let result = try Self.interrupt(Self.generate(model, dir.appendingPathComponent("out").path, ["--nodes", "abs"]), signal: SIGINT) {
            // Ready once the bridge (a Python process naming the staging folder) is running.
            guard let folder = Self.stagingFolder(of: "out", in: dir) else { return false }
            staging = folder
            let bridge = Self.processes(touching: folder).filter { $0.commandLine.contains("tpat_bridge") }
            groups.formUnion(bridge.map(\.group))
            return !bridge.isEmpty
        }
        #expect(result.readyInTime, "the bridge never started: \(result.stderr)")
        #expect(result.reason == .exit && result.status == 130, "\(result.reason) \(result.status): \(result.stderr)")
        #expect(result.stderr == "tpat: interrupted by SIGINT: stopped the tools and removed the unfinished output; nothing was written\n")
        try Self.expectNothingLeft(staging: try #require(staging), in: dir, before: before, groups: groups)
    }

    @Test("SIGTERM while make and nvcc build: the whole tree is stopped, the staging folder removed, exit 143, one line")
    func sigtermDuringBuild() throws {
        let toolchain = try Toolchain.discover(environment: ["TPAT_HOME": TestSupport.root.path].merging(ProcessInfo.processInfo.environment) { $1 })
        try #require(toolchain.nvcc != nil, "nvcc is needed (make setup installs it)")
        let dir = try TestSupport.temporaryDirectory()
        let model = dir.appendingPathComponent("m.onnx")
        try Self.absModel().write(to: model)
        let out = dir.appendingPathComponent("out")
        let before = Self.tree(dir)
        var staging: URL?
        var groups: Set<String> = []
        let arguments = ["generate", model.path, "-o", out.path, "--arch", "sm_90", "-q", "--nodes", "abs", "--no-reference"]
        let result = try Self.interrupt(arguments, signal: SIGTERM) {
            // Ready once nvcc or one of its compilers runs in make's process group (make names
            // the staging folder; nvcc works in a temporary folder linking to it).
            guard let folder = Self.stagingFolder(of: "out", in: dir) else { return false }
            staging = folder
            let tree = Self.processes(touching: folder)
            groups.formUnion(tree.filter { $0.name == "make" }.map(\.group))
            return tree.contains { ["nvcc", "cicc", "ptxas", "cudafe++", "gcc", "cc1plus"].contains($0.name) }
        }
        #expect(result.readyInTime, "nvcc never started: \(result.stderr)")
        #expect(result.reason == .exit && result.status == 143, "\(result.reason) \(result.status): \(result.stderr)")
        #expect(result.stderr == "tpat: interrupted by SIGTERM: stopped the tools and removed the unfinished output; nothing was written\n")
        try Self.expectNothingLeft(staging: try #require(staging), in: dir, before: before, groups: groups)
    }
}
