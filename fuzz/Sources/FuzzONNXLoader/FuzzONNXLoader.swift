import CLibFuzzer
import Foundation
import TPATKit

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The folder each input is written to as `model.onnx`, next to the files that the corpus's
/// external-data references name: a real data file, and the hostile ones the loader must refuse
/// without hanging or reading (a link out of the folder, a folder link `up -> ..`, a FIFO, a link
/// to /dev/zero, a folder). Made once per process.
private let workFolder: URL = {
    let base = ProcessInfo.processInfo.environment["TPAT_FUZZ_DIR"]
        ?? (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory())
    let folder = URL(fileURLWithPath: base).appendingPathComponent("tpat-fuzz-\(getpid())")
    let fm = FileManager.default
    try? fm.removeItem(at: folder)
    try! fm.createDirectory(at: folder.appendingPathComponent("sub"), withIntermediateDirectories: true)
    // 4 KiB of bytes 0, 1, ..., 255, 0, ...: what `weights.bin` references in the corpus read.
    let weights = Data((0..<4096).map { UInt8($0 & 0xFF) })
    try! weights.write(to: folder.appendingPathComponent("weights.bin"))
    try! weights.prefix(64).write(to: folder.appendingPathComponent("sub/inner.bin"))
    let secret = folder.deletingLastPathComponent().appendingPathComponent("tpat-fuzz-\(getpid())-outside.txt")
    try! Data("root:x:0:0:outside the model's folder\n".utf8).write(to: secret)
    try! fm.createSymbolicLink(atPath: folder.appendingPathComponent("outside.bin").path, withDestinationPath: secret.path)
    try! fm.createSymbolicLink(atPath: folder.appendingPathComponent("passwd").path, withDestinationPath: "/etc/passwd")
    try! fm.createSymbolicLink(atPath: folder.appendingPathComponent("up").path, withDestinationPath: "..")
    try! fm.createSymbolicLink(atPath: folder.appendingPathComponent("zero").path, withDestinationPath: "/dev/zero")
    try! fm.createSymbolicLink(atPath: folder.appendingPathComponent("inside.bin").path, withDestinationPath: "weights.bin")
    precondition(mkfifo(folder.appendingPathComponent("fifo").path, 0o600) == 0, "mkfifo failed")
    atexit {
        try? FileManager.default.removeItem(at: workFolder)
        try? FileManager.default.removeItem(atPath: workFolder.path + "-outside.txt")
    }
    return folder
}()

/// The op tables `tpat inspect` uses, loaded once.
private let opTables = try? OpSupportTables.bundled()

/// One input: the bytes as a model file, through the loader (decode, graph validation, external
/// data checks), then the graph index, every constant's value (which reads external data), and
/// what `tpat inspect` prints (table and JSON).
/// Errors are the expected outcome for most inputs; a crash, a hang (libFuzzer's -timeout) or
/// a sanitizer report is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNXLoader(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = start.map { Data(bytes: $0, count: count) } ?? Data()
    let url = workFolder.appendingPathComponent("model.onnx")
    guard (try? bytes.write(to: url)) != nil else { fatalError("cannot write \(url.path)") }
    guard let model = try? ONNXModel.load(contentsOf: url) else { return 0 }
    let index = GraphIndex(model: model)
    let store = model.externalData
    for name in index.initializers.keys.sorted() where index.isConstant(name) {
        _ = try? index.constantValue(name, store: store)
    }
    for node in index.graph.node {
        _ = index.opsetVersion(of: node)
    }
    if let opTables {
        let report = ModelInspector(tables: opTables).inspect(model, path: url.path)
        _ = report.renderTable()
        _ = try? JSONEncoder().encode(report)
    }
    // Every external read must stay inside the folder: the outside file's bytes or
    // /etc/passwd's (both start with "root:") would mean the confinement failed, which is a finding like a crash.
    for tensor in model.graph.initializer where tensor.dataLocation == .external {
        if let data = try? store.bytes(of: tensor), String(decoding: data, as: UTF8.self).contains("root:") {
            fatalError("external data of '\(tensor.name)' was read from outside the model's folder")
        }
    }
    return 0
}

/// The program's entry. SwiftPM links an executable target with `main` renamed to
/// `<target>_main` (so tests can link the target), and this file is parsed as a library with no
/// `main` of its own: so the entry is this C function under that name, and it runs libFuzzer's
/// driver (command line, corpus, -max_total_time, ...) over ``fuzzONNXLoader(_:_:)``.
@_cdecl("FuzzONNXLoader_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzONNXLoader(data, size) }
}
