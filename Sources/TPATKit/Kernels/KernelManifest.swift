import Foundation

/// The kernel manifest, version 1: everything needed to launch the CUDA kernels TVM generated
/// for one ONNX node. The bridge writes it (docs/manifest.md is the specification); the plugin
/// renderer and the self-tests read nothing else.
public struct KernelManifest: Codable, Sendable, Equatable {
    /// The only version this TPAT reads.
    public static let currentVersion = 1

    /// The document's version.
    public var version: Int
    /// The ONNX node the kernels implement.
    public var node: NodeInfo
    /// The compilation target.
    public var target: Target
    /// The prefix of every kernel name, unique to this plugin.
    public var kernelPrefix: String
    /// Symbolic sizes and the input dims that define them.
    public var symbols: [Symbol]
    /// The plugin's inputs, in order.
    public var inputs: [TensorSpec]
    /// The plugin's outputs, in order.
    public var outputs: [TensorSpec]
    /// Tensors the kernels read that are not inputs (weights TVM folded); uploaded once.
    public var constants: [Constant]
    /// Every kernel the launches use.
    public var kernels: [Kernel]
    /// The steps to run, in order.
    public var launches: [Step]
    /// Scratch memory the steps need (the specializations' regions included).
    public var workspace: Workspace
    /// Launch plans for particular sizes (`--profile`'s optimum: kernels compiled, and tuned, for
    /// static shapes): at enqueue, the first whose ``Specialization/when`` holds for the actual
    /// sizes runs instead of ``launches``, which serve every other size. nil or empty: none.
    public var specializations: [Specialization]?
    /// The whole CUDA translation unit, kernels renamed with ``kernelPrefix``. The bridge always
    /// writes it; an output folder's copy of the manifest leaves it out (see ``cudaSourceFile``),
    /// since the plugin's kernel source already holds it and a large model's kernels would be
    /// stored twice.
    public var cudaSource: String?
    /// In an output folder's copy only: the file, relative to the manifest's folder, whose text
    /// holds ``cudaSource`` (the plugin's `<name>_kernels.cu`, with its launch code around it).
    public var cudaSourceFile: String?

    /// The size outputs in order, each with the output and dim whose extent it holds.
    public var sizeOutputs: [(sizeOutput: Int, output: Int, dim: Int)] {
        outputs.enumerated().flatMap { j, t in (t.dataDependent ?? []).map { (sizeOutput: $0.sizeOutput, output: j, dim: $0.dim) } }
            .sorted { $0.sizeOutput < $1.sizeOutput }
    }

    /// This manifest as an output folder keeps it: ``cudaSource`` left out, ``cudaSourceFile``
    /// naming `file`.
    public func placed(sourceIn file: String) -> KernelManifest {
        var copy = self
        copy.cudaSource = nil
        copy.cudaSourceFile = file
        return copy
    }

    /// The node's identity.
    public struct NodeInfo: Codable, Sendable, Equatable {
        public var name: String
        public var opType: String
        public var domain: String

        /// Creates a node identity.
        public init(name: String, opType: String, domain: String) {
            self.name = name
            self.opType = opType
            self.domain = domain
        }
    }

    /// The CUDA target the kernels were compiled for.
    public struct Target: Codable, Sendable, Equatable {
        public var kind: String
        /// e.g. `sm_90`.
        public var arch: String
        public var tvmVersion: String
        public var tuned: Bool
    }

    /// A symbolic size and the input dim that defines it.
    public struct Symbol: Codable, Sendable, Equatable {
        public var name: String
        public var input: Int
        public var dim: Int
    }

    /// An input or output tensor.
    public struct TensorSpec: Codable, Sendable, Equatable {
        public var name: String
        public var dtype: ElementType
        /// The dims; a data-dependent dim holds its upper bound.
        public var shape: [SizeExpr]
        /// Outputs only: the dims whose extent depends on the input values (NonZero's count),
        /// each written at run time into a 0-D int32 size output.
        public var dataDependent: [DataDependentDim]?
    }

    /// A data-dependent dim of an output and the size output that holds its extent.
    public struct DataDependentDim: Codable, Sendable, Equatable {
        /// The dim of the output.
        public var dim: Int
        /// The index of the size output (after the node's own outputs).
        public var sizeOutput: Int
    }

    /// A constant tensor stored in a file next to the manifest.
    public struct Constant: Codable, Sendable, Equatable {
        public var name: String
        public var dtype: ElementType
        public var shape: [Int64]
        /// Path relative to the manifest's folder.
        public var file: String
        public var bytes: Int
    }

