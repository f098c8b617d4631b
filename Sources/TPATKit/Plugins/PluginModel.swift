import Foundation

/// The render model of one plugin: every decision the templates need, computed from the kernel
/// manifest. Templates only substitute these values and loop over these arrays.
struct PluginModel: Sendable {
    // Identity
    var name: String
    var nodeName: String
    var opType: String
    var pluginVersion: String
    var pluginNamespace: String
    var arch: String
    /// `sm_90` -> `90` (CMake's CUDA_ARCHITECTURES).
    var cmakeArch: String
    var tvmVersion: String
    var tuned: Bool
    /// FNV-1a 64 of the manifest (sorted keys): the serialized plugin refuses other kernels.
    var kernelsID: String
    /// The creator field (and rewritten node attribute) that carries `kernelsID`.
    var kernelsIDField: String
    var isV3: Bool
    var isV2: Bool
    /// The library's exports (a version script's `global:` list).
    var exportedSymbols: String

    // Counts
    var numInputs: Int
    var numOutputs: Int
    var numConstants: Int
    /// max(numConstants, 1): C arrays may not be empty.
    var constantSlots: Int
    var hasConstants: Bool

    var inputs: [TensorModel]
    var outputs: [TensorModel]
    var symbols: [SymbolModel]
    var hasSymbols: Bool
    /// Checks that the input dims agree with the manifest (constant dims, shared symbols).
    var inputDimChecks: [DimCheckModel]
    /// The input dims with one size (the manifest's static dims): the plugin refuses a profile or
    /// a shape with another size there, where TensorRT would otherwise fail at every enqueue.
    var fixedInputDims: [FixedDimModel]
    var constants: [ConstantModel]
    /// The generic launch plan.
    var steps: [StepModel]
    /// Launch plans for particular sizes, tried in order before ``steps``.
    var specializations: [SpecializationModel]
    var workspace: WorkspaceModel
    /// TensorRT data types of inputs then outputs, comma separated (supportsFormatCombination).
    var ioTrtTypes: String

    var cudaSource: String
}

struct TensorModel: Sendable {
    var index: Int
    var name: String
    var dtype: String
    /// The host type the test program uses to read it (`float`, `uint16_t` for half...).
    var hostType: String
    var trtType: String
    var rank: Int
    /// max(rank, 1): C arrays may not be empty.
    var slots: Int
    var elementBytes: Int
    var dims: [DimModel]
    /// e.g. `[N, 64]`.
    var shapeText: String
    /// Bit d set: dim d depends on the input values (its `cxx` is the upper bound).
    var dataDependentMask: Int = 0
    /// A 0-D int32 output holding a data-dependent dim's extent (TensorRT's size tensor).
    var isSizeOutput: Bool = false
    /// The header's macro for this tensor's rank (`<plugin>_INPUT0_RANK`): named here because in
    /// the template `name` is the tensor's own, and every plugin's header shares one C namespace.
    var rankMacro: String = ""
}

struct DimModel: Sendable {
    /// The tensor's index (input or output).
    var tensorIndex: Int
    var index: Int
    /// C++ over the symbols.
    var cxx: String
    /// An `IDimensionExpr const*` expression over `tpat_in` and `tpat_eb` (output dims only).
    var trtExpr: String
}

struct SymbolModel: Sendable {
    var name: String
    var input: Int
    var dim: Int
}

struct DimCheckModel: Sendable {
    var input: Int
    var dim: Int
    var cxx: String
}

struct FixedDimModel: Sendable {
    var input: Int
    var dim: Int
    var value: Int64
}

struct ConstantModel: Sendable {
    var index: Int
    var name: String
    var dtype: String
    var bytes: Int
    var shapeText: String
    /// The file relative to the constants folder's parent (the manifest's folder), e.g. `constants/c0.bin`.
    var file: String
    /// The file relative to the constants folder.
    var fileInConstantsDir: String
    /// Assembler symbol of the embedded data.
    var symbol: String
}

