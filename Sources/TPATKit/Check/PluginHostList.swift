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
        /// Output dims whose extent depends on the input values (a size tensor gives it).
        public var dataDependentDims: [Int]?
        /// Whether this output is a size tensor (a 0-D int32 extent).
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
                    dims: t.shape.map(\.constantValue), dataDependentDims: output ? t.dataDependent?.map(\.dim) : nil,
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
                inputs: inputs, outputs: outputs))
        }
        self.schema = Self.schemaVersion
        self.plugins = list
    }

    /// Writes `host/plugins.json` and the host's source into output folder `out`.
    public func write(hostSource: String, into out: URL) throws(TPATError) {
        let folder = out.appendingPathComponent(Self.folder)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try encoder.encode(self).write(to: folder.appendingPathComponent(Self.fileName), options: .atomic)
            try Data(hostSource.utf8).write(to: folder.appendingPathComponent(Self.sourceName), options: .atomic)
        } catch {
            throw .tool(name: "render", reason: "cannot write the plugin host into \(folder.path): \(error.localizedDescription)")
        }
    }
}
