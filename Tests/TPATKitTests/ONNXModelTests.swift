import Foundation
import Testing

@testable import TPATKit

@Suite("ONNX models in and out")
struct ONNXModelTests {
    @Test("models written by Python's onnx round-trip byte for byte", arguments: ["rich.onnx", "dtypes.onnx"])
    func pythonModelsRoundTrip(name: String) throws {
        let url = try TestSupport.fixture(name)
        let original = try Data(contentsOf: url)
        let model = try ONNXModel.load(contentsOf: url)
        let out = try TestSupport.temporaryDirectory().appendingPathComponent(name)
        try model.write(to: out)
        #expect(try Data(contentsOf: out) == original)
    }

    @Test("the demo model round-trips byte for byte")
    func demoRoundTrips() throws {
        let url = try TestSupport.demoModel()
        let model = try ONNXModel.load(contentsOf: url)
        #expect(try model.serializedData() == Data(contentsOf: url))
    }

    @Test("metadata, functions, doc strings, opsets and unknown fields survive")
    func everythingSurvives() throws {
        let model = try ONNXModel.load(contentsOf: try TestSupport.fixture("rich.onnx"))
        #expect(model.proto.metadataProps.map(\.key).sorted() == ["author", "purpose"])
        #expect(model.proto.functions.map(\.name) == ["Swish"])
        #expect(model.proto.docString == "model doc")
        #expect(model.graph.node[0].docString == "absolute value")
        #expect(model.opsetVersion(domain: "tpat.test") == 1)
        #expect(model.opsetVersion() == 17)

        // A field this ONNX version does not know (number 999 on ModelProto) is kept as it was.
        var bytes = try model.serializedData()
        bytes.append(contentsOf: [0xBA, 0x3E, 0x03, 0x61, 0x62, 0x63])  // field 999, length-delimited "abc"
        let dir = try TestSupport.temporaryDirectory()
        let withUnknown = dir.appendingPathComponent("unknown.onnx")
        try bytes.write(to: withUnknown)
        let reloaded = try ONNXModel.load(contentsOf: withUnknown)
        let saved = dir.appendingPathComponent("saved.onnx")
        try reloaded.write(to: saved)
        #expect(try Data(contentsOf: saved) == bytes)
    }