/// A launch plan for particular sizes: its condition in C++ and its steps.
struct SpecializationModel: Sendable {
    var when: String
    /// The sizes in words, for a comment.
    var sizes: String
    var steps: [StepModel]
}

struct StepModel: Sendable {
    var index: Int
    var comment: String
    var kernel: KernelStepModel?
    var copy: CopyStepModel?
    var memset: MemsetStepModel?
}

struct KernelStepModel: Sendable {
    var kernel: String
    var gridX: String
    var gridY: String
    var gridZ: String
    var blockX: String
    var blockY: String
    var blockZ: String
    var sharedMem: String
    /// Dynamic shared memory above 48 KiB needs an opt-in attribute.
    var sharedMemMayExceedDefault: Bool
    var scalars: [ScalarArgModel]
    var args: [ArgModel]
}

struct ScalarArgModel: Sendable {
    var variable: String
    var ctype: String
    var cxx: String
    /// Integer scalars are checked to fit their type.
    var checkRange: Bool
}

struct ArgModel: Sendable {
    var code: String
    var separator: String
}

struct CopyStepModel: Sendable {
    var src: String
    var dst: String
    var bytes: String
}

struct MemsetStepModel: Sendable {
    var dst: String
    var value: Int
    var bytes: String
}

struct WorkspaceModel: Sendable {
    var alignment: Int
    var totalCxx: String
    var regions: [RegionModel]
    var hasRegions: Bool
}

struct RegionModel: Sendable {
    var index: Int
    var offsetCxx: String
    var bytesCxx: String
}

/// The render model of the top-level Makefile.
struct MakefileModel: Sendable {
    var plugins: [MakefilePluginModel]
    var defaultArch: String
    var pluginNames: String
    /// The plugin libraries' exports (a version script's `global:` list).
    var exportedSymbols: String
    /// The nvcc TPAT built with, when it can be written into the Makefile as it is.
    var toolchain: MakefileToolchainModel?
    var sharedRulesMarker = PluginRenderer.makefileSharedRulesMarker

    init(plugins: [MakefilePlugin], buildArch: String? = nil, tensorRTAPI: TensorRTAPI = .v3, nvcc: MakefileNVCC? = nil) throws(TPATError) {
        var seen = Set<String>()
        for plugin in plugins {
            guard PluginModel.isCIdentifier(plugin.name) else {
                throw .usage("plugin name '\(plugin.name)' is not a C identifier")
            }
            guard seen.insert(plugin.name).inserted else {
                throw .usage("plugin name '\(plugin.name)' appears twice in the Makefile's plugin list")
            }
        }
        self.plugins = plugins.map { MakefilePluginModel(name: $0.name) }
        self.defaultArch = buildArch ?? plugins.first?.arch ?? "sm_90"
        self.pluginNames = plugins.map(\.name).joined(separator: " ")
        self.exportedSymbols = tensorRTAPI.versionScriptGlobals
        // Paths are written into make and shell text unquoted: only plain ones are (a venv's nvcc
        // in a folder with spaces or quotes leaves the default to nvcc on PATH).
        if let nvcc, ([nvcc.path] + nvcc.cudartArguments).allSatisfy(Self.isPlainWord) {
            toolchain = MakefileToolchainModel(nvcc: nvcc.path, cudartLibs: nvcc.cudartArguments.joined(separator: " "))
        }
    }

    static func isPlainWord(_ word: String) -> Bool {
        !word.isEmpty && word.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "/._+-=:,".unicodeScalars.contains($0)) }
    }
}

struct MakefilePluginModel: Sendable {
    var name: String
    var sectionMarker = PluginRenderer.makefileSectionMarker
}

/// The nvcc the Makefile defaults to where it exists, and how it links the CUDA runtime.
struct MakefileToolchainModel: Sendable {
    var nvcc: String
    var cudartLibs: String
}

