import Foundation

/// Account and key administration shared by the admin commands and first-start bootstrap.
public struct AccountService: Sendable {
    private let store: any TaskStore

    public init(store: any TaskStore) {
        self.store = store
    }

    /// Creates an account; throws ``StoreError`` on a duplicate name.
    public func createAccount(name: String) async throws -> Account {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= 100 else { throw StoreError.conflict("account name must be 1-100 characters") }
        return try await store.createAccount(name: trimmed, now: TaskWorker.nowMillis())
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

    public func keys(accountName: String) async throws -> [APIKeyRecord] {
        guard let account = try await store.account(named: accountName) else {
            throw StoreError.notFound("no account named \(accountName)")
        }
        return try await store.apiKeys(accountID: account.id)
    }

    /// Revokes an account's key by id; it stops authenticating at once, in every process on the store.
    public func revokeKey(accountName: String, keyID: String) async throws {
        guard let account = try await store.account(named: accountName) else {
            throw StoreError.notFound("no account named \(accountName)")
        }
        guard try await store.revokeAPIKey(id: keyID, accountID: account.id, now: TaskWorker.nowMillis()) else {
            throw StoreError.notFound("account \(accountName) has no active key \(keyID)")
        }
    }

    /// On an empty store, creates the `dev` account with one key and returns the key; otherwise `nil`.
    public func bootstrapIfEmpty() async throws -> String? {
        guard try await store.accounts().isEmpty else { return nil }
        do {
            _ = try await createAccount(name: "dev")
        } catch let error as StoreError where error.isConflict {
            return nil  // another process bootstrapped first
        }
        return try await createKey(accountName: "dev").key
    }
}
