import Foundation
import GRDB
import KlingAPI
import KlingCore

/// Figures for `/metrics` and `/readyz` (``MonitoringStore``).
extension SQLiteTaskStore {
    public func taskCounts() async throws -> [TaskState: Int] {
        try await pool.read { db in
            var counts: [TaskState: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM tasks GROUP BY state") {
                if let state = TaskState(rawValue: row["state"]) { counts[state] = row["n"] }
            }
            return counts
        }
    }

    public func operationalStats(now: Int64) async throws -> OperationalStats {
        try await pool.read { db in
            var stats = OperationalStats()
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM tasks GROUP BY state") {
                if let state = TaskState(rawValue: row["state"]) { stats.tasksByState[state] = row["n"] }
            }
            if let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(created_at) FROM tasks WHERE state = 'queued'") {
                stats.oldestQueuedSeconds = Double(max(0, now - oldest)) / 1000
            }
            for row in try Row.fetchAll(db, sql: "SELECT kind, SUM(amount) AS total FROM ledger GROUP BY kind") {
                if let kind = LedgerEntry.Kind(rawValue: row["kind"]) { stats.ledgerTotals[kind] = row["total"] }
            }
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM callbacks GROUP BY state") {
                if let state = CallbackRecord.State(rawValue: row["state"]) { stats.callbacksByState[state] = row["n"] }
            }
            for row in try Row.fetchAll(
                db, sql: "SELECT status >= 200 AND status < 300 AS ok, COUNT(*) AS n FROM callback_attempts GROUP BY ok")
            {
                stats.callbackAttempts[(row["ok"] as Bool?) == true ? "ok" : "failed"] = row["n"]
            }
            return stats
        }
    }
}
