import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// Runs queued tasks on an engine: claims with a lease, heartbeats while rendering, records progress and the outcome.
///
/// A task whose worker dies is claimed again when its lease expires, up to `maxAttempts` claims. On graceful
/// shutdown the worker stops claiming and lets renders in flight finish.
public struct TaskWorker: Service {
    /// Worker settings with production defaults.
    public struct Configuration: Sendable {
        /// Renders run at once in this process (0: this process runs no tasks).
        public var concurrency: Int = 1
        /// How long a claim lasts without a heartbeat.
        public var leaseDuration: Duration = .seconds(30)
        /// How often a running render renews its lease.
        public var heartbeatInterval: Duration = .seconds(10)
        /// How often idle workers look for work they were not told about (other processes, expired leases).
        public var pollInterval: Duration = .milliseconds(500)
        /// Claims before a repeatedly abandoned task fails.
        public var maxAttempts: Int = 3
        /// Where results live: `results/<task id>/<attempt>/` under it.
        public var artifactDirectory: URL

        public init(artifactDirectory: URL) {
            self.artifactDirectory = artifactDirectory
        }
    }

    private let store: any QueueStore & TaskRecordStore
    private let engine: any VideoEngine
    private let configuration: Configuration
    private let signal: WakeSignal
    /// Told whenever a task this worker ran is settled (its callback is then in the outbox), so this process's
    /// callback deliverer sends it at once instead of at its next poll.
    private let settled: WakeSignal?
    private let logger: Logger
    private let workerID: String

    public init(
        store: any QueueStore & TaskRecordStore, engine: any VideoEngine, configuration: Configuration, signal: WakeSignal,
        settled: WakeSignal? = nil, logger: Logger
    ) {
        self.store = store
        self.engine = engine
        self.configuration = configuration
        self.signal = signal
        self.settled = settled
        self.logger = logger
        self.workerID = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(APIKeys.randomID().prefix(8))"
    }

