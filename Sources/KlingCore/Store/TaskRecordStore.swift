/// Task records: a task's creation (charged in the same transaction), its cancellation and every read of it.
public protocol TaskRecordStore: Sendable {
    /// Stores a new queued task and charges its `credits` to its account, in one transaction. Throws
    /// ``StoreError/insufficientCredits`` when the balance cannot cover the price, or ``StoreError/limitReached`` when
    /// the account already has `maxActiveTasks` queued or running tasks; nothing is stored or charged then.
    func insert(_ task: TaskRecord, maxActiveTasks: Int?) async throws
    /// ``insert(_:maxActiveTasks:)`` under an idempotency key: when the account used `key` in the last 24 hours, nothing
    /// is stored or charged and the earlier task comes back (``IdempotentInsert/existing``), or
    /// ``StoreError/conflict`` when that request's `fingerprint` differs.
    func insert(_ task: TaskRecord, maxActiveTasks: Int?, idempotencyKey key: String, fingerprint: String, now: Int64) async throws
        -> IdempotentInsert
    /// Cancels a queued or running task of `accountID`: failed with `failure`, refunded and its callback recorded, in one
    /// transaction. A worker rendering it loses its claim.
    func cancel(taskID: String, accountID: String, failure: TaskFailure, now: Int64) async throws -> CancelOutcome
    /// The account's task with this external id (Kling's `external_task_id`).
    func task(externalID: String, accountID: String) async throws -> TaskRecord?
    /// A task, only if it belongs to `accountID`: other accounts get `nil`, exactly as for unknown ids.
    func task(id: String, accountID: String) async throws -> TaskRecord?
    /// A page of the account's tasks, newest first (or oldest first with `ascending`), starting after the task `after`;
    /// also whether more follow.
    func listTasks(accountID: String, limit: Int, after: String?, ascending: Bool, offset: Int) async throws -> (tasks: [TaskRecord], hasMore: Bool)
    /// A task by id regardless of owner (workers and admin tools only).
    func task(id: String) async throws -> TaskRecord?
}

/// What an idempotent insert did.
public enum IdempotentInsert: Sendable, Hashable {
    case created
    /// The key was used before for the same request: this is that task's id.
    case existing(taskID: String)
}

/// What a cancel did.
public enum CancelOutcome: Sendable, Hashable {
    case cancelled
    /// The task had already succeeded or failed.
    case alreadyFinished
    case notFound
}
