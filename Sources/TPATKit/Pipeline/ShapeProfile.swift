import Foundation

/// The range one symbolic dim of the model's inputs takes in deployment, as a TensorRT
/// optimization profile gives it: `--profile batch=1:8:32`.
public struct DimRange: Sendable, Equatable, Codable {
    /// The dim's name in the model's inputs (`dim_param`).
    public var name: String
    /// The smallest size.
    public var min: Int64
    /// The size the engine is optimized for, and TPAT's plugins too: a launch plan compiled (and
    /// tuned) for it, beside the generic one.
    public var opt: Int64
    /// The largest size.
    public var max: Int64

    /// Creates a range; sizes must be positive and ordered (``parse(_:)`` checks user text).
    public init(name: String, min: Int64, opt: Int64, max: Int64) {
        self.name = name
        self.min = min
        self.opt = opt
        self.max = max
    }

    /// `NAME=MIN:OPT:MAX` (or `NAME=SIZE` for one size), or nil with what is wrong.
    public static func parse(_ text: String) -> Result<DimRange, ParseError> {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].trimmingCharacters(in: .whitespaces).isEmpty else {
            return .failure(ParseError(text: text, reason: "write NAME=MIN:OPT:MAX, e.g. batch=1:8:32"))
        }
        let sizes = parts[1].split(separator: ":", omittingEmptySubsequences: false).map {
            Int64($0.trimmingCharacters(in: .whitespaces))
        }
        // MIN may be 0 (an empty KV cache at the first step, as TensorRT's profiles allow); the
        // optimum and the maximum are real sizes.
        let values = sizes.compactMap { $0 }
        guard values.count == sizes.count, values.count == 3 || values.count == 1, values.allSatisfy({ $0 >= 0 }),
            values.suffix(2).allSatisfy({ $0 > 0 })
        else {
            return .failure(ParseError(text: text, reason: "the sizes must be integers MIN:OPT:MAX (or one size), MIN at least 0, OPT and MAX at least 1"))
        }
        let range = values.count == 1
            ? DimRange(name: parts[0].trimmingCharacters(in: .whitespaces), min: values[0], opt: values[0], max: values[0])
            : DimRange(name: parts[0].trimmingCharacters(in: .whitespaces), min: values[0], opt: values[1], max: values[2])
        guard range.min <= range.opt, range.opt <= range.max else {
            return .failure(ParseError(text: text, reason: "MIN <= OPT <= MAX must hold"))
        }
        return .success(range)
    }

    /// Why a `--profile` value was refused.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The value as given.
        public var text: String
        /// What is wrong with it.
        public var reason: String
        public var description: String { "--profile \(text): \(reason)" }
    }
}

/// The sizes the model's symbolic dims take in deployment (`--profile`, repeatable): the optimum
/// each plugin gets a specialized launch plan for, the sizes its self-test runs at, and the
/// trtexec line's `--minShapes/--optShapes/--maxShapes`.
public struct ShapeProfile: Sendable, Equatable {
    /// One range per dim name.
    public var ranges: [DimRange]

    /// Creates a profile.
    public init(_ ranges: [DimRange] = []) { self.ranges = ranges }

    /// True when no dim has a range.
    public var isEmpty: Bool { ranges.isEmpty }

    /// The range of dim `name`, if given.
    public func range(of name: String) -> DimRange? { ranges.first { $0.name == name } }

    /// The optimum of each given dim, by name: what the specialized launch plans are compiled for.
    public var optimum: [String: Int64] { Dictionary(ranges.map { ($0.name, $0.opt) }, uniquingKeysWith: { a, _ in a }) }

    /// The self-test sizes of each given dim: the optimum (the specialized plan), then the
    /// minimum, or 1 where the minimum is 0 (the generic plan; the maximum could make the
    /// reference data huge).
    public var testSizes: [String: [Int64]] {
        Dictionary(ranges.map { r in
            let small = Swift.max(r.min, 1)
            return (r.name, small == r.opt ? [r.opt] : [r.opt, small])
        }, uniquingKeysWith: { a, _ in a })
    }

