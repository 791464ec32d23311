import Foundation
import KlingAPI
import KlingCore
import Logging
import ServiceLifecycle

/// Forwards a task to one provider and follows it to the end: submits once (the provider's task id is stored
/// privately, so a later claim after a restart resumes following it), waits for KlingKit's signed callback or polls
/// with backoff through the provider's rate limiter, and on success copies the video (and cover) into our storage
/// through the safe fetcher before the task may succeed.
public struct UpstreamEngine: VideoEngine {
    /// Following settings with production defaults.
    public struct Configuration: Sendable {
        /// A task the provider has not finished this long after it was created fails and is refunded. Default 30 min.
        public var ceiling: Duration = .seconds(1800)
        /// Wait before the first query of a new upstream task. Default 2 s.
        public var firstPoll: Duration = .seconds(2)
        /// Longest wait between queries (the backoff grows by half each time up to it). Default 60 s.
        public var maxPollInterval: Duration = .seconds(60)
        /// Pause after a 429 without `Retry-After`. Default 5 s.
        public var defaultRetryAfter: Duration = .seconds(5)
        /// Largest result video accepted, in bytes. Default 1 GiB.
        public var maxVideoBytes = 1 << 30
        /// Largest cover image accepted, in bytes. Default 10 MB.
        public var maxCoverBytes = 10 * 1024 * 1024

        public init() {}
    }

    public var name: String { provider.engineName }
    /// The provider's API.
    public let provider: any UpstreamProvider
    /// Shared by every call to this provider.
    public let limiter: ProviderRateLimiter
    private let store: any QueueStore & TaskRecordStore
    private let fetcher: any InputFetching
    private let callbacks: UpstreamCallbacks?
    private let configuration: Configuration
    private let logger: Logger

    public init(
        provider: any UpstreamProvider, limiter: ProviderRateLimiter, store: any QueueStore & TaskRecordStore, fetcher: any InputFetching,
        callbacks: UpstreamCallbacks?, configuration: Configuration = .init(), logger: Logger
    ) {
        self.provider = provider
        self.limiter = limiter
        self.store = store
        self.fetcher = fetcher
        self.callbacks = callbacks
        self.configuration = configuration
        self.logger = logger
    }

    public func render(_ job: RenderJob, progress: @escaping @Sendable (Int) async -> Void) async throws -> RenderOutput {
        let accepted: Accepted
        do {
            accepted = try await accept(job)
        } catch let error as UpstreamError {
            throw EngineError(code: error.isRejection ? 422 : 501, message: "\(error)", retryable: error.isRetryable)
        }
        return try await follow(job, accepted: accepted, progress: progress)
    }

    /// The provider task a job is forwarded to.
    public struct Accepted: Sendable, Hashable {
        public var upstreamTaskID: String
        /// Whether an earlier claim had already forwarded it (this one only follows).
        public var resumed: Bool
    }

    /// Forwards the job, or finds the provider task an earlier claim forwarded it to. Throws ``UpstreamError`` when
    /// the provider refuses before accepting (the router may then try the next engine).
    public func accept(_ job: RenderJob) async throws -> Accepted {
        if let known = try await store.upstreamTask(taskID: job.taskID), known.engine == name {
            _ = try await store.recordEngine(
                taskID: job.taskID, attempt: job.attempt, engine: name, upstreamTaskID: known.taskID, now: TaskWorker.nowMillis())
            logger.info("resuming an upstream task", metadata: ["task_id": "\(job.taskID)", "engine": "\(name)"])
            return Accepted(upstreamTaskID: known.taskID, resumed: true)
        }
        if let reason = provider.unsupportedReason(job.request) {
            throw UpstreamError.rejected(name, status: nil, message: reason)
        }
        try await limiter.acquire()
        let id: String
        do {
            id = try await provider.submit(job.request, taskID: job.taskID, callbackURL: callbacks?.url(for: job.taskID))
        } catch let error as UpstreamError where error.isRateLimited {
            await limiter.pause(for: error.retryAfter ?? configuration.defaultRetryAfter)
            throw error
        }
        guard try await store.recordEngine(taskID: job.taskID, attempt: job.attempt, engine: name, upstreamTaskID: id, now: TaskWorker.nowMillis())
        else {
            logger.warning("upstream task created but our claim was lost", metadata: ["task_id": "\(job.taskID)", "engine": "\(name)"])
            throw CancellationError()
        }
        logger.info("forwarded to the provider", metadata: ["task_id": "\(job.taskID)", "engine": "\(name)"])
        return Accepted(upstreamTaskID: id, resumed: false)
    }

