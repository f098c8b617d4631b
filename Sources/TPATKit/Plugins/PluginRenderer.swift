import Foundation
import Mustache

/// The TensorRT plugin interface the rendered plugin implements.
public enum TensorRTAPI: String, Sendable, CaseIterable, Codable {
    /// TensorRT 10/11: `IPluginV3` (`IPluginV3OneCore/OneBuild/OneRuntime`) + `IPluginCreatorV3One`.
    case v3
    /// TensorRT 8.x: `IPluginV2DynamicExt` + `IPluginCreator`.
    case v2

    /// The functions a plugin library of this API exports, and nothing else: what TensorRT's
    /// `IPluginRegistry::loadLibrary` (trtexec `--dynamicPlugins`) looks up.
    public var libraryEntryPoints: [String] {
        switch self {
        case .v3: ["getCreators", "setLoggerFinder"]
        case .v2: ["getPluginCreators", "setLoggerFinder"]
        }
    }

    /// The entry points as a linker version script's `global:` list (`a; b;`).
    var versionScriptGlobals: String { libraryEntryPoints.map { $0 + ";" }.joined(separator: " ") }
}

/// The nvcc a Makefile defaults to, and the arguments that link the CUDA runtime with it.
public struct MakefileNVCC: Sendable, Equatable {
    /// nvcc's absolute path.
    public var path: String
    /// nvcc arguments, one word each (a pip wheel's nvcc needs the wheel's libcudart).
    public var cudartArguments: [String]

    /// Creates the value.
    public init(path: String, cudartArguments: [String]) {
        self.path = path
        self.cudartArguments = cudartArguments
    }
}

/// How to render a plugin.
public struct PluginOptions: Sendable, Equatable {
    /// The TensorRT plugin interface.
    public var tensorrtAPI: TensorRTAPI
    /// The plugin version TensorRT's ONNX parser matches (`plugin_version` attribute).
    public var pluginVersion: String
    /// The plugin namespace (`plugin_namespace` attribute).
    public var pluginNamespace: String
    /// What the build compiles for when it is not the kernels' own arch: ``CUDAArch/allMajor``
    /// builds one fatbin for every major arch from the kernels' (lowest) arch up.
    public var buildArch: String?

    public init(tensorrtAPI: TensorRTAPI = .v3, pluginVersion: String = "1", pluginNamespace: String = "", buildArch: String? = nil) {
        self.tensorrtAPI = tensorrtAPI
        self.pluginVersion = pluginVersion
        self.pluginNamespace = pluginNamespace
        self.buildArch = buildArch
    }
}

/// The rendered sources of one plugin: file name (relative to the plugin's folder) -> contents.
public struct PluginSources: Sendable, Equatable {
    public var files: [String: String]

    public init(files: [String: String]) { self.files = files }

    /// File names in a stable order.
    public var fileNames: [String] { files.keys.sorted() }

    /// Writes every file into `directory` (created if needed).
    public func write(to directory: URL) throws(TPATError) {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for (name, contents) in files {
                try Data(contents.utf8).write(to: directory.appendingPathComponent(name), options: .atomic)
            }
        } catch {
            throw .installation("cannot write plugin sources to \(directory.path): \(error.localizedDescription)")
        }
    }
}

/// One plugin as the top-level Makefile sees it.
public struct MakefilePlugin: Sendable, Equatable {
    /// The plugin name (its folder is `plugins/<name>`).
    public var name: String
    /// The CUDA architecture its kernels were generated for, e.g. `sm_90`.
    public var arch: String

    public init(name: String, arch: String) {
        self.name = name
        self.arch = arch
    }

    public init(name: String, manifest: KernelManifest) {
        self.init(name: name, arch: manifest.target.arch)
    }
}

/// Renders TensorRT plugin sources from a kernel manifest.
///
/// All decisions are made in Swift (``PluginModel``); the mustache templates in
/// `Resources/templates` only substitute values and loop over the model.
public struct PluginRenderer: Sendable {
    private let library: MustacheLibrary

    /// The templates this renderer needs, by name (file `templates/<name>.mustache`).
    static let templateNames = ["status_codes", "check_support", "kernels_h", "kernels_cu", "launch_steps", "plugin_v3", "plugin_v2", "test_cu", "constants_cpp", "cmake", "makefile", "plugin_host", "ort_ops", "verify_model"]

