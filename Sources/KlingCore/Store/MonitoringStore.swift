/// Figures for monitoring (`/metrics`, `/readyz`), read across every process on the store.
public protocol MonitoringStore: Sendable {
    /// Counts of tasks by state.
    func taskCounts() async throws -> [TaskState: Int]
    /// Figures for monitoring, read across every process on the store.
    func operationalStats(now: Int64) async throws -> OperationalStats
}

/// Store-wide figures for `/metrics`.
public struct OperationalStats: Sendable, Hashable {
    public var tasksByState: [TaskState: Int] = [:]
    /// Age of the oldest queued task in seconds (0 when none waits).
    public var oldestQueuedSeconds: Double = 0
    /// Ledger totals by kind (charges and corrections negative).
    public var ledgerTotals: [LedgerEntry.Kind: Int64] = [:]
    /// Callbacks by state.
    public var callbacksByState: [CallbackRecord.State: Int] = [:]
    /// Delivery attempts by outcome (`ok` for a 2xx, `failed` otherwise).
    public var callbackAttempts: [String: Int] = [:]

    public init() {}
}
