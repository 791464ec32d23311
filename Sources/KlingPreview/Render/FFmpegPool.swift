import Foundation
import KlingCore
import Subprocess
import Synchronization
import SystemPackage

/// Runs the video's ffmpeg processes, starting them before a render needs them.
///
/// An ffmpeg process spends its first 0.06 s (of CPU, on this machine) loading its 215 libraries. A spare started ahead
/// has done that and parsed its options, and waits for its filter graph on standard input
/// (`-filter_complex_script /dev/stdin`); a render hands it the graph and so starts encoding sooner, without that work
/// competing for the cores. Every process runs in a folder of its own whose link ``FilterGraphBuilder/scratchLink``
/// is pointed at the render's scratch folder when the work arrives: the command line (the same for every render with
/// the same settings) names its files through that link.
///
/// Spares are kept per command line (`sparesPerKey` each, started again when a render is done) and end after
/// `idleLimit` without work. A spare that turns out dead when work arrives is replaced by a fresh process once.
/// Cancelling a run tears its process down (SIGTERM, then SIGKILL after 2 s) before the run returns.
final class FFmpegPool: Sendable {
    /// The pool the engines in this process share: engines with the same settings share its spares.
    static let shared = FFmpegPool()

    /// Spare processes kept per command line.
    let sparesPerKey: Int
    /// How long a spare waits for work before it ends.
    let idleLimit: Duration

    private struct Key: Hashable, Sendable {
        var executable: String
        var arguments: [String]
    }

    private let idle = Mutex<[Key: [Spare]]>([:])
    private let spawned = Atomic<Int>(0)
    /// The folder holding the processes' working folders (one each, removed when the process has ended).
    let root: URL

    /// A pool whose processes' folders go in `directory` (default: the temporary directory, `TMPDIR`).
    init(sparesPerKey: Int = 1, idleLimit: Duration = .seconds(120), directory: URL = FileManager.default.temporaryDirectory) {
        self.sparesPerKey = sparesPerKey
        self.idleLimit = idleLimit
        Self.removeFoldersOfEndedProcesses(in: directory)
        root = directory.appendingPathComponent("\(Self.folderPrefix)\(getpid())-\(UUID().uuidString.prefix(8))")
        // A spare that died while waiting makes the write of its graph fail with EPIPE; without this, SIGPIPE would end
        // the whole server instead.
        signal(SIGPIPE, SIG_IGN)
    }

    /// Start of the name of a pool's folder: the process id and a pool number follow.
    static let folderPrefix = "kling-ffmpeg-"