    /// Loads the bundled templates.
    public init() throws(TPATError) {
        var library = MustacheLibrary()
        for name in Self.templateNames {
            let url = try BundledResources.url("templates/\(name).mustache")
            do {
                let text = try String(contentsOf: url, encoding: .utf8)
                try library.register(text, named: name)
            } catch {
                throw .installation("TPAT's plugin template \(url.path) cannot be loaded: \(error)")
            }
        }
        self.library = library
    }

    /// The rendered file that holds the kernels' CUDA source (TVM's translation unit and the
    /// launch code around it).
    public static func kernelSourceName(pluginName name: String) -> String { "\(name)_kernels.cu" }

    /// Plugin `name`'s TensorRT library, relative to the output folder (what the Makefile builds).
    public static func libraryPath(pluginName name: String) -> String { "plugins/\(name)/build/lib\(name).so" }

    /// Plugin `name`'s self-test reference data, relative to the output folder.
    public static func referencePath(pluginName name: String) -> String { "plugins/\(name)/test/reference.json" }

    /// The plugin host's source: one program for every plugin of an output folder (it reads
    /// ``PluginHostList``), sharing the self-tests' reference reading and comparison.
    public func renderPluginHost() throws(TPATError) -> String {
        try renderTemplate("plugin_host", [String: String]())
    }

    /// The whole-model check's sources: an ONNX Runtime custom-op library running each plugin's
    /// kernels as the op of the same name in `domain` (`ortOps`), and the script that runs the
    /// rewritten model (named in host/plugins.json) with it against the original (`verifyScript`).
    public func renderModelCheck(pluginNames: [String], domain: String) throws(TPATError) -> (ortOps: String, verifyScript: String) {
        struct Plugin { var name: String }
        struct Model { var plugins: [Plugin]; var domain: String }
        let model = Model(plugins: pluginNames.map(Plugin.init), domain: domain)
        return (try renderTemplate("ort_ops", model), try renderTemplate("verify_model", model))
    }

    /// The file names rendered for plugin `name`.
    public static func fileNames(pluginName name: String) -> [String] {
        ["\(name)_kernels.h", kernelSourceName(pluginName: name), "\(name)_constants.cpp", "\(name)_plugin.cpp", "\(name)_test.cu", "CMakeLists.txt"].sorted()
    }

    /// Renders the sources of one plugin.
    public func render(manifest: KernelManifest, pluginName: String, options: PluginOptions = PluginOptions()) throws(TPATError) -> PluginSources {
        let model = try PluginModel(manifest: manifest, pluginName: pluginName, options: options)
        return try render(model: model)
    }

    /// Renders the sources of one plugin from a prepared model.
    func render(model: PluginModel) throws(TPATError) -> PluginSources {
        let name = model.name
        var files: [String: String] = [:]
        files["\(name)_kernels.h"] = try renderTemplate("kernels_h", model)
        files[Self.kernelSourceName(pluginName: name)] = try renderTemplate("kernels_cu", model)
        files["\(name)_plugin.cpp"] = try renderTemplate(model.isV3 ? "plugin_v3" : "plugin_v2", model)
        files["\(name)_test.cu"] = try renderTemplate("test_cu", model)
        files["\(name)_constants.cpp"] = try renderTemplate("constants_cpp", model)
        files["CMakeLists.txt"] = try renderTemplate("cmake", model)
        return PluginSources(files: files)
    }

    /// Renders the top-level Makefile (`out/Makefile`) that builds and checks every plugin under
    /// `plugins/<name>/`. With `nvcc`, the Makefile defaults to that nvcc where it exists.
    public func renderMakefile(
        plugins: [MakefilePlugin], buildArch: String? = nil, tensorRTAPI: TensorRTAPI = .v3, nvcc: MakefileNVCC? = nil
    ) throws(TPATError) -> String {
        let model = try MakefileModel(plugins: plugins, buildArch: buildArch, tensorRTAPI: tensorRTAPI, nvcc: nvcc)
        return try renderTemplate("makefile", model)
    }

    /// The comment that opens a plugin's rules in the Makefile (followed by the plugin's name);
    /// ``BuildCache`` reads a plugin's rules by it.
    static let makefileSectionMarker = "# ---- "
    /// The comment after the last plugin's rules.
    static let makefileSharedRulesMarker = "# ---- (every plugin)"

    private func renderTemplate(_ name: String, _ object: Any) throws(TPATError) -> String {
        guard let text = library.render(object, withTemplate: name) else {
            throw .installation("TPAT's plugin template '\(name)' is missing")
        }
        return text
    }
}
