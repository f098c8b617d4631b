import Foundation
import Testing

@testable import TPATKit

/// Self-test data from the model itself: the original model run whole in ONNX Runtime gives each
/// plugin the inputs its node really sees.
@Suite("self-test data from the model", .serialized)
struct ModelReferenceTests {
    /// ids[N,S] -> Gather(table[10,4]) -> emb[N,S,4]; ScatterElements(emb, ArgMax(emb), ReduceSum(emb))
    /// along the last axis: its indices and updates come from upstream, with sizes tied to the
    /// data's. Drawn inputs would give it indices of one size and updates of another.
    static func scatterModel() -> ModelBuilder {
        var b = ModelBuilder()
        b.input("ids", .int64, [.symbolic("N"), .symbolic("S")])
        b.initializer("axes", int64: [2], shape: [1])
        var table = Data()
        for k in 0..<40 { withUnsafeBytes(of: (Float(k) * 0.25 - 3).bitPattern.littleEndian) { table.append(contentsOf: $0) } }
        b.graph.initializer.append(TensorValue(elementType: .float32, shape: [10, 4], bytes: table).proto(name: "table"))
        b.node("Gather", ["table", "ids"], ["emb"], name: "embed", ints: ["axis": 0])
        b.node("ArgMax", ["emb"], ["idx"], name: "argmax", ints: ["axis": 2, "keepdims": 1])
        b.node("ReduceSum", ["emb", "axes"], ["upd"], name: "sum", ints: ["keepdims": 1])
        b.node("ScatterElements", ["emb", "idx", "upd"], ["y"], name: "scatter", ints: ["axis": 2])
        b.output("y", .float32, [.symbolic("N"), .symbolic("S"), .fixed(4)])
        return b
    }

    /// Writes the scatter model into a new folder and generates its scatter node (no build)
    /// with `extra` arguments; expects success. Returns the folder and OUT.
    static func generateScatter(_ extra: [String]) throws -> (folder: URL, out: URL) {
        let dir = try TestSupport.temporaryDirectory()
        let input = dir.appendingPathComponent("model.onnx")
        try scatterModel().write(to: input)
        let out = dir.appendingPathComponent("out")
        let result = try TestSupport.runTPAT(
            ["generate", input.path, "-o", out.path, "--arch", "sm_90", "-q", "--no-build", "--nodes", "scatter"] + extra)
        #expect(result.status == 0, "\(result.stderr)")
        return (dir, out)
    }

    @Test("a node's self-test inputs are the values the model gives it, at two sizes")
    func capturedInputs() throws {
        let (_, out) = try Self.generateScatter([])
        let test = out.appendingPathComponent("plugins/tpat_scatter/test")
        struct Reference: Decodable {
            struct Case: Decodable { var name: String; var inputs: [Tensor] }
            struct Tensor: Decodable { var shape: [Int]; var file: String; var dtype: String }
            var cases: [Case]
        }
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: test.appendingPathComponent("reference.json")))
        try #require(reference.cases.count == 2)
        // no --dim given: N took the batch sizes (1, 3) and S the sequence sizes (16, 7); the data is
        // [N,S,4], indices and updates [N,S,1]
        #expect(reference.cases.map { $0.inputs.map(\.shape) } == [[[1, 16, 4], [1, 16, 1], [1, 16, 1]], [[3, 7, 4], [3, 7, 1], [3, 7, 1]]])
        for c in reference.cases {
            let data = try Data(contentsOf: test.appendingPathComponent(c.inputs[0].file))
            let emb = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let indices = try Data(contentsOf: test.appendingPathComponent(c.inputs[1].file)).withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
            // real embedding rows (k * 0.25 - 3 for k < 40), and each index the row's argmax
            #expect(emb.allSatisfy { $0 >= -3 && $0 < 7 && ($0 * 4).rounded() == $0 * 4 })
            #expect(indices.allSatisfy { $0 == 3 })
        }
        // the captured values stay out of OUT: only the self-test's own files are there
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent(Pipeline.captureFolder).path))
    }

    @Test("--dim sets the model's sizes of each case; a bad --dim is refused before any work")
    func givenDims() throws {
        let (dir, out) = try Self.generateScatter(["--dim", "N=2,5", "--dim", "S=4"])
        let input = dir.appendingPathComponent("model.onnx")
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("plugins/tpat_scatter/test/reference.json"))) as? [String: Any]
        let cases = try #require(doc?["cases"] as? [[String: Any]])
        let shapes = cases.map { (($0["inputs"] as? [[String: Any]]) ?? []).first?["shape"] as? [Int] }
        #expect(shapes == [[2, 4, 4], [5, 4, 4]])
        let bad = try TestSupport.runTPAT(["generate", input.path, "-o", dir.appendingPathComponent("bad").path, "--arch", "sm_90", "--nodes", "scatter", "--dim", "N=0"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--dim N=0: write NAME=SIZE"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("bad").path))
    }

    @Test("--dim holds when ONNX Runtime cannot run the whole model and the node's inputs are drawn")
    func givenDimsWithDrawnInputs() throws {
        // x[N,6] -> Reshape to [4,-1] fails in ONNX Runtime for N = 1 and 3 (6 and 18 elements);
        // the Softmax on x then gets drawn inputs, at the sizes the user gave.
        var b = ModelBuilder()
        b.input("x", .float32, [.symbolic("N"), .fixed(6)])
        b.initializer("shape", int64: [4, -1], shape: [2])
        b.node("Reshape", ["x", "shape"], ["r"], name: "reshape")
        b.node("Softmax", ["x"], ["y"], name: "softmax", ints: ["axis": -1])
        b.output("r", .float32, [.fixed(4), .symbolic("M")])
        b.output("y", .float32, [.symbolic("N"), .fixed(6)])
        let dir = try TestSupport.temporaryDirectory()
        let input = dir.appendingPathComponent("model.onnx")
        try b.write(to: input)
        let out = dir.appendingPathComponent("out")
        let result = try TestSupport.runTPAT(
            ["generate", input.path, "-o", out.path, "--arch", "sm_90", "--no-build", "--nodes", "softmax", "--dim", "N=1,3"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("could not run the whole model"), "\(result.stderr)")
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("plugins/tpat_softmax/test/reference.json"))) as? [String: Any]
        let cases = try #require(doc?["cases"] as? [[String: Any]])
        let shapes = cases.map { (($0["inputs"] as? [[String: Any]]) ?? []).first?["shape"] as? [Int] }
        #expect(shapes == [[1, 6], [3, 6]])
    }
}
