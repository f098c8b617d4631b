import Foundation

/// Errors of the TPAT pipeline outside the ONNX layer. Each says what went wrong and what to do.
public enum TPATError: Error, Equatable, Sendable, CustomStringConvertible {
    /// TPAT itself is not installed completely (a resource, the Python bridge, nvcc).
    case installation(String)
    /// The user's request cannot be carried out as given.
    case usage(String)
    /// A node cannot be turned into a plugin; names the node.
    case node(name: String, reason: String)
    /// An external tool (Python bridge, nvcc) failed.
    case tool(name: String, reason: String)
    /// The run was stopped by a signal (SIGINT, SIGTERM) before it finished; nothing was written.
    case interrupted(signal: Int32)

    public var description: String {
        switch self {
        case .installation(let message): message
        case .usage(let message): message
        case .node(let name, let reason): "node '\(name)': \(reason)"
        case .tool(let name, let reason): "\(name) failed: \(reason)"
        case .interrupted(let signal): "interrupted by signal \(signal) before the run finished; nothing was written"
        }
    }
}
