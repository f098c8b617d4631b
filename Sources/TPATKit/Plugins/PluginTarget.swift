import Foundation

/// The vendor library the plugins are made for, and everything about the output that depends on
/// it: the element types a plugin takes at its boundary, the plugin sources, the output folder's
/// Makefile and plugin-host list, and the names in the report.
///
/// It is one value, chosen once (``PluginTargets/target(vendor:tensorRTAPI:)``) and carried in
/// ``PipelineRequest/target``: the stages ask it, and none of them names a vendor. A second vendor
/// (Qualcomm QNN's op packages) is a second conforming type beside ``TensorRTTarget``.
public protocol PluginTarget: Sendable {
    /// The vendor library, as `--vendor` names it (`tensorrt`).
    var vendor: VendorLibrary { get }
    /// The interface version within the vendor library, as the report gives it (`v3`).
    var interface: String { get }
    /// Element types this vendor's plugins do not take at their boundary, and the type each
    /// travels as (converted by Casts around the plugin node).
    var boundaryCarriers: [ElementType: ElementType] { get }
    /// Renders one plugin's sources from its kernel manifest.
    func renderPlugin(
        _ manifest: KernelManifest, name: String, namespace: String, buildArch: String?, renderer: PluginRenderer
    ) throws(TPATError) -> PluginSources
    /// Renders the output folder's Makefile over its plugins.
    func renderMakefile(_ plugins: [MakefilePlugin], buildArch: String?, nvcc: MakefileNVCC?, renderer: PluginRenderer) throws(TPATError) -> String
    /// Writes what the output folder's host check needs (the plugins as the vendor's runtime
    /// will see them, from the rewritten nodes' fields) into `folder`.
    func writeHostCheck(
        plugins: [(name: String, manifest: KernelManifest)], replacements: [NodeReplacement], into folder: URL,
        renderer: PluginRenderer, modelName: String
    ) throws(TPATError)
}

/// The vendor libraries TPAT makes plugins for.
public enum VendorLibrary: String, Sendable, CaseIterable, Codable {
    /// NVIDIA TensorRT: plugins loaded by its ONNX parser through the plugin registry.
    case tensorrt
}

/// TensorRT plugins: `IPluginV3` (TensorRT 10/11) or `IPluginV2DynamicExt` (TensorRT 8.x).
public struct TensorRTTarget: PluginTarget, Equatable {
    /// The plugin interface.
    public var api: TensorRTAPI

    /// Creates the target.
    public init(api: TensorRTAPI = .v3) {
        self.api = api
    }

    public var vendor: VendorLibrary { .tensorrt }
    public var interface: String { api.rawValue }

    /// BOOL goes as INT32. UINT8 goes as FLOAT: TensorRT documents UINT8 conversions only to and
    /// from FLOAT and HALF (and FLOAT holds every UINT8 value exactly). INT8 goes as FLOAT too: a
    /// kINT8 plugin port is a quantized tensor to a weakly typed network (it wants a scale), not
    /// an integer. DOUBLE goes as FLOAT: TensorRT has no DOUBLE tensors, and its ONNX parser
    /// documents casting DOUBLE down to FLOAT, so that is what reaches a plugin (inside, the
    /// plugin computes in DOUBLE as the node says). TensorRT 8 has no INT64 tensors either: they
    /// go as INT32.
    public var boundaryCarriers: [ElementType: ElementType] {
        var carriers: [ElementType: ElementType] = [.bool: .int32, .uint8: .float32, .int8: .float32, .float64: .float32]
        if api == .v2 { carriers[.int64] = .int32 }
        return carriers
    }

    public func renderPlugin(
        _ manifest: KernelManifest, name: String, namespace: String, buildArch: String?, renderer: PluginRenderer
    ) throws(TPATError) -> PluginSources {
        try renderer.render(manifest: manifest, pluginName: name, options: PluginOptions(tensorrtAPI: api, pluginNamespace: namespace, buildArch: buildArch))
    }

    public func renderMakefile(_ plugins: [MakefilePlugin], buildArch: String?, nvcc: MakefileNVCC?, renderer: PluginRenderer) throws(TPATError) -> String {
        try renderer.renderMakefile(plugins: plugins, buildArch: buildArch, tensorRTAPI: api, nvcc: nvcc)
    }

    public func writeHostCheck(
        plugins: [(name: String, manifest: KernelManifest)], replacements: [NodeReplacement], into folder: URL,
        renderer: PluginRenderer, modelName: String
    ) throws(TPATError) {
        try PluginHostList(plugins: plugins, replacements: replacements, api: api).write(into: folder, renderer: renderer, modelName: modelName)
    }
}

/// Where the plugin target is chosen: the one place that maps what the user asked for to a
/// ``PluginTarget``.
public enum PluginTargets {
    /// The target for `--vendor` and its interface option.
    public static func target(vendor: VendorLibrary, tensorRTAPI: TensorRTAPI = .v3) -> any PluginTarget {
        switch vendor {
        case .tensorrt: TensorRTTarget(api: tensorRTAPI)
        }
    }
}
