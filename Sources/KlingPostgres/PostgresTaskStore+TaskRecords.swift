import Foundation
import KlingAPI
import KlingCore
import Logging
import PostgresNIO

/// Task records: charged inserts (group-committed), cancels and reads (``TaskRecordStore``).
extension PostgresTaskStore {
    public func insert(_ task: TaskRecord, maxActiveTasks: Int?) async throws {
        _ = try await insert(task, maxActiveTasks: maxActiveTasks, key: nil, fingerprint: nil, now: task.createdAt)
    }

    public func insert(_ task: TaskRecord, maxActiveTasks: Int?, idempotencyKey key: String, fingerprint: String, now: Int64) async throws
        -> IdempotentInsert
    {
        try await insert(task, maxActiveTasks: maxActiveTasks, key: key, fingerprint: fingerprint, now: now)
    }

    /// Stores and charges a task through the group-commit batcher (`kling_insert_tasks`, migration 4).
    func insert(_ task: TaskRecord, maxActiveTasks: Int?, key: String?, fingerprint: String?, now: Int64) async throws
        -> IdempotentInsert
    {
        try await inserts.insert(
            PostgresInsertBatcher.Item(
                id: task.id, account_id: task.accountID, dialect: task.dialect, model: task.model, request: try Self.encode(task.request),
                params: task.params, state: task.state.rawValue, progress: task.progress, attempts: task.attempts, engine: task.engine,
                created_at: task.createdAt, updated_at: task.updatedAt, started_at: task.startedAt, completed_at: task.completedAt,
                result: try task.result.map(Self.encode), failure_code: task.failure?.code, failure_message: task.failure?.message,
                credits: task.credits, refunded_credits: task.refundedCredits, callback_url: task.request.callbackURL,
                external_id: task.externalID, max_active: maxActiveTasks, idempotency_key: key, fingerprint: fingerprint, now: now))
    }

    /// Runs one `kling_insert_tasks` batch, again when PostgreSQL broke a deadlock by aborting it.
    static func insertBatch(lease: BoundedLease, logger: Logger, items: String) async throws -> String {
        var retries = 0
        while true {
            do {
                return try await lease.withConnection { connection in
                    let rows = try await connection.query("SELECT kling_insert_tasks(\(items)::JSONB)::TEXT AS outcomes", logger: logger)
                    for try await outcomes in rows.decode(String.self) { return outcomes }
                    throw StoreError.notFound("kling_insert_tasks returned no row")
                }
            } catch let error as PSQLError where error.isTransient && retries < 10 {
                retries += 1
            }
        }
    }

    public func cancel(taskID: String, accountID: String, failure: TaskFailure, now: Int64) async throws -> CancelOutcome {
        try await transaction { db -> CancelOutcome in
            guard let row = try await db.rows("SELECT state FROM tasks WHERE id = \(taskID) AND account_id = \(accountID) FOR UPDATE").first
            else { return .notFound }
            let state: String = try row.get("state")
            guard state == TaskState.queued.rawValue || state == TaskState.running.rawValue else { return .alreadyFinished }
            try await db.run(
                """
                UPDATE tasks SET state = 'failed', failure_code = \(failure.code), failure_message = \(failure.message),
                    completed_at = \(now), updated_at = \(now), lease_owner = NULL, lease_until = NULL
                WHERE id = \(taskID)
                """)
            try await Self.refund(db, taskID: taskID, now: now)
            try await Self.queueCallback(db, taskID: taskID, now: now)
            return .cancelled
        }
    }

    public func task(id: String, accountID: String) async throws -> TaskRecord? {
        try await read("SELECT \(unescaped: Self.taskColumns) FROM tasks WHERE id = \(id) AND account_id = \(accountID)").first.map(Self.task)
    }

    public func task(externalID: String, accountID: String) async throws -> TaskRecord? {
        try await read("SELECT \(unescaped: Self.taskColumns) FROM tasks WHERE account_id = \(accountID) AND external_id = \(externalID)")
            .first.map(Self.task)
    }

    public func listTasks(accountID: String, limit: Int, after: String?, ascending: Bool, offset: Int) async throws -> (
        tasks: [TaskRecord], hasMore: Bool
    ) {
        var sql = "SELECT \(Self.taskColumns) FROM tasks WHERE account_id = $1"
        var binds = PostgresBindings()
        binds.append(accountID)
        if let after {
            guard let cursor = try await read("SELECT created_at, id FROM tasks WHERE id = \(after) AND account_id = \(accountID)").first
            else { throw StoreError.notFound("after: no task \(after) for this account") }
            sql += ascending ? " AND (created_at, id) > ($2, $3)" : " AND (created_at, id) < ($2, $3)"
            binds.append(try cursor.get("created_at", as: Int64.self))
            binds.append(try cursor.get("id", as: String.self))
        }
        let next = binds.count + 1
        sql += ascending ? " ORDER BY created_at, id" : " ORDER BY created_at DESC, id DESC"
        sql += " LIMIT $\(next) OFFSET $\(next + 1)"
        binds.append(limit + 1)
        binds.append(max(0, offset))
        let tasks = try await read(PostgresQuery(unsafeSQL: sql, binds: binds)).map(Self.task)
        return (Array(tasks.prefix(limit)), tasks.count > limit)
    }

    public func task(id: String) async throws -> TaskRecord? {
        try await read("SELECT \(unescaped: Self.taskColumns) FROM tasks WHERE id = \(id)").first.map(Self.task)
    }

    /// The columns ``task(_:)`` reads.
    static let taskColumns = """
        id, account_id, dialect, model, request, params, state, progress, attempts, engine, created_at, updated_at,
        started_at, completed_at, result, failure_code, failure_message, credits, refunded_credits, results_expired_at,
        external_id
        """

    static func task(_ row: PostgresRandomAccessRow) throws -> TaskRecord {
        let request = try decoder.decode(GenerationRequest.self, from: Data(try row.get("request", as: String.self).utf8))
        let result: TaskResult? = try row.get("result", as: String?.self).map { try decoder.decode(TaskResult.self, from: Data($0.utf8)) }
        let failure: TaskFailure? = try row.get("failure_code", as: Int?.self).map {
            TaskFailure(code: $0, message: try row.get("failure_message", as: String?.self) ?? "")
        }
        return TaskRecord(
            id: try row.get("id"), accountID: try row.get("account_id"), dialect: try row.get("dialect"), model: try row.get("model"),
            request: request, params: try row.get("params"), state: TaskState(rawValue: try row.get("state")) ?? .failed,
            progress: try row.get("progress"), attempts: try row.get("attempts"), engine: try row.get("engine"),
            createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at"), startedAt: try row.get("started_at"),
            completedAt: try row.get("completed_at"), result: result, failure: failure, credits: try row.get("credits"),
            refundedCredits: try row.get("refunded_credits"), resultsExpiredAt: try row.get("results_expired_at"),
            externalID: try row.get("external_id"))
    }
}