    /// Follows an accepted provider task to its end and copies the result into `job.outputDirectory`. A task its client
    /// cancelled meanwhile is cancelled at the provider too, where the provider can be told (``UpstreamCancelling``).
    public func follow(
        _ job: RenderJob, accepted: Accepted, progress: @escaping @Sendable (Int) async -> Void
    ) async throws -> RenderOutput {
        do {
            return try await followToEnd(job, accepted: accepted, progress: progress)
        } catch {
            if Task.isCancelled || error is CancellationError, !Task.isShuttingDownGracefully,
                let cancelling = provider as? any UpstreamCancelling
            {
                await cancelAtProviderIfCallerCancelled(job, upstreamTaskID: accepted.upstreamTaskID, cancelling)
            }
            throw error
        }
    }

    /// Tells the provider to stop when the task was cancelled by its client (not when the claim was lost otherwise:
    /// another worker then follows the same provider task). Runs outside the cancelled task, for at most 10 s.
    private func cancelAtProviderIfCallerCancelled(_ job: RenderJob, upstreamTaskID: String, _ cancelling: any UpstreamCancelling) async {
        let store = self.store
        let logger = self.logger
        let name = self.name
        let work = Task {
            guard let task = try? await store.task(id: job.taskID), task.state == .failed, task.failure?.code == TaskFailure.cancelledCode
            else { return }
            await cancelling.cancel(upstreamTaskID: upstreamTaskID)
            logger.info("cancelled at the provider", metadata: ["task_id": "\(job.taskID)", "engine": "\(name)"])
        }
        let timeout = Task {
            try? await Task.sleep(for: .seconds(10))
            work.cancel()
        }
        await work.value
        timeout.cancel()
    }

    private func followToEnd(
        _ job: RenderJob, accepted: Accepted, progress: @escaping @Sendable (Int) async -> Void
    ) async throws -> RenderOutput {
        let createdAt = try await store.task(id: job.taskID)?.createdAt ?? TaskWorker.nowMillis()
        let deadline = createdAt + configuration.ceiling.milliseconds
        let follower = callbacks?.follow(taskID: job.taskID)
        let wakes = follower?.signal
        defer { callbacks?.stopFollowing(taskID: job.taskID) }
        var delay = configuration.firstPoll
        // A resumed task, or one whose callback came before we listened, is asked about at once.
        var waitFirst = !accepted.resumed && follower?.alreadyWoken != true
        var seen = wakes?.current ?? 0
        while true {
            if waitFirst {
                let remaining = Duration.milliseconds(max(0, deadline - TaskWorker.nowMillis()))
                // Graceful shutdown ends the wait: the task goes back to the queue and is resumed (not resubmitted).
                let (since, pause) = (seen, min(delay, remaining))
                await cancelWhenGracefulShutdown {
                    if let wakes {
                        await wakes.wait(since: since, timeout: pause)
                    } else {
                        try? await Task.sleep(for: pause)
                    }
                }
                seen = wakes?.current ?? 0
            }
            waitFirst = true
            try Task.checkCancellation()
            if Task.isShuttingDownGracefully { throw CancellationError() }
            if TaskWorker.nowMillis() >= deadline {
                throw EngineError.renderFailed(
                    "\(name): the provider did not finish the task within \(configuration.ceiling.components.seconds / 60) minutes")
            }
            let status: UpstreamStatus
            do {
                status = try await query(accepted.upstreamTaskID, request: job.request)
            } catch let error as UpstreamError {
                if error.isRateLimited { continue }
                if error.isUnauthorized || error.isRejection {
                    throw EngineError.renderFailed("\(error)")
                }
                logger.warning("querying the provider failed; will ask again", metadata: ["task_id": "\(job.taskID)", "error": "\(error)"])
                delay = grown(delay)
                continue
            }
            switch status {
            case .queued:
                await progress(2)
                delay = grown(delay)
            case .running(let reported):
                await progress(reported.map { 5 + min(100, max(0, $0)) * 85 / 100 } ?? 50)
                delay = grown(delay)
            case .failed(let reason):
                throw EngineError.renderFailed("\(name): \(reason)")
            case .succeeded(let videoURL, let coverURL):
                await progress(95)
                return try await copyResult(job, upstreamTaskID: accepted.upstreamTaskID, videoURL: videoURL, coverURL: coverURL)
            }
        }
    }

