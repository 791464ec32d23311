import Foundation

/// The JSON every store writes into its text columns (requests, results, limits) and reads back: one encoding for
/// every backend, so a row means the same on SQLite and PostgreSQL.
public enum StoreCoding {
    /// Shared by every call (thread-safe); making one per row showed in profiles.
    public static let decoder = JSONDecoder()
    /// Sorted keys and unescaped slashes: the same value always gives the same text.
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// The JSON text of `value`.
    public static func encode<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
