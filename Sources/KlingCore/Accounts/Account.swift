/// A customer account: owns API keys and tasks.
public struct Account: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    /// Unix milliseconds.
    public var createdAt: Int64
    /// This account's replacements for the server-wide request limits.
    public var limits: LimitOverrides

    public init(id: String, name: String, createdAt: Int64, limits: LimitOverrides = .init()) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.limits = limits
    }
}

/// A stored API key: only its SHA-256 hash and a short display prefix are kept.
public struct APIKeyRecord: Sendable, Hashable, Codable {
    public var id: String
    public var accountID: String
    /// Hex SHA-256 of the full key.
    public var hash: String
    /// The first characters of the key, for listings.
    public var prefix: String
    public var createdAt: Int64
    public var revokedAt: Int64?

    public init(id: String, accountID: String, hash: String, prefix: String, createdAt: Int64, revokedAt: Int64? = nil) {
        self.id = id
        self.accountID = accountID
        self.hash = hash
        self.prefix = prefix
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}
