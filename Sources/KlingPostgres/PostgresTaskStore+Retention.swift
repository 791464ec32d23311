import Foundation
import KlingAPI
import KlingCore
import Logging
import PostgresNIO

/// Result retention (``RetentionStore``).
extension PostgresTaskStore {
    public func tasksWithResults(completedBefore before: Int64, limit: Int) async throws -> [String] {
        try await read(
            """
            SELECT id FROM tasks WHERE state = 'succeeded' AND completed_at < \(before) AND results_expired_at IS NULL
            ORDER BY completed_at LIMIT \(limit)
            """
        ).map { try $0.get("id") }
    }

    public func markResultsExpired(taskIDs: [String], now: Int64) async throws {
        guard !taskIDs.isEmpty else { return }
        try await read("UPDATE tasks SET results_expired_at = \(now), updated_at = \(now) WHERE id = ANY(\(taskIDs))")
    }
}