    /// Removes pool folders left by processes that are gone (a process that is killed leaves its spares' folders).
    static func removeFoldersOfEndedProcesses(in directory: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where name.hasPrefix(folderPrefix) {
            guard let pid = name.dropFirst(folderPrefix.count).split(separator: "-").first.flatMap({ pid_t($0) }),
                pid != getpid(), kill(pid, 0) != 0, errno == ESRCH
            else { continue }
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }

    /// Process ids of the waiting spares that have started (for tests).
    var spareProcessIDs: [pid_t] {
        idle.withLock { $0.values.flatMap { $0.compactMap(\.processID) } }
    }

    /// How many spares are waiting, over all command lines (for tests and diagnostics).
    var spareCount: Int { idle.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// Runs ffmpeg with `arguments` (which read the filter graph from `/dev/stdin` and name files through
    /// ``FilterGraphBuilder/scratchLink``) on a spare if one waits, hands it `graph` with the link pointed at `scratch`,
    /// and calls `onFrame` with every frame number it reports.
    func run(
        _ executable: String, _ arguments: [String], graph: String, scratch: URL,
        onFrame: @escaping @Sendable (Int) async -> Void
    ) async throws -> ProcessRunner.Outcome {
        let key = Key(executable: executable, arguments: ProcessRunner.progressArguments + arguments)
        var retried = false
        while true {
            let taken = take(key)
            // Where the pool's folder cannot be made (a read-only temporary directory), the process works in one
            // inside the scratch folder instead (and no spares are kept).
            let process = try taken ?? (try? start(key)) ?? start(key, in: scratch.appendingPathComponent(".ffmpeg"))
            let work = Spare.Work(graph: graph, scratch: scratch, onFrame: onFrame)
            let ran = await withTaskCancellationHandler {
                await process.perform(work)
            } onCancel: {
                process.cancel()
            }
            try Task.checkCancellation()
            switch ran {
            case .finished(let outcome):
                return outcome
            case .notStarted where taken != nil && !retried:
                // The spare died while it waited (killed from outside, say): a fresh process gets the work.
                retried = true
            case .notStarted(let reason):
                throw EngineError.renderFailed("ffmpeg could not be run: \(reason)")
            case .failed(let reason):
                throw EngineError.renderFailed("running ffmpeg failed: \(reason)")
            }
        }
    }

    /// Ends every waiting spare (they exit as soon as their standard input closes).
    func drain() {
        let spares = idle.withLock { idle in
            defer { idle.removeAll() }
            return idle.values.flatMap { $0 }
        }
        for spare in spares { spare.close("the pool was drained") }
    }

    private func take(_ key: Key) -> Spare? {
        idle.withLock { idle in idle[key]?.isEmpty == false ? idle[key]!.removeFirst() : nil }
    }

    /// Starts spares of the command line (as given to ``run(_:_:graph:scratch:onFrame:)``) until `sparesPerKey`
    /// wait. A render asks once it is done, so their start-up never competes with it; a command line with per-render
    /// inputs gains nothing from one.
    func keepSpares(_ executable: String, _ arguments: [String]) {
        replenish(Key(executable: executable, arguments: ProcessRunner.progressArguments + arguments))
    }

    private func replenish(_ key: Key) {
        // Counted once: a spare that cannot start leaves the list at once, and must not make this loop start another.
        let missing = idle.withLock { sparesPerKey - ($0[key]?.count ?? 0) }
        for _ in 0..<max(0, missing) {
            guard let spare = try? start(key) else { return }
            let kept = idle.withLock { idle in
                guard (idle[key]?.count ?? 0) < sparesPerKey else { return false }
                idle[key, default: []].append(spare)
                return true
            }
            guard kept else {
                spare.close("not needed")
                return
            }
            // A spare that finds no work in time ends; taken by then, it is no longer in the list and stays.
            Task { [idleLimit] in
                try? await Task.sleep(for: idleLimit)
                let expired = self.idle.withLock { idle in
                    guard let index = idle[key]?.firstIndex(where: { $0 === spare }) else { return false }
                    idle[key]!.remove(at: index)
                    return true
                }
                if expired { spare.close("idle for \(idleLimit)") }
            }
        }
    }

    /// Starts a process of `key` in a new folder (in the pool's, unless `parent` is given); it waits for its work.
    private func start(_ key: Key, in parent: URL? = nil) throws -> Spare {
        let directory = (parent ?? root).appendingPathComponent("\(spawned.add(1, ordering: .relaxed).newValue)")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw EngineError.renderFailed("ffmpeg could not be run: cannot create its folder \(directory.path): \(error)")
        }
        let spare = Spare(directory: directory)
        spare.launch(key.executable, key.arguments) { [weak self] spare in
            // A process that ended before it was given work (it could not start, say) leaves the list.
            self?.idle.withLock { idle in idle[key]?.removeAll { $0 === spare } }
        }
        return spare
    }
}

/// One ffmpeg process of ``FFmpegPool``: started, then waiting for its filter graph.
private final class Spare: Sendable {
    /// A render's share of work for the process.
    struct Work: Sendable {
        var graph: String
        var scratch: URL
        var onFrame: @Sendable (Int) async -> Void
    }

    /// How a process given work ended.
    enum Ran: Sendable {
        /// It read the graph and ran to its end.
        case finished(ProcessRunner.Outcome)
        /// It never read the graph (it could not start, or died waiting): the work is untouched.
        case notStarted(String)
        /// Running it failed on our side (linking its folder, reading its output).
        case failed(String)
    }

    private enum Mailbox {
        case empty
        /// The process waits for work.
        case waiting(CheckedContinuation<Work?, Never>)
        /// Work arrived before the process asked for it.
        case delivered(Work, CheckedContinuation<Ran, Never>)
        /// The process has its work; its result goes here.
        case taken(CheckedContinuation<Ran, Never>)
        /// No work will be taken any more.
        case closed(String)
    }

    let directory: URL
    private let mailbox = Mutex<Mailbox>(.empty)
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let started = Mutex<pid_t?>(nil)

    /// The process's id, once it has started.
    var processID: pid_t? { started.withLock { $0 } }

    init(directory: URL) {
        self.directory = directory
    }