    @Test("the streamed writer gives SwiftProtobuf's bytes: tensors over several buffers, typed fields, unknown fields")
    func streamedWriterMatchesSwiftProtobuf() throws {
        var proto = TestSupport.smallModel()
        proto.docString = "streamed"
        // 40 MiB of raw data (more than one 32 MiB buffer), odd sizes, a small tensor, a typed one.
        for (k, count) in [10_000_001, 16, 31_457_283].enumerated() {
            var t = Onnx_TensorProto()
            t.name = "raw\(k)"
            t.dataType = Int32(Onnx_TensorProto.DataType.uint8.rawValue)
            t.dims = [Int64(count)]
            t.rawData = Data((0..<count).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) })
            proto.graph.initializer.append(t)
        }
        var typed = Onnx_TensorProto()
        typed.name = "typed"
        typed.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        typed.dims = [3]
        typed.floatData = [1, 2.5, -3]
        // A field this ONNX version does not know, on a tensor (kept in place by SwiftProtobuf).
        try typed.merge(serializedBytes: [0xBA, 0x3E, 0x01, 0x7A] as [UInt8])
        proto.graph.initializer.append(typed)
        proto.graph.docString = "after the initializers"
        try proto.merge(serializedBytes: [0xBA, 0x3E, 0x03, 0x61, 0x62, 0x63] as [UInt8])  // model field 999
        #expect(StreamedModelWriter.applies(to: proto))
        let dir = try TestSupport.temporaryDirectory()
        let url = dir.appendingPathComponent("streamed.onnx")
        try ONNXModel(proto: proto, baseDirectory: dir).write(to: url)
        let expected: Data = try proto.serializedBytes()
        #expect(try Data(contentsOf: url) == expected)

        // Loading leaves the large raw data in the file's mapping (no copy) and decodes the same.
        #expect(try ONNXModel.load(contentsOf: url).proto == proto)
        let region = try #require(MappedRegion.map(url))
        let decoded = try MappedModelDecoder.decode(region)
        #expect(decoded == proto)
        let mapped = region.base..<(region.base + region.length)
        for tensor in decoded.graph.initializer {
            let start = tensor.rawData.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress) }
            let inMapping = start.map { mapped.contains($0) } ?? false
            #expect(inMapping == (tensor.rawData.count >= MappedModelDecoder.threshold), "\(tensor.name)")
        }

        // Unknown fields on the graph itself: SwiftProtobuf puts them after the initializers, the
        // splice would not, so the model is written whole.
        var graphUnknown = proto
        try graphUnknown.graph.merge(serializedBytes: [0xBA, 0x3E, 0x01, 0x7A] as [UInt8])
        #expect(!StreamedModelWriter.applies(to: graphUnknown))
        let url2 = dir.appendingPathComponent("whole.onnx")
        try ONNXModel(proto: graphUnknown, baseDirectory: dir).write(to: url2)
        let expected2: Data = try graphUnknown.serializedBytes()
        #expect(try Data(contentsOf: url2) == expected2)
    }

    @Test("layouts the zero-copy load does not take apart decode whole, the same as SwiftProtobuf")
    func mappedDecoderFallsBack() throws {
        var proto = TestSupport.smallModel()
        var big = Onnx_TensorProto()
        big.name = "big"
        big.dataType = Int32(Onnx_TensorProto.DataType.uint8.rawValue)
        big.dims = [100_000]
        big.rawData = Data(repeating: 7, count: 100_000)
        proto.graph.initializer.append(big)
        let plain: Data = try proto.serializedBytes()
        // A second graph field (protobuf merges it into the first) and a second raw_data field on
        // a tensor (the last one wins): both are legal, neither is the plain layout.
        var extraGraph = Onnx_GraphProto()
        extraGraph.docString = "merged"
        let extra: Data = try extraGraph.serializedBytes()
        var twoGraphs = plain
        twoGraphs.append(contentsOf: [0x3A] + [UInt8(extra.count)])
        twoGraphs.append(extra)
        var twoRaw = big
        try twoRaw.merge(serializedBytes: [0x4A, 0x01, 0x09] as [UInt8])  // raw_data again: 1 byte
        var proto2 = TestSupport.smallModel()
        proto2.graph.initializer.append(twoRaw)
        let dir = try TestSupport.temporaryDirectory()
        for (name, bytes) in [("plain", plain), ("two-graphs", twoGraphs), ("two-raw", try proto2.serializedBytes() as Data)] {
            let url = dir.appendingPathComponent("\(name).onnx")
            try bytes.write(to: url)
            let region = try #require(MappedRegion.map(url))
            #expect(try MappedModelDecoder.decode(region) == Onnx_ModelProto(serializedBytes: bytes), "\(name)")
        }
    }

    @Test("a model built in Swift saves and loads back equal")
    func swiftModelRoundTrips() throws {
        let dir = try TestSupport.temporaryDirectory()
        let url = dir.appendingPathComponent("small.onnx")
        try ONNXModel(proto: TestSupport.smallModel(), baseDirectory: dir).write(to: url)
        let loaded = try ONNXModel.load(contentsOf: url)
        #expect(loaded.proto == TestSupport.smallModel())
        #expect(TestSupport.listing(dir) == ["small.onnx"])
    }

    @Test("every element type reads the same from typed fields and raw_data")
    func typedFieldsMatchRawData() throws {
        let model = try ONNXModel.load(contentsOf: try TestSupport.fixture("dtypes.onnx"))
        let index = GraphIndex(model: model)
        let names = model.graph.initializer.map(\.name).filter { !$0.hasSuffix("_raw") }
        #expect(names.count == 12)
        for name in names {
            let typed = try TensorValue(try #require(index.initializers[name]))
            let raw = try TensorValue(try #require(index.initializers[name + "_raw"]))
            #expect(typed == raw, "\(name)")
            #expect(typed.shape == [2, 3])
        }
        #expect(try TensorValue(index.initializers["i64"]!).integers() == [-2, -1, 0, 1, 2, 3])
        #expect(try TensorValue(index.initializers["f16"]!).doubles() == [-2, -1, 0, 1, 2, 3])
        #expect(try TensorValue(index.initializers["b"]!).integers() == [1, 0, 1, 0, 1, 0])
        #expect(try TensorValue(index.initializers["u64"]!).integers() == [0, 1, 2, 3, 4, 5])
    }

    @Test("a tensor whose data does not fit its shape is refused")
    func malformedTensor() throws {
        var tensor = TensorValue(elementType: .float32, shape: [3], bytes: Data(count: 8)).proto(name: "short")
        #expect(throws: ONNXError.malformedTensor(tensor: "short", reason: "8 bytes of data for 3 float32 elements (12 bytes)")) {
            try TensorValue(tensor)
        }
        tensor.dims = [-1]
        #expect(throws: ONNXError.self) { try TensorValue(tensor) }
    }
}

