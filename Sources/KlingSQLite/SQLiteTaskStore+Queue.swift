import Foundation
import GRDB
import KlingAPI
import KlingCore

/// Claims, fenced writes of claimed tasks and sweeps (``QueueStore``).
extension SQLiteTaskStore {
    public func claimNext(worker: String, engine: String, now: Int64, leaseUntil: Int64, maxAttempts: Int) async throws -> TaskRecord? {
        let (abandoned, claimed) = try await pool.write { db -> (Int, TaskRecord?) in
            let abandoned = try Self.failAbandoned(db, now: now, maxAttempts: maxAttempts)
            guard
                let id = try String.fetchOne(
                    db,
                    sql: """
                        SELECT id FROM tasks
                        WHERE state = 'queued' OR (state = 'running' AND lease_until < ?)
                        ORDER BY created_at, id LIMIT 1
                        """,
                    arguments: [now])
            else { return (abandoned, nil) }
            try db.execute(
                sql: """
                    UPDATE tasks SET state = 'running', attempts = attempts + 1, lease_owner = ?, lease_until = ?, engine = ?,
                        started_at = COALESCE(started_at, ?), updated_at = ?, progress = 0
                    WHERE id = ?
                    """,
                arguments: [worker, leaseUntil, engine, now, now, id])
            // Kling's dialect calls back on every status change: the first claim is submitted -> processing.
            try db.execute(
                sql: """
                    INSERT INTO callbacks (id, task_id, account_id, url, dialect, state, attempts, next_attempt_at, created_at, updated_at, event)
                    SELECT ?, id, account_id, callback_url, dialect, 'pending', 0, ?, ?, ?, 'processing' FROM tasks
                    WHERE id = ? AND callback_url IS NOT NULL AND dialect = 'kling' AND attempts = 1
                    """,
                arguments: ["msg_" + APIKeys.randomID(), now, now, now, id])
            return (abandoned, try Row.fetchOne(db, sql: "SELECT \(Self.taskColumns) FROM tasks WHERE id = ?", arguments: [id]).map(Self.task))
        }
        if abandoned > 0 { counters.bump(ChangeCounters.allTasksSlot) }
        if let claimed { counters.bump(ChangeCounters.slot(forTask: claimed.id)) }
        return claimed
    }

    public func heartbeat(taskID: String, attempt: Int, leaseUntil: Int64, now: Int64) async throws -> Bool {
        try await updateClaimed(taskID: taskID, attempt: attempt, set: "lease_until = ?, updated_at = ?", [leaseUntil, now])
    }

    public func updateProgress(taskID: String, attempt: Int, progress: Int, now: Int64) async throws -> Bool {
        try await updateClaimed(taskID: taskID, attempt: attempt, set: "progress = MAX(progress, ?), updated_at = ?", [progress, now])
    }

    public func complete(taskID: String, attempt: Int, result: TaskResult, now: Int64) async throws -> Bool {
        let encoded = try Self.encode(result)
        return try await updateClaimed(
            taskID: taskID, attempt: attempt,
            set: "state = 'succeeded', progress = 100, result = ?, completed_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL",
            [encoded, now, now]
        ) { db in try Self.queueCallback(db, taskID: taskID, now: now) }
    }

    public func fail(taskID: String, attempt: Int, failure: TaskFailure, now: Int64) async throws -> Bool {
        try await updateClaimed(
            taskID: taskID, attempt: attempt,
            set: "state = 'failed', failure_code = ?, failure_message = ?, completed_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL",
            [failure.code, failure.message, now, now]
        ) { db in
            try Self.refund(db, taskID: taskID, now: now)
            try Self.queueCallback(db, taskID: taskID, now: now)
        }
    }

    public func release(taskID: String, attempt: Int, now: Int64) async throws -> Bool {
        try await updateClaimed(
            taskID: taskID, attempt: attempt, set: "state = 'queued', progress = 0, updated_at = ?, lease_owner = NULL, lease_until = NULL",
            [now])
    }

    public func recordEngine(taskID: String, attempt: Int, engine: String, upstreamTaskID: String?, now: Int64) async throws -> Bool {
        try await updateClaimed(
            taskID: taskID, attempt: attempt, set: "engine = ?, upstream_engine = ?, upstream_task_id = ?, updated_at = ?",
            [engine, upstreamTaskID == nil ? nil : engine, upstreamTaskID, now])
    }

    public func upstreamTask(taskID: String) async throws -> UpstreamTaskReference? {
        try await pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT upstream_engine, upstream_task_id FROM tasks WHERE id = ? AND upstream_task_id IS NOT NULL", arguments: [taskID]
            ).map { UpstreamTaskReference(engine: $0[0], taskID: $0[1]) }
        }
    }

    public func failAbandoned(now: Int64, maxAttempts: Int) async throws -> Int {
        let count = try await pool.write { db in try Self.failAbandoned(db, now: now, maxAttempts: maxAttempts) }
        if count > 0 { counters.bump(ChangeCounters.allTasksSlot) }
        return count
    }

    public func failStuck(createdBefore: Int64, message: String, now: Int64) async throws -> Int {
        let count = try await pool.write { db in
            let ids = try String.fetchAll(
                db, sql: "SELECT id FROM tasks WHERE state IN ('queued', 'running') AND created_at < ?", arguments: [createdBefore])
            for id in ids {
                try db.execute(
                    sql: """
                        UPDATE tasks SET state = 'failed', failure_code = 500, failure_message = ?, completed_at = ?, updated_at = ?,
                            lease_owner = NULL, lease_until = NULL
                        WHERE id = ?
                        """,
                    arguments: [message, now, now, id])
                try Self.refund(db, taskID: id, now: now)
                try Self.queueCallback(db, taskID: id, now: now)
            }
            return ids.count
        }
        if count > 0 { counters.bump(ChangeCounters.allTasksSlot) }
        return count
    }

    @discardableResult
    static func failAbandoned(_ db: Database, now: Int64, maxAttempts: Int) throws -> Int {
        let ids = try String.fetchAll(
            db, sql: "SELECT id FROM tasks WHERE state = 'running' AND lease_until < ? AND attempts >= ?", arguments: [now, maxAttempts])
        for id in ids {
            try db.execute(
                sql: """
                    UPDATE tasks SET state = 'failed', failure_code = 500,
                        failure_message = 'the task was abandoned: its worker stopped responding ' || attempts || ' times (lease expired); giving up after ' || attempts || ' attempts',
                        completed_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL
                    WHERE id = ?
                    """,
                arguments: [now, now, id])
            try refund(db, taskID: id, now: now)
            try queueCallback(db, taskID: id, now: now)
        }
        return ids.count
    }
}
