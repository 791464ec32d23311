import Foundation
import GRDB
import KlingAPI
import KlingCore

/// Balances and the append-only ledger (``LedgerStore``), and the credit moves other writes make in their transactions.
extension SQLiteTaskStore {
    public func balance(accountID: String) async throws -> Int64 {
        try readNow { db in
            guard let balance = try Int64.fetchOne(db, sql: "SELECT balance FROM accounts WHERE id = ?", arguments: [accountID]) else {
                throw StoreError.notFound("no account \(accountID)")
            }
            return balance
        }
    }

    public func addCredits(accountID: String, amount: Int64, note: String, now: Int64) async throws -> Int64 {
        try await pool.write { db in
            try Self.moveCredits(
                db, accountID: accountID, kind: amount >= 0 ? .topUp : .adjustment, amount: amount, taskID: nil, note: note, now: now)
            return try Int64.fetchOne(db, sql: "SELECT balance FROM accounts WHERE id = ?", arguments: [accountID]) ?? 0
        }
    }

    public func ledger(accountID: String) async throws -> [LedgerEntry] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM ledger WHERE account_id = ? ORDER BY id", arguments: [accountID]).map { row in
                LedgerEntry(
                    id: row["id"], accountID: row["account_id"], kind: LedgerEntry.Kind(rawValue: row["kind"]) ?? .adjustment,
                    amount: row["amount"], taskID: row["task_id"], note: row["note"], createdAt: row["created_at"])
            }
        }
    }

    public func ledgerMismatches() async throws -> [LedgerMismatch] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT a.id, a.name, a.balance, COALESCE((SELECT SUM(amount) FROM ledger l WHERE l.account_id = a.id), 0) AS total
                    FROM accounts a WHERE a.balance != COALESCE((SELECT SUM(amount) FROM ledger l WHERE l.account_id = a.id), 0)
                    ORDER BY a.name
                    """
            ).map { LedgerMismatch(accountID: $0["id"], accountName: $0["name"], balance: $0["balance"], ledgerSum: $0["total"]) }
        }
    }

    /// Moves credits with a ledger entry in the caller's transaction; never lets the balance go below zero, and
    /// charges or refunds a task at most once (the ledger's unique index).
    static func moveCredits(
        _ db: Database, accountID: String, kind: LedgerEntry.Kind, amount: Int64, taskID: String?, note: String, now: Int64
    ) throws {
        try db.execute(
            sql: "UPDATE accounts SET balance = balance + ? WHERE id = ? AND balance + ? >= 0", arguments: [amount, accountID, amount])
        guard db.changesCount > 0 else {
            guard let balance = try Int64.fetchOne(db, sql: "SELECT balance FROM accounts WHERE id = ?", arguments: [accountID]) else {
                throw StoreError.notFound("no account \(accountID)")
            }
            throw StoreError.insufficientCredits("the balance is \(balance) credits; \(-amount) are needed")
        }
        try db.execute(
            sql: "INSERT INTO ledger (account_id, kind, amount, task_id, note, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [accountID, kind.rawValue, amount, taskID, note, now])
    }

    /// Gives a failed task its price back, once, in the caller's transaction.
    static func refund(_ db: Database, taskID: String, now: Int64) throws {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT account_id, credits, refunded_credits FROM tasks WHERE id = ?", arguments: [taskID])
        else { return }
        let credits: Int64 = row["credits"]
        let refunded: Int64 = row["refunded_credits"]
        guard credits > 0, refunded == 0 else { return }
        try moveCredits(db, accountID: row["account_id"], kind: .refund, amount: credits, taskID: taskID, note: "task failed", now: now)
        try db.execute(sql: "UPDATE tasks SET refunded_credits = ? WHERE id = ?", arguments: [credits, taskID])
    }
}
