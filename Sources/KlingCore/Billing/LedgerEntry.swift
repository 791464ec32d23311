/// One line of an account's append-only credit ledger; the balance is always the sum of its ledger.
public struct LedgerEntry: Sendable, Hashable, Codable {
    /// Why credits moved.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// Credits granted (account creation, `credits add`).
        case topUp = "topup"
        /// An operator's correction (a negative `credits add`).
        case adjustment
        /// A task's price, taken when it was accepted.
        case charge
        /// A failed task's price, given back.
        case refund
    }

    public var id: Int64
    public var accountID: String
    public var kind: Kind
    /// Signed change of the balance.
    public var amount: Int64
    public var taskID: String?
    public var note: String
    /// Unix milliseconds.
    public var createdAt: Int64

    public init(id: Int64, accountID: String, kind: Kind, amount: Int64, taskID: String?, note: String, createdAt: Int64) {
        self.id = id
        self.accountID = accountID
        self.kind = kind
        self.amount = amount
        self.taskID = taskID
        self.note = note
        self.createdAt = createdAt
    }
}

/// An account whose stored balance differs from the sum of its ledger (a bug; `kling-server ledger check` lists them).
public struct LedgerMismatch: Sendable, Hashable, Codable {
    public var accountID: String
    public var accountName: String
    public var balance: Int64
    public var ledgerSum: Int64

    public init(accountID: String, accountName: String, balance: Int64, ledgerSum: Int64) {
        self.accountID = accountID
        self.accountName = accountName
        self.balance = balance
        self.ledgerSum = ledgerSum
    }
}
