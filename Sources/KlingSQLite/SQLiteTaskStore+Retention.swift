import Foundation
import GRDB
import KlingAPI
import KlingCore

/// Result retention (``RetentionStore``).
extension SQLiteTaskStore {
    public func tasksWithResults(completedBefore before: Int64, limit: Int) async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT id FROM tasks WHERE state = 'succeeded' AND completed_at < ? AND results_expired_at IS NULL
                    ORDER BY completed_at LIMIT ?
                    """,
                arguments: [before, limit])
        }
    }

    public func markResultsExpired(taskIDs: [String], now: Int64) async throws {
        try await pool.write { db in
            for id in taskIDs {
                try db.execute(sql: "UPDATE tasks SET results_expired_at = ?, updated_at = ? WHERE id = ?", arguments: [now, now, id])
            }
        }
        for id in taskIDs { counters.bump(ChangeCounters.slot(forTask: id)) }
    }
}
