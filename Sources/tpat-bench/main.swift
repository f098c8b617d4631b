import Foundation
import TPATKit

// Benchmark of the ONNX layer on a large model: load, rewrite one node into a plugin node, save.
// Usage: tpat-bench MODEL.onnx NODE_NAME [REPEATS]. Prints a table; scripts/bench-model-io.sh runs it.

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: tpat-bench MODEL.onnx NODE_NAME [REPEATS]\n".utf8))
    exit(2)
}
let input = URL(fileURLWithPath: arguments[1])
let nodeName = arguments[2]
let repeats = arguments.count > 3 ? Int(arguments[3]) ?? 3 : 3
let outDir = FileManager.default.temporaryDirectory.appendingPathComponent("tpat-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: outDir) }
let size = (try FileManager.default.attributesOfItem(atPath: input.path)[.size] as? NSNumber)?.intValue ?? 0

var rows: [(load: Double, rewrite: Double, save: Double)] = []
for _ in 0..<repeats {
    // Each run starts with the previous run's output written back, so that runs are alike.
    try? FileManager.default.removeItem(at: outDir.appendingPathComponent("rewritten.onnx"))
    sync()
    var model: ONNXModel!
    let load = try seconds { model = try ONNXModel.load(contentsOf: input) }
    var rewritten: ONNXModel!
    let rewrite = try seconds {
        let index = GraphIndex(model: model)
        let (i, node) = try index.node(named: nodeName)
        let inputs = node.input.filter { !index.isConstant($0) }.map { PluginPort(value: $0, originalType: index.types[$0]?.elementType ?? .float32) }
        let outputs = node.output.map { PluginPort(value: $0, originalType: index.types[$0]?.elementType ?? .float32) }
        rewritten = ModelRewriter().rewrite(model, replacements: [NodeReplacement(nodeIndex: i, pluginName: "tpat_bench_plugin", inputs: inputs, outputs: outputs)])
    }
    let save = try seconds { try rewritten.write(to: outDir.appendingPathComponent("rewritten.onnx")) }
    rows.append((load, rewrite, save))
}
print(String(format: "model: %@ (%.2f GB), node: %@, %d runs", input.lastPathComponent, Double(size) / 1e9, nodeName, repeats))
print("| run | load (s) | rewrite (s) | save (s) | total (s) |")
print("|---|---|---|---|---|")
for (i, r) in rows.enumerated() {
    print(String(format: "| %d | %.3f | %.3f | %.3f | %.3f |", i + 1, r.load, r.rewrite, r.save, r.load + r.rewrite + r.save))
}
let totals = rows.map { $0.load + $0.rewrite + $0.save }.sorted()
print(String(format: "median total: %.3f s", totals[totals.count / 2]))