    /// A `__global__` function and its parameters in CUDA order.
    public struct Kernel: Codable, Sendable, Equatable {
        public var name: String
        public var params: [Param]
        /// The `__launch_bounds__` value, if any.
        public var maxThreadsPerBlock: Int?
    }

    /// A kernel parameter.
    public struct Param: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable { case pointer, scalar }
        public var name: String
        public var kind: Kind
        public var dtype: ElementType
        /// The exact C++ type in the kernel's signature.
        public var ctype: String
    }

    /// Scratch memory: aligned regions and their total.
    public struct Workspace: Codable, Sendable, Equatable {
        public var alignment: Int
        public var regions: [Region]
        public var totalBytes: SizeExpr

        public struct Region: Codable, Sendable, Equatable {
            public var offset: SizeExpr
            public var bytes: SizeExpr
        }
    }

    /// A buffer a step reads or writes.
    public struct Buffer: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable { case input, output, constant, workspace }
        public var kind: Kind
        /// Input, output or constant index, or workspace region.
        public var index: Int
        /// Offset in bytes into the buffer; nil means 0.
        public var byteOffset: SizeExpr?
    }

    /// One argument of a kernel launch.
    public enum Argument: Codable, Sendable, Equatable {
        case buffer(Buffer)
        case scalar(ctype: String, value: SizeExpr)

        private enum CodingKeys: String, CodingKey { case kind, buffer, ctype, value }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            switch try c.decode(String.self, forKey: .kind) {
            case "buffer": self = .buffer(try c.decode(Buffer.self, forKey: .buffer))
            case "scalar": self = .scalar(ctype: try c.decode(String.self, forKey: .ctype), value: try c.decode(SizeExpr.self, forKey: .value))
            case let other:
                throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown argument kind '\(other)'")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .buffer(let buffer):
                try c.encode("buffer", forKey: .kind)
                try c.encode(buffer, forKey: .buffer)
            case .scalar(let ctype, let value):
                try c.encode("scalar", forKey: .kind)
                try c.encode(ctype, forKey: .ctype)
                try c.encode(value, forKey: .value)
            }
        }
    }

    /// One step of the launch plan.
    public enum Step: Codable, Sendable, Equatable {
        case kernel(KernelLaunch)
        case copy(src: Buffer, dst: Buffer, bytes: SizeExpr)
        case memset(dst: Buffer, value: Int, bytes: SizeExpr)

        private enum CodingKeys: String, CodingKey { case kind, src, dst, bytes, value }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            switch try c.decode(String.self, forKey: .kind) {
            case "kernel": self = .kernel(try KernelLaunch(from: decoder))
            case "copy":
                self = .copy(src: try c.decode(Buffer.self, forKey: .src), dst: try c.decode(Buffer.self, forKey: .dst), bytes: try c.decode(SizeExpr.self, forKey: .bytes))
            case "memset":
                self = .memset(dst: try c.decode(Buffer.self, forKey: .dst), value: try c.decode(Int.self, forKey: .value), bytes: try c.decode(SizeExpr.self, forKey: .bytes))
            case let other:
                throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown step kind '\(other)'")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .kernel(let launch):
                try c.encode("kernel", forKey: .kind)
                try launch.encode(to: encoder)
            case .copy(let src, let dst, let bytes):
                try c.encode("copy", forKey: .kind)
                try c.encode(src, forKey: .src)
                try c.encode(dst, forKey: .dst)
                try c.encode(bytes, forKey: .bytes)
            case .memset(let dst, let value, let bytes):
                try c.encode("memset", forKey: .kind)
                try c.encode(dst, forKey: .dst)
                try c.encode(value, forKey: .value)
                try c.encode(bytes, forKey: .bytes)
            }
        }
    }

    /// A launch plan for particular sizes: its steps use the same inputs, outputs, constants and
    /// workspace regions as the generic plan, and kernels of their own.
    public struct Specialization: Codable, Sendable, Equatable {
        /// Nonzero for the sizes this plan serves (e.g. `(B == 8) * (S == 128)`).
        public var when: SizeExpr
        /// The sizes in words (`B=8, S=128`), for comments and logs.
        public var sizes: String
        /// The steps to run, in order.
        public var launches: [Step]
    }

    /// A kernel launch: grid, block, dynamic shared memory and arguments.
    public struct KernelLaunch: Codable, Sendable, Equatable {
        public var kernel: String
        public var grid: [SizeExpr]
        public var block: [SizeExpr]
        public var sharedMemBytes: SizeExpr
        public var args: [Argument]
    }
}

