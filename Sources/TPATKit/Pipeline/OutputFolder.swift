import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The output folder (`-o OUT`) and the rules that keep a user's files safe when TPAT writes it.
///
/// - OUT is a folder TPAT replaces as a whole, so an OUT that exists and is not a folder (the
///   model itself, any other file) is refused, and so is an OUT that is a symbolic link (removing
///   through a link would remove what it points to).
/// - No path that, links resolved, is, holds or lies inside the input model or one of its
///   external data files is ever removed, `--force` or not.
/// - Everything is written into a staging folder beside OUT (`.OUT.tpat-XXXXXXXX`) and moved into
///   place at the end; the previous OUT is moved aside first and removed only once the new one is
///   in place, so a failure at that step loses neither.
/// - A run that writes nothing (an error, or no node became a plugin) keeps its evidence, the
///   logs and report, in the sibling `OUT.failed/`.
struct OutputFolder {
    /// OUT, standardized, without a trailing slash.
    let url: URL
    /// Real paths of the files TPAT must never remove: the input model and its external data files.
    let protectedFiles: [String]

    /// Files whose removal would lose the user's input: the model file and each external data
    /// file, as real paths (links resolved).
    static func protectedFiles(of model: ONNXModel, at modelURL: URL) throws(TPATError) -> [String] {
        var files: [URL] = [modelURL]
        do throws(ONNXError) {
            let store = model.externalData
            for (tensor, reference) in try store.references() {
                files.append(try store.resolve(reference, tensor: tensor))
            }
        } catch {
            throw .usage(error.description)
        }
        return Array(Set(files.map { realPath($0.path) ?? $0.standardizedFileURL.path })).sorted()
    }

    /// Refuses an OUT that can never be written, before anything is read: a file or other
    /// non-folder, a symbolic link, or (without `force`) a folder that holds something.
    static func checkRequested(_ out: URL, force: Bool) throws(TPATError) {
        let path = out.path
        switch kind(atPath: path) {
        case .missing:
            return
        case .symbolicLink(let target):
            throw .usage(
                "the output path \(path) is a symbolic link (to \(target)); TPAT replaces the output folder as a whole and never removes through a link: name the real folder, or a new path")
        case .other(let what):
            throw .usage("the output path \(path) exists and is \(what), not a folder; TPAT writes a folder there and never removes a file: choose a new path")
        case .directory:
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            if !force, !entries.isEmpty {
                throw .usage("the output folder \(path) exists and is not empty; pass --force to replace it")
            }
        }
    }

    /// Creates the output folder's rules; refuses an OUT whose removal would remove a protected
    /// file (see ``checkRemovable()``).
    init(_ out: URL, protecting protectedFiles: [String]) throws(TPATError) {
        var path = out.standardizedFileURL.path
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        self.url = URL(fileURLWithPath: path)
        self.protectedFiles = protectedFiles
        try checkRemovable()
    }

    /// The folder OUT lies in.
    var parent: URL { url.deletingLastPathComponent() }

    /// Refuses to go on when removing OUT would remove the input (OUT is the model, holds it
    /// through any link, or lies inside it) or a folder no run may remove (`/`, the home folder).
    func checkRemovable() throws(TPATError) {
        try Self.checkRequested(url, force: true)
        guard case .directory = Self.kind(atPath: url.path), let real = Self.realPath(url.path) else { return }
        for file in protectedFiles where Self.path(file, isInsideOrEqualTo: real) || Self.path(real, isInsideOrEqualTo: file) {
            let link = real == url.path ? "" : " (it is \(real), links resolved)"
            throw .usage(
                "the output folder \(url.path)\(link) holds the input model or its data (\(file)); TPAT never removes its input: choose another output folder")
        }
        let home = FileManager.default.homeDirectoryForCurrentUser.path
        if real == "/" || real == Self.realPath(home) {
            throw .usage("the output folder \(url.path) is \(real == "/" ? "the root folder" : "your home folder"); TPAT replaces the output folder as a whole: choose a new folder")
        }
    }

