import Foundation
import KlingAPI
import KlingCore
import Logging
import PostgresNIO

/// The claim (`FOR UPDATE SKIP LOCKED`), fenced writes of claimed tasks and sweeps (``QueueStore``).
extension PostgresTaskStore {
    public func claimNext(worker: String, engine: String, now: Int64, leaseUntil: Int64, maxAttempts: Int) async throws -> TaskRecord? {
        // One statement (its own transaction): an idle worker's claim is one round trip. Rows another claimer holds are
        // skipped, not waited for; an expired claim is taken over only while it has attempts left.
        let claimed = try await read(
            """
            WITH candidate AS (
                SELECT id FROM tasks
                WHERE state = 'queued' OR (state = 'running' AND lease_until < \(now) AND attempts < \(maxAttempts))
                ORDER BY created_at, id LIMIT 1
                FOR UPDATE SKIP LOCKED
            ), claimed AS (
                UPDATE tasks SET state = 'running', attempts = attempts + 1, lease_owner = \(worker), lease_until = \(leaseUntil),
                    engine = \(engine), started_at = COALESCE(started_at, \(now)), updated_at = \(now), progress = 0
                WHERE id = (SELECT id FROM candidate)
                RETURNING \(unescaped: Self.taskColumns), callback_url
            ), processing AS (
                -- Kling's dialect calls back on every status change: the first claim is submitted -> processing.
                INSERT INTO callbacks (id, task_id, account_id, url, dialect, state, attempts, next_attempt_at, created_at, updated_at, event)
                SELECT \("msg_" + APIKeys.randomID()), id, account_id, callback_url, dialect, 'pending', 0, \(now), \(now), \(now), 'processing'
                FROM claimed WHERE callback_url IS NOT NULL AND dialect = 'kling' AND attempts = 1
            )
            SELECT \(unescaped: Self.taskColumns) FROM claimed
            """
        ).first.map(Self.task)
        if let claimed { return claimed }
        // Nothing to claim: fail the tasks whose last allowed claim was abandoned (the sweeper does so too).
        _ = try await failAbandoned(now: now, maxAttempts: maxAttempts)
        return nil
    }

    public func heartbeat(taskID: String, attempt: Int, leaseUntil: Int64, now: Int64) async throws -> Bool {
        try await updateClaimed(
            """
            UPDATE tasks SET lease_until = \(leaseUntil), updated_at = \(now)
            WHERE id = \(taskID) AND attempts = \(attempt) AND state = 'running' RETURNING id
            """)
    }

    public func updateProgress(taskID: String, attempt: Int, progress: Int, now: Int64) async throws -> Bool {
        try await updateClaimed(
            """
            UPDATE tasks SET progress = GREATEST(progress, \(progress)), updated_at = \(now)
            WHERE id = \(taskID) AND attempts = \(attempt) AND state = 'running' RETURNING id
            """)
    }

    public func complete(taskID: String, attempt: Int, result: TaskResult, now: Int64) async throws -> Bool {
        let encoded = try Self.encode(result)
        return try await updateClaimed(
            """
            UPDATE tasks SET state = 'succeeded', progress = 100, result = \(encoded), completed_at = \(now), updated_at = \(now),
                lease_owner = NULL, lease_until = NULL
            WHERE id = \(taskID) AND attempts = \(attempt) AND state = 'running' RETURNING id
            """
        ) { db in try await Self.queueCallback(db, taskID: taskID, now: now) }
    }

    public func fail(taskID: String, attempt: Int, failure: TaskFailure, now: Int64) async throws -> Bool {
        try await updateClaimed(
            """
            UPDATE tasks SET state = 'failed', failure_code = \(failure.code), failure_message = \(failure.message), completed_at = \(now),
                updated_at = \(now), lease_owner = NULL, lease_until = NULL
            WHERE id = \(taskID) AND attempts = \(attempt) AND state = 'running' RETURNING id
            """
        ) { db in
            try await Self.refund(db, taskID: taskID, now: now)
            try await Self.queueCallback(db, taskID: taskID, now: now)
        }
    }