@Suite("External data")
struct ExternalDataTests {
    @Test("tensors in a side file are read lazily and equal what Python wrote")
    func readsExternalTensors() throws {
        let url = try TestSupport.fixture("external/model.onnx")
        let model = try ONNXModel.load(contentsOf: url)
        let w1 = try #require(model.graph.initializer.first { $0.name == "w1" })
        #expect(w1.dataLocation == .external)
        #expect(w1.rawData.isEmpty)
        let value = try TensorValue(w1, store: model.externalData)
        let npy = try Data(contentsOf: url.deletingLastPathComponent().appendingPathComponent("w1.npy"))
        #expect(value.bytes == npy.suffix(value.bytes.count))
        #expect(value.shape == [256, 256])
    }

    @Test("saving writes the data next to the new model and leaves the input alone")
    func savesExternalData() throws {
        let url = try TestSupport.fixture("external/model.onnx")
        let inputBytes = try Data(contentsOf: url)
        let dataBytes = try Data(contentsOf: url.deletingLastPathComponent().appendingPathComponent("model.onnx.data"))
        let model = try ONNXModel.load(contentsOf: url)
        let dir = try TestSupport.temporaryDirectory()
        let out = dir.appendingPathComponent("copy.onnx")
        try model.write(to: out)
        #expect(TestSupport.listing(dir) == ["copy.onnx", "copy.onnx.data"])
        let reloaded = try ONNXModel.load(contentsOf: out)
        for tensor in model.graph.initializer {
            let before = try TensorValue(tensor, store: model.externalData)
            let after = try TensorValue(reloaded.graph.initializer.first { $0.name == tensor.name }!, store: reloaded.externalData)
            #expect(before == after)
        }
        #expect(try Data(contentsOf: url) == inputBytes)
        #expect(try Data(contentsOf: url.deletingLastPathComponent().appendingPathComponent("model.onnx.data")) == dataBytes)
    }

    @Test("large inline tensors can be moved to a side file")
    func externalizesOnRequest() throws {
        let model = try ONNXModel.load(contentsOf: try TestSupport.fixture("dtypes.onnx"))
        let dir = try TestSupport.temporaryDirectory()
        let out = dir.appendingPathComponent("ext.onnx")
        try model.write(to: out, options: SaveOptions(externalizeThreshold: 8))
        let reloaded = try ONNXModel.load(contentsOf: out)
        let moved = reloaded.graph.initializer.filter { $0.dataLocation == .external }
        #expect(!moved.isEmpty)
        for tensor in moved {
            let original = model.graph.initializer.first { $0.name == tensor.name }!
            #expect(try TensorValue(tensor, store: reloaded.externalData) == TensorValue(original))
        }
    }

