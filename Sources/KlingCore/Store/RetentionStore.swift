/// Retention: which succeeded tasks still have result files, and the record that they were deleted.
public protocol RetentionStore: Sendable {
    /// Succeeded tasks completed before `before` whose result files are still kept (oldest first).
    func tasksWithResults(completedBefore before: Int64, limit: Int) async throws -> [String]
    /// Records that these tasks' result files were deleted.
    func markResultsExpired(taskIDs: [String], now: Int64) async throws
}
