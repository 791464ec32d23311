/// Accounts, their API keys, their Kling access-key pairs and their limit overrides.
public protocol AccountStore: Sendable {
    /// Creates an account with a starting grant of `credits` (a ledger top-up); throws ``StoreError/conflict`` when
    /// the name is taken.
    func createAccount(name: String, credits: Int64, now: Int64) async throws -> Account
    func account(named name: String) async throws -> Account?
    func accounts() async throws -> [Account]
    /// Stores a key's hash for an account.
    func addAPIKey(_ key: APIKeyRecord) async throws
    func apiKeys(accountID: String) async throws -> [APIKeyRecord]
    /// The account owning an unrevoked key with this hash.
    func account(forKeyHash hash: String) async throws -> Account?
    /// Revokes a key of an account; `false` when the account has no such active key. Takes effect for every
    /// process on the store at once.
    func revokeAPIKey(id: String, accountID: String, now: Int64) async throws -> Bool
    /// Stores a Kling-style access key / secret key pair for an account (JWTs are signed with the secret).
    func addJWTCredential(accessKey: String, accountID: String, secretKey: String, now: Int64) async throws
    /// The account and secret key of an access key.
    func jwtCredential(accessKey: String) async throws -> (account: Account, secretKey: String)?
    /// Replaces an account's limit overrides.
    func setLimits(accountID: String, limits: LimitOverrides) async throws
}
