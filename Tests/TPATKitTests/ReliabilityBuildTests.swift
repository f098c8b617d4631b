import Foundation
import Testing

@testable import TPATKit

/// Issue 11: the generated build files never paste a user's path into a command (nvcc runs its
/// stages through `sh -c` with its working folder's path between double quotes, so the Makefile
/// compiles through a link folder), and a damaged kernel-cache entry is regenerated with a warning
/// on the terminal. Real TVM and nvcc, no GPU.
@Suite("Reliability: generated build files and the kernel cache", .serialized)
struct ReliabilityBuildTests {
    /// A small node and one with folded constants (LayerNormalization's scale and bias).
    static let nodes = "backbone/relu,head/norm"

    /// Every file or folder named `name` under `folder`, however deep.
    static func find(_ name: String, under folder: URL) -> [String] {
        let walker = FileManager.default.enumerator(atPath: folder.path)
        var found: [String] = []
        while let path = walker?.nextObject() as? String {
            if (path as NSString).lastPathComponent.hasPrefix(name) { found.append(path) }
        }
        return found
    }

    /// make's arguments for the Makefile's own variables, as PluginBuilder passes them.
    static func makeVariables(nvcc: URL) -> [String] {
        let lib = nvcc.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("lib")
        var cudart: [String] = []
        if FileManager.default.fileExists(atPath: lib.appendingPathComponent("libcudart.so.13").path) {
            cudart = ["-L\(lib.path)", "-l:libcudart.so.13", "-Xlinker", "-rpath=\(lib.path)"]
        }
        return [MakeCommandLine.variable("NVCC", shellWords: [nvcc.path]), MakeCommandLine.variable("CUDART_LIBS", shellWords: cudart)]
    }

    @Test("an output path full of shell syntax builds, runs none of it, and make -C OUT builds it again")
    func hostileOutputPath() throws {
        let nvcc = try #require(PluginFixtures.nvcc(), "nvcc not found: set TPAT_NVCC or run make setup")
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let marker = "tpat-marker-\(UUID().uuidString.prefix(8))"
        // Every character a shell or make would read: quotes, $( ), backquotes, ;, spaces, #, \.
        let parent = dir.appendingPathComponent("o'ut $(touch \(marker)-dollar) `touch \(marker)-bq` ;a b")
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        let out = parent.appendingPathComponent("out \"x\" # $$HOME \\ ;touch \(marker)-semi")
        // The link folders are made under TMPDIR: here, to see that none is left behind.
        let tmp = dir.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        let model = try TestSupport.demoModel()
        let result = try TestSupport.runTPAT(
            ["generate", model.path, "-o", out.path, "--nodes", Self.nodes, "--arch", "sm_90", "-q"],
            environment: ["TMPDIR": tmp.path, "TPAT_NVCC": nvcc.path])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONDecoder().decode(PipelineReport.self, from: Data(contentsOf: out.appendingPathComponent("report.json")))
        #expect(report.plugins.count == 2)
        #expect(report.plugins.allSatisfy { $0.kernelBuild == "built" }, "\(report.plugins.map { ($0.name, $0.kernelBuild) })")
        let norm = try #require(report.plugins.first { $0.opType == "LayerNormalization" })
        #expect(norm.constants == 2)

        // make -C OUT, as a user would on another machine.
        let make = URL(fileURLWithPath: "/usr/bin/env")
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = tmp.path
        func runMake(_ arguments: [String]) throws -> (Int32, String) {
            let process = Process()
            process.executableURL = make
            process.arguments = ["make", "-C", out.path] + arguments
            process.environment = environment
            process.currentDirectoryURL = dir
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        // The constants the plugin library embeds (its constants object, built by make here as it
        // is for the library) are the plugin's own files, reached through the hostile path; the
        // kernel object holds none of them (the self-test reads them when it runs).
        func checkConstantsEmbedded() throws {
            let folder = out.appendingPathComponent("plugins/\(norm.name)")
            let target = "plugins/\(norm.name)/build/\(norm.name)_constants.o"
            let (status, log) = try runMake(Self.makeVariables(nvcc: nvcc) + [target])
            #expect(status == 0, "make \(target) failed:\n\(log)")
            let embedded = try Data(contentsOf: out.appendingPathComponent(target))
            let kernels = try Data(contentsOf: folder.appendingPathComponent("build/\(norm.name)_kernels.o"))
            for file in ["c0.bin", "c1.bin"] {
                let bytes = try Data(contentsOf: folder.appendingPathComponent("constants/\(file)"))
                #expect(bytes.count == 32 * 4 && embedded.range(of: bytes) != nil, "\(file) is not in the constants object")
                #expect(kernels.range(of: bytes) == nil, "\(file) is in the kernel object too")
            }
            #expect(FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent("build/\(norm.name)_test").path))
        }
        try checkConstantsEmbedded()

        // make -C OUT again, from scratch.
        let (cleanStatus, cleanLog) = try runMake(["clean"])
        #expect(cleanStatus == 0, "\(cleanLog)")
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("plugins/\(norm.name)/build").path))
        let (status, log) = try runMake(Self.makeVariables(nvcc: nvcc))
        #expect(status == 0, "make -C OUT failed:\n\(log)")
        #expect(log.contains("TENSORRT_DIR is not set"))
        try checkConstantsEmbedded()
        let (again, againLog) = try runMake(Self.makeVariables(nvcc: nvcc))
        #expect(again == 0 && !againLog.contains("mktemp"), "a second make rebuilt what was built:\n\(againLog)")

