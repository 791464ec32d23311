import Foundation
import GRDB
import KlingAPI
import KlingCore

/// The callback outbox and webhook secrets (``CallbackOutbox``).
extension SQLiteTaskStore {
    /// Records the callback of a task that just reached its terminal state, in the caller's transaction (the outbox).
    static func queueCallback(_ db: Database, taskID: String, now: Int64) throws {
        try db.execute(
            sql: """
                INSERT INTO callbacks (id, task_id, account_id, url, dialect, state, attempts, next_attempt_at, created_at, updated_at)
                SELECT ?, id, account_id, callback_url, dialect, 'pending', 0, ?, ?, ? FROM tasks WHERE id = ? AND callback_url IS NOT NULL
                """,
            arguments: ["msg_" + APIKeys.randomID(), now, now, now, taskID])
    }

    public func webhookSecrets(accountID: String, now: Int64) async throws -> [String] {
        try await pool.write { db in
            let secrets = try Self.activeSecrets(db, accountID: accountID, now: now)
            if !secrets.isEmpty { return secrets }
            let secret = WebhookSigner.newSecret()
            try db.execute(
                sql: "INSERT INTO webhook_secrets (account_id, secret, created_at) VALUES (?, ?, ?)", arguments: [accountID, secret, now])
            return [secret]
        }
    }

    public func rotateWebhookSecret(accountID: String, previousUntil: Int64, now: Int64) async throws -> [String] {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE webhook_secrets SET retires_at = ? WHERE account_id = ? AND (retires_at IS NULL OR retires_at > ?)",
                arguments: [previousUntil, accountID, previousUntil])
            try db.execute(
                sql: "INSERT INTO webhook_secrets (account_id, secret, created_at) VALUES (?, ?, ?)",
                arguments: [accountID, WebhookSigner.newSecret(), now + 1])
            return try Self.activeSecrets(db, accountID: accountID, now: now)
        }
    }

    static func activeSecrets(_ db: Database, accountID: String, now: Int64) throws -> [String] {
        try String.fetchAll(
            db,
            sql: """
                SELECT secret FROM webhook_secrets WHERE account_id = ? AND (retires_at IS NULL OR retires_at > ?)
                ORDER BY created_at DESC, rowid DESC
                """,
            arguments: [accountID, now])
    }

    public func claimDueCallbacks(now: Int64, leaseUntil: Int64, limit: Int) async throws -> [CallbackRecord] {
        try await pool.write { db in
            let ids = try String.fetchAll(
                db, sql: "SELECT id FROM callbacks WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
                arguments: [now, limit])
            var claimed: [CallbackRecord] = []
            for id in ids {
                try db.execute(
                    sql: "UPDATE callbacks SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ? WHERE id = ?",
                    arguments: [leaseUntil, now, id])
                if let row = try Row.fetchOne(db, sql: "SELECT * FROM callbacks WHERE id = ?", arguments: [id]) {
                    claimed.append(Self.callback(row))
                }
            }
            return claimed
        }
    }

    public func recordCallbackAttempt(_ attempt: CallbackAttempt, payload: String, next: CallbackNext, now: Int64) async throws {
        let (state, nextAt) = next.stored(now: now)
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO callback_attempts (callback_id, attempt, status, error, duration_ms, at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [attempt.callbackID, attempt.attempt, attempt.status, attempt.error, attempt.durationMillis, attempt.at])
            try db.execute(
                sql: """
                    UPDATE callbacks SET state = ?, next_attempt_at = ?, payload = COALESCE(payload, ?), last_status = ?, last_error = ?,
                        updated_at = ?
                    WHERE id = ? AND attempts = ?
                    """,
                arguments: [
                    state.rawValue, nextAt, payload, attempt.status, attempt.error, now, attempt.callbackID, attempt.attempt,
                ])
        }
    }

    public func callbacks(taskID: String, accountID: String) async throws -> [(CallbackRecord, [CallbackAttempt])] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM callbacks WHERE task_id = ? AND account_id = ? ORDER BY created_at", arguments: [taskID, accountID]
            ).map { row in
                let record = Self.callback(row)
                let attempts = try Row.fetchAll(
                    db, sql: "SELECT * FROM callback_attempts WHERE callback_id = ? ORDER BY attempt", arguments: [record.id]
                ).map {
                    CallbackAttempt(
                        callbackID: $0["callback_id"], attempt: $0["attempt"], status: $0["status"], error: $0["error"],
                        durationMillis: $0["duration_ms"], at: $0["at"])
                }
                return (record, attempts)
            }
        }
    }

    public func resendCallback(id: String, now: Int64) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE callbacks SET state = 'pending', next_attempt_at = ?, updated_at = ? WHERE id = ?", arguments: [now, now, id])
            return db.changesCount > 0
        }
    }

    static func callback(_ row: Row) -> CallbackRecord {
        CallbackRecord(
            id: row["id"], taskID: row["task_id"], accountID: row["account_id"], url: row["url"], dialect: row["dialect"],
            payload: row["payload"], state: CallbackRecord.State(rawValue: row["state"]) ?? .pending, attempts: row["attempts"],
            nextAttemptAt: row["next_attempt_at"], createdAt: row["created_at"], updatedAt: row["updated_at"],
            lastStatus: row["last_status"], lastError: row["last_error"], event: row["event"])
    }
}
