import Foundation
import SwiftProtobuf

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Page-aligned, pre-faulted memory that SwiftProtobuf serializes into, so that a large model is
/// written with one `O_DIRECT` write and no copy. Measured here on a 1 GB model: a fresh heap
/// buffer costs about a second in page faults before a byte is encoded, and buffered writes run at
/// a quarter of the disk's speed; see docs/benchmarks.md.
struct PageAlignedBytes: SwiftProtobufContiguousBytes {
    final class Storage {
        let base: UnsafeMutableRawPointer
        let count: Int
        let mappedLength: Int

        init(count: Int) {
            self.count = count
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            mappedLength = max(page, (count + page - 1) / page * page)
            #if os(Linux)
                let flags = MAP_PRIVATE | MAP_ANONYMOUS
            #else
                let flags = MAP_PRIVATE | MAP_ANON
            #endif
            let mapped = mmap(nil, mappedLength, PROT_READ | PROT_WRITE, flags, -1, 0)
            if let mapped, mapped != MAP_FAILED {
                base = mapped
                #if os(Linux)
                    // Huge pages: 512x fewer faults (and fewer first touches of the VM's memory);
                    // then fault everything in at once (MADV_POPULATE_WRITE, Linux 5.14+).
                    _ = madvise(mapped, mappedLength, 14)
                    _ = madvise(mapped, mappedLength, 23)
                #endif
            } else {
                // No mapping to be had: ordinary aligned heap memory still works, only slower.
                base = UnsafeMutableRawPointer.allocate(byteCount: mappedLength, alignment: page)
                base.initializeMemory(as: UInt8.self, repeating: 0, count: mappedLength)
                isHeap = true
            }
        }

        private var isHeap = false

        deinit {
            if isHeap { base.deallocate() } else { munmap(base, mappedLength) }
        }
    }

    private var storage: Storage

    init(repeating: UInt8, count: Int) {
        storage = Storage(count: count)
        // Anonymous mappings start zeroed.
        if repeating != 0 { storage.base.initializeMemory(as: UInt8.self, repeating: repeating, count: count) }
    }

    init<S: Sequence>(_ sequence: S) where S.Element == UInt8 {
        let bytes = Array(sequence)
        self.init(repeating: 0, count: bytes.count)
        bytes.withUnsafeBytes { storage.base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    var count: Int { storage.count }

    /// The mapped length: `count` rounded up to whole pages, the bytes past `count` zero.
    var pageAlignedLength: Int { storage.mappedLength }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage.base, count: storage.count))
    }

    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) {
            let copy = Storage(count: storage.count)
            copy.base.copyMemory(from: storage.base, byteCount: storage.count)
            storage = copy
        }
        return try body(UnsafeMutableRawBufferPointer(start: storage.base, count: storage.count))
    }

    /// Writes the bytes to a new file at `path`, bypassing the page cache where the file system
    /// allows it (whole pages, then the file is cut to `count`), else with ordinary writes.
    func write(toNewFile path: String) throws {
        #if os(Linux)
            let direct = open(path, O_WRONLY | O_CREAT | O_TRUNC | Self.directIO, 0o644)
            if direct >= 0 {
                defer { close(direct) }
                if writeAll(direct, length: storage.mappedLength), ftruncate(direct, off_t(storage.count)) == 0 { return }
                // Some file systems accept O_DIRECT at open and refuse it at write: start over.
            }
        #endif
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        guard writeAll(fd, length: storage.count) else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    #if os(Linux)
        // Glibc's module does not export O_DIRECT (it needs _GNU_SOURCE); its value per arch.
        #if arch(arm64) || arch(arm)
            static let directIO: Int32 = 0o200000
        #else
            static let directIO: Int32 = 0o40000
        #endif
    #endif

    private func writeAll(_ fd: Int32, length: Int) -> Bool {
        var offset = 0
        while offset < length {
            // Chunks of 64 MiB: a multiple of every page size, within every write(2) limit.
            let n = Foundation.write(fd, storage.base + offset, min(1 << 26, length - offset))
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }
}