    /// Starts the process; `ended` runs once it has exited (and its folder is gone).
    func launch(_ executable: String, _ arguments: [String], ended: @escaping @Sendable (Spare) -> Void) {
        let started = Task {
            var ran: Ran
            do {
                let result = try await Subprocess.run(
                    await ProcessRunner.executable(executable),
                    arguments: Arguments(arguments),
                    workingDirectory: FilePath(directory.path),
                    platformOptions: ProcessRunner.platformOptions,
                    input: .inputWriter, output: .sequence, error: .sequence
                ) { execution -> String? in
                    self.started.withLock { $0 = execution.processIdentifier.value }
                    guard let work = await self.nextWork() else { return nil }
                    // Killed while it waited? Its standard input may still take the graph, so ask the kernel.
                    if Self.hasEnded(execution.processIdentifier.value) { throw NotStarted(reason: "it ended while it waited") }
                    let link = self.directory.appendingPathComponent(FilterGraphBuilder.scratchLink).path
                    guard symlink(work.scratch.path, link) == 0 else {
                        throw EngineError.renderFailed("cannot link \(link) to the scratch folder: \(String(cString: strerror(errno)))")
                    }
                    do {
                        _ = try await execution.standardInputWriter.write(work.graph)
                        try await execution.standardInputWriter.finish()
                    } catch {
                        // The process is gone (EPIPE): it never read the graph.
                        throw NotStarted(reason: "\(error)")
                    }
                    return try await ProcessRunner.drain(execution.standardOutput, execution.standardError) { line in
                        if let frame = ProcessRunner.frameNumber(line) { await work.onFrame(frame) }
                    }
                }
                if let errors = result.closureResult {
                    ran = .finished(ProcessRunner.Outcome(succeeded: result.terminationStatus.isSuccess, standardOutput: "", standardError: errors))
                } else {
                    ran = .notStarted("ended before it was given work")
                }
            } catch let error as NotStarted {
                ran = .notStarted(error.reason)
            } catch let error as SubprocessError {
                ran = .notStarted("\(error)")
            } catch {
                ran = .failed("\(error)")
            }
            try? FileManager.default.removeItem(at: directory)
            finish(ran)
            ended(self)
        }
        task.withLock { $0 = started }
    }

    /// Hands `work` to the process and waits for it to end.
    func perform(_ work: Work) async -> Ran {
        await withCheckedContinuation { result in
            let closed: String? = mailbox.withLock { state in
                switch state {
                case .empty:
                    state = .delivered(work, result)
                case .waiting(let process):
                    state = .taken(result)
                    process.resume(returning: work)
                case .closed(let reason):
                    return reason
                case .delivered, .taken:
                    preconditionFailure("work handed twice to one ffmpeg process")
                }
                return nil
            }
            if let closed { result.resume(returning: .notStarted(closed)) }
        }
    }

    /// Tears the process down (cancelling its run).
    func cancel() {
        task.withLock { $0?.cancel() }
    }

    /// Ends a process that has no work: its standard input closes, so it exits.
    func close(_ reason: String) {
        let waiting: CheckedContinuation<Work?, Never>? = mailbox.withLock { state in
            switch state {
            case .empty:
                state = .closed(reason)
            case .waiting(let process):
                state = .closed(reason)
                return process
            case .delivered, .taken, .closed:
                break
            }
            return nil
        }
        waiting?.resume(returning: nil)
    }

    /// The work, once it arrives; `nil` when the process is closed or its run cancelled first.
    private func nextWork() async -> Work? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { process in
                let work: Work?? = mailbox.withLock { state in
                    switch state {
                    case .empty:
                        state = .waiting(process)
                        return .none
                    case .delivered(let work, let result):
                        state = .taken(result)
                        return .some(work)
                    case .closed:
                        return .some(nil)
                    case .waiting, .taken:
                        preconditionFailure("an ffmpeg process asked twice for work")
                    }
                }
                if let work { process.resume(returning: work) }
            }
        } onCancel: {
            close("cancelled")
        }
    }

    /// Reports how the process ended to the render that gave it work, if one did.
    private func finish(_ ran: Ran) {
        let result: CheckedContinuation<Ran, Never>? = mailbox.withLock { state in
            defer { if case .closed = state {} else { state = .closed("ended") } }
            switch state {
            case .taken(let result): return result
            case .delivered(_, let result): return result
            default: return nil
            }
        }
        result?.resume(returning: ran)
    }

    /// Whether process `pid` (a child of this process) has exited, without reaping it.
    private static func hasEnded(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return errno == ECHILD }
        return info._sifields._sigchld.si_pid == pid
    }

    private struct NotStarted: Error {
        var reason: String
    }
}