    /// One rate-limited query; a 429 pauses every query to this provider.
    private func query(_ upstreamTaskID: String, request: GenerationRequest) async throws -> UpstreamStatus {
        try await limiter.acquire()
        do {
            return try await provider.status(of: upstreamTaskID, request: request)
        } catch let error as UpstreamError where error.isRateLimited {
            await limiter.pause(for: error.retryAfter ?? configuration.defaultRetryAfter)
            throw error
        }
    }

    /// Downloads the result through the safe fetcher; a link that no longer works is asked for again once.
    private func copyResult(_ job: RenderJob, upstreamTaskID: String, videoURL: String, coverURL: String?) async throws -> RenderOutput {
        let video = job.outputDirectory.appendingPathComponent("video.mp4")
        var links = (videoURL, coverURL)
        var lastError: EngineError?
        for round in 0..<2 {
            if round > 0 {
                guard let status = try? await query(upstreamTaskID, request: job.request), case .succeeded(let fresh, let freshCover) = status
                else { break }
                links = (fresh, freshCover)
            }
            do {
                if let own = provider as? any UpstreamResultDownloading, own.downloads(links.0) {
                    do {
                        try await own.download(
                            links.0, request: job.request, to: video, scratch: job.scratchDirectory, maxBytes: configuration.maxVideoBytes)
                    } catch let error as UpstreamError {
                        throw EngineError(code: 501, message: "\(error)", retryable: error.isRetryable)
                    }
                } else {
                    try await fetcher.fetch(links.0, field: "\(name) result", maxBytes: configuration.maxVideoBytes, to: video)
                }
                lastError = nil
                break
            } catch let error as EngineError {
                logger.warning("downloading the result failed", metadata: ["task_id": "\(job.taskID)", "error": "\(error.message)"])
                lastError = error
            }
        }
        if let lastError {
            throw EngineError.renderFailed("\(name): the finished video could not be copied: \(lastError.message)")
        }
        let facts = try await ResultProbe.probe(video, engine: name)
        var cover: URL?
        if let coverLink = links.1 {
            let file = job.outputDirectory.appendingPathComponent("cover.jpg")
            do {
                try await fetcher.fetch(coverLink, field: "\(name) cover", maxBytes: configuration.maxCoverBytes, to: file)
                cover = file
            } catch let error as EngineError {
                logger.warning("downloading the cover failed; the task keeps no cover", metadata: ["task_id": "\(job.taskID)", "error": "\(error.message)"])
            }
        }
        return RenderOutput(
            videoFile: video, coverFile: cover, width: facts.width, height: facts.height, durationSeconds: facts.durationSeconds,
            hasAudio: facts.hasAudio)
    }

    private func grown(_ delay: Duration) -> Duration {
        min(configuration.maxPollInterval, delay * 3 / 2)
    }
}