    @Test("a missing data file is reported with its path")
    func missingDataFile() throws {
        let dir = try copyOfExternalFixture()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model.onnx.data"))
        #expect {
            try ONNXModel.load(contentsOf: dir.appendingPathComponent("model.onnx"))
        } throws: { error in
            guard case .externalData(let path, _, let reason) = error as? ONNXError else { return false }
            return path.hasSuffix("model.onnx.data") && reason.contains("missing")
        }
    }

    @Test("a data file shorter than its tensors is reported")
    func shortDataFile() throws {
        let dir = try copyOfExternalFixture()
        let data = dir.appendingPathComponent("model.onnx.data")
        try Data(try Data(contentsOf: data).prefix(1000)).write(to: data)
        #expect {
            try ONNXModel.load(contentsOf: dir.appendingPathComponent("model.onnx"))
        } throws: { error in
            guard case .externalData(_, _, let reason) = error as? ONNXError else { return false }
            return reason.contains("has 1000 bytes")
        }
    }

    @Test("a location that leaves the model's folder is refused")
    func hostileLocation() throws {
        let dir = try copyOfExternalFixture()
        let url = dir.appendingPathComponent("model.onnx")
        var model = try ONNXModel.load(contentsOf: url)
        model.proto.graph.initializer[0].externalData = ExternalDataReference(location: "../../etc/passwd", offset: 0, length: 4).entries
        try model.serializedData().write(to: dir.appendingPathComponent("hostile.onnx"))
        #expect(throws: ONNXError.self) { try ONNXModel.load(contentsOf: dir.appendingPathComponent("hostile.onnx")) }
    }

    @Test("the output never overwrites the input model or its data")
    func refusesToOverwriteInput() throws {
        let dir = try copyOfExternalFixture()
        let url = dir.appendingPathComponent("model.onnx")
        let model = try ONNXModel.load(contentsOf: url)
        #expect(throws: ONNXError.wouldOverwriteInput(path: url.path)) { try model.write(to: url) }
        #expect(throws: ONNXError.self) {
            try model.write(to: dir.appendingPathComponent("other.onnx"), options: SaveOptions(dataFileName: "model.onnx.data"))
        }
        #expect(TestSupport.listing(dir) == ["model.onnx", "model.onnx.data", "w1.npy"])
    }

    private func copyOfExternalFixture() throws -> URL {
        let source = try TestSupport.fixture("external/model.onnx").deletingLastPathComponent()
        let dir = try TestSupport.temporaryDirectory().appendingPathComponent("external")
        try FileManager.default.copyItem(at: source, to: dir)
        return dir
    }
}

@Suite("Bad input")
struct BadInputTests {
    @Test("a missing file")
    func missingFile() {
        #expect(throws: ONNXError.fileNotFound(path: "/nonexistent/model.onnx")) {
            try ONNXModel.load(contentsOf: URL(fileURLWithPath: "/nonexistent/model.onnx"))
        }
    }

    @Test("files that are not ONNX", arguments: [
        Data("hello, this is a text file and not a model\n".utf8), Data(), Data([0x08, 0x96, 0x01]),
    ])
    func notONNX(bytes: Data) throws {
        let url = try TestSupport.temporaryDirectory().appendingPathComponent("bad.onnx")
        try bytes.write(to: url)
        #expect {
            try ONNXModel.load(contentsOf: url)
        } throws: { error in
            guard case .notONNX(let path, _) = error as? ONNXError else { return false }
            return path == url.path
        }
    }

    @Test("a truncated model", arguments: [0.25, 0.5, 0.9])
    func truncated(fraction: Double) throws {
        let demo = try Data(contentsOf: try TestSupport.demoModel())
        let url = try TestSupport.temporaryDirectory().appendingPathComponent("truncated.onnx")
        try demo.prefix(Int(Double(demo.count) * fraction)).write(to: url)
        #expect(throws: ONNXError.self) { try ONNXModel.load(contentsOf: url) }
    }

    @Test("a node name that does not exist suggests close ones")
    func unknownNode() throws {
        let index = GraphIndex(model: try ONNXModel.load(contentsOf: try TestSupport.demoModel()))
        #expect(throws: ONNXError.unknownNode(name: "head/Softmax", suggestions: ["head/softmax"])) {
            try index.node(named: "head/Softmax")
        }
        let message = ONNXError.unknownNode(name: "x", suggestions: []).description
        #expect(message.contains("tpat inspect"))
    }
}