        // Nothing the path holds ever ran: no marker anywhere a command could have run.
        for folder in [dir, URL(fileURLWithPath: FileManager.default.currentDirectoryPath), TestSupport.root, FileManager.default.temporaryDirectory] {
            let found = folder == dir ? Self.find(marker, under: folder) : TestSupport.listing(folder).filter { $0.hasPrefix(marker) }
            #expect(found.isEmpty, "\(folder.path) holds \(found): the output path was run as shell code")
        }
        // Every link folder was removed.
        #expect(TestSupport.listing(tmp).filter { $0.hasPrefix("tmp.") }.isEmpty, "\(TestSupport.listing(tmp))")
    }

    @Test("a successful build's log keeps nvcc's warnings and drops make's command lines")
    func successfulBuildLogKeepsWarningsOnly() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = dir.appendingPathComponent("build.log")
        let commands = String(repeating: "tpat_link=$(mktemp -d) && nvcc -O3 -c src/x.cu -o out/x.o\n", count: 200)
        try Data((commands + "src/x.cu(12): warning #177-D: variable \"k\" was declared but never referenced\n").utf8).write(to: log)
        PluginBuilder.keepWarningsOnly(log)
        let kept = try String(contentsOf: log, encoding: .utf8)
        #expect(kept.contains("1 warning line(s)"))
        #expect(kept.contains("warning #177-D"))
        #expect(!kept.contains("mktemp"))
    }

    @Test("make command-line values reach the shell as the exact words, and the environment unchanged")
    func makeCommandLineQuoting() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let makefile = "export LITERAL\nall:\n\t@printf '[%s]\\n' $(WORDS) \"$$LITERAL\"\n"
        try Data(makefile.utf8).write(to: dir.appendingPathComponent("Makefile"))
        let hostile = ["/a b/it's $(touch M1) `touch M2` ;x", "$$HOME", "$(shell touch M3)", "\\\"", ""]
        let (status, output) = try PluginFixtures.run(URL(fileURLWithPath: "/usr/bin/env"), [
            "make", "-s", "-C", dir.path,
            MakeCommandLine.variable("WORDS", shellWords: hostile),
            MakeCommandLine.variable("LITERAL", literal: hostile[0] + hostile[2]),
        ], in: dir)
        #expect(status == 0, "\(output)")
        #expect(output == (hostile + [hostile[0] + hostile[2]]).map { "[\($0)]\n" }.joined())
        #expect(TestSupport.listing(dir) == ["Makefile"])
    }

    @Test("a damaged kernel-cache entry: one warning on the terminal, the node regenerated, the entry replaced")
    func damagedCacheEntry() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try TestSupport.demoModel()
        let cache = dir.appendingPathComponent("cache")
        func generate(_ name: String) throws -> (status: Int32, stderr: String, report: PipelineReport) {
            let out = dir.appendingPathComponent(name)
            let result = try TestSupport.runTPAT(
                ["generate", model.path, "-o", out.path, "--nodes", "head/norm", "--arch", "sm_90", "-q", "--no-build", "--no-reference"],
                environment: ["TPAT_KERNEL_CACHE": cache.path])
            let report = try JSONDecoder().decode(PipelineReport.self, from: Data(contentsOf: out.appendingPathComponent("report.json")))
            return (result.status, result.stderr, report)
        }
        let first = try generate("first")
        #expect(first.status == 0, "\(first.stderr)")
        // Flip one bit of the first constant in the (only) entry.
        let constants = Self.find("c0.bin", under: cache).map { cache.appendingPathComponent($0) }
        let c0 = try #require(constants.first)
        #expect(constants.count == 1)
        var bytes = try Data(contentsOf: c0)
        bytes[5] ^= 0x10
        try bytes.write(to: c0)

        let second = try generate("second")
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.report.plugins.first?.cached == nil)
        let warnings = second.stderr.split(separator: "\n").filter { $0.contains("kernel cache entry") }
        #expect(warnings.count == 1, "\(second.stderr)")
        #expect(warnings.first?.contains("constants/c0.bin was changed") == true)
        #expect(warnings.first?.contains(c0.deletingLastPathComponent().deletingLastPathComponent().path) == true)
        let name = try #require(second.report.plugins.first?.name)
        let firstConstant = try Data(contentsOf: dir.appendingPathComponent("first/plugins/\(name)/constants/c0.bin"))
        #expect(try Data(contentsOf: dir.appendingPathComponent("second/plugins/\(name)/constants/c0.bin")) == firstConstant)

        let third = try generate("third")
        #expect(third.status == 0 && !third.stderr.contains("kernel cache entry"), "\(third.stderr)")
        #expect(third.report.plugins.first?.cached == true)
        #expect(try Data(contentsOf: dir.appendingPathComponent("third/plugins/\(name)/constants/c0.bin")) == firstConstant)
    }
}
