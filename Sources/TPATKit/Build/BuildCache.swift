import Crypto
import Foundation

/// Built kernel objects and self-tests, kept beside the kernel cache so that an unchanged plugin
/// is compiled once: the same model again, or the same node in another model, runs no nvcc.
///
/// An entry is keyed by everything the two targets are made from: the nvcc (its path and its
/// `--version`), how the CUDA runtime is linked, the Makefile's rules for the plugin (flags,
/// arch), the plugin's kernel and self-test sources. Not its constants: neither target holds them
/// (the self-test reads them when it runs; only the TensorRT library embeds them). Layout:
/// `<root>/<key[:2]>/<key>/{kernels.o, test, digest.json}`; `digest.json` holds each file's
/// SHA-256, checked before an entry is used: a damaged entry is rebuilt and replaced, never used.
public struct BuildCache: Sendable {
    /// The cache folder (``folderName`` inside the kernel cache).
    public let root: URL

    /// The build cache's folder inside the kernel cache folder.
    public static let folderName = "builds"

    /// What the key covers besides the plugin's own files (same for every plugin of a run).
    struct Toolchain: Sendable {
        var nvcc: String
        var nvccVersion: String
        var cudartArguments: [String]
    }

    /// The files of an entry: the name inside the entry and the target it restores.
    static func targets(plugin: String) -> [(entryName: String, path: String, executable: Bool)] {
        [
            ("kernels.o", "plugins/\(plugin)/build/\(plugin)_kernels.o", false),
            ("test", "plugins/\(plugin)/build/\(plugin)_test", true),
        ]
    }

    /// Creates a cache in `root` (made when first written).
    public init(root: URL) {
        self.root = root
    }

    /// The key of `plugin`'s targets in the output folder `out` whose Makefile text is `makefile`;
    /// nil when a source cannot be read (the plugin is then built, not cached).
    func key(plugin: String, in out: URL, makefile: String, toolchain: Toolchain) -> String? {
        var hash = SHA256()
        func add(_ label: String, _ data: Data) {
            hash.update(data: Data("\(label)\0\(data.count)\0".utf8))
            hash.update(data: data)
        }
        add("format", Data("tpat-build-cache-2".utf8))
        add("nvcc", Data(toolchain.nvcc.utf8))
        add("nvcc --version", Data(toolchain.nvccVersion.utf8))
        add("cudart", Data(toolchain.cudartArguments.joined(separator: "\0").utf8))
        add("rules", Data(Self.rules(of: plugin, in: makefile).utf8))
        let dir = out.appendingPathComponent("plugins/\(plugin)")
        for file in ["\(plugin)_kernels.cu", "\(plugin)_kernels.h", "\(plugin)_test.cu"] {
            guard let data = try? Data(contentsOf: dir.appendingPathComponent(file), options: .alwaysMapped) else { return nil }
            add(file, data)
        }
        return hash.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The Makefile's text that decides how `plugin` is built: everything but the list of plugins
    /// and the other plugins' sections (`# ---- name` up to the next section or the shared rules),
    /// so that adding a plugin to a model does not rebuild the others.
    static func rules(of plugin: String, in makefile: String) -> String {
        var kept: [Substring] = []
        var section: Substring?
        for line in makefile.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(PluginRenderer.makefileSharedRulesMarker) {
                section = nil
            } else if line.hasPrefix(PluginRenderer.makefileSectionMarker) {
                section = line.dropFirst(PluginRenderer.makefileSectionMarker.count)
            }
            if line.hasPrefix("PLUGINS :=") { continue }
            if section == nil || section == Substring(plugin) { kept.append(line) }
        }
        return kept.joined(separator: "\n")
    }

    /// Copies the entry of `key` into `out`'s build folder of `plugin`, each file checked against
    /// the entry's digest. False when there is no usable entry (a damaged one is removed).
    func restore(key: String, plugin: String, into out: URL) -> Bool {
        let entry = entryFolder(key)
        let fm = FileManager.default
        guard let digest = Self.readDigest(entry) else {
            if fm.fileExists(atPath: entry.path) { try? fm.removeItem(at: entry) }
            return false
        }
        let targets = Self.targets(plugin: plugin)
        guard Set(digest.keys) == Set(targets.map(\.entryName)) else {
            try? fm.removeItem(at: entry)
            return false
        }
        var restored: [URL] = []
        for target in targets {
            let source = entry.appendingPathComponent(target.entryName)
            guard Self.isRegularFile(source), let data = try? Data(contentsOf: source),
                Self.sha256(data) == digest[target.entryName]
            else {
                try? fm.removeItem(at: entry)
                for file in restored { try? fm.removeItem(at: file) }
                return false
            }
            let destination = out.appendingPathComponent(target.path)
            do {
                try fm.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
                try data.write(to: destination, options: .atomic)
                // A fresh modification time: make sees the target newer than its sources.
                try fm.setAttributes([.posixPermissions: target.executable ? 0o755 : 0o644, .modificationDate: Date()], ofItemAtPath: destination.path)
                restored.append(destination)
            } catch {
                for file in restored + [destination] { try? fm.removeItem(at: file) }
                return false
            }
        }
        return true
    }

    /// Keeps `plugin`'s built targets in `out` under `key`. Written to a temporary folder and
    /// renamed into place, so a reader never sees half an entry; another run storing the same
    /// key first wins. Failures only cost the next run a build.
    func store(key: String, plugin: String, from out: URL) {
        let fm = FileManager.default
        let entry = entryFolder(key)
        guard !fm.fileExists(atPath: entry.path) else { return }
        let temporary = entry.deletingLastPathComponent().appendingPathComponent(".\(key).\(UUID().uuidString.prefix(8)).tmp")
        defer { try? fm.removeItem(at: temporary) }
        do {
            try fm.createDirectory(at: temporary, withIntermediateDirectories: true)
            var digest: [String: String] = [:]
            for target in Self.targets(plugin: plugin) {
                let data = try Data(contentsOf: out.appendingPathComponent(target.path))
                try data.write(to: temporary.appendingPathComponent(target.entryName))
                digest[target.entryName] = Self.sha256(data)
            }
            try JSONEncoder().encode(digest).write(to: temporary.appendingPathComponent("digest.json"))
            try fm.moveItem(at: temporary, to: entry)
        } catch {
            return
        }
    }

    func entryFolder(_ key: String) -> URL {
        root.appendingPathComponent(String(key.prefix(2))).appendingPathComponent(key)
    }

    static func readDigest(_ entry: URL) -> [String: String]? {
        let file = entry.appendingPathComponent("digest.json")
        guard isRegularFile(file), let data = try? Data(contentsOf: file) else { return nil }
        return try? JSONDecoder().decode([String: String].self, from: data)
    }

    /// A regular file itself, not a link to one (an entry's link could point anywhere).
    static func isRegularFile(_ url: URL) -> Bool {
        (try? FileManager.default.attributesOfItem(atPath: url.path)[.type] as? FileAttributeType) == .typeRegular
    }

    static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}
