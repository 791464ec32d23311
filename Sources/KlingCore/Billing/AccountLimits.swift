/// Request limits of an account: server-wide defaults, each overridable per account.
public struct AccountLimits: Sendable, Hashable, Codable {
    /// Creates allowed per key within ``createWindowSeconds``.
    public var createsPerWindow: Int = 20
    public var createWindowSeconds: Int = 10
    /// Task queries (and other reads) allowed per key per second.
    public var queriesPerSecond: Int = 10
    /// Queued plus running tasks the account may have at once (0: no limit, like the rate limits).
    public var maxActiveTasks: Int = 20

    public init() {}

    /// These limits with every value the overrides set replaced.
    public func applying(_ overrides: LimitOverrides) -> AccountLimits {
        var limits = self
        if let value = overrides.createsPerWindow { limits.createsPerWindow = value }
        if let value = overrides.createWindowSeconds { limits.createWindowSeconds = value }
        if let value = overrides.queriesPerSecond { limits.queriesPerSecond = value }
        if let value = overrides.maxActiveTasks { limits.maxActiveTasks = value }
        return limits
    }
}

/// Per-account replacements for the server-wide ``AccountLimits``; `nil` keeps the default.
public struct LimitOverrides: Sendable, Hashable, Codable {
    public var createsPerWindow: Int?
    public var createWindowSeconds: Int?
    public var queriesPerSecond: Int?
    public var maxActiveTasks: Int?

    public init(createsPerWindow: Int? = nil, createWindowSeconds: Int? = nil, queriesPerSecond: Int? = nil, maxActiveTasks: Int? = nil) {
        self.createsPerWindow = createsPerWindow
        self.createWindowSeconds = createWindowSeconds
        self.queriesPerSecond = queriesPerSecond
        self.maxActiveTasks = maxActiveTasks
    }

    /// These overrides with every value `other` sets replaced.
    public func merging(_ other: LimitOverrides) -> LimitOverrides {
        LimitOverrides(
            createsPerWindow: other.createsPerWindow ?? createsPerWindow, createWindowSeconds: other.createWindowSeconds ?? createWindowSeconds,
            queriesPerSecond: other.queriesPerSecond ?? queriesPerSecond, maxActiveTasks: other.maxActiveTasks ?? maxActiveTasks)
    }
}
