import KlingAPI
import KlingCore
import Logging

/// Picks an engine for each task from the routing table and fails over to the next one in the list when an upstream
/// refuses with a retryable error (429, 5xx, timeout, refused connection) before accepting the task. A task an
/// upstream already accepted is only ever followed there, also after a restart.
public struct EngineRouter: VideoEngine {
    /// The first engine of the default list (the worker's label until a task's engine is decided).
    public let name: String
    private let engines: [String: any VideoEngine]
    private let table: RoutingTable
    private let store: any QueueStore & TaskRecordStore
    private let localSlots: ConcurrencyLimit
    private let logger: Logger

    /// `engines` by configuration key (`official`, `market`, `crun`, `preview`); local engines (not upstream) render at
    /// most `localConcurrency` tasks at once whatever the worker's concurrency.
    public init(engines: [String: any VideoEngine], table: RoutingTable, store: any QueueStore & TaskRecordStore, localConcurrency: Int, logger: Logger) {
        self.engines = engines
        self.table = table
        self.store = store
        self.localSlots = ConcurrencyLimit(count: localConcurrency)
        self.logger = logger
        name = table.defaultEngines.first.flatMap { engines[$0]?.name } ?? "router"
    }

    public func render(_ job: RenderJob, progress: @escaping @Sendable (Int) async -> Void) async throws -> RenderOutput {
        if let known = try await store.upstreamTask(taskID: job.taskID),
            let upstream = engines.values.compactMap({ $0 as? UpstreamEngine }).first(where: { $0.name == known.engine })
        {
            return try await upstream.render(job, progress: progress)
        }
        let model = try await store.task(id: job.taskID)?.model ?? ""
        var refusals: [String] = []
        var unsupported = 0
        var retryable = false
        for key in table.engines(model: model, request: job.request) {
            guard let engine = engines[key] else { continue }
            guard let upstream = engine as? UpstreamEngine else {
                _ = try await store.recordEngine(
                    taskID: job.taskID, attempt: job.attempt, engine: engine.name, upstreamTaskID: nil, now: TaskWorker.nowMillis())
                await localSlots.acquire()
                defer { Task { await localSlots.release() } }
                try Task.checkCancellation()
                return try await engine.render(job, progress: progress)
            }
            if let reason = upstream.provider.unsupportedReason(job.request) {
                refusals.append("\(upstream.name): \(reason)")
                unsupported += 1
                continue
            }
            let accepted: UpstreamEngine.Accepted
            do {
                accepted = try await upstream.accept(job)
            } catch let error as UpstreamError where error.isRetryable {
                logger.warning("engine refused the task; trying the next one", metadata: ["task_id": "\(job.taskID)", "error": "\(error)"])
                refusals.append("\(error)")
                retryable = true
                continue
            } catch let error as UpstreamError {
                throw EngineError(code: error.isRejection ? 422 : 501, message: "\(error)")
            }
            return try await upstream.follow(job, accepted: accepted, progress: progress)
        }
        let reasons = refusals.isEmpty ? "no configured engine serves it" : refusals.joined(separator: "; ")
        // Every engine said it cannot make this request (a field it lacks): the request is at fault, 422.
        let code = !retryable && !refusals.isEmpty && unsupported == refusals.count ? 422 : 501
        throw EngineError(code: code, message: "no engine accepted the task: \(reasons)", retryable: retryable)
    }
}