    public func release(taskID: String, attempt: Int, now: Int64) async throws -> Bool {
        try await updateClaimed(
            """
            UPDATE tasks SET state = 'queued', progress = 0, updated_at = \(now), lease_owner = NULL, lease_until = NULL
            WHERE id = \(taskID) AND attempts = \(attempt) AND state = 'running' RETURNING id
            """)
    }

    public func recordEngine(taskID: String, attempt: Int, engine: String, upstreamTaskID: String?, now: Int64) async throws -> Bool {
        try await updateClaimed(
            """
            UPDATE tasks SET engine = \(engine), upstream_engine = \(upstreamTaskID == nil ? nil : engine),
                upstream_task_id = \(upstreamTaskID), updated_at = \(now)
            WHERE id = \(taskID) AND attempts = \(attempt) AND state = 'running' RETURNING id
            """)
    }

    public func upstreamTask(taskID: String) async throws -> UpstreamTaskReference? {
        try await read("SELECT upstream_engine, upstream_task_id FROM tasks WHERE id = \(taskID) AND upstream_task_id IS NOT NULL").first.map {
            UpstreamTaskReference(engine: try $0.get("upstream_engine"), taskID: try $0.get("upstream_task_id"))
        }
    }

    public func failAbandoned(now: Int64, maxAttempts: Int) async throws -> Int {
        // Idle workers ask on every poll: a plain read first, the transaction only when there is something to fail.
        guard
            try await !read(
                "SELECT 1 FROM tasks WHERE state = 'running' AND lease_until < \(now) AND attempts >= \(maxAttempts) LIMIT 1"
            ).isEmpty
        else { return 0 }
        let ids = try await transaction { db in try await Self.failAbandoned(db, now: now, maxAttempts: maxAttempts) }
        for id in ids {
            logger.warning("task failed: abandoned after its last allowed attempt (lease expired)", metadata: ["task_id": "\(id)"])
        }
        return ids.count
    }

    public func failStuck(createdBefore: Int64, message: String, now: Int64) async throws -> Int {
        try await transaction { db in
            let ids: [String] = try await db.rows(
                "SELECT id FROM tasks WHERE state IN ('queued', 'running') AND created_at < \(createdBefore) ORDER BY id FOR UPDATE"
            ).map { try $0.get("id") }
            for id in ids {
                try await db.run(
                    """
                    UPDATE tasks SET state = 'failed', failure_code = 500, failure_message = \(message), completed_at = \(now),
                        updated_at = \(now), lease_owner = NULL, lease_until = NULL
                    WHERE id = \(id)
                    """)
                try await Self.refund(db, taskID: id, now: now)
                try await Self.queueCallback(db, taskID: id, now: now)
            }
            return ids.count
        }
    }

    @discardableResult
    /// Fails (and refunds) the running tasks whose last allowed claim expired; returns their ids.
    static func failAbandoned(_ db: Connection, now: Int64, maxAttempts: Int) async throws -> [String] {
        let ids: [String] = try await db.rows(
            """
            SELECT id FROM tasks WHERE state = 'running' AND lease_until < \(now) AND attempts >= \(maxAttempts)
            ORDER BY id FOR UPDATE SKIP LOCKED
            """
        ).map { try $0.get("id") }
        for id in ids {
            try await db.run(
                """
                UPDATE tasks SET state = 'failed', failure_code = 500,
                    failure_message = 'the task was abandoned: its worker stopped responding ' || attempts || ' times (lease expired); giving up after ' || attempts || ' attempts',
                    completed_at = \(now), updated_at = \(now), lease_owner = NULL, lease_until = NULL
                WHERE id = \(id)
                """)
            try await refund(db, taskID: id, now: now)
            try await queueCallback(db, taskID: id, now: now)
        }
        return ids
    }
}

extension PostgresTaskStore: QueueAnnouncing {
    /// Holds one connection of the pool on `LISTEN` (the channel the `tasks_notify_queued` trigger notifies).
    public func listenForQueuedTasks(_ queued: @escaping @Sendable () -> Void) async throws {
        try await client.withConnection { connection in
            try await connection.listen(on: PostgresMigrations.queueChannel) { notifications in
                queued()  // whatever was queued before the listen began
                for try await _ in notifications { queued() }
            }
        }
    }
}
