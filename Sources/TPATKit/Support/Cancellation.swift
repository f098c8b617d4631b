import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Stops a run cleanly on SIGINT and SIGTERM.
///
/// Every tool TPAT starts (the Python bridge, make, nvcc through make) runs in its own process
/// group, registered here while it runs, and so is every staging folder (`.OUT.tpat-XXXX`). On a
/// signal the handler stops every registered group (SIGTERM, then SIGKILL for what is left), waits
/// until no process of those groups is alive, so that nothing writes into a staging folder any
/// more, removes the staging folders, prints one line and exits with 128 + the signal (130 for
/// SIGINT, 143 for SIGTERM). Tool children live in groups of their own, so a Ctrl-C typed at the
/// terminal reaches TPAT alone and TPAT decides what stops, in this order.
///
/// The run's own code keeps going while the handler works; ``ToolRunner`` refuses to start tools
/// once a signal came and reports a tool that ended then as ``TPATError/interrupted(signal:)``,
/// and the code that moves results into place does so through ``commit(_:)``, which never
/// interleaves with the handler's clean-up.
public final class Cancellation: Sendable {
    /// The process-wide registry (signals are process-wide).
    public static let shared = Cancellation()

    struct State {
        var signal: Int32?
        var processGroups: Set<pid_t> = []
        /// Staging folders, each with the parent folders its run created (removed if left empty).
        var stagingFolders: [String: [String]] = [:]
        /// Folders a run finished writing (OUT, or OUT.failed with the logs of a failed run).
        var written: [String] = []
        var sources: [DispatchSourceSignal] = []
    }

    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "tpat.cancellation")

    /// How long the tools get after SIGTERM before SIGKILL, and how long TPAT then waits for them.
    let gracePeriod: TimeInterval
    let killWait: TimeInterval

    init(gracePeriod: TimeInterval = 3, killWait: TimeInterval = 5) {
        self.gracePeriod = gracePeriod
        self.killWait = killWait
    }

    /// Takes over SIGINT and SIGTERM for the rest of the process (idempotent). The default actions
    /// are turned off first, as a dispatch source only observes a signal; children get the default
    /// actions back (swift-subprocess resets every signal in the child).
    public func installSignalHandlers() {
        state.withLock { state in
            guard state.sources.isEmpty else { return }
            for signalNumber in [SIGINT, SIGTERM] {
                _ = Glibc.signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
                source.setEventHandler { [self] in self.stop(signal: signalNumber) }
                source.resume()
                state.sources.append(source)
            }
        }
    }

    /// The signal that stopped the run, if one came.
    public var signal: Int32? { state.withLock { $0.signal } }

    /// Whether a signal came: the run must start nothing more and write nothing more.
    public var isCancelled: Bool { signal != nil }

    /// Throws ``TPATError/interrupted(signal:)`` once a signal came.
    public func checkCancelled() throws(TPATError) {
        if let signal { throw .interrupted(signal: signal) }
    }

    /// Registers a started tool's process group. Returns false when a signal already came: the
    /// caller then kills the group itself (the handler may have looked before it registered).
    func track(processGroup: pid_t) -> Bool {
        state.withLock { state in
            guard state.signal == nil else { return false }
            state.processGroups.insert(processGroup)
            return true
        }
    }

    /// A tool's leader ended: whatever it left running in its group is killed (nothing a tool
    /// started may outlive it and go on writing), and the group is forgotten.
    func processGroupEnded(_ processGroup: pid_t) {
        if Self.hasLivingMembers(processGroup) {
            _ = kill(-processGroup, SIGKILL)
            _ = Self.waitUntilGone([processGroup], timeout: killWait)
        }
        _ = state.withLock { $0.processGroups.remove(processGroup) }
    }

    /// Registers a staging folder and the parent folders its run created, removed (the parents
    /// only if empty) if a signal comes before ``commit(stagingFolder:destination:_:)`` or
    /// ``removeStagingFolder(_:)``. Throws when a signal already came.
    public func track(stagingFolder: URL, createdParents: [URL] = []) throws(TPATError) {
        let signal = state.withLock { state -> Int32? in
            if state.signal == nil { state.stagingFolders[stagingFolder.path] = createdParents.map(\.path) }
            return state.signal
        }
        if let signal { throw .interrupted(signal: signal) }
    }

    /// Removes a staging folder whose run ended (what is left of it after a commit: nothing),
    /// and the parent folders its run created if they are empty, then forgets it. After a signal
    /// this is the handler's work: the run's code leaves it alone, so that the process never exits
    /// halfway through a removal the handler does not know about.
    public func removeStagingFolder(_ stagingFolder: URL) {
        guard !isCancelled else { return }
        let parents = state.withLock { $0.stagingFolders[stagingFolder.path] } ?? []
        try? FileManager.default.removeItem(at: stagingFolder)
        for parent in parents { _ = rmdir(parent) }
        _ = state.withLock { $0.stagingFolders.removeValue(forKey: stagingFolder.path) }
    }

    /// Runs `body`, which moves results out of `stagingFolder` into `destination`, unless a signal
    /// came; the signal handler waits while it runs, so results are either fully in place or not
    /// at all. The staging folder is forgotten afterwards.
    public func commit<T>(stagingFolder: URL, destination: URL, _ body: () throws(TPATError) -> T) throws(TPATError) -> T {
        let outcome: Result<T, TPATError> = state.withLock { state in
            if let signal = state.signal { return .failure(.interrupted(signal: signal)) }
            do throws(TPATError) {
                let value = try body()
                state.written.append(destination.path)
                state.stagingFolders.removeValue(forKey: stagingFolder.path)
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }

    /// Never returns: for the run's code after a signal, while the handler finishes and exits.
    public func waitForExit() async -> Never {
        while true { try? await Task.sleep(nanoseconds: 1_000_000_000) }
    }

    /// The signal handler's work; runs on `queue`, ends the process.
    private func stop(signal signalNumber: Int32) {
        let first = state.withLock { state -> Bool in
            guard state.signal == nil else { return false }
            state.signal = signalNumber
            return true
        }
        // A second Ctrl-C while cleaning up changes nothing: the clean-up is already bounded.
        guard first else { return }
        stopTools()
        let (written, removed) = removeStagingFolders()
        let name = signalNumber == SIGINT ? "SIGINT" : signalNumber == SIGTERM ? "SIGTERM" : "signal \(signalNumber)"
        let line: String
        if written.isEmpty {
            line = "tpat: interrupted by \(name): stopped the tools\(removed ? " and removed the unfinished output" : ""); nothing was written\n"
        } else {
            line = "tpat: interrupted by \(name) after \(written.map { TerminalText.escaped($0) }.joined(separator: " and ")) was written in full\n"
        }
        line.utf8CString.withUnsafeBufferPointer { buffer in
            _ = write(2, buffer.baseAddress, buffer.count - 1)
        }
        _exit(128 + signalNumber)
    }

    /// SIGTERM to every registered group, SIGKILL to what is left after the grace period, then
    /// waits until no process of any of them is alive. Groups registered meanwhile are included:
    /// their tool started before it could see the signal.
    private func stopTools() {
        var signalled: Set<pid_t> = []
        let deadline = Date().addingTimeInterval(gracePeriod)
        while true {
            let groups = state.withLock { $0.processGroups }
            for group in groups.subtracting(signalled) { _ = kill(-group, SIGTERM) }
            signalled.formUnion(groups)
            if !groups.contains(where: Self.hasLivingMembers) || Date() >= deadline { break }
            usleep(20_000)
        }
        let groups = state.withLock { $0.processGroups }.union(signalled)
        let living = groups.filter(Self.hasLivingMembers)
        for group in living { _ = kill(-group, SIGKILL) }
        _ = Self.waitUntilGone(Set(living), timeout: killWait)
    }

    /// Removes the registered staging folders. The run's own code may still be writing into one
    /// for a moment (it stops at its next step), so each is removed again until it stays gone.
    private func removeStagingFolders() -> (written: [String], removedAny: Bool) {
        state.withLock { state in
            let fm = FileManager.default
            var removedAny = false
            for _ in 0..<5 {
                var present = false
                for path in state.stagingFolders.keys where fm.fileExists(atPath: path) {
                    present = true
                    removedAny = true
                    try? fm.removeItem(atPath: path)
                }
                if !present { break }
                usleep(50_000)
            }
            for parent in state.stagingFolders.values.joined() { _ = rmdir(parent) }
            return (state.written, removedAny)
        }
    }

    /// Waits until no process of `groups` is alive (zombies do not count: they run no code).
    static func waitUntilGone(_ groups: Set<pid_t>, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while groups.contains(where: hasLivingMembers) {
            if Date() >= deadline { return false }
            usleep(20_000)
        }
        return true
    }

    /// Whether a process of group `group` is alive and not a zombie. On Linux /proc tells the state;
    /// elsewhere a group of zombies only counts as alive until they are reaped.
    static func hasLivingMembers(_ group: pid_t) -> Bool {
        #if os(Linux)
            if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") {
                for entry in entries where entry.first?.isNumber == true {
                    guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                        let close = stat.lastIndex(of: ")")
                    else { continue }
                    // After "pid (comm) ": state ppid pgrp ...; comm may hold spaces and parentheses.
                    let fields = stat[stat.index(after: close)...].split(separator: " ")
                    guard fields.count > 2, let pgrp = pid_t(fields[2]), pgrp == group else { continue }
                    if fields[0] != "Z" && fields[0] != "X" { return true }
                }
                return false
            }
        #endif
        return kill(-group, 0) == 0
    }
}
