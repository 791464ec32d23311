import Foundation
import KlingAPI
import KlingCore
import Logging
import PostgresNIO

/// Figures for `/metrics` and `/readyz` (``MonitoringStore``).
extension PostgresTaskStore {
    public func taskCounts() async throws -> [TaskState: Int] {
        var counts: [TaskState: Int] = [:]
        for row in try await read("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state") {
            if let state = TaskState(rawValue: try row.get("state")) { counts[state] = try row.get("n") }
        }
        return counts
    }

    public func operationalStats(now: Int64) async throws -> OperationalStats {
        var stats = OperationalStats()
        stats.tasksByState = try await taskCounts()
        if let oldest: Int64 = try await read("SELECT MIN(created_at) AS oldest FROM tasks WHERE state = 'queued'").first?.get("oldest") {
            stats.oldestQueuedSeconds = Double(max(0, now - oldest)) / 1000
        }
        for row in try await read("SELECT kind, SUM(amount)::BIGINT AS total FROM ledger GROUP BY kind") {
            if let kind = LedgerEntry.Kind(rawValue: try row.get("kind")) { stats.ledgerTotals[kind] = try row.get("total") }
        }
        for row in try await read("SELECT state, COUNT(*) AS n FROM callbacks GROUP BY state") {
            if let state = CallbackRecord.State(rawValue: try row.get("state")) { stats.callbacksByState[state] = try row.get("n") }
        }
        for row in try await read(
            "SELECT COALESCE(status >= 200 AND status < 300, FALSE) AS ok, COUNT(*) AS n FROM callback_attempts GROUP BY 1")
        {
            stats.callbackAttempts[try row.get("ok", as: Bool.self) ? "ok" : "failed", default: 0] += try row.get("n", as: Int.self)
        }
        return stats
    }
}
