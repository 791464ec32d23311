import Foundation

/// Reads typed fields out of a JSON object, recording a ``ValidationIssue`` for every missing or mistyped field.
///
/// Dialect edges use it to decode their wire format into a ``GenerationRequest`` while keeping their own field names.
public struct FieldReader: Sendable {
    /// Fields of the object being read.
    public let object: [String: JSONValue]
    /// Path prefix of this object in the caller's words, e.g. `input` (empty at the top level).
    public let path: String
    /// Problems found so far.
    public private(set) var issues: [ValidationIssue] = []

    public init(object: [String: JSONValue], path: String = "") {
        self.object = object
        self.path = path
    }

    /// The full name of `key` under this reader's path.
    public func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Records an issue against a field of this object.
    public mutating func fail(_ key: String, _ message: String) {
        issues.append(ValidationIssue(field: name(key), message: message))
    }

    /// Appends issues found elsewhere (nested readers).
    public mutating func append(_ more: [ValidationIssue]) { issues.append(contentsOf: more) }

    /// Whether the key is present with a non-null value.
    public func has(_ key: String) -> Bool {
        if let value = object[key], value != .null { return true }
        return false
    }

    public mutating func string(_ key: String, required: Bool = false) -> String? {
        switch object[key] {
        case nil, .null?:
            if required { fail(key, "is required") }
            return nil
        case .string(let value)?:
            return value
        case let other?:
            fail(key, "must be a string, not \(other.typeName)")
            return nil
        }
    }

    public mutating func bool(_ key: String, required: Bool = false) -> Bool? {
        switch object[key] {
        case nil, .null?:
            if required { fail(key, "is required") }
            return nil
        case .bool(let value)?:
            return value
        case let other?:
            fail(key, "must be a boolean (true or false), not \(other.typeName)")
            return nil
        }
    }

    /// An integer given as a JSON number or, when `allowString`, as a string of digits ("5").
    public mutating func integer(_ key: String, required: Bool = false, allowString: Bool = true) -> Int? {
        switch object[key] {
        case nil, .null?:
            if required { fail(key, "is required") }
            return nil
        case .number(let value)?:
            guard value.rounded() == value, abs(value) < 1e9 else {
                fail(key, "must be a whole number, not \(value)")
                return nil
            }
            return Int(value)
        case .string(let text)? where allowString:
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                fail(key, "must be a whole number, not \"\(text)\"")
                return nil
            }
            return value
        case let other?:
            fail(key, "must be \(allowString ? "a whole number or a string of digits" : "an integer"), not \(other.typeName)")
            return nil
        }
    }

    public mutating func array(_ key: String, required: Bool = false) -> [JSONValue]? {
        switch object[key] {
        case nil, .null?:
            if required { fail(key, "is required") }
            return nil
        case .array(let value)?:
            return value
        case let other?:
            fail(key, "must be an array, not \(other.typeName)")
            return nil
        }
    }

    public mutating func stringArray(_ key: String, required: Bool = false) -> [String]? {
        guard let items = array(key, required: required) else { return nil }
        var strings: [String] = []
        for (index, item) in items.enumerated() {
            guard case .string(let value) = item else {
                fail("\(key)[\(index)]", "must be a string, not \(item.typeName)")
                continue
            }
            strings.append(value)
        }
        return strings
    }

    /// A nested object as its own reader (path extended), or `nil` with an issue when mistyped.
    public mutating func object(_ key: String, required: Bool = false) -> FieldReader? {
        switch object[key] {
        case nil, .null?:
            if required { fail(key, "is required") }
            return nil
        case .object(let value)?:
            return FieldReader(object: value, path: name(key))
        case let other?:
            fail(key, "must be an object, not \(other.typeName)")
            return nil
        }
    }

    /// Each element of an array of objects as a reader named `key[i]`.
    public mutating func objects(_ key: String) -> [FieldReader]? {
        guard let items = array(key) else { return nil }
        var readers: [FieldReader] = []
        for (index, item) in items.enumerated() {
            guard case .object(let value) = item else {
                fail("\(key)[\(index)]", "must be an object, not \(item.typeName)")
                continue
            }
            readers.append(FieldReader(object: value, path: name("\(key)[\(index)]")))
        }
        return readers
    }
}
