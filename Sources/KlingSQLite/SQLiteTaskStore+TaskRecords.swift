import Foundation
import GRDB
import KlingAPI
import KlingCore

/// Task records: charged inserts, cancels and reads (``TaskRecordStore``).
extension SQLiteTaskStore {
    public func insert(_ task: TaskRecord, maxActiveTasks: Int?) async throws {
        let request = try Self.encode(task.request)
        let result = try task.result.map(Self.encode)
        try await pool.write { db in try Self.insert(db, task, request: request, result: result, maxActiveTasks: maxActiveTasks) }
        counters.bump(ChangeCounters.slot(forTask: task.id))
    }

    public func insert(_ task: TaskRecord, maxActiveTasks: Int?, idempotencyKey key: String, fingerprint: String, now: Int64) async throws
        -> IdempotentInsert
    {
        let request = try Self.encode(task.request)
        let result = try task.result.map(Self.encode)
        let outcome = try await pool.write { db -> IdempotentInsert in
            // Take the write lock first so parallel retries with one key queue up here and see each other's row.
            try db.execute(sql: "UPDATE accounts SET balance = balance WHERE id = ?", arguments: [task.accountID])
            try db.execute(
                sql: "DELETE FROM idempotency_keys WHERE account_id = ? AND key = ? AND created_at < ?",
                arguments: [task.accountID, key, now - 86_400_000])
            if let row = try Row.fetchOne(
                db, sql: "SELECT fingerprint, task_id FROM idempotency_keys WHERE account_id = ? AND key = ?", arguments: [task.accountID, key])
            {
                guard (row["fingerprint"] as String) == fingerprint else {
                    throw StoreError.conflict("this Idempotency-Key was used in the last 24 hours for a different request")
                }
                return .existing(taskID: row["task_id"])
            }
            try Self.insert(db, task, request: request, result: result, maxActiveTasks: maxActiveTasks)
            try db.execute(
                sql: "INSERT INTO idempotency_keys (account_id, key, fingerprint, task_id, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [task.accountID, key, fingerprint, task.id, now])
            return .created
        }
        if outcome == .created { counters.bump(ChangeCounters.slot(forTask: task.id)) }
        return outcome
    }

    static func insert(_ db: Database, _ task: TaskRecord, request: String, result: String?, maxActiveTasks: Int?) throws {
        // The charge comes first: its write takes the database's write lock, so the count below cannot race
        // another process's create.
        if task.credits > 0 {
            try moveCredits(
                db, accountID: task.accountID, kind: .charge, amount: -task.credits, taskID: task.id, note: "task accepted", now: task.createdAt)
        } else {
            try db.execute(sql: "UPDATE accounts SET balance = balance WHERE id = ?", arguments: [task.accountID])
        }
        if let external = task.externalID,
            try Bool.fetchOne(db, sql: "SELECT 1 FROM tasks WHERE account_id = ? AND external_id = ?", arguments: [task.accountID, external]) == true
        {
            throw StoreError.externalIDTaken("external_task_id: \(external) is already used by another task of this account")
        }
        if let maxActiveTasks {
            let active =
                try Int.fetchOne(
                    db.cachedStatement(sql: "SELECT COUNT(*) FROM tasks WHERE account_id = ? AND state IN ('queued', 'running')"),
                    arguments: [task.accountID]) ?? 0
            if active >= maxActiveTasks {
                throw StoreError.limitReached("the account already has \(active) queued or running tasks, its limit; wait for one to finish")
            }
        }
        try db.cachedStatement(
            sql: """
                INSERT INTO tasks (id, account_id, dialect, model, request, params, state, progress, attempts, engine,
                    created_at, updated_at, started_at, completed_at, result, failure_code, failure_message, credits,
                    refunded_credits, callback_url, external_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            task.id, task.accountID, task.dialect, task.model, request, task.params, task.state.rawValue, task.progress,
            task.attempts, task.engine, task.createdAt, task.updatedAt, task.startedAt, task.completedAt, result,
            task.failure?.code, task.failure?.message, task.credits, task.refundedCredits, task.request.callbackURL, task.externalID,
        ])
    }

    public func cancel(taskID: String, accountID: String, failure: TaskFailure, now: Int64) async throws -> CancelOutcome {
        let outcome = try await pool.write { db -> CancelOutcome in
            guard let state = try String.fetchOne(db, sql: "SELECT state FROM tasks WHERE id = ? AND account_id = ?", arguments: [taskID, accountID])
            else { return .notFound }
            guard state == TaskState.queued.rawValue || state == TaskState.running.rawValue else { return .alreadyFinished }
            try db.execute(
                sql: """
                    UPDATE tasks SET state = 'failed', failure_code = ?, failure_message = ?, completed_at = ?, updated_at = ?,
                        lease_owner = NULL, lease_until = NULL
                    WHERE id = ?
                    """,
                arguments: [failure.code, failure.message, now, now, taskID])
            try Self.refund(db, taskID: taskID, now: now)
            try Self.queueCallback(db, taskID: taskID, now: now)
            return .cancelled
        }
        if outcome == .cancelled { counters.bump(ChangeCounters.slot(forTask: taskID)) }
        return outcome
    }

    public func task(id: String, accountID: String) async throws -> TaskRecord? {
        let task = try await task(id: id)
        return task?.accountID == accountID ? task : nil
    }

    public func task(externalID: String, accountID: String) async throws -> TaskRecord? {
        try await pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT \(Self.taskColumns) FROM tasks WHERE account_id = ? AND external_id = ?", arguments: [accountID, externalID]
            ).map(Self.task)
        }
    }

    public func listTasks(accountID: String, limit: Int, after: String?, ascending: Bool, offset: Int) async throws -> (
        tasks: [TaskRecord], hasMore: Bool
    ) {
        try await pool.read { db in
            var sql = "SELECT \(Self.taskColumns) FROM tasks WHERE account_id = ?"
            var arguments: StatementArguments = [accountID]
            if let after {
                guard
                    let cursor = try Row.fetchOne(
                        db, sql: "SELECT created_at, id FROM tasks WHERE id = ? AND account_id = ?", arguments: [after, accountID])
                else { throw StoreError.notFound("after: no task \(after) for this account") }
                sql += ascending ? " AND (created_at, id) > (?, ?)" : " AND (created_at, id) < (?, ?)"
                arguments += [cursor["created_at"] as Int64, cursor["id"] as String]
            }
            sql += ascending ? " ORDER BY created_at, id LIMIT ? OFFSET ?" : " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
            arguments += [limit + 1, max(0, offset)]
            let tasks = try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.task)
            return (Array(tasks.prefix(limit)), tasks.count > limit)
        }
    }

    public func task(id: String) async throws -> TaskRecord? {
        let stamp = taskStamp(id)
        if let cached = taskCache.value(id, stamp: stamp) { return cached }
        let task = try readNow { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT \(Self.taskColumns) FROM tasks WHERE id = ?"), arguments: [id])
                .first.map(Self.task)
        }
        if let task { taskCache.store(task, for: id, stamp: stamp) }
        return task
    }

    /// The counters a copy of task `id` is current under.
    func taskStamp(_ id: String) -> CounterStamp {
        .init(first: counters.value(ChangeCounters.allTasksSlot), second: counters.value(ChangeCounters.slot(forTask: id)))
    }

    /// The columns ``task(_:)`` reads, in the order it reads them by index (name lookups cost on the hot path).
    static let taskColumns = """
        id, account_id, dialect, model, request, params, state, progress, attempts, engine, created_at, updated_at,
        started_at, completed_at, result, failure_code, failure_message, credits, refunded_credits, results_expired_at,
        external_id
        """

    static func task(_ row: Row) throws -> TaskRecord {
        let decoder = Self.decoder
        let request = try decoder.decode(GenerationRequest.self, from: Data((row[4] as String).utf8))
        let result: TaskResult? = try (row[14] as String?).map { try decoder.decode(TaskResult.self, from: Data($0.utf8)) }
        let failure: TaskFailure? = (row[15] as Int?).map { TaskFailure(code: $0, message: row[16] ?? "") }
        return TaskRecord(
            id: row[0], accountID: row[1], dialect: row[2], model: row[3], request: request, params: row[5],
            state: TaskState(rawValue: row[6]) ?? .failed, progress: row[7], attempts: row[8], engine: row[9], createdAt: row[10],
            updatedAt: row[11], startedAt: row[12], completedAt: row[13], result: result, failure: failure, credits: row[17],
            refundedCredits: row[18], resultsExpiredAt: row[19], externalID: row[20])
    }
}
