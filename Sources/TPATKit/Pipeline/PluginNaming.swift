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
