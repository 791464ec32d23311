/// The queue: claims with leases, and the writes of a claimed task fenced by its claim.
///
/// Methods that change a claimed task take the claim's `attempt` as a fencing token: they do nothing (and return
/// `false`) when the task has since been claimed by someone else or has reached a terminal state.
public protocol QueueStore: Sendable {
    /// Claims the oldest runnable task: queued, or running with an expired lease and attempts left.
    /// Tasks whose lease expired after `maxAttempts` claims are failed by the claim (on PostgreSQL, by a claim that
    /// finds nothing to take, so a busy claim stays one statement; the sweeper's ``failAbandoned(now:maxAttempts:)``
    /// catches them too).
    /// Returns the task with `state == .running` and `attempts` incremented (the fencing token).
    func claimNext(worker: String, engine: String, now: Int64, leaseUntil: Int64, maxAttempts: Int) async throws -> TaskRecord?
    /// Extends the lease of a claimed task; `false` when the claim is no longer ours.
    func heartbeat(taskID: String, attempt: Int, leaseUntil: Int64, now: Int64) async throws -> Bool
    /// Records progress (0-100) of a claimed task; `false` when the claim is no longer ours.
    func updateProgress(taskID: String, attempt: Int, progress: Int, now: Int64) async throws -> Bool
    /// Marks a claimed task succeeded with its result.
    func complete(taskID: String, attempt: Int, result: TaskResult, now: Int64) async throws -> Bool
    /// Marks a claimed task failed and refunds its price, in one transaction.
    func fail(taskID: String, attempt: Int, failure: TaskFailure, now: Int64) async throws -> Bool
    /// Puts a claimed task back in the queue (graceful shutdown before it finished).
    func release(taskID: String, attempt: Int, now: Int64) async throws -> Bool
    /// Fails (and refunds) every running task whose lease expired after its last allowed attempt; returns how many.
    func failAbandoned(now: Int64, maxAttempts: Int) async throws -> Int
    /// Fails (and refunds) every queued or running task created before `createdBefore`; returns how many.
    func failStuck(createdBefore: Int64, message: String, now: Int64) async throws -> Int
    /// Records, for a claimed task, the engine now producing it and (for an upstream engine) the provider's task id,
    /// which is kept privately: it is never part of a ``TaskRecord``. `false` when the claim is no longer ours.
    func recordEngine(taskID: String, attempt: Int, engine: String, upstreamTaskID: String?, now: Int64) async throws -> Bool
    /// The engine and provider task id recorded for a task by ``recordEngine(taskID:attempt:engine:upstreamTaskID:now:)``,
    /// if a provider accepted it (a later claim resumes following it instead of creating a second upstream task).
    func upstreamTask(taskID: String) async throws -> UpstreamTaskReference?
}

/// A provider's task that a task of ours was forwarded to (private: never shown to clients).
public struct UpstreamTaskReference: Sendable, Hashable {
    /// The engine that forwarded it (`kling-official`, ...).
    public var engine: String
    /// The provider's task id.
    public var taskID: String

    public init(engine: String, taskID: String) {
        self.engine = engine
        self.taskID = taskID
    }
}