    /// Where the staging folder beside OUT goes, and which of OUT's parent folders are missing
    /// (created with it; a run that writes nothing removes them again). Nothing is created yet,
    /// so that the folder can be registered for clean-up before it exists.
    func plannedStaging() -> (staging: URL, missingParents: [URL]) {
        let fm = FileManager.default
        var missing: [URL] = []
        var dir = parent
        while dir.path != "/", !fm.fileExists(atPath: dir.path) {
            missing.append(dir)
            dir = dir.deletingLastPathComponent()
        }
        return (parent.appendingPathComponent(".\(url.lastPathComponent).tpat-\(UUID().uuidString.prefix(8))"), missing)
    }

    /// Creates the staging folder (and OUT's missing parents).
    func createStaging(_ staging: URL) throws(TPATError) {
        do { try FileManager.default.createDirectory(at: staging.appendingPathComponent("plugins"), withIntermediateDirectories: true) } catch {
            throw .usage("cannot create the output folder beside \(url.path): \(error.localizedDescription)")
        }
    }

    /// Replaces OUT with `staging`, checking the rules again first (OUT may have changed while
    /// TVM ran). The previous OUT is moved aside, the staging folder renamed into place, then the
    /// previous one removed.
    func replace(with staging: URL) throws(TPATError) {
        try checkRemovable()
        var previous: URL?
        if case .directory = Self.kind(atPath: url.path) {
            let aside = parent.appendingPathComponent(".\(url.lastPathComponent).tpat-old-\(UUID().uuidString.prefix(8))")
            guard rename(url.path, aside.path) == 0 else {
                throw .tool(name: "output", reason: "cannot move the previous \(url.path) aside to replace it: \(Self.errnoText())")
            }
            previous = aside
        }
        guard rename(staging.path, url.path) == 0 else {
            let reason = Self.errnoText()
            if let previous { _ = rename(previous.path, url.path) }
            throw .tool(name: "output", reason: "cannot move the results into \(url.path): \(reason)")
        }
        if let previous { try? FileManager.default.removeItem(at: previous) }
    }

    /// The sibling folder for the evidence of a run that wrote nothing: `OUT.failed`.
    var evidenceURL: URL { parent.appendingPathComponent(url.lastPathComponent + ".failed") }

    /// The file that marks an evidence folder as TPAT's own, so that a later failed run may replace it.
    static let evidenceMarker = ".tpat-failed"

    /// Where the evidence of a run that wrote nothing goes: `OUT.failed`, unless something of that
    /// name is there that is not an earlier evidence folder of TPAT's (it is kept, and the
    /// evidence goes to `OUT.failed-XXXXXXXX`).
    func evidenceDestination() -> URL {
        let destination = evidenceURL
        switch Self.kind(atPath: destination.path) {
        case .missing:
            return destination
        case .directory where FileManager.default.fileExists(atPath: destination.appendingPathComponent(Self.evidenceMarker).path)
            && (try? OutputFolder(destination, protecting: protectedFiles)) != nil:
            return destination
        default:
            return parent.appendingPathComponent(url.lastPathComponent + ".failed-\(UUID().uuidString.prefix(8))")
        }
    }