/// A size: a constant or an expression of symbols, as a tree and as C++.
public struct SizeExpr: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The C++ spelling (symbols are `int64_t` variables; helpers `tpat_floordiv` etc.).
    public var cxx: String
    /// The tree.
    public var tree: Node

    /// An expression node.
    public indirect enum Node: Codable, Sendable, Equatable {
        case int(Int64)
        case symbol(String)
        case op(String, [Node])

        private enum CodingKeys: String, CodingKey { case int, sym, op, args }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            if let value = try c.decodeIfPresent(Int64.self, forKey: .int) {
                self = .int(value)
            } else if let name = try c.decodeIfPresent(String.self, forKey: .sym) {
                self = .symbol(name)
            } else if let op = try c.decodeIfPresent(String.self, forKey: .op) {
                self = .op(op, try c.decode([Node].self, forKey: .args))
            } else {
                throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "an expression node needs int, sym or op"))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .int(let v): try c.encode(v, forKey: .int)
            case .symbol(let s): try c.encode(s, forKey: .sym)
            case .op(let op, let args):
                try c.encode(op, forKey: .op)
                try c.encode(args, forKey: .args)
            }
        }
    }

    /// Creates an expression.
    public init(cxx: String, tree: Node) {
        self.cxx = cxx
        self.tree = tree
    }

    /// A constant.
    public init(_ value: Int64) {
        self.init(cxx: String(value), tree: .int(value))
    }

    /// The value, when the expression is a constant.
    public var constantValue: Int64? {
        if case .int(let v) = tree { return v }
        return nil
    }

    public var description: String { cxx }

    /// Evaluates the expression with the given symbol values; nil if a symbol is missing or an
    /// operation is unknown.
    public func evaluate(_ symbols: [String: Int64]) -> Int64? { Self.evaluate(tree, symbols) }

    static func evaluate(_ node: Node, _ symbols: [String: Int64]) -> Int64? {
        switch node {
        case .int(let v): return v
        case .symbol(let s): return symbols[s]
        case .op(let op, let args):
            let values = args.map { evaluate($0, symbols) }
            guard !values.contains(where: { $0 == nil }) else { return nil }
            let v = values.map { $0! }
            func floordiv(_ a: Int64, _ b: Int64) -> Int64 { let q = a / b; return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q }
            switch (op, v.count) {
            case ("add", 2): return v[0] + v[1]
            case ("sub", 2): return v[0] - v[1]
            case ("mul", 2): return v[0] * v[1]
            case ("floordiv", 2): return v[1] == 0 ? nil : floordiv(v[0], v[1])
            case ("floormod", 2): return v[1] == 0 ? nil : v[0] - floordiv(v[0], v[1]) * v[1]
            case ("ceildiv", 2): return v[1] == 0 ? nil : -floordiv(-v[0], v[1])
            case ("min", 2): return min(v[0], v[1])
            case ("max", 2): return max(v[0], v[1])
            case ("lt", 2): return v[0] < v[1] ? 1 : 0
            case ("le", 2): return v[0] <= v[1] ? 1 : 0
            case ("gt", 2): return v[0] > v[1] ? 1 : 0
            case ("ge", 2): return v[0] >= v[1] ? 1 : 0
            case ("eq", 2): return v[0] == v[1] ? 1 : 0
            case ("ne", 2): return v[0] != v[1] ? 1 : 0
            case ("select", 3): return v[0] != 0 ? v[1] : v[2]
            default: return nil
            }
        }
    }

    /// The symbols the expression uses.
    public var symbols: Set<String> { Self.symbols(tree) }

    static func symbols(_ node: Node) -> Set<String> {
        switch node {
        case .int: []
        case .symbol(let s): [s]
        case .op(_, let args): args.reduce(into: Set<String>()) { $0.formUnion(symbols($1)) }
        }
    }
}

extension KernelManifest {
    /// Decodes a manifest and checks its version.
    public static func load(contentsOf url: URL) throws(TPATError) -> KernelManifest {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .tool(name: "TVM bridge", reason: "its manifest \(url.path) cannot be read: \(error.localizedDescription)")
        }
        struct Versioned: Decodable { var version: Int }
        let version = (try? JSONDecoder().decode(Versioned.self, from: data))?.version
        guard version == currentVersion else {
            throw .tool(name: "TVM bridge", reason: "manifest \(url.path) has version \(version.map(String.init) ?? "none"); this TPAT reads version \(currentVersion). Re-run the generation with this TPAT's bridge")
        }
        do {
            return try JSONDecoder().decode(KernelManifest.self, from: data)
        } catch {
            throw .tool(name: "TVM bridge", reason: "manifest \(url.path) does not match the specification (docs/manifest.md): \(error)")
        }
    }
}
