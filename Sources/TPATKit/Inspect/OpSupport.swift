import Foundation

/// What one backend's table says about one ONNX op.
public struct OpSupportEntry: Codable, Sendable, Equatable {
    /// Whether the backend runs the op.
    public var supported: Bool
    /// The element types the backend lists for the op (TensorRT's "FP32, FP16, ..."), if any.
    public var types: [String]
    /// Restrictions the backend documents, if any.
    public var restrictions: String
}

/// The checked-in op tables: which ONNX ops TensorRT's ONNX parser runs natively, and which ops
/// the pinned TVM's Relax ONNX frontend converts. Each table names its source; see
/// `Resources/ops/*.json` and `scripts/regenerate-tvm-op-table.py`.
public struct OpSupportTables: Sendable {
    /// TensorRT's ONNX parser's ops, by op type.
    public let tensorRT: [String: OpSupportEntry]
    /// Where the TensorRT table comes from.
    public let tensorRTSource: String
    /// Op types TVM's ONNX frontend converts, with TPAT's own converters (another domain's op as
    /// `domain:op`, `ai.onnx.ml:Binarizer`).
    public let tvm: Set<String>
    /// Op types TVM lacks whose ONNX schema has a function body: the bridge imports the body
    /// (python/tpat_bridge/functions.py), so TPAT generates them from ops TVM has. An op of
    /// another domain than the default one is named `domain:op` (`ai.onnx.preview:FlexAttention`).
    public let functionOps: Set<String>
    /// Op types whose output size always depends on their input values and whose plugin declares
    /// it as TensorRT size tensors (TPAT's converters with size outputs for every node, named in
    /// python/tpat_bridge/converters.py and copied here by scripts/regenerate-tvm-op-table.py).
    public let sizeTensorOps: Set<String>
    /// Where the TVM table comes from.
    public let tvmSource: String

    /// The tables that ship with TPAT.
    public static func bundled() throws(TPATError) -> OpSupportTables {
        let directory = try BundledResources.url("ops")
        do {
            return try OpSupportTables(directory: directory)
        } catch {
            throw .installation("TPAT's op tables in \(directory.path) cannot be read (\(error)); rebuild TPAT (make build)")
        }
    }

    /// Loads the tables from a folder holding `tensorrt-onnx-ops.json` and `tvm-onnx-ops.json`.
    public init(directory: URL) throws {
        struct TensorRTTable: Decodable { var source: String; var ops: [String: OpSupportEntry] }
        struct TVMTable: Decodable { var source: String; var ops: [String]; var functionOps: [String]?; var sizeTensorOps: [String]? }
        let decoder = JSONDecoder()
        let trt = try decoder.decode(TensorRTTable.self, from: Data(contentsOf: directory.appendingPathComponent("tensorrt-onnx-ops.json")))
        let tvm = try decoder.decode(TVMTable.self, from: Data(contentsOf: directory.appendingPathComponent("tvm-onnx-ops.json")))
        tensorRT = trt.ops
        tensorRTSource = trt.source
        self.tvm = Set(tvm.ops)
        functionOps = Set(tvm.functionOps ?? [])
        sizeTensorOps = Set(tvm.sizeTensorOps ?? [])
        tvmSource = tvm.source
    }

    /// Whether TensorRT's ONNX parser runs `opType` of `domain` natively. Ops outside the default
    /// ONNX domain are not TensorRT's (they are plugins or other runtimes' ops).
    public func tensorRTRunsNatively(opType: String, domain: String) -> Bool {
        guard domain.isEmpty || domain == "ai.onnx" else { return false }
        return tensorRT[opType]?.supported ?? false
    }

    /// Whether the pinned TVM's ONNX frontend converts `opType` of `domain`, itself or through the
    /// op's ONNX function body (``functionOps``). TVM's own converters are the default domain's;
    /// another domain's op is TPAT's (its converter, `domain:op` in ``tvm``, or its function body).
    public func tvmConverts(opType: String, domain: String) -> Bool {
        let qualified = Self.qualifiedName(opType: opType, domain: domain)
        return tvm.contains(qualified) || functionOps.contains(qualified)
    }

    /// The name the tables, `inspect` and `--op-types` give an op: `domain:op` outside ONNX's
    /// default domain (`ai.onnx.preview:FlexAttention`), the op type in it.
    public static func qualifiedName(opType: String, domain: String) -> String {
        domain.isEmpty || domain == "ai.onnx" ? opType : "\(domain):\(opType)"
    }
}
