import Foundation
import KlingAPI
import KlingCore
import Logging
import PostgresNIO

/// Balances and the append-only ledger (``LedgerStore``), and the credit moves other writes make in their transactions.
extension PostgresTaskStore {
    public func balance(accountID: String) async throws -> Int64 {
        guard let row = try await read("SELECT balance FROM accounts WHERE id = \(accountID)").first else {
            throw StoreError.notFound("no account \(accountID)")
        }
        return try row.get("balance")
    }

    public func addCredits(accountID: String, amount: Int64, note: String, now: Int64) async throws -> Int64 {
        try await transaction { db in
            try await Self.moveCredits(
                db, accountID: accountID, kind: amount >= 0 ? .topUp : .adjustment, amount: amount, taskID: nil, note: note, now: now)
        }
    }

    public func ledger(accountID: String) async throws -> [LedgerEntry] {
        try await read("SELECT * FROM ledger WHERE account_id = \(accountID) ORDER BY id").map { row in
            LedgerEntry(
                id: try row.get("id"), accountID: try row.get("account_id"),
                kind: LedgerEntry.Kind(rawValue: try row.get("kind")) ?? .adjustment, amount: try row.get("amount"),
                taskID: try row.get("task_id"), note: try row.get("note"), createdAt: try row.get("created_at"))
        }
    }

    public func ledgerMismatches() async throws -> [LedgerMismatch] {
        try await read(
            """
            SELECT a.id, a.name, a.balance, COALESCE((SELECT SUM(amount) FROM ledger l WHERE l.account_id = a.id), 0)::BIGINT AS total
            FROM accounts a WHERE a.balance != COALESCE((SELECT SUM(amount) FROM ledger l WHERE l.account_id = a.id), 0)
            ORDER BY a.name
            """
        ).map {
            LedgerMismatch(
                accountID: try $0.get("id"), accountName: try $0.get("name"), balance: try $0.get("balance"), ledgerSum: try $0.get("total"))
        }
    }

    /// Moves credits with a ledger entry in the caller's transaction and returns the new balance; never lets the
    /// balance go below zero, and charges or refunds a task at most once (the ledger's unique index). The update locks
    /// the account's row until the transaction ends.
    @discardableResult
    static func moveCredits(
        _ db: Connection, accountID: String, kind: LedgerEntry.Kind, amount: Int64, taskID: String?, note: String, now: Int64
    ) async throws -> Int64 {
        guard
            let row = try await db.rows(
                """
                UPDATE accounts SET balance = balance + \(amount) WHERE id = \(accountID) AND balance + \(amount) >= 0 RETURNING balance
                """
            ).first
        else {
            guard let row = try await db.rows("SELECT balance FROM accounts WHERE id = \(accountID)").first else {
                throw StoreError.notFound("no account \(accountID)")
            }
            let balance: Int64 = try row.get("balance")
            throw StoreError.insufficientCredits("the balance is \(balance) credits; \(-amount) are needed")
        }
        try await db.run(
            """
            INSERT INTO ledger (account_id, kind, amount, task_id, note, created_at)
            VALUES (\(accountID), \(kind.rawValue), \(amount), \(taskID), \(note), \(now))
            """)
        return try row.get("balance")
    }

    /// Gives a failed task its price back, once, in the caller's transaction.
    static func refund(_ db: Connection, taskID: String, now: Int64) async throws {
        guard let row = try await db.rows("SELECT account_id, credits, refunded_credits FROM tasks WHERE id = \(taskID)").first else { return }
        let credits: Int64 = try row.get("credits")
        let refunded: Int64 = try row.get("refunded_credits")
        guard credits > 0, refunded == 0 else { return }
        try await moveCredits(db, accountID: try row.get("account_id"), kind: .refund, amount: credits, taskID: taskID, note: "task failed", now: now)
        try await db.run("UPDATE tasks SET refunded_credits = \(credits) WHERE id = \(taskID)")
    }
}
