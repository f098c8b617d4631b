import Foundation

/// What the plugin host checks in an output folder: each plugin library with what TensorRT would
/// give it (the creator's key and fields from the rewritten node, the tensor types and the dims
/// the kernels were generated for). Written as `host/plugins.json` beside the host's source
/// `host/tpat_plugin_host.cpp`, which reads it; `make check-plugins` builds and runs the host.
/// Schema: docs/plugin-host.md. Paths are relative to the output folder.
public struct PluginHostList: Codable, Sendable, Equatable {
    /// The schema version the host reads.
    public static let schemaVersion = 1
    /// The output folder's subfolder holding the host.
    public static let folder = "host"
    /// The list's file name in ``folder``.
    public static let fileName = "plugins.json"
    /// The host's source file name in ``folder``.
    public static let sourceName = "tpat_plugin_host.cpp"

    /// ``schemaVersion``.
    public var schema: Int
    /// Every plugin of the output folder whose node was rewritten.
    public var plugins: [Plugin]
    /// The rewritten model's file name in the output folder (the whole-model check runs it);
    /// data here, so that no script carries a name it did not choose.
    public var model: String?

    /// One plugin library and how TensorRT would drive it.
    public struct Plugin: Codable, Sendable, Equatable {
        /// The plugin (creator) name: the rewritten node's op_type.
        public var name: String
        /// `plugin_version`.
        public var version: String
        /// `plugin_namespace`.
        public var namespace: String
        /// The plugin interface the library implements.
        public var tensorrtAPI: TensorRTAPI
        /// The library, relative to the output folder.
        public var library: String
        /// The self-test's reference data (`reference.json`), relative to the output folder.
        public var reference: String
        /// The creator fields the ONNX parser makes from the node's attributes.
        public var fields: [Field]
        /// The plugin's inputs, in order.
        public var inputs: [Port]
        /// The plugin's outputs, in order.
        public var outputs: [Port]
        /// How many constants (weights) the kernels upload: a v3 plugin in an execution context
        /// takes each one's device memory from the context's IGpuAllocator.
        public var constants: Int
    }

    /// A creator field: a string attribute of the rewritten node.
    public struct Field: Codable, Sendable, Equatable {
        /// The attribute's name.
        public var name: String
        /// Its value.
        public var value: String
        /// Whether it names the kernels the node was rewritten for (the creator must refuse
        /// another value: the host checks that it does).
        public var identifiesKernels: Bool
    }

    /// One input or output of a plugin.
    public struct Port: Codable, Sendable, Equatable {
        /// The tensor's name in the kernel manifest.
        public var name: String
        /// Its ONNX element type (the reference data's dtype).
        public var dtype: ElementType
        /// TensorRT's `DataType` value for it.
        public var trtType: Int32
        /// That `DataType`'s enumerator (for messages).
        public var trtTypeName: String
        /// Bytes per element.
        public var elementBytes: Int
        /// Each dim's size where the kernels were generated for one size; null where it is symbolic.
        public var dims: [Int64?]
        /// The ONNX `TensorProto.DataType` of ``dtype`` (ONNX Runtime's element type).
        public var onnxType: Int32
        /// Output dims whose extent depends on the input values, each with the size output that
        /// holds it.
        public var dataDependent: [KernelManifest.DataDependentDim]?
        /// Whether this output is a size tensor (a 0-D int32 extent), one the ONNX node does not
        /// have: the node's outputs are the other outputs, in order.
        public var sizeOutput: Bool?
    }

