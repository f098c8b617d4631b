import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a file could not be opened as a plain regular file.
enum FileAccessFailure: Error, Equatable {
    /// Nothing is at the path (or a link on the way points nowhere).
    case missing
    /// The path names something other than a regular file: a folder, a FIFO, a device, a socket.
    case notRegular(kind: String)
    /// The real path (links resolved) is outside the folder the file must lie in.
    case outsideFolder(realPath: String, folder: String)
    /// The file was replaced between the check and the open (someone is racing the tool).
    case changedWhileOpening
    /// The system refused (permissions and the like).
    case cannotOpen(reason: String)

    /// The failure in a user's words, without the path (callers put it in front).
    var reason: String {
        switch self {
        case .missing: "the file is missing"
        case .notRegular(let kind): "it is \(kind), not a regular file; only regular files are read"
        case .outsideFolder(let real, let folder):
            "it resolves (following symbolic links) to \(real), which is outside the model's folder \(folder)"
        case .changedWhileOpening: "the file was replaced while TPAT opened it"
        case .cannotOpen(let reason): reason
        }
    }
}

/// A regular file opened read-only, with its size taken from the open descriptor: every byte TPAT
/// reads from a model or its external data comes through one of these.
///
/// Why not `FileHandle(forReadingFrom:)` or `Data(contentsOf:)`: opening a FIFO blocks until a
/// writer comes (forever), and `/dev/zero` never ends; a size read from the path can be the
/// size of a link rather than of its target; and a check on a path followed by an open of the
/// same path can be raced by someone who swaps a link in between. Here the path is checked with
/// `lstat`, opened with `O_NONBLOCK | O_NOFOLLOW` (a FIFO opens at once, a swapped-in link fails),
/// and the descriptor itself is checked with `fstat` (and, where the system says, its real path),
/// so what is read is what was checked.
final class RegularFile {
    /// The open descriptor; closed when this object goes.
    let descriptor: Int32
    /// The file's size in bytes, from `fstat` of ``descriptor``.
    let size: Int
    /// The path the file was opened at.
    let path: String

    private init(descriptor: Int32, size: Int, path: String) {
        self.descriptor = descriptor
        self.size = size
        self.path = path
    }

    deinit { close(descriptor) }

    /// Opens the regular file at `path`. With `folder` (a real path), the file's real path must lie
    /// inside it, checked on the open descriptor too where the system can tell.
    static func open(_ path: String, confinedTo folder: String? = nil) throws(FileAccessFailure) -> RegularFile {
        var before = stat()
        // stat (not lstat): `path` may be the user's model path, which may be a link; the
        // confined case passes a real path, and O_NOFOLLOW below refuses a link swapped in.
        guard stat(path, &before) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw .missing }
            throw .cannotOpen(reason: String(cString: strerror(errno)))
        }
        if let kind = fileKind(before.st_mode) { throw .notRegular(kind: kind) }
        // O_NONBLOCK: should the file become a FIFO between stat and open, open still returns at
        // once (and fstat below refuses it). It changes nothing for reads of a regular file.
        var flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC
        if folder != nil { flags |= O_NOFOLLOW }
        let descriptor = systemOpen(path, flags)
        guard descriptor >= 0 else {
            if errno == ELOOP { throw .changedWhileOpening }
            if errno == ENOENT { throw .missing }
            throw .cannotOpen(reason: String(cString: strerror(errno)))
        }
        var after = stat()
        guard fstat(descriptor, &after) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw .cannotOpen(reason: reason)
        }
        if let kind = fileKind(after.st_mode) {
            close(descriptor)
            throw .notRegular(kind: kind)
        }
        guard after.st_dev == before.st_dev, after.st_ino == before.st_ino else {
            close(descriptor)
            throw .changedWhileOpening
        }
        if let folder, let opened = descriptorPath(descriptor), !RealPath.isInside(opened, folder: folder) {
            close(descriptor)
            throw .outsideFolder(realPath: opened, folder: folder)
        }
        return RegularFile(descriptor: descriptor, size: Int(after.st_size), path: path)
    }

    /// Reads bytes `range` of the file; fewer only if the file shrank since it was opened, which
    /// is reported as an error rather than returned short.
    func read(_ range: Range<Int>) throws(FileAccessFailure) -> Data {
        var data = Data(count: range.count)
        var done = 0
        let failure: FileAccessFailure? = data.withUnsafeMutableBytes { buffer -> FileAccessFailure? in
            while done < range.count {
                let n = pread(descriptor, buffer.baseAddress! + done, range.count - done, off_t(range.lowerBound + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    return .cannotOpen(reason: "reading failed: \(String(cString: strerror(errno)))")
                }
                if n == 0 { return .cannotOpen(reason: "the file ended after \(range.lowerBound + done) bytes while being read (it shrank)") }
                done += n
            }
            return nil
        }
        if let failure { throw failure }
        return data
    }

    /// What a file mode is when it is not a regular file ("a FIFO", "a folder"); nil for a regular file.
    static func fileKind(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: nil
        case S_IFDIR: "a folder"
        case S_IFIFO: "a named pipe (FIFO)"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a symbolic link"
        default: "a special file"
        }
    }

    /// The real path of an open descriptor, as the kernel knows it; nil where the system cannot say.
    private static func descriptorPath(_ descriptor: Int32) -> String? {
        #if os(Linux)
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink("/proc/self/fd/\(descriptor)", &buffer, buffer.count - 1)
            guard n > 0 else { return nil }
            return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #elseif canImport(Darwin)
            var buffer = [CChar](repeating: 0, count: Int(MAXPATHLEN) + 1)
            guard fcntl(descriptor, F_GETPATH, &buffer) == 0 else { return nil }
            return String(cString: buffer)
        #else
            return nil
        #endif
    }
}

/// `open(2)` under a name that does not clash with ``RegularFile/open(_:confinedTo:)``.
private func systemOpen(_ path: String, _ flags: Int32) -> Int32 {
    #if canImport(Glibc)
        Glibc.open(path, flags)
    #else
        Darwin.open(path, flags)
    #endif
}

/// Real paths: every symbolic link (of the file and of each folder on the way) resolved.
enum RealPath {
    /// The real path of `path`, or nil when some part of it does not exist.
    static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Whether `path` (a real path) lies strictly inside `folder` (a real path). Compares bytes:
    /// Swift's `String.hasPrefix` treats canonically equivalent Unicode as equal, so a sibling
    /// folder named "café" in decomposed form would pass as the folder "café" in composed form.
    static func isInside(_ path: String, folder: String) -> Bool {
        let prefix = Array((folder.hasSuffix("/") ? folder : folder + "/").utf8)
        let bytes = Array(path.utf8)
        return bytes.count > prefix.count && bytes.starts(with: prefix)
    }
}
