import Foundation

/// Derives plugin names from node names: valid C++ identifiers, unique in a run, and never equal
/// to an ONNX or TensorRT op name (every name starts with `tpat_`, which no op does), whatever
/// characters the node name holds.
public struct PluginNaming: Sendable {
    /// The longest name given; TensorRT keeps plugin names short, and so do file systems.
    public static let maximumLength = 60
    private var taken: Set<String> = []

    /// Creates a naming scope.
    public init() {}

    /// A fresh name for a plugin made from `nodeName`.
    public mutating func name(for nodeName: String) -> String {
        var body = ""
        var lastWasUnderscore = true
        for scalar in nodeName.unicodeScalars {
            if scalar.isASCII, CharacterSet.alphanumerics.contains(scalar) {
                body.unicodeScalars.append(scalar)
                lastWasUnderscore = false
            } else if !lastWasUnderscore {
                // Runs of other characters become one underscore: C++ reserves `__` in names.
                body += "_"
                lastWasUnderscore = true
            }
        }
        while body.hasSuffix("_") { body.removeLast() }
        if body.isEmpty { body = "node" }
        let base = String(("tpat_" + body).prefix(Self.maximumLength - 4))
        var candidate = base
        var n = 2
        while taken.contains(candidate.lowercased()) {
            candidate = "\(base)_\(n)"
            n += 1
        }
        // Case-insensitive file systems would merge names that differ only in case.
        taken.insert(candidate.lowercased())
        return candidate
    }
}

extension PluginNaming {
    /// The plugin namespace of one output folder: `tpat_` and 16 hex digits over its plugins'
    /// names and kernels. TensorRT's registry keys creators by name, version and namespace, and
    /// plugin names come from node names, which repeat across exported models
    /// (`/backbone/conv1/Conv`): a namespace of the output's own content lets the libraries of two
    /// TPAT outputs register side by side (the same node name, other kernels), and stays the same
    /// when the same output is generated again.
    public static func namespace(plugins: [(name: String, kernelsID: String)]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for (name, id) in plugins.sorted(by: { $0.name < $1.name }) {
            for byte in Array("\(name)=\(id)\n".utf8) {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01b3
            }
        }
        let hex = String(hash, radix: 16)
        return "tpat_" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