    /// The list for the plugins whose nodes `replacements` rewrote.
    /// - Parameter plugins: each plugin's name and kernel manifest.
    public init(plugins: [(name: String, manifest: KernelManifest)], replacements: [NodeReplacement], api: TensorRTAPI) throws(TPATError) {
        var firstReplacement: [String: NodeReplacement] = [:]
        for r in replacements where firstReplacement[r.pluginName] == nil { firstReplacement[r.pluginName] = r }
        var list: [Plugin] = []
        for (name, manifest) in plugins {
            guard let replacement = firstReplacement[name] else { continue }
            let sizeOutputs = Set(manifest.sizeOutputs.map(\.sizeOutput))
            func port(_ t: KernelManifest.TensorSpec, _ index: Int, output: Bool) throws(TPATError) -> Port {
                guard let trt = TensorRTDataType(t.dtype, api: api), let bits = t.dtype.bitWidth, bits % 8 == 0 else {
                    throw .node(name: manifest.node.name, reason: "\(output ? "output" : "input") \(index) '\(t.name)' has dtype \(t.dtype.rawValue), which a TensorRT plugin of this API cannot take")
                }
                return Port(
                    name: t.name, dtype: t.dtype, trtType: trt.rawValue, trtTypeName: trt.enumerator, elementBytes: bits / 8,
                    dims: t.shape.map(\.constantValue), onnxType: t.dtype.onnxValue, dataDependent: output ? t.dataDependent : nil,
                    sizeOutput: output && sizeOutputs.contains(index) ? true : nil)
            }
            var inputs: [Port] = []
            for (i, t) in manifest.inputs.enumerated() { inputs.append(try port(t, i, output: false)) }
            var outputs: [Port] = []
            for (j, t) in manifest.outputs.enumerated() { outputs.append(try port(t, j, output: true)) }
            list.append(Plugin(
                name: name, version: replacement.pluginVersion, namespace: replacement.pluginNamespace, tensorrtAPI: api,
                library: PluginRenderer.libraryPath(pluginName: name), reference: PluginRenderer.referencePath(pluginName: name),
                fields: ModelRewriter.pluginAttributes(replacement).filter(\.isCreatorField).map {
                    Field(name: $0.name, value: $0.value, identifiesKernels: $0.name == ModelRewriter.kernelsIDAttribute)
                },
                inputs: inputs, outputs: outputs, constants: manifest.constants.count))
        }
        self.schema = Self.schemaVersion
        self.plugins = list
    }

    /// The whole-model check's custom-op library source in ``folder``.
    public static let ortOpsName = "tpat_ort_ops.cpp"
    /// The whole-model check's script in ``folder``.
    public static let verifyScriptName = "verify_model.py"
    /// The Makefile fragment in ``folder`` naming the plugins the custom-op library links.
    public static let makeFragmentName = "plugins.mk"

    /// Writes into output folder `out`'s ``folder``: the list, the plugin host's source, and the
    /// whole-model check (custom-op library, script, Makefile fragment) for rewritten model
    /// `modelName`.
    public func write(into out: URL, renderer: PluginRenderer, modelName: String) throws(TPATError) {
        let names = plugins.map(\.name)
        let check = try renderer.renderModelCheck(pluginNames: names, domain: ModelRewriter.pluginDomain)
        var list = self
        list.model = modelName
        let files: [(String, Data)] = [
            (Self.sourceName, Data(try renderer.renderPluginHost().utf8)),
            (Self.ortOpsName, Data(check.ortOps.utf8)),
            (Self.verifyScriptName, Data(check.verifyScript.utf8)),
            (Self.makeFragmentName, Data("# The plugins of host/plugins.json (the nodes rewritten). Generated by TPAT.\nORT_PLUGINS := \(names.joined(separator: " "))\n".utf8)),
        ]
        try list.write(into: out, files: files)
    }

    /// Writes the list and `files` (name in ``folder``, contents) into output folder `out`.
    func write(into out: URL, files: [(String, Data)]) throws(TPATError) {
        let folder = out.appendingPathComponent(Self.folder)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try encoder.encode(self).write(to: folder.appendingPathComponent(Self.fileName), options: .atomic)
            for (name, data) in files { try data.write(to: folder.appendingPathComponent(name), options: .atomic) }
        } catch {
            throw .tool(name: "render", reason: "cannot write the plugin host into \(folder.path): \(error.localizedDescription)")
        }
    }
}