    /// Moves every log of `staging` (same relative paths) and `files` into `destination` (from
    /// ``evidenceDestination()``), replacing an earlier evidence folder there. Returns the folder,
    /// or nil when there was nothing to keep (no log, and `evenWithoutLogs` false).
    func keepEvidence(from staging: URL, at destination: URL, files: [String: Data], evenWithoutLogs: Bool) throws(TPATError) -> URL? {
        let fm = FileManager.default
        let base = staging.path.hasSuffix("/") ? staging.path : staging.path + "/"
        var logs: [URL] = []
        if let walk = fm.enumerator(at: staging, includingPropertiesForKeys: [.isRegularFileKey, .isSymbolicLinkKey]) {
            for case let file as URL in walk where file.pathExtension == "log" && file.path.hasPrefix(base) {
                let values = try? file.resourceValues(forKeys: [.isRegularFileKey, .isSymbolicLinkKey])
                if values?.isRegularFile == true, values?.isSymbolicLink != true { logs.append(file) }
            }
        }
        if logs.isEmpty, !evenWithoutLogs { return nil }
        let temporary = parent.appendingPathComponent(".\(url.lastPathComponent).failed.tpat-\(UUID().uuidString.prefix(8))")
        do {
            try fm.createDirectory(at: temporary, withIntermediateDirectories: true)
            for file in logs {
                let target = temporary.appendingPathComponent(String(file.path.dropFirst(base.count)))
                try fm.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                try fm.moveItem(at: file, to: target)
            }
            for (name, data) in files { try data.write(to: temporary.appendingPathComponent(name)) }
            try Data("Written by TPAT: the logs of a run that wrote nothing else. A later failed run replaces this folder.\n".utf8)
                .write(to: temporary.appendingPathComponent(Self.evidenceMarker))
        } catch {
            try? fm.removeItem(at: temporary)
            throw .tool(name: "output", reason: "cannot keep the logs in \(destination.path): \(error.localizedDescription)")
        }
        do throws(TPATError) {
            if case .missing = Self.kind(atPath: destination.path) {
                guard rename(temporary.path, destination.path) == 0 else {
                    throw .tool(name: "output", reason: "cannot keep the logs in \(destination.path): \(Self.errnoText())")
                }
            } else {
                try OutputFolder(destination, protecting: protectedFiles).replace(with: temporary)
            }
        } catch {
            try? fm.removeItem(at: temporary)
            throw error
        }
        return destination
    }

    // MARK: - Paths

    enum Kind: Equatable {
        case missing
        case directory
        case symbolicLink(target: String)
        /// A regular file or another non-folder, described ("a file", "a FIFO", ...).
        case other(String)
    }

    /// What is at `path`, links not followed.
    static func kind(atPath path: String) -> Kind {
        var info = stat()
        guard lstat(path, &info) == 0 else { return .missing }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFLNK:
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?"
            return .symbolicLink(target: target)
        case S_IFREG: return .other("a file")
        case S_IFIFO: return .other("a FIFO")
        case S_IFSOCK: return .other("a socket")
        case S_IFCHR, S_IFBLK: return .other("a device")
        default: return .other("not a folder")
        }
    }

    /// `path` with every symbolic link resolved; nil when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Whether `path` is `folder` or lies inside it (both real, absolute paths).
    static func path(_ path: String, isInsideOrEqualTo folder: String) -> Bool {
        folder == "/" || path == folder || path.hasPrefix(folder + "/")
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

extension PipelineReport {
    /// The report with every path under `old` moved under `new` (the report of a run whose logs
    /// went to `OUT.failed/` instead of OUT).
    func replacingPathPrefix(_ old: String, with new: String) -> PipelineReport {
        func move(_ path: String) -> String { path == old || path.hasPrefix(old + "/") ? new + path.dropFirst(old.count) : path }
        var report = self
        report.outputModel = report.outputModel.map(move)
        report.trtexecCommand = report.trtexecCommand?.replacingOccurrences(of: old + "/", with: new + "/")
        for i in report.plugins.indices {
            report.plugins[i].directory = move(report.plugins[i].directory)
            report.plugins[i].library = report.plugins[i].library.map(move)
            report.plugins[i].selfTest = report.plugins[i].selfTest.map(move)
            report.plugins[i].buildLog = report.plugins[i].buildLog.map(move)
            report.plugins[i].referenceDataLog = report.plugins[i].referenceDataLog.map(move)
        }
        for i in report.failures.indices { report.failures[i].log = report.failures[i].log.map(move) }
        return report
    }
}

extension TPATError {
    /// The error with every occurrence of the path `old` replaced by `new` (a log moved out of the
    /// staging folder before it was removed).
    func replacingPath(_ old: String, with new: String) -> TPATError {
        func move(_ text: String) -> String { text.replacingOccurrences(of: old, with: new) }
        switch self {
        case .installation(let message): return .installation(move(message))
        case .usage(let message): return .usage(move(message))
        case .node(let name, let reason): return .node(name: name, reason: move(reason))
        case .tool(let name, let reason): return .tool(name: name, reason: move(reason))
        case .interrupted: return self
        }
    }
}
