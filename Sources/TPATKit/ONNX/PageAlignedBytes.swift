import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Page-aligned, pre-faulted memory (huge pages where the system gives them): the buffer
/// ``DirectFileSink`` writes from with `O_DIRECT`, which needs page-aligned addresses and lengths.
struct PageAlignedBytes {
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

    var count: Int { storage.count }


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

    #if os(Linux)
        // Glibc's module does not export O_DIRECT (it needs _GNU_SOURCE); its value per arch.
        #if arch(arm64) || arch(arm)
            static let directIO: Int32 = 0o200000
        #else
            static let directIO: Int32 = 0o40000
        #endif
    #endif
}