    /// The names given that no input of `model` has among its symbolic dims.
    public func unknownNames(in model: ONNXModel) -> [String] {
        let known = Set(Self.symbolNames(in: model))
        return ranges.map(\.name).filter { !known.contains($0) }
    }

    /// The named symbolic dims of `model`'s inputs, sorted, each once.
    static func symbolNames(in model: ONNXModel) -> [String] {
        var names = Set<String>()
        for input in symbolicInputs(of: model) {
            for case .symbolic(let name) in input.dims { names.insert(name) }
        }
        return names.sorted()
    }

    /// The sizes of one input's dims at the profile's minimum, optimum and maximum; nil when a
    /// symbolic dim has no range (or a dim neither a size nor a name).
    func sizes(of dims: [TensorDim]) -> [(min: Int64, opt: Int64, max: Int64)]? {
        var out: [(min: Int64, opt: Int64, max: Int64)] = []
        for dim in dims {
            switch dim {
            case .fixed(let value): out.append((value, value, value))
            case .symbolic(let name):
                guard let r = range(of: name) else { return nil }
                out.append((r.min, r.opt, r.max))
            case .unknown: return nil
            }
        }
        return out
    }

    /// trtexec's shape options for `model`'s inputs with symbolic dims: `--minShapes=a:1x128,...`,
    /// `--optShapes`, `--maxShapes` (each input's dims at the profile's min, opt and max), and the
    /// inputs left out because a symbolic dim of theirs has no range (TensorRT then uses its own
    /// default, with a warning). Empty options when no input has symbolic dims.
    public func trtexecShapes(for model: ONNXModel) -> (options: [String], inputsWithoutRange: [String]) {
        var minShapes: [String] = [], optShapes: [String] = [], maxShapes: [String] = []
        var left: [String] = []
        for input in Self.symbolicInputs(of: model) {
            guard let dims = sizes(of: input.dims) else {
                left.append(input.name)
                continue
            }
            // trtexec splits `name:dims` lists at ',' and ':'; a name holding either goes in single
            // quotes, as its documentation says (`'Input:0':1x3`).
            let name = input.name.contains(where: { ":,".contains($0) }) ? "'\(input.name)'" : input.name
            func shape(_ pick: ((min: Int64, opt: Int64, max: Int64)) -> Int64) -> String {
                "\(name):" + dims.map { String(pick($0)) }.joined(separator: "x")
            }
            minShapes.append(shape(\.min))
            optShapes.append(shape(\.opt))
            maxShapes.append(shape(\.max))
        }
        guard !minShapes.isEmpty else { return ([], left) }
        return ([("--minShapes", minShapes), ("--optShapes", optShapes), ("--maxShapes", maxShapes)].map {
            ShellWord.quoted("\($0.0)=\($0.1.joined(separator: ","))")
        }, left)
    }

    /// The graph inputs (initializers aside) of `graph` with a dim that is not a fixed size.
    static func symbolicInputs(of graph: Onnx_GraphProto) -> [(name: String, dims: [TensorDim])] {
        let initializers = Set(graph.initializer.map(\.name))
        return graph.input.filter { !initializers.contains($0.name) }.compactMap { input in
            guard let dims = TensorType(input.type)?.shape, dims.contains(where: { $0.fixedValue == nil }) else { return nil }
            return (input.name, dims)
        }
    }

    static func symbolicInputs(of model: ONNXModel) -> [(name: String, dims: [TensorDim])] {
        symbolicInputs(of: model.proto.graph)
    }
}

/// A word of a printed command line, quoted for a POSIX shell when it needs to be.
enum ShellWord {
    /// `word` as is when it holds only characters no shell treats specially, else in single quotes.
    static func quoted(_ word: String) -> String {
        let plain = word.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_=:,./x+@%".contains($0)) }
        return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
