import Foundation

/// Account and key administration shared by the admin commands and first-start bootstrap.
public struct AccountService: Sendable {
    private let store: any AccountStore & LedgerStore & SwitchStore

    public init(store: any AccountStore & LedgerStore & SwitchStore) {
        self.store = store
    }

    /// Creates an account; throws ``StoreError`` on a duplicate name.
    public func createAccount(name: String, credits: Int64) async throws -> Account {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= 100 else { throw StoreError.conflict("account name must be 1-100 characters") }
        guard credits >= 0 else { throw StoreError.conflict("a starting grant cannot be negative") }
        return try await store.createAccount(name: trimmed, credits: credits, now: TaskWorker.nowMillis())
    }

    /// Issues a new API key for the account and returns it in clear: the only time it is ever visible.
    public func createKey(accountName: String) async throws -> (key: String, record: APIKeyRecord) {
        guard let account = try await store.account(named: accountName) else {
            throw StoreError.notFound("no account named \(accountName)")
        }
        let key = APIKeys.generate()
        let record = APIKeyRecord(
            id: "key_" + APIKeys.randomID(), accountID: account.id, hash: APIKeys.hash(key), prefix: String(key.prefix(7)),
            createdAt: TaskWorker.nowMillis())
        try await store.addAPIKey(record)
        return (key, record)
    }

    public func accounts() async throws -> [Account] { try await store.accounts() }

    /// Issues a Kling-style access key / secret key pair (for JWT auth in the Kling official dialect); the secret is
    /// returned once here.
    public func createJWTCredential(accountName: String) async throws -> (accessKey: String, secretKey: String) {
        let account = try await account(named: accountName)
        let accessKey = "ak_" + APIKeys.randomID()
        let secretKey = "sk_" + APIKeys.generate().dropFirst(APIKeys.prefix.count)
        try await store.addJWTCredential(accessKey: accessKey, accountID: account.id, secretKey: secretKey, now: TaskWorker.nowMillis())
        return (accessKey, secretKey)
    }

    /// The named account or a ``StoreError/notFound``.
    public func account(named name: String) async throws -> Account {
        guard let account = try await store.account(named: name) else { throw StoreError.notFound("no account named \(name)") }
        return account
    }

    /// An account with its balance, keys and effective limits, for `accounts show` and the admin API.
    public func summary(accountName: String, defaultLimits: AccountLimits) async throws -> AccountSummary {
        let account = try await account(named: accountName)
        return AccountSummary(
            account: account, balance: try await store.balance(accountID: account.id), keys: try await store.apiKeys(accountID: account.id),
            limits: defaultLimits.applying(account.limits))
    }

    /// Adds (or takes away) credits with a ledger entry; returns the new balance.
    public func addCredits(accountName: String, amount: Int64, note: String) async throws -> Int64 {
        guard amount != 0 else { throw StoreError.conflict("the amount must not be 0") }
        let account = try await account(named: accountName)
        return try await store.addCredits(accountID: account.id, amount: amount, note: note, now: TaskWorker.nowMillis())
    }

    /// Sets some of an account's limit overrides, keeping the others.
    public func setLimits(accountName: String, _ overrides: LimitOverrides) async throws -> Account {
        for value in [overrides.createsPerWindow, overrides.createWindowSeconds, overrides.queriesPerSecond, overrides.maxActiveTasks] {
            if let value, value < 0 { throw StoreError.conflict("limits cannot be negative") }
        }
        var account = try await account(named: accountName)
        account.limits = account.limits.merging(overrides)
        try await store.setLimits(accountID: account.id, limits: account.limits)
        return account
    }

    /// The account's ledger, oldest first.
    public func ledger(accountName: String) async throws -> [LedgerEntry] {
        try await store.ledger(accountID: try await account(named: accountName).id)
    }

    /// Accounts whose balance differs from the sum of their ledger; empty when the books balance.
    public func ledgerMismatches() async throws -> [LedgerMismatch] { try await store.ledgerMismatches() }

    public func switches() async throws -> ServiceSwitches { try await store.switches() }
    public func setMaintenance(_ on: Bool) async throws { try await store.setMaintenance(on) }
    public func setFeature(_ feature: ServiceSwitches.Feature, enabled: Bool) async throws {
        try await store.setFeature(feature, enabled: enabled)
    }

    public func keys(accountName: String) async throws -> [APIKeyRecord] {
        guard let account = try await store.account(named: accountName) else {
            throw StoreError.notFound("no account named \(accountName)")
        }
        return try await store.apiKeys(accountID: account.id)
    }

    /// Revokes an account's key by id; it stops authenticating at once, in every process on the store.
    public func revokeKey(accountName: String, keyID: String) async throws {
        let account = try await account(named: accountName)
        guard try await store.revokeAPIKey(id: keyID, accountID: account.id, now: TaskWorker.nowMillis()) else {
            throw StoreError.notFound("account \(accountName) has no active key \(keyID)")
        }
    }

    /// On an empty store, creates the `dev` account with one key and returns the key; otherwise `nil`.
    public func bootstrapIfEmpty(credits: Int64) async throws -> String? {
        guard try await store.accounts().isEmpty else { return nil }
        do {
            _ = try await createAccount(name: "dev", credits: credits)
        } catch let error as StoreError where error.isConflict {
            return nil  // another process bootstrapped first
        }
        return try await createKey(accountName: "dev").key
    }
}

/// An account as the admin tools show it.
public struct AccountSummary: Sendable, Hashable, Codable {
    public var account: Account
    public var balance: Int64
    public var keys: [APIKeyRecord]
    /// The limits in force (server defaults with the account's overrides applied).
    public var limits: AccountLimits
}