    public func run() async throws {
        guard configuration.concurrency > 0 else {
            try? await gracefulShutdown()
            return
        }
        logger.info("worker started", metadata: ["concurrency": "\(configuration.concurrency)", "engine": "\(engine.name)"])
        // One claimer fills up to `concurrency` places: idle, the worker polls the store once per interval however many
        // places it has (upstream engines run hundreds of tasks side by side).
        let places = ConcurrencyLimit(count: configuration.concurrency)
        await withDiscardingTaskGroup { group in
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                await places.acquire()
                if Task.isShuttingDownGracefully || Task.isCancelled {
                    await places.release()
                    break
                }
                let seen = signal.current
                do {
                    let now = Self.nowMillis()
                    let leaseUntil = now + configuration.leaseDuration.milliseconds
                    // Shutdown stops a claim that waits for the store (a database that went away): it would hold
                    // the stop up for as long as a connection can be waited for.
                    let store = self.store, engineName = engine.name, maxAttempts = configuration.maxAttempts, workerID = self.workerID
                    if let task = try await cancelWhenGracefulShutdown({
                        try await store.claimNext(worker: workerID, engine: engineName, now: now, leaseUntil: leaseUntil, maxAttempts: maxAttempts)
                    }) {
                        group.addTask {
                            await self.process(task)
                            await places.release()
                        }
                        continue
                    }
                } catch {
                    if !Task.isShuttingDownGracefully { logger.error("claiming a task failed", metadata: ["error": "\(error)"]) }
                }
                await places.release()
                await idle(since: seen)
            }
        }
        logger.info("worker stopped")
    }

    /// Sleeps until woken, until the poll interval passes, or until shutdown begins.
    private func idle(since seen: UInt64) async {
        let signal = self.signal
        let interval = configuration.pollInterval
        await cancelWhenGracefulShutdown {
            await signal.wait(since: seen, timeout: interval)
        }
    }

    private func process(_ task: TaskRecord) async {
        let attempt = task.attempts
        var logger = self.logger
        logger[metadataKey: "task_id"] = "\(task.id)"
        logger[metadataKey: "engine"] = "\(engine.name)"
        logger[metadataKey: "attempt"] = "\(attempt)"
        logger.info("task claimed")

        let claimedAt = ContinuousClock.now
        let fileManager = FileManager.default
        // A directory per claim: a worker that lost its lease but has not noticed yet can never overwrite the files of
        // the claim that replaced it.
        let outputDirectory = configuration.artifactDirectory.appendingPathComponent("results/\(task.id)/\(attempt)", isDirectory: true)
        let scratchDirectory = configuration.artifactDirectory.appendingPathComponent("tmp/\(task.id)-\(attempt)", isDirectory: true)
        defer { try? fileManager.removeItem(at: scratchDirectory) }

        let outcome: Result<RenderOutput, any Error>
        do {
            try fileManager.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
            try fileManager.createDirectory(at: scratchDirectory, withIntermediateDirectories: true)
            let job = RenderJob(
                taskID: task.id, request: task.request, outputDirectory: outputDirectory, scratchDirectory: scratchDirectory,
                attempt: attempt)
            outcome = await renderHoldingLease(job, attempt: attempt, logger: logger)
        } catch {
            outcome = .failure(error)
        }

        let now = Self.nowMillis()
        Metrics.Timer(label: "kling_render_seconds", dimensions: [("engine", engine.name), ("outcome", outcome.metricName)])
            .recordMilliseconds((ContinuousClock.now - claimedAt).milliseconds)
        do {
            switch outcome {
            case .success(let output):
                let base = configuration.artifactDirectory.standardizedFileURL.path
                func relative(_ url: URL) -> String {
                    let path = url.standardizedFileURL.path
                    return path.hasPrefix(base + "/") ? String(path.dropFirst(base.count + 1)) : path
                }
                let result = TaskResult(
                    videoPath: relative(output.videoFile), coverPath: output.coverFile.map(relative), width: output.width,
                    height: output.height, durationSeconds: output.durationSeconds, hasAudio: output.hasAudio
                )
                if try await store.complete(taskID: task.id, attempt: attempt, result: result, now: now) {
                    settled?.notify()
                    logger.info("task succeeded", metadata: ["width": "\(output.width)", "height": "\(output.height)"])
                } else {
                    logger.warning("task finished but its claim was lost; result discarded")
                }
            case .failure(let error as EngineError) where error.retryable && attempt < configuration.maxAttempts:
                logger.warning("task attempt failed, will retry", metadata: ["error": "\(error)"])
                _ = try await store.release(taskID: task.id, attempt: attempt, now: now)
            case .failure(let error as EngineError):
                logger.info("task failed", metadata: ["code": "\(error.code)", "error": "\(error.message)"])
                if try await store.fail(taskID: task.id, attempt: attempt, failure: TaskFailure(code: error.code, message: error.message), now: now) {
                    settled?.notify()
                }
            case .failure(is CancellationError):
                logger.warning("task render was cancelled; returning it to the queue")
                _ = try await store.release(taskID: task.id, attempt: attempt, now: now)
            case .failure(is LostClaim):
                logger.warning("task claim lost during render (cancelled, timed out, or lease expired); render stopped")
            case .failure(let error):
                logger.error("task failed with an internal error", metadata: ["error": "\(error)"])
                if try await store.fail(
                    taskID: task.id, attempt: attempt, failure: TaskFailure(code: 500, message: "internal error: \(error)"), now: now)
                {
                    settled?.notify()
                }
            }
        } catch {
            logger.error("recording the task outcome failed; the lease will expire and the task will be retried", metadata: ["error": "\(error)"])
        }
    }

    private struct LostClaim: Error {}

    /// Renders while a sibling task renews the lease; a lost claim cancels the render.
    private func renderHoldingLease(_ job: RenderJob, attempt: Int, logger: Logger) async -> Result<RenderOutput, any Error> {
        let reporter = ProgressReporter(store: store, taskID: job.taskID, attempt: attempt)
        let store = self.store
        let configuration = self.configuration
        let engine = self.engine
        return await withTaskGroup(of: Result<RenderOutput, any Error>?.self) { group in
            group.addTask {
                do {
                    let output = try await engine.render(job) { progress in await reporter.report(progress) }
                    return .success(output)
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                // A cancel (or a sweep) ends the claim in the store: notice it within half a second and stop rendering.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(500))
                    if Task.isCancelled { return nil }
                    if let current = try? await store.task(id: job.taskID), current.state != .running || current.attempts != attempt {
                        return .failure(LostClaim())
                    }
                }
                return nil
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: configuration.heartbeatInterval)
                    if Task.isCancelled { return nil }
                    let now = Self.nowMillis()
                    do {
                        let held = try await store.heartbeat(
                            taskID: job.taskID, attempt: attempt, leaseUntil: now + configuration.leaseDuration.milliseconds, now: now)
                        if !held { return .failure(LostClaim()) }
                    } catch {
                        logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
                    }
                }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .failure(CancellationError())
        }
    }

    /// Unix milliseconds now.
    public static func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
}

/// Writes engine progress to the store, skipping unchanged values and rate-limiting writes.
actor ProgressReporter {
    private let store: any QueueStore
    private let taskID: String
    private let attempt: Int
    private var lastWritten = -1
    private var lastWriteAt = ContinuousClock.now - .seconds(10)

    init(store: any QueueStore, taskID: String, attempt: Int) {
        self.store = store
        self.taskID = taskID
        self.attempt = attempt
    }

    func report(_ progress: Int) async {
        let value = min(99, max(0, progress))  // 100 is written with the result, in one step
        guard value > lastWritten, ContinuousClock.now - lastWriteAt >= .milliseconds(250) else { return }
        lastWritten = value
        lastWriteAt = ContinuousClock.now
        _ = try? await store.updateProgress(taskID: taskID, attempt: attempt, progress: value, now: TaskWorker.nowMillis())
    }
}

extension Duration {
    /// Whole milliseconds.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

extension Result where Success == RenderOutput {
    /// `succeeded` or `failed`, for metrics.
    fileprivate var metricName: String {
        if case .success = self { return "succeeded" }
        return "failed"
    }
}
