import Foundation
import Testing

@testable import TPATKit

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Hostile and malformed model inputs (issue 11, part A): each is made in the test, given to both
/// `tpat inspect` and `tpat generate`, and must be refused with exit code 1 and one clear message,
/// without hanging, without changing a byte of the input (or of the file outside the model's
/// folder it points at), and without writing anything (no output folder, no staging folder).
@Suite("ReliabilityONNX")
struct ReliabilityONNXTests {
    /// One hostile input: how to make it in a fresh `model/` folder, and what the error must say.
    struct HostileCase: CustomStringConvertible, Sendable {
        var description: String
        /// Makes the model (and its links, FIFOs, data) in `folder`; returns the model's path.
        var make: @Sendable (_ folder: URL) throws -> URL
        /// A fragment the error message must hold.
        var message: String
    }

    // MARK: - The cases

    static let externalDataCases: [HostileCase] = [
        HostileCase(description: "external data file is a symbolic link to a file outside the folder", make: { folder in
            try link(folder.appendingPathComponent("w.bin"), to: secretPath(folder))
            return try writeModel(in: folder, biasAt: "w.bin", offset: 0, length: 16)
        }, message: "outside the model's folder"),
        HostileCase(description: "a folder link data -> .. on the way", make: { folder in
            try link(folder.appendingPathComponent("data"), to: "..")
            return try writeModel(in: folder, biasAt: "data/secret.txt", offset: 0, length: 16)
        }, message: "outside the model's folder"),
        HostileCase(description: "a folder link etc -> /etc on the way", make: { folder in
            try link(folder.appendingPathComponent("etc"), to: "/etc")
            return try writeModel(in: folder, biasAt: "etc/passwd", offset: 0, length: 16)
        }, message: "outside the model's folder"),
        HostileCase(description: "a location with .. that leaves the folder", make: { folder in
            try writeModel(in: folder, biasAt: "../secret.txt", offset: 0, length: 16)
        }, message: "outside the model's folder"),
        HostileCase(description: "an absolute location", make: { folder in
            try writeModel(in: folder, biasAt: secretPath(folder), offset: 0, length: 16)
        }, message: "the location is absolute"),
        HostileCase(description: "external data is a FIFO (must not hang)", make: { folder in
            try makeFIFO(folder.appendingPathComponent("w.bin"))
            return try writeModel(in: folder, biasAt: "w.bin", offset: 0, length: 16)
        }, message: "a named pipe (FIFO), not a regular file"),
        // A device can only be reached through a link out of the folder, which confinement refuses
        // first; the device check itself is tested on RegularFile and with the model file below.
        HostileCase(description: "external data is a link to /dev/zero (must not read forever)", make: { folder in
            try link(folder.appendingPathComponent("w.bin"), to: "/dev/zero")
            return try writeModel(in: folder, biasAt: "w.bin", offset: 0, length: nil)
        }, message: "resolves (following symbolic links) to /dev/zero, which is outside the model's folder"),
        HostileCase(description: "external data is a folder", make: { folder in
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("w.bin"), withIntermediateDirectories: false)
            return try writeModel(in: folder, biasAt: "w.bin", offset: 0, length: 16)
        }, message: "a folder, not a regular file"),
        HostileCase(description: "offset 2^63-1", make: { folder in
            try writeData(folder)
            return try writeModel(in: folder, biasAt: "w.bin", offset: "9223372036854775807", length: "1")
        }, message: "the tensor starts at offset 9223372036854775807"),
        HostileCase(description: "offset 16 and length 2^63-1 (offset + length overflows)", make: { folder in
            try writeData(folder)
            return try writeModel(in: folder, biasAt: "w.bin", offset: "16", length: "9223372036854775807")
        }, message: "needs 9223372036854775807 bytes from offset 16"),
        HostileCase(description: "offset 2^64-1", make: { folder in
            try writeData(folder)
            return try writeModel(in: folder, biasAt: "w.bin", offset: "18446744073709551615", length: "16")
        }, message: "external data offset '18446744073709551615' is not a byte count"),
        HostileCase(description: "length 2^63 (one past Int.max)", make: { folder in
            try writeData(folder)
            return try writeModel(in: folder, biasAt: "w.bin", offset: "0", length: "9223372036854775808")
        }, message: "external data length '9223372036854775808' is not a byte count"),
    ]

    static let wireCases: [HostileCase] = [
        HostileCase(description: "protobuf length 2^63-1", make: { folder in
            try writeBytes(folder, [0x08, 0x08, 0x3A] + ProtobufWire.varint(UInt64(Int64.max)) + [0x0A, 0x00])
        }, message: "not an ONNX model (protobuf wire format: a length-delimited field at byte 2 claims 9223372036854775807 bytes but only 2 remain)"),
        HostileCase(description: "protobuf length 2^64-1", make: { folder in
            try writeBytes(folder, [0x08, 0x08, 0x3A] + ProtobufWire.varint(UInt64.max) + [0x0A, 0x00])
        }, message: "not an ONNX model (protobuf wire format: a length-delimited field at byte 2 claims 18446744073709551615 bytes but only 2 remain)"),
        HostileCase(description: "a raw_data length of 2^63-1 inside an initializer", make: { folder in
            try writeBytes(folder, [0x08, 0x08, 0x3A, 0x10, 0x2A, 0x0E, 0x4A] + ProtobufWire.varint(UInt64(Int64.max)))
        }, message: "not an ONNX model"),
        HostileCase(description: "the model file is a FIFO (must not hang)", make: { folder in
            let url = folder.appendingPathComponent("model.onnx")
            try makeFIFO(url)
            return url
        }, message: "a named pipe (FIFO), not a file"),
        HostileCase(description: "the model file is a link to /dev/zero", make: { folder in
            let url = folder.appendingPathComponent("model.onnx")
            try link(url, to: "/dev/zero")
            return url
        }, message: "a character device, not a file"),
    ]

    static let graphCases: [HostileCase] = [
        HostileCase(description: "a cycle", make: { folder in
            try writeGraph(folder) { graph in
                graph.node = [node("Add", ["x", "b"], ["a"], "A"), node("Relu", ["a"], ["b"], "B"), node("Relu", ["a"], ["y"], "relu")]
            }
        }, message: "form a cycle: 'A' (Add) -> 'B' (Relu) -> 'A' (Add)"),
        HostileCase(description: "two producers of one value", make: { folder in
            try writeGraph(folder) { graph in
                graph.node = [node("Relu", ["x"], ["a"], "P1"), node("Neg", ["x"], ["a"], "P2"), node("Relu", ["a"], ["y"], "relu")]
            }
        }, message: "the value 'a' is produced by two nodes, 'P1' (Relu) and 'P2' (Neg)"),
        HostileCase(description: "a node writing a graph input", make: { folder in
            try writeGraph(folder) { graph in
                graph.node = [node("Relu", ["x"], ["x"], "W"), node("Relu", ["x"], ["y"], "relu")]
            }
        }, message: "node 'W' (Relu) writes 'x', which is a graph input"),
        HostileCase(description: "a node writing an initializer", make: { folder in
            try writeGraph(folder) { graph in
                graph.node = [node("Relu", ["x"], ["bias"], "W"), node("Add", ["x", "bias"], ["y"], "relu")]
            }
        }, message: "node 'W' (Relu) writes 'bias', which is an initializer"),
        HostileCase(description: "an input nothing defines", make: { folder in
            try writeGraph(folder) { graph in
                graph.node = [node("Add", ["x", "q"], ["y"], "relu")]
            }
        }, message: "node 'relu' (Add) reads 'q', which no graph input, initializer or earlier node defines"),
        HostileCase(description: "nodes out of topological order", make: { folder in
            try writeGraph(folder) { graph in
                graph.node = [node("Relu", ["r"], ["y"], "second"), node("Relu", ["x"], ["r"], "relu")]
            }
        }, message: "node 'second' (Relu) reads 'r' before node 'relu' (Relu) produces it"),
        HostileCase(description: "IR version 99", make: { folder in
            var model = TestSupport.smallModel()
            model.irVersion = 99
            return try writeProto(folder, model)
        }, message: "its ir_version is 99, but the ONNX TPAT uses (1.23.2) knows IR versions up to 14"),
        HostileCase(description: "default-domain opset 99", make: { folder in
            var model = TestSupport.smallModel()
            model.opsetImport[0].version = 99
            return try writeProto(folder, model)
        }, message: "it imports opset 99 of the default ONNX domain"),
    ]

    // MARK: - Through the command line

    @Test("tpat inspect refuses hostile external data, wire lengths and invalid graphs, changing and writing nothing",
          arguments: externalDataCases + wireCases + graphCases)
    func inspectRefuses(_ hostile: HostileCase) throws {
        let root = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = try Self.modelFolder(in: root)
        let model = try hostile.make(folder)
        let before = Self.snapshot(root)
        let run = try Self.runTPAT(["inspect", model.path], within: 60)
        #expect(run.status == 1, "\(hostile): exit \(run.status), stderr: \(run.stderr)")
        #expect(run.stderr.hasPrefix("tpat: error: "), "\(hostile): \(run.stderr)")
        #expect(run.stderr.contains(hostile.message), "\(hostile): \(run.stderr)")
        #expect(run.stdout.isEmpty, "\(hostile): printed \(run.stdout)")
        #expect(Self.snapshot(root) == before, "\(hostile): the input's files changed")
    }

    @Test("tpat generate refuses them too, before writing anything",
          arguments: externalDataCases + wireCases + graphCases)
    func generateRefuses(_ hostile: HostileCase) throws {
        let root = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = try Self.modelFolder(in: root)
        let model = try hostile.make(folder)
        let out = root.appendingPathComponent("out")
        let before = Self.snapshot(root)
        let run = try Self.runTPAT(
            ["generate", model.path, "-o", out.path, "--nodes", "relu", "--no-build", "--arch", "sm_90"], within: 60)
        #expect(run.status == 1, "\(hostile): exit \(run.status), stderr: \(run.stderr)")
        #expect(run.stderr.contains("tpat: error: "), "\(hostile): \(run.stderr)")
        #expect(run.stderr.contains(hostile.message), "\(hostile): \(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path), "\(hostile): the output folder was written")
        #expect(Self.snapshot(root) == before, "\(hostile): files changed or were added beside the output (staging?)")
    }

    // MARK: - In the library

    @Test("protobuf field lengths near 2^63 and 2^64 are errors, never traps")
    func wireLengths() throws {
        for length in [UInt64(Int64.max), UInt64(Int64.max) + 1, UInt64.max, UInt64(Int64.max) - 2] {
            let bytes: [UInt8] = [0x3A] + ProtobufWire.varint(length) + [0x00, 0x00, 0x00]
            try bytes.withUnsafeBufferPointer { buffer in
                #expect(throws: ProtobufWire.WireError.self) {
                    _ = try ProtobufWire.nextField(buffer, at: 0, limit: buffer.count)
                }
            }
        }
        // The cursor near the limit: a fixed64 or fixed32 field whose payload is not all there.
        for bytes in [[0x09, 1, 2, 3], [0x0D, 1, 2], [0x00, 0x00]] as [[UInt8]] {
            try bytes.withUnsafeBufferPointer { buffer in
                #expect(throws: ProtobufWire.WireError.self) { _ = try ProtobufWire.nextField(buffer, at: 0, limit: buffer.count) }
            }
        }
        // A well-formed field still steps right.
        let good: [UInt8] = [0x3A, 0x02, 0xAA, 0xBB, 0x08, 0x01]
        try good.withUnsafeBufferPointer { buffer in
            let (number, range) = try ProtobufWire.nextField(buffer, at: 0, limit: buffer.count)
            #expect(number == 7 && range.payload == 2 && range.end == 4)
        }
    }

    @Test("only regular files open: a FIFO without a writer is refused at once, devices and folders too")
    func regularFilesOnly() throws {
        let root = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let fifo = root.appendingPathComponent("fifo")
        try Self.makeFIFO(fifo)
        let started = Date()
        #expect(throws: FileAccessFailure.notRegular(kind: "a named pipe (FIFO)")) { _ = try RegularFile.open(fifo.path) }
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(throws: FileAccessFailure.notRegular(kind: "a character device")) { _ = try RegularFile.open("/dev/zero") }
        #expect(throws: FileAccessFailure.notRegular(kind: "a folder")) { _ = try RegularFile.open(root.path) }
        #expect(throws: FileAccessFailure.missing) { _ = try RegularFile.open(root.appendingPathComponent("none").path) }
        let file = root.appendingPathComponent("f")
        try Data([1, 2, 3]).write(to: file)
        let opened = try RegularFile.open(file.path, confinedTo: RealPath.resolve(root.path)!)
        #expect(opened.size == 3)
        #expect(try opened.read(1..<3) == Data([2, 3]))
        // Confined to a folder the file is not in: refused on the descriptor's real path.
        let elsewhere = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        #expect(throws: FileAccessFailure.self) { _ = try RegularFile.open(RealPath.resolve(file.path)!, confinedTo: RealPath.resolve(elsewhere.path)!) }
        // A link given where a real path is expected (confined opens) is refused, not followed.
        let link = root.appendingPathComponent("link")
        try Self.link(link, to: file.path)
        #expect(throws: FileAccessFailure.changedWhileOpening) { _ = try RegularFile.open(link.path, confinedTo: RealPath.resolve(root.path)!) }
    }

    @Test("the folder check compares bytes, not Unicode-equivalent strings")
    func folderCheckComparesBytes() {
        let composed = "/data/caf\u{E9}"
        let decomposed = "/data/cafe\u{301}"
        #expect(composed == decomposed)  // Swift's String equality: why bytes are compared
        #expect(!RealPath.isInside(decomposed + "/secret", folder: composed))
        #expect(RealPath.isInside(composed + "/w.bin", folder: composed))
        #expect(!RealPath.isInside(composed, folder: composed))
        #expect(!RealPath.isInside(composed + "x/w.bin", folder: composed))
    }

    @Test("byte ranges near Int.max are checked without overflow")
    func byteRanges() throws {
        let cases: [(offset: Int, length: Int?, size: Int, fits: Bool)] = [
            (0, 16, 16, true), (16, 0, 16, true), (0, nil, 16, true), (16, nil, 16, true),
            (17, nil, 16, false), (Int.max, 1, 16, false), (1, Int.max, 16, false), (Int.max, Int.max, Int.max, false),
            (Int.max, 0, Int.max, true), (8, 9, 16, false),
        ]
        for c in cases {
            let reference = ExternalDataReference(location: "w.bin", offset: c.offset, length: c.length)
            let range = try? ExternalDataStore.byteRange(of: reference, inFileOf: c.size, path: "w.bin", tensor: "t")
            #expect((range != nil) == c.fits, "offset \(c.offset) length \(String(describing: c.length)) size \(c.size)")
        }
    }

    @Test("tensor shapes whose element or byte count overflows are malformed, not a trap")
    func hugeShapes() {
        for dims: [Int64] in [[1 << 40, 1 << 40], [Int64.max, 2], [1 << 62, 1], [-1, 4]] {
            var tensor = Onnx_TensorProto()
            tensor.name = "h"
            tensor.dataType = 1
            tensor.dims = dims
            tensor.rawData = Data(count: 16)
            #expect(throws: ONNXError.self) { _ = try TensorValue(tensor) }
        }
        #expect(TensorValue(elementType: .float32, shape: [1 << 40, 1 << 40], bytes: Data()).elementCount == nil)
        #expect(ElementType.float32.byteCount(elements: Int.max / 2) == nil)
    }

    @Test("an external length that does not match the tensor's shape is refused before it is read")
    func lengthMustMatchShape() throws {
        let root = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = try Self.modelFolder(in: root)
        try Self.writeData(folder)
        let url = try Self.writeModel(in: folder, biasAt: "w.bin", offset: 0, length: 32)
        let model = try ONNXModel.load(contentsOf: url)
        #expect {
            _ = try GraphIndex(model: model).constantValue("bias", store: model.externalData)
        } throws: { error in
            guard case .malformedTensor(let tensor, let reason) = error as? ONNXError else { return false }
            return tensor == "bias" && reason.contains("32 bytes but its type and shape need 16")
        }
    }

    @Test("links that stay inside the model's folder, and a model folder reached through a link, still load")
    func linksInsideAreFine() throws {
        let root = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = try Self.modelFolder(in: root)
        try Self.writeData(folder)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("weights"), withIntermediateDirectories: false)
        try Self.link(folder.appendingPathComponent("weights/w.bin"), to: "../w.bin")
        try Self.link(folder.appendingPathComponent("same"), to: ".")
        for location in ["w.bin", "weights/w.bin", "same/w.bin", "weights/../w.bin"] {
            let url = try Self.writeModel(in: folder, biasAt: location, offset: 16, length: 16)
            let model = try ONNXModel.load(contentsOf: url)
            let bias = try #require(try GraphIndex(model: model).constantValue("bias", store: model.externalData))
            #expect(bias.bytes == Data((16..<32).map { UInt8($0) }), "\(location)")
        }
        // The whole folder through a link: locations resolve against its real path.
        let alias = root.appendingPathComponent("alias")
        try Self.link(alias, to: folder.path)
        let model = try ONNXModel.load(contentsOf: alias.appendingPathComponent("model.onnx"))
        #expect(try model.externalData.bytes(of: model.graph.initializer[0]).count == 16)
    }

    @Test("copying a model out reads external data only through the confined path")
    func writeRefusesHostileData() throws {
        let root = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = try Self.modelFolder(in: root)
        try Self.writeData(folder)
        let url = try Self.writeModel(in: folder, biasAt: "w.bin", offset: 0, length: 16)
        var model = try ONNXModel.load(contentsOf: url)
        // After the load, the data file becomes a link out (the model was checked, the file swapped).
        try FileManager.default.removeItem(at: folder.appendingPathComponent("w.bin"))
        try Self.link(folder.appendingPathComponent("w.bin"), to: Self.secretPath(folder))
        let out = root.appendingPathComponent("copy.onnx")
        #expect {
            try model.write(to: out)
        } throws: { error in
            guard case .externalData(_, let tensor, let reason) = error as? ONNXError else { return false }
            return tensor == "bias" && reason.contains("outside the model's folder")
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
        #expect(!FileManager.default.fileExists(atPath: out.path + ".data"))
        // And a FIFO swapped in is refused without blocking.
        try FileManager.default.removeItem(at: folder.appendingPathComponent("w.bin"))
        try Self.makeFIFO(folder.appendingPathComponent("w.bin"))
        model.proto.producerName = "changed"
        #expect(throws: ONNXError.self) { try model.write(to: out) }
    }

    @Test("valid scoping is accepted: If/Loop bodies reading outer values, optional inputs, functions")
    func validScopes() throws {
        var model = TestSupport.smallModel()
        var thenBranch = Onnx_GraphProto()
        thenBranch.name = "then"
        thenBranch.node = [Self.node("Add", ["r", "bias"], ["t"], "then_add")]
        thenBranch.output = [Self.valueInfo("t")]
        var elseBranch = Onnx_GraphProto()
        elseBranch.name = "else"
        elseBranch.node = [Self.node("Neg", ["x"], ["e"], "else_neg")]
        elseBranch.output = [Self.valueInfo("e")]
        var ifNode = Self.node("If", ["c"], ["z"], "if")
        ifNode.attribute = [Self.graphAttribute("then_branch", thenBranch), Self.graphAttribute("else_branch", elseBranch)]
        model.graph.node.append(ifNode)
        model.graph.node.append(Self.node("Clip", ["z", "", ""], ["clipped"], "clip"))
        model.graph.input.append(Self.valueInfo("c"))
        model.graph.output.append(Self.valueInfo("clipped"))
        var function = Onnx_FunctionProto()
        function.name = "Twice"
        function.domain = "local"
        function.input = ["a"]
        function.output = ["b"]
        function.node = [Self.node("Add", ["a", "a"], ["b"], "f_add")]
        model.functions = [function]
        #expect(throws: Never.self) { try GraphValidation.validate(model, path: "m.onnx") }

        // The same body reading a value produced only after the If node is an error.
        var late = model
        late.graph.node[2].attribute[0].g.node[0].input = ["clipped", "bias"]
        #expect {
            try GraphValidation.validate(late, path: "m.onnx")
        } throws: { error in
            "\(error)".contains("node 'then_add' (Add) in the subgraph 'then_branch' of node 'if' (If) reads 'clipped'")
        }
        // A body output shadowing an outer value is an error (onnx.checker's SSA rule).
        var shadow = model
        shadow.graph.node[2].attribute[1].g.node[0].output = ["r"]
        shadow.graph.node[2].attribute[1].g.output[0].name = "r"
        #expect(throws: ONNXError.self) { try GraphValidation.validate(shadow, path: "m.onnx") }
        // A function body out of order is an error too.
        var badFunction = model
        badFunction.functions[0].node[0].input = ["a", "nowhere"]
        #expect(throws: ONNXError.self) { try GraphValidation.validate(badFunction, path: "m.onnx") }
    }

    @Test("every model the project ships or generates passes validation")
    func projectModelsValidate() throws {
        var models = ["dtypes.onnx", "rich.onnx", "external/model.onnx"].map { TestSupport.root.appendingPathComponent("Tests/Fixtures/generated/\($0)") }
        models += ["demo.onnx", "lowerings.onnx", "ops.onnx"].map { TestSupport.root.appendingPathComponent("models/generated/\($0)") }
        for url in models {
            try #require(FileManager.default.fileExists(atPath: url.path), "\(url.path) is missing: run `make test` once (scripts/setup.sh writes it)")
            #expect(throws: Never.self, "\(url.lastPathComponent)") { _ = try ONNXModel.load(contentsOf: url) }
        }
    }

    // MARK: - Helpers

    /// `root/model/` (the model's folder) and `root/secret.txt` (a file outside it).
    static func modelFolder(in root: URL) throws -> URL {
        let folder = root.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("root:x:0:0:a file outside the model's folder\n".utf8).write(to: root.appendingPathComponent("secret.txt"))
        return folder
    }

    static func secretPath(_ folder: URL) -> String {
        folder.deletingLastPathComponent().appendingPathComponent("secret.txt").path
    }

    /// `w.bin` in `folder`: 64 bytes 0, 1, ..., 63.
    static func writeData(_ folder: URL) throws {
        try Data((0..<64).map { UInt8($0) }).write(to: folder.appendingPathComponent("w.bin"))
    }

    static func link(_ url: URL, to destination: String) throws {
        try FileManager.default.createSymbolicLink(atPath: url.path, withDestinationPath: destination)
    }

    static func makeFIFO(_ url: URL) throws {
        try #require(mkfifo(url.path, 0o600) == 0, "mkfifo \(url.path) failed")
    }

    /// The small model with its `bias` (float32[4], 16 bytes) stored externally.
    static func writeModel(in folder: URL, biasAt location: String, offset: Int, length: Int?) throws -> URL {
        try writeModel(in: folder, biasAt: location, offset: String(offset), length: length.map(String.init))
    }

    static func writeModel(in folder: URL, biasAt location: String, offset: String, length: String?) throws -> URL {
        var model = TestSupport.smallModel()
        var bias = model.graph.initializer[0]
        bias.rawData = Data()
        bias.dataLocation = .external
        var entries = [("location", location), ("offset", offset)]
        if let length { entries.append(("length", length)) }
        bias.externalData = entries.map { key, value in
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = value
            return entry
        }
        model.graph.initializer[0] = bias
        return try writeProto(folder, model)
    }

    /// The small model with its graph's nodes changed by `edit` (inputs x, output y, initializer bias).
    static func writeGraph(_ folder: URL, _ edit: (inout Onnx_GraphProto) -> Void) throws -> URL {
        var model = TestSupport.smallModel()
        edit(&model.graph)
        return try writeProto(folder, model)
    }

    static func writeProto(_ folder: URL, _ model: Onnx_ModelProto) throws -> URL {
        let url = folder.appendingPathComponent("model.onnx")
        try (model.serializedBytes() as Data).write(to: url)
        return url
    }

    static func writeBytes(_ folder: URL, _ bytes: [UInt8]) throws -> URL {
        let url = folder.appendingPathComponent("model.onnx")
        try Data(bytes).write(to: url)
        return url
    }

    static func node(_ op: String, _ inputs: [String], _ outputs: [String], _ name: String) -> Onnx_NodeProto {
        var node = Onnx_NodeProto()
        node.opType = op
        node.name = name
        node.input = inputs
        node.output = outputs
        return node
    }

    static func valueInfo(_ name: String) -> Onnx_ValueInfoProto {
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type = TensorType(elementType: .float32, shape: [.symbolic("N"), .fixed(4)]).proto
        return info
    }

    static func graphAttribute(_ name: String, _ graph: Onnx_GraphProto) -> Onnx_AttributeProto {
        var attribute = Onnx_AttributeProto()
        attribute.name = name
        attribute.type = .graph
        attribute.g = graph
        return attribute
    }

    /// Every entry under `root`, links and special files by kind and target, regular files by
    /// their bytes; links are not followed (a FIFO is never opened, `data -> ..` never loops).
    static func snapshot(_ root: URL) -> [String: String] {
        var result: [String: String] = [:]
        func walk(_ url: URL, _ relative: String) {
            var info = stat()
            guard lstat(url.path, &info) == 0 else { return }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                result[relative + "/"] = "folder"
                for name in (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [] {
                    walk(url.appendingPathComponent(name), relative + "/" + name)
                }
            case S_IFLNK:
                result[relative] = "link -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: url.path)) ?? "?")
            case S_IFREG:
                result[relative] = (try? Data(contentsOf: url))?.base64EncodedString() ?? "unreadable"
            default:
                result[relative] = "special \(info.st_mode & S_IFMT)"
            }
        }
        walk(root, "")
        return result
    }

    /// Runs the built `tpat` with a deadline: a run that outlives it is killed and recorded as a
    /// hang (a FIFO opened for reading blocks forever). Output goes to files, not pipes, so that
    /// a killed run cannot leave the test waiting on a pipe.
    static func runTPAT(_ arguments: [String], within seconds: Double) throws -> (status: Int32, stdout: String, stderr: String) {
        let binary = TestSupport.tpatBinary
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build tpat first")
        let logs = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: logs) }
        let outURL = logs.appendingPathComponent("stdout")
        let errURL = logs.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["TPAT_KERNEL_CACHE": "off"]) { $1 }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            Issue.record("tpat \(arguments.joined(separator: " ")) still ran after \(Int(seconds)) s: a hang")
        }
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }
}
