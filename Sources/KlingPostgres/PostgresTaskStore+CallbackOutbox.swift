import Foundation
import KlingAPI
import KlingCore
import Logging
import PostgresNIO

/// The callback outbox and webhook secrets (``CallbackOutbox``).
extension PostgresTaskStore {
    /// Records the callback of a task that just reached its terminal state, in the caller's transaction (the outbox).
    static func queueCallback(_ db: Connection, taskID: String, now: Int64) async throws {
        try await db.run(
            """
            INSERT INTO callbacks (id, task_id, account_id, url, dialect, state, attempts, next_attempt_at, created_at, updated_at)
            SELECT \("msg_" + APIKeys.randomID()), id, account_id, callback_url, dialect, 'pending', 0, \(now), \(now), \(now)
            FROM tasks WHERE id = \(taskID) AND callback_url IS NOT NULL
            """)
    }

    public func webhookSecrets(accountID: String, now: Int64) async throws -> [String] {
        try await transaction { db in
            // The account's row serialises the first secret's creation across processes.
            try await db.run("SELECT 1 FROM accounts WHERE id = \(accountID) FOR UPDATE")
            let secrets = try await Self.activeSecrets(db, accountID: accountID, now: now)
            if !secrets.isEmpty { return secrets }
            let secret = WebhookSigner.newSecret()
            try await db.run("INSERT INTO webhook_secrets (account_id, secret, created_at) VALUES (\(accountID), \(secret), \(now))")
            return [secret]
        }
    }

    public func rotateWebhookSecret(accountID: String, previousUntil: Int64, now: Int64) async throws -> [String] {
        try await transaction { db in
            try await db.run("SELECT 1 FROM accounts WHERE id = \(accountID) FOR UPDATE")
            try await db.run(
                """
                UPDATE webhook_secrets SET retires_at = \(previousUntil)
                WHERE account_id = \(accountID) AND (retires_at IS NULL OR retires_at > \(previousUntil))
                """)
            try await db.run(
                "INSERT INTO webhook_secrets (account_id, secret, created_at) VALUES (\(accountID), \(WebhookSigner.newSecret()), \(now + 1))")
            return try await Self.activeSecrets(db, accountID: accountID, now: now)
        }
    }

    static func activeSecrets(_ db: Connection, accountID: String, now: Int64) async throws -> [String] {
        try await db.rows(
            """
            SELECT secret FROM webhook_secrets WHERE account_id = \(accountID) AND (retires_at IS NULL OR retires_at > \(now))
            ORDER BY created_at DESC, seq DESC
            """
        ).map { try $0.get("secret") }
    }

    public func claimDueCallbacks(now: Int64, leaseUntil: Int64, limit: Int) async throws -> [CallbackRecord] {
        try await transaction { db in
            let ids: [String] = try await db.rows(
                """
                SELECT id FROM callbacks WHERE state = 'pending' AND next_attempt_at <= \(now)
                ORDER BY next_attempt_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """
            ).map { try $0.get("id") }
            var claimed: [CallbackRecord] = []
            for id in ids {
                if let row = try await db.rows(
                    """
                    UPDATE callbacks SET attempts = attempts + 1, next_attempt_at = \(leaseUntil), updated_at = \(now) WHERE id = \(id)
                    RETURNING *
                    """
                ).first {
                    claimed.append(try Self.callback(row))
                }
            }
            return claimed
        }
    }

    public func recordCallbackAttempt(_ attempt: CallbackAttempt, payload: String, next: CallbackNext, now: Int64) async throws {
        let (state, nextAt) = next.stored(now: now)
        try await transaction { db in
            try await db.run(
                """
                INSERT INTO callback_attempts (callback_id, attempt, status, error, duration_ms, at)
                VALUES (\(attempt.callbackID), \(attempt.attempt), \(attempt.status), \(attempt.error), \(attempt.durationMillis), \(attempt.at))
                """)
            try await db.run(
                """
                UPDATE callbacks SET state = \(state.rawValue), next_attempt_at = \(nextAt), payload = COALESCE(payload, \(payload)),
                    last_status = \(attempt.status), last_error = \(attempt.error), updated_at = \(now)
                WHERE id = \(attempt.callbackID) AND attempts = \(attempt.attempt)
                """)
        }
    }

    public func callbacks(taskID: String, accountID: String) async throws -> [(CallbackRecord, [CallbackAttempt])] {
        var answer: [(CallbackRecord, [CallbackAttempt])] = []
        for row in try await read("SELECT * FROM callbacks WHERE task_id = \(taskID) AND account_id = \(accountID) ORDER BY created_at, seq") {
            let record = try Self.callback(row)
            let attempts = try await read("SELECT * FROM callback_attempts WHERE callback_id = \(record.id) ORDER BY attempt").map {
                CallbackAttempt(
                    callbackID: try $0.get("callback_id"), attempt: try $0.get("attempt"), status: try $0.get("status"),
                    error: try $0.get("error"), durationMillis: try $0.get("duration_ms"), at: try $0.get("at"))
            }
            answer.append((record, attempts))
        }
        return answer
    }

    public func resendCallback(id: String, now: Int64) async throws -> Bool {
        try await !read(
            "UPDATE callbacks SET state = 'pending', next_attempt_at = \(now), updated_at = \(now) WHERE id = \(id) RETURNING id"
        ).isEmpty
    }

    static func callback(_ row: PostgresRandomAccessRow) throws -> CallbackRecord {
        CallbackRecord(
            id: try row.get("id"), taskID: try row.get("task_id"), accountID: try row.get("account_id"), url: try row.get("url"),
            dialect: try row.get("dialect"), payload: try row.get("payload"),
            state: CallbackRecord.State(rawValue: try row.get("state")) ?? .pending, attempts: try row.get("attempts"),
            nextAttemptAt: try row.get("next_attempt_at"), createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at"),
            lastStatus: try row.get("last_status"), lastError: try row.get("last_error"), event: try row.get("event"))
    }
}
