/// Store failures that callers act on.
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Hashable, Sendable { case conflict, externalIDTaken, notFound, insufficientCredits, limitReached }
    private let code: Code
    public let message: String

    /// A unique value (account name, key) already exists.
    public static func conflict(_ message: String) -> StoreError { StoreError(code: .conflict, message: message) }
    /// A referenced row does not exist.
    public static func notFound(_ message: String) -> StoreError { StoreError(code: .notFound, message: message) }

    /// The account already has a task with this external id.
    public static func externalIDTaken(_ message: String) -> StoreError { StoreError(code: .externalIDTaken, message: message) }
    /// The balance cannot cover a charge.
    public static func insufficientCredits(_ message: String) -> StoreError { StoreError(code: .insufficientCredits, message: message) }
    /// An account limit (active tasks) is reached.
    public static func limitReached(_ message: String) -> StoreError { StoreError(code: .limitReached, message: message) }

    public var isConflict: Bool { code == .conflict }
    public var isExternalIDTaken: Bool { code == .externalIDTaken }
    public var isInsufficientCredits: Bool { code == .insufficientCredits }
    public var isLimitReached: Bool { code == .limitReached }
    public var isNotFound: Bool { code == .notFound }
    public var description: String { message }
}
