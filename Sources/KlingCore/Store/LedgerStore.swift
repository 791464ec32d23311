/// Credits: every account's balance and its append-only ledger. (Charges and refunds of tasks happen inside the
/// task and queue writes that cause them, in the same transaction.)
public protocol LedgerStore: Sendable {
    /// The account's balance.
    func balance(accountID: String) async throws -> Int64
    /// Adds (or, negative, takes away) credits with a ledger entry; returns the new balance. Throws
    /// ``StoreError/insufficientCredits`` rather than let the balance go below zero.
    func addCredits(accountID: String, amount: Int64, note: String, now: Int64) async throws -> Int64
    /// The account's ledger, oldest first.
    func ledger(accountID: String) async throws -> [LedgerEntry]
    /// Accounts whose balance is not the sum of their ledger (should always be empty).
    func ledgerMismatches() async throws -> [LedgerMismatch]
}
