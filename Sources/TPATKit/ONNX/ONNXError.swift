import Foundation

/// What went wrong while reading, indexing or writing an ONNX model. Every case names the file or
/// node concerned and says what to do about it.
public enum ONNXError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The model file does not exist.
    case fileNotFound(path: String)
    /// The file exists but cannot be read.
    case unreadable(path: String, reason: String)
    /// The bytes are not an ONNX model (not a protobuf, or a protobuf that is not a ModelProto).
    case notONNX(path: String, reason: String)
    /// The model decodes but breaks ONNX's rules (graph order, one producer per value, defined
    /// inputs, known IR and opset versions); `problem` names the node or value and what to do.
    case invalidModel(path: String, problem: String)
    /// A tensor's external data file is missing, escapes the model's folder, or is too short.
    case externalData(path: String, tensor: String, reason: String)
    /// A tensor's contents do not match its declared type and shape.
    case malformedTensor(tensor: String, reason: String)
    /// A node name that the graph does not have.
    case unknownNode(name: String, suggestions: [String])
    /// Writing the output failed; nothing was left behind.
    case writeFailed(path: String, reason: String)
    /// The output would overwrite the input model or its data.
    case wouldOverwriteInput(path: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            "\(path): no such file. Check the path to the ONNX model."
        case .unreadable(let path, let reason):
            "\(path): cannot be read (\(reason)). Check its permissions."
        case .notONNX(let path, let reason):
            "\(path): not an ONNX model (\(reason)). Pass a .onnx file written by an ONNX exporter; a truncated download gives this too."
        case .invalidModel(let path, let problem):
            "\(path): not a valid ONNX model: \(problem). (onnx.checker.check_model reports the same problem.)"
        case .externalData(let path, let tensor, let reason):
            "\(path): external data of tensor '\(tensor)': \(reason). Keep the model's data files next to it, as the exporter wrote them."
        case .malformedTensor(let tensor, let reason):
            "tensor '\(tensor)' is malformed: \(reason)."
        case .unknownNode(let name, let suggestions):
            "no node named '\(name)' in the model"
                + (suggestions.isEmpty ? "" : " (did you mean \(suggestions.map { "'\($0)'" }.joined(separator: ", "))?)")
                + ". Run `tpat inspect MODEL` to list the nodes."
        case .writeFailed(let path, let reason):
            "\(path): cannot write (\(reason)); nothing was written."
        case .wouldOverwriteInput(let path):
            "\(path) is the input model or one of its data files; choose another output path (TPAT never modifies its input)."
        }
    }
}
