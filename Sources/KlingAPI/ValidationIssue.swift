/// One problem found in a request: the dialect's name of the field and what is wrong with it.
public struct ValidationIssue: Sendable, Hashable, CustomStringConvertible {
    /// The field in the caller's own words, e.g. `input.multi_prompt[1].duration`.
    public var field: String
    /// What is wrong, starting lowercase, e.g. `must be between 1 and 12 seconds (got 13)`.
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

extension Array where Element == ValidationIssue {
    /// All issues as one human-readable message, in order.
    public var summary: String { map(\.description).joined(separator: "; ") }
}
