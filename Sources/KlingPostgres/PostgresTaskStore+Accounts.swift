import Foundation
import KlingAPI
import KlingCore
import Logging
import PostgresNIO

/// Accounts, API keys and Kling access keys (``AccountStore``).
extension PostgresTaskStore {
    public func createAccount(name: String, credits: Int64, now: Int64) async throws -> Account {
        let account = Account(id: "acct_" + APIKeys.randomID(), name: name, createdAt: now)
        do {
            try await transaction { db in
                try await db.run("INSERT INTO accounts (id, name, created_at, balance) VALUES (\(account.id), \(name), \(now), 0)")
                if credits != 0 {
                    _ = try await Self.moveCredits(
                        db, accountID: account.id, kind: .topUp, amount: credits, taskID: nil, note: "starting grant", now: now)
                }
            }
        } catch let error as PSQLError where error.isUniqueViolation {
            throw StoreError.conflict("an account named \(name) already exists")
        }
        return account
    }

    public func account(named name: String) async throws -> Account? {
        try await read("SELECT * FROM accounts WHERE name = \(name)").first.map(Self.account)
    }

    public func accounts() async throws -> [Account] {
        try await read("SELECT * FROM accounts ORDER BY created_at, name").map(Self.account)
    }

    public func addAPIKey(_ key: APIKeyRecord) async throws {
        do {
            try await read(
                """
                INSERT INTO api_keys (id, account_id, hash, prefix, created_at, revoked_at)
                VALUES (\(key.id), \(key.accountID), \(key.hash), \(key.prefix), \(key.createdAt), \(key.revokedAt))
                """)
        } catch let error as PSQLError where error.isConstraintViolation {
            throw StoreError.conflict("the key could not be stored: \(error.serverInfo?[.message] ?? "constraint failed")")
        }
    }

    public func revokeAPIKey(id: String, accountID: String, now: Int64) async throws -> Bool {
        // This process sees its own change at once; others when the trigger's notification reaches them.
        defer { cache.invalidate() }
        return try await !read(
            """
            UPDATE api_keys SET revoked_at = \(now) WHERE id = \(id) AND account_id = \(accountID) AND revoked_at IS NULL RETURNING id
            """
        ).isEmpty
    }

    public func apiKeys(accountID: String) async throws -> [APIKeyRecord] {
        try await read("SELECT * FROM api_keys WHERE account_id = \(accountID) ORDER BY created_at").map {
            APIKeyRecord(
                id: try $0.get("id"), accountID: try $0.get("account_id"), hash: try $0.get("hash"), prefix: try $0.get("prefix"),
                createdAt: try $0.get("created_at"), revokedAt: try $0.get("revoked_at"))
        }
    }

    public func account(forKeyHash hash: String) async throws -> Account? {
        if let cached = cache.account(forKeyHash: hash) { return cached }
        let generation = cache.generation
        let account = try await read(
            """
            SELECT a.*, k.hash AS key_hash FROM api_keys k JOIN accounts a ON a.id = k.account_id
            WHERE k.hash = \(hash) AND k.revoked_at IS NULL
            """
        ).first.flatMap { row in
            // The index lookup found the row; compare once more in constant time before trusting it.
            APIKeys.constantTimeEquals(try row.get("key_hash"), hash) ? try Self.account(row) : nil
        }
        if let account, let generation { cache.store(account, forKeyHash: hash, generation: generation) }
        return account
    }

    public func addJWTCredential(accessKey: String, accountID: String, secretKey: String, now: Int64) async throws {
        try await read(
            """
            INSERT INTO jwt_credentials (access_key, account_id, secret_key, created_at) VALUES (\(accessKey), \(accountID), \(secretKey), \(now))
            """)
    }

    public func jwtCredential(accessKey: String) async throws -> (account: Account, secretKey: String)? {
        try await read(
            "SELECT a.*, c.secret_key FROM jwt_credentials c JOIN accounts a ON a.id = c.account_id WHERE c.access_key = \(accessKey)"
        ).first.map { (try Self.account($0), try $0.get("secret_key")) }
    }

    public func setLimits(accountID: String, limits: LimitOverrides) async throws {
        let encoded = try Self.encode(limits)
        defer { cache.invalidate() }
        guard try await !read("UPDATE accounts SET limits = \(encoded) WHERE id = \(accountID) RETURNING id").isEmpty else {
            throw StoreError.notFound("no account \(accountID)")
        }
    }

    static func account(_ row: PostgresRandomAccessRow) throws -> Account {
        let limits = try row.get("limits", as: String?.self).flatMap { try? decoder.decode(LimitOverrides.self, from: Data($0.utf8)) }
        return Account(id: try row.get("id"), name: try row.get("name"), createdAt: try row.get("created_at"), limits: limits ?? LimitOverrides())
    }
}