extension PluginModel {
    /// Builds the model, checking that the manifest is complete and consistent.
    init(manifest m: KernelManifest, pluginName: String, options: PluginOptions) throws(TPATError) {
        let node = m.node.name
        func fail(_ reason: String) -> TPATError { .node(name: node, reason: reason) }

        guard m.version == KernelManifest.currentVersion else {
            throw fail("kernel manifest version \(m.version) is not \(KernelManifest.currentVersion)")
        }
        guard Self.isCIdentifier(pluginName) else {
            throw fail("plugin name '\(pluginName)' is not a C identifier")
        }
        guard Self.isPrintableASCII(options.pluginVersion), Self.isPrintableASCII(options.pluginNamespace) else {
            throw fail("plugin version and namespace must be printable ASCII without quotes or backslashes")
        }

        // Symbols
        var symbolSource: [String: (input: Int, dim: Int)] = [:]
        for symbol in m.symbols {
            guard Self.isCIdentifier(symbol.name), !Self.reserved(symbol.name) else {
                throw fail("symbol '\(symbol.name)' is not a usable C identifier (C++ keyword or reserved 'tpat_' prefix)")
            }
            guard symbolSource[symbol.name] == nil else { throw fail("symbol '\(symbol.name)' is defined twice") }
            guard m.inputs.indices.contains(symbol.input), m.inputs[symbol.input].shape.indices.contains(symbol.dim) else {
                throw fail("symbol '\(symbol.name)' names input \(symbol.input) dim \(symbol.dim), which does not exist")
            }
            symbolSource[symbol.name] = (symbol.input, symbol.dim)
        }
        func checkExpr(_ e: SizeExpr, _ what: @autoclosure () -> String) throws(TPATError) {
            let unknown = e.symbols.subtracting(symbolSource.keys)
            guard unknown.isEmpty else {
                throw fail("\(what()) uses symbols \(unknown.sorted().joined(separator: ", ")) that the manifest does not define")
            }
            if let op = Self.unknownOp(e.tree) { throw fail("\(what()) uses unknown operation '\(op)'") }
        }

        // Tensors
        let api = options.tensorrtAPI
        func tensor(_ t: KernelManifest.TensorSpec, _ index: Int, output: Bool) throws(TPATError) -> TensorModel {
            let role = output ? "output" : "input"
            guard let trt = Self.trtType(t.dtype, api) else {
                throw fail("\(role) \(index) '\(t.name)' has dtype \(t.dtype.rawValue), which a TensorRT \(api == .v3 ? "10" : "8") plugin cannot take")
            }
            guard let bits = t.dtype.bitWidth, bits % 8 == 0, let host = Self.hostType(t.dtype) else {
                throw fail("\(role) \(index) '\(t.name)' has dtype \(t.dtype.rawValue), which TPAT cannot handle")
            }
            var dims: [DimModel] = []
            for (j, d) in t.shape.enumerated() {
                try checkExpr(d, "\(role) \(index) dim \(j)")
                let trtExpr = output ? try Self.trtExpr(d.tree, symbolSource, api, node) : ""
                dims.append(DimModel(tensorIndex: index, index: j, cxx: d.cxx, trtExpr: trtExpr))
            }
            return TensorModel(
                index: index, name: Self.commentSafe(t.name), dtype: t.dtype.rawValue, hostType: host, trtType: trt,
                rank: t.shape.count, slots: max(t.shape.count, 1), elementBytes: bits / 8, dims: dims,
                shapeText: "[" + t.shape.map(\.cxx).joined(separator: ", ") + "]",
                rankMacro: "\(pluginName)_\(output ? "OUTPUT" : "INPUT")\(index)_RANK")
        }
        var inputs: [TensorModel] = []
        for (i, t) in m.inputs.enumerated() { inputs.append(try tensor(t, i, output: false)) }
        var outputs: [TensorModel] = []
        for (i, t) in m.outputs.enumerated() { outputs.append(try tensor(t, i, output: true)) }
        guard !outputs.isEmpty else { throw fail("the kernel manifest has no outputs") }

        // Data-dependent dims: the buffer holds the upper bound, a size output the extent.
        var sizeOutputsSeen = Set<Int>()
        for (j, t) in m.outputs.enumerated() {
            for d in t.dataDependent ?? [] {
                guard t.shape.indices.contains(d.dim) else { throw fail("output \(j) has no dim \(d.dim) to be data-dependent") }
                guard m.outputs.indices.contains(d.sizeOutput), d.sizeOutput != j, sizeOutputsSeen.insert(d.sizeOutput).inserted else {
                    throw fail("output \(j) dim \(d.dim) names size output \(d.sizeOutput), which does not exist or is taken")
                }
                let size = m.outputs[d.sizeOutput]
                guard size.shape.isEmpty, size.dtype == .int32, size.dataDependent?.isEmpty ?? true else {
                    throw fail("size output \(d.sizeOutput) '\(size.name)' must be a 0-D int32 (TensorRT's size tensors are)")
                }
                guard api == .v3 else {
                    throw fail("output \(j) '\(t.name)' has a size that depends on the input values (dim \(d.dim)); TensorRT 8's IPluginV2 "
                        + "cannot declare it: generate for TensorRT 10 (--tensorrt-api v3), or leave the node native")
                }
                // TensorRT sizes the buffer for `upper` and tunes for `opt`; it reads the extent
                // from the size output after enqueue.
                let upper = outputs[j].dims[d.dim].trtExpr
                outputs[j].dims[d.dim].trtExpr = "tpat_eb.declareSizeTensor(\(d.sizeOutput), *\(upper), *\(upper))"
                outputs[j].dataDependentMask |= 1 << d.dim
                outputs[d.sizeOutput].isSizeOutput = true
            }
        }

        // Input dims the entry point checks: every dim except the one that defines a symbol.
        var checks: [DimCheckModel] = []
        for (i, t) in m.inputs.enumerated() {
            for (j, d) in t.shape.enumerated() {
                if case .symbol(let s) = d.tree, let src = symbolSource[s], src == (i, j) { continue }
                checks.append(DimCheckModel(input: i, dim: j, cxx: d.cxx))
            }
        }

        let fixed = m.inputs.enumerated().flatMap { i, t in
            t.shape.enumerated().compactMap { j, d in d.constantValue.map { FixedDimModel(input: i, dim: j, value: $0) } }
        }

        // Constants
        var constants: [ConstantModel] = []
        for (k, c) in m.constants.enumerated() {
            guard c.bytes >= 0 else { throw fail("constant \(k) has a negative size") }
            // The file name is pasted into a C string of assembler text (`.incbin`): only the
            // characters the bridge uses (c0.bin), never a quote, backslash, newline or `..`.
            let prefix = "constants/"
            let fileName = c.file.dropFirst(prefix.count)
            guard c.file.hasPrefix(prefix), !fileName.isEmpty, !fileName.hasPrefix("."),
                fileName.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) })
            else {
                throw fail("constant \(k) file '\(c.file)' is not a plain file name under constants/")
            }
            constants.append(ConstantModel(
                index: k, name: Self.commentSafe(c.name), dtype: c.dtype.rawValue, bytes: c.bytes,
                shapeText: "[" + c.shape.map(String.init).joined(separator: ", ") + "]",
                file: c.file, fileInConstantsDir: String(c.file.dropFirst(prefix.count)),
                symbol: "tpat_\(pluginName)_constant_\(k)"))
        }

        // Workspace
        try checkExpr(m.workspace.totalBytes, "workspace totalBytes")
        guard m.workspace.alignment > 0, m.workspace.alignment & (m.workspace.alignment - 1) == 0 else {
            throw fail("workspace alignment \(m.workspace.alignment) is not a power of two")
        }
        var regions: [RegionModel] = []
        for (r, region) in m.workspace.regions.enumerated() {
            try checkExpr(region.offset, "workspace region \(r) offset")
            try checkExpr(region.bytes, "workspace region \(r) bytes")
            regions.append(RegionModel(index: r, offsetCxx: region.offset.cxx, bytesCxx: region.bytes.cxx))
        }

        // Steps
        let kernels = Dictionary(m.kernels.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        func pointer(_ b: KernelManifest.Buffer, _ what: String) throws(TPATError) -> String {
            let base: String
            switch b.kind {
            case .input:
                guard m.inputs.indices.contains(b.index) else { throw fail("\(what) names input \(b.index), which does not exist") }
                base = "(char*)tpat_inputs[\(b.index)]"
            case .output:
                guard m.outputs.indices.contains(b.index) else { throw fail("\(what) names output \(b.index), which does not exist") }
                base = "(char*)tpat_outputs[\(b.index)]"
            case .constant:
                guard m.constants.indices.contains(b.index) else { throw fail("\(what) names constant \(b.index), which does not exist") }
                base = "(char*)tpat_constants[\(b.index)]"
            case .workspace:
                guard m.workspace.regions.indices.contains(b.index) else { throw fail("\(what) names workspace region \(b.index), which does not exist") }
                let offset = m.workspace.regions[b.index].offset
                base = offset.constantValue == 0 ? "tpat_ws" : "(tpat_ws + (int64_t)(\(offset.cxx)))"
            }
            guard let offset = b.byteOffset, offset.constantValue != 0 else { return base }
            try checkExpr(offset, "\(what) byteOffset")
            return "(\(base) + (int64_t)(\(offset.cxx)))"
        }
        /// The render model of one launch plan; `plan` names it in messages ("" for the generic one).
        func stepModels(_ launches: [KernelManifest.Step], plan: String) throws(TPATError) -> [StepModel] {
        var steps: [StepModel] = []
        for (s, step) in launches.enumerated() {
            switch step {
            case .kernel(let launch):
                guard let kernel = kernels[launch.kernel] else { throw fail("\(plan)step \(s) launches '\(launch.kernel)', which the manifest does not list") }
                guard launch.grid.count == 3, launch.block.count == 3 else { throw fail("\(plan)step \(s) needs 3 grid and 3 block dims") }
                guard launch.args.count == kernel.params.count else {
                    throw fail("\(plan)step \(s) passes \(launch.args.count) arguments to '\(kernel.name)', which takes \(kernel.params.count)")
                }
                for (k, e) in (launch.grid + launch.block).enumerated() { try checkExpr(e, "\(plan)step \(s) launch dim \(k)") }
                try checkExpr(launch.sharedMemBytes, "\(plan)step \(s) shared memory")
                var scalars: [ScalarArgModel] = []
                var args: [ArgModel] = []
                for (a, (arg, param)) in zip(launch.args, kernel.params).enumerated() {
                    let code: String
                    switch (arg, param.kind) {
                    case (.buffer(let b), .pointer):
                        code = "tpat_ptr{(void*)\(try pointer(b, "\(plan)step \(s) argument \(a)"))}"
                    case (.scalar(let ctype, let value), .scalar):
                        try checkExpr(value, "\(plan)step \(s) argument \(a)")
                        let variable = "tpat_s\(s)_\(a)"
                        scalars.append(ScalarArgModel(variable: variable, ctype: ctype, cxx: value.cxx, checkRange: Self.isIntegerCType(ctype)))
                        code = "(\(ctype))\(variable)"
                    default:
                        throw fail("\(plan)step \(s) argument \(a) does not match parameter '\(param.name)' of '\(kernel.name)' (\(param.kind.rawValue))")
                    }
                    args.append(ArgModel(code: code, separator: a + 1 == launch.args.count ? "" : ","))
                }
                let shared = launch.sharedMemBytes
                steps.append(StepModel(
                    index: s, comment: "launch \(kernel.name)",
                    kernel: KernelStepModel(
                        kernel: kernel.name, gridX: launch.grid[0].cxx, gridY: launch.grid[1].cxx, gridZ: launch.grid[2].cxx,
                        blockX: launch.block[0].cxx, blockY: launch.block[1].cxx, blockZ: launch.block[2].cxx, sharedMem: shared.cxx,
                        sharedMemMayExceedDefault: shared.constantValue.map { $0 > 48 * 1024 } ?? true,
                        scalars: scalars, args: args),
                    copy: nil, memset: nil))
            case .copy(let src, let dst, let bytes):
                try checkExpr(bytes, "\(plan)step \(s) bytes")
                steps.append(StepModel(
                    index: s, comment: "copy \(src.kind.rawValue) \(src.index) -> \(dst.kind.rawValue) \(dst.index)", kernel: nil,
                    copy: CopyStepModel(src: try pointer(src, "\(plan)step \(s) src"), dst: try pointer(dst, "\(plan)step \(s) dst"), bytes: bytes.cxx),
                    memset: nil))
            case .memset(let dst, let value, let bytes):
                try checkExpr(bytes, "\(plan)step \(s) bytes")
                guard (0...255).contains(value) else { throw fail("\(plan)step \(s) memsets value \(value), not a byte") }
                steps.append(StepModel(
                    index: s, comment: "memset \(dst.kind.rawValue) \(dst.index)", kernel: nil, copy: nil,
                    memset: MemsetStepModel(dst: try pointer(dst, "\(plan)step \(s) dst"), value: value, bytes: bytes.cxx)))
            }
        }
        return steps
        }
        let steps = try stepModels(m.launches, plan: "")
        var specializations: [SpecializationModel] = []
        for (k, special) in (m.specializations ?? []).enumerated() {
            try checkExpr(special.when, "specialization \(k) condition")
            specializations.append(SpecializationModel(
                when: special.when.cxx, sizes: Self.commentSafe(special.sizes),
                steps: try stepModels(special.launches, plan: "specialization \(k) ")))
        }

        self.name = pluginName
        self.nodeName = Self.commentSafe(m.node.name)
        self.opType = Self.commentSafe(m.node.opType)
        self.pluginVersion = options.pluginVersion
        self.pluginNamespace = options.pluginNamespace
        self.arch = m.target.arch
        let buildArch = options.buildArch ?? m.target.arch
        // nvcc's `-arch=all-major` is CMake's `all-major` too; sm_90 is CMake's 90
        self.cmakeArch = buildArch.hasPrefix("sm_") ? String(buildArch.dropFirst(3)) : buildArch
        self.tvmVersion = Self.commentSafe(m.target.tvmVersion)
        self.tuned = m.target.tuned
        self.kernelsID = Self.fingerprint(m)
        self.kernelsIDField = ModelRewriter.kernelsIDAttribute
        self.isV3 = api == .v3
        self.isV2 = api == .v2
        self.exportedSymbols = api.versionScriptGlobals
        self.numInputs = inputs.count
        self.numOutputs = outputs.count
        self.numConstants = constants.count
        self.constantSlots = max(constants.count, 1)
        self.hasConstants = !constants.isEmpty
        self.inputs = inputs
        self.outputs = outputs
        self.symbols = m.symbols.map { SymbolModel(name: $0.name, input: $0.input, dim: $0.dim) }
        self.hasSymbols = !m.symbols.isEmpty
        self.inputDimChecks = checks
        self.fixedInputDims = fixed
        self.constants = constants
        self.steps = steps
        self.specializations = specializations
        self.workspace = WorkspaceModel(
            alignment: m.workspace.alignment, totalCxx: m.workspace.totalBytes.cxx, regions: regions, hasRegions: !regions.isEmpty)
        self.ioTrtTypes = (inputs + outputs).map(\.trtType).joined(separator: ", ")
        guard let source = m.cudaSource else {
            throw fail("the kernel manifest holds no CUDA source (an output folder's copy keeps it in \(m.cudaSourceFile ?? "the plugin's kernel source")); render from the manifest the bridge wrote")
        }
        self.cudaSource = Self.withInfinityLiteral(Self.internalHelpers(source))
    }

    /// TVM 0.27's CUDA codegen prints a bfloat16 infinity as the float literal `inff`
    /// (`__float2bfloat16_rn(-inff/*-inf*/)`, an attention mask's fill), which no CUDA header
    /// defines; a source that uses it gets the definition first.
    static func withInfinityLiteral(_ source: String) -> String {
        guard source.contains("inff/*") else { return source }
        return "// TVM prints a bfloat16 infinity as `inff`: defined here (TPAT).\n#ifndef inff\n#define inff __int_as_float(0x7f800000)\n#endif\n" + source
    }

    /// TVM's float16/bfloat16 preamble defines helper functions with external linkage
    /// (`__device__ half max(half, half)`, `__host__ __device__ half4 make_half4(...)`), so two
    /// plugins' kernel objects could not be linked into one binary (duplicate symbols). Every
    /// top-level `__device__`/`__host__ __device__` function of TVM's source becomes `static`;
    /// the kernels (`extern "C" __global__`) keep their linkage.
    static func internalHelpers(_ source: String) -> String {
        let prefixes = ["__device__ ", "__host__ __device__ ", "__device__ __host__ "]
        var changed = false
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false).map { line -> Substring in
            guard prefixes.contains(where: { line.hasPrefix($0) }), line.contains("("), !line.contains("__global__") else { return line }
            changed = true
            return "static " + line
        }
        return changed ? lines.joined(separator: "\n") : source
    }

    // MARK: - Decisions

    static func isCIdentifier(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first.isASCII, first == "_" || first.properties.isAlphabetic else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || $0.properties.isAlphabetic || ("0"..."9").contains($0)) }
    }

    static let cxxKeywords: Set<String> = Set("""
        alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t class compl \
        concept const consteval constexpr constinit const_cast continue co_await co_return co_yield decltype default delete \
        do double dynamic_cast else enum explicit export extern false float for friend goto if inline int long mutable \
        namespace new noexcept not not_eq nullptr operator or or_eq private protected public register reinterpret_cast \
        requires return short signed sizeof static static_assert static_cast struct switch template this thread_local throw \
        true try typedef typeid typename union unsigned using virtual void volatile wchar_t while xor xor_eq \
        int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t size_t half dim3 NULL
        """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))

    /// Symbols are local variables of the generated code: no keywords, no `tpat_` names.
    static func reserved(_ s: String) -> Bool {
        cxxKeywords.contains(s) || s.hasPrefix("tpat_") || s.hasPrefix("__")
    }

    static func isPrintableASCII(_ s: String) -> Bool {
        s.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7f && $0 != "\"" && $0 != "\\" }
    }

    /// Text safe inside a C++ `//` comment or string: printable ASCII only.
    static func commentSafe(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { isPrintableASCII(String($0)) ? $0 : "?" }))
    }

    /// The first operation the renderer does not know, if any.
    static func unknownOp(_ node: SizeExpr.Node) -> String? {
        guard case .op(let op, let args) = node else { return nil }
        let arity = op == "select" ? 3 : 2
        guard binaryOps[op] != nil || op == "select", args.count == arity else { return "\(op)/\(args.count)" }
        for a in args { if let bad = unknownOp(a) { return bad } }
        return nil
    }

    static let binaryOps: [String: String] = [
        "add": "kSUM", "sub": "kSUB", "mul": "kPROD", "floordiv": "kFLOOR_DIV", "ceildiv": "kCEIL_DIV", "min": "kMIN", "max": "kMAX",
        "eq": "kEQUAL", "lt": "kLESS", "floormod": "", "le": "", "gt": "", "ge": "", "ne": "",
    ]

    /// An `IDimensionExpr const*` for `node` over `tpat_in[i].d[j]` and `tpat_eb`.
    static func trtExpr(_ node: SizeExpr.Node, _ symbols: [String: (input: Int, dim: Int)], _ api: TensorRTAPI, _ nodeName: String) throws(TPATError) -> String {
        if let value = SizeExpr.evaluate(node, [:]) {
            if api == .v2, value > Int64(Int32.max) || value < Int64(Int32.min) {
                throw .node(name: nodeName, reason: "dimension \(value) does not fit TensorRT 8's int32 dims")
            }
            return "tpat_eb.constant(\(value))"
        }
        switch node {
        case .int(let v): return "tpat_eb.constant(\(v))"
        case .symbol(let s):
            guard let src = symbols[s] else { throw .node(name: nodeName, reason: "unknown symbol '\(s)'") }
            return "tpat_in[\(src.input)].d[\(src.dim)]"
        case .op(let op, let args):
            var a: [String] = []
            for arg in args { a.append(try trtExpr(arg, symbols, api, nodeName)) }
            func o(_ k: String, _ x: String, _ y: String) -> String { "tpat_eb.operation(nvinfer1::DimensionOperation::\(k), *\(x), *\(y))" }
            let one = "tpat_eb.constant(1)"
            switch op {
            case "floormod": return o("kSUB", a[0], o("kPROD", o("kFLOOR_DIV", a[0], a[1]), a[1]))
            case "gt": return o("kLESS", a[1], a[0])
            case "le": return o("kSUB", one, o("kLESS", a[1], a[0]))
            case "ge": return o("kSUB", one, o("kLESS", a[0], a[1]))
            case "ne": return o("kSUB", one, o("kEQUAL", a[0], a[1]))
            case "select": return o("kSUM", o("kPROD", a[0], a[1]), o("kPROD", o("kSUB", one, a[0]), a[2]))
            default:
                guard let k = binaryOps[op], !k.isEmpty else { throw .node(name: nodeName, reason: "unknown operation '\(op)'") }
                return o(k, a[0], a[1])
            }
        }
    }

    /// The TensorRT `DataType` of an element type, as C++, if the API's plugins can take it.
    static func trtType(_ t: ElementType, _ api: TensorRTAPI) -> String? {
        TensorRTDataType(t, api: api)?.cxx
    }

    /// The host type the test program stores elements in.
    static func hostType(_ t: ElementType) -> String? {
        switch t {
        case .float32: "float"
        case .float64: "double"
        case .float16, .bfloat16: "uint16_t"
        case .int8: "int8_t"
        case .uint8, .bool: "uint8_t"
        case .int16: "int16_t"
        case .uint16: "uint16_t"
        case .int32: "int32_t"
        case .uint32: "uint32_t"
        case .int64: "int64_t"
        case .uint64: "uint64_t"
        default: nil
        }
    }

    /// `float* __restrict__` -> `float*`: a type a cast can name.
    static func plainPointerType(_ ctype: String) -> String {
        ctype.replacingOccurrences(of: "__restrict__", with: "").replacingOccurrences(of: "__restrict", with: "")
            .split(separator: " ").joined(separator: " ").replacingOccurrences(of: " *", with: "*")
    }

    static func isIntegerCType(_ ctype: String) -> Bool {
        let t = ctype.trimmingCharacters(in: .whitespaces)
        return ["int", "unsigned", "unsigned int", "long", "long long", "unsigned long", "unsigned long long", "short", "unsigned short",
                "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t", "uint64_t", "char", "signed char", "unsigned char"]
            .contains(t)
    }

    /// A stable fingerprint of the manifest (FNV-1a 64 over its sorted-keys JSON).
    static func fingerprint(_ m: KernelManifest) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(m)) ?? Data((m.cudaSource ?? "").utf8)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
