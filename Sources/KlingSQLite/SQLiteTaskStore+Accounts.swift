import Foundation
import GRDB
import KlingAPI
import KlingCore

/// Accounts, API keys and Kling access keys (``AccountStore``).
extension SQLiteTaskStore {
    public func createAccount(name: String, credits: Int64, now: Int64) async throws -> Account {
        let account = Account(id: "acct_" + APIKeys.randomID(), name: name, createdAt: now)
        do {
            try await pool.write { db in
                try db.execute(
                    sql: "INSERT INTO accounts (id, name, created_at, balance) VALUES (?, ?, ?, 0)",
                    arguments: [account.id, account.name, account.createdAt])
                if credits != 0 {
                    try Self.moveCredits(db, accountID: account.id, kind: .topUp, amount: credits, taskID: nil, note: "starting grant", now: now)
                }
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw StoreError.conflict("an account named \(name) already exists")
        }
        counters.bump(ChangeCounters.controlSlot)
        return account
    }

    public func account(named name: String) async throws -> Account? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM accounts WHERE name = ?", arguments: [name]).map(Self.account)
        }
    }

    public func accounts() async throws -> [Account] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM accounts ORDER BY created_at, name").map(Self.account)
        }
    }

    public func addAPIKey(_ key: APIKeyRecord) async throws {
        do {
            try await pool.write { db in
                try db.execute(
                    sql: "INSERT INTO api_keys (id, account_id, hash, prefix, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [key.id, key.accountID, key.hash, key.prefix, key.createdAt, key.revokedAt])
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw StoreError.conflict("the key could not be stored: \(error.message ?? "constraint failed")")
        }
        counters.bump(ChangeCounters.controlSlot)
    }

    public func revokeAPIKey(id: String, accountID: String, now: Int64) async throws -> Bool {
        let revoked = try await pool.write { db in
            try db.execute(
                sql: "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at IS NULL",
                arguments: [now, id, accountID])
            return db.changesCount > 0
        }
        if revoked { counters.bump(ChangeCounters.controlSlot) }
        return revoked
    }

    public func apiKeys(accountID: String) async throws -> [APIKeyRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at", arguments: [accountID]).map {
                APIKeyRecord(
                    id: $0["id"], accountID: $0["account_id"], hash: $0["hash"], prefix: $0["prefix"], createdAt: $0["created_at"],
                    revokedAt: $0["revoked_at"])
            }
        }
    }

    public func account(forKeyHash hash: String) async throws -> Account? {
        let stamp = CounterStamp(first: counters.value(ChangeCounters.controlSlot), second: 0)
        // Only keys found in the database are cached: the copy is found by the hash of a key its holder presented.
        if let cached = keyCache.value(hash, stamp: stamp) { return cached }
        let account = try readNow { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT a.* , k.hash AS key_hash FROM api_keys k JOIN accounts a ON a.id = k.account_id
                        WHERE k.hash = ? AND k.revoked_at IS NULL
                        """),
                arguments: [hash]
            ).first.flatMap { row in
                // The index lookup found the row; compare once more in constant time before trusting it.
                APIKeys.constantTimeEquals(row["key_hash"], hash) ? Self.account(row) : nil
            }
        }
        if let account { keyCache.store(account, for: hash, stamp: stamp) }
        return account
    }

    public func addJWTCredential(accessKey: String, accountID: String, secretKey: String, now: Int64) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO jwt_credentials (access_key, account_id, secret_key, created_at) VALUES (?, ?, ?, ?)",
                arguments: [accessKey, accountID, secretKey, now])
        }
        counters.bump(ChangeCounters.controlSlot)
    }

    public func jwtCredential(accessKey: String) async throws -> (account: Account, secretKey: String)? {
        try readNow { db in
            try Row.fetchOne(
                db.cachedStatement(
                    sql: "SELECT a.*, c.secret_key FROM jwt_credentials c JOIN accounts a ON a.id = c.account_id WHERE c.access_key = ?"),
                arguments: [accessKey]
            ).map { (Self.account($0), $0["secret_key"]) }
        }
    }

    public func setLimits(accountID: String, limits: LimitOverrides) async throws {
        let encoded = try Self.encode(limits)
        let changed = try await pool.write { db in
            try db.execute(sql: "UPDATE accounts SET limits = ? WHERE id = ?", arguments: [encoded, accountID])
            return db.changesCount > 0
        }
        guard changed else { throw StoreError.notFound("no account \(accountID)") }
        counters.bump(ChangeCounters.controlSlot)
    }

    static func account(_ row: Row) -> Account {
        let limits = (row["limits"] as String?).flatMap { try? decoder.decode(LimitOverrides.self, from: Data($0.utf8)) }
        return Account(id: row["id"], name: row["name"], createdAt: row["created_at"], limits: limits ?? LimitOverrides())
    }
}
