import Foundation
import Hummingbird
import KlingAPI
import KlingCore

/// The Market dialect (seed 004, kie.ai): `Authorization: Bearer`, `{code, msg, data}` envelopes.
enum MarketDialect: Dialect {
    static let name = "market"
    static let callbackField: String? = "callBackUrl"

    static func apiKey(from request: Request) -> String? {
        bearerToken(request)
    }

    static func errorBody(_ error: APIError) -> JSONValue {
        .object(["code": .number(Double(error.code)), "msg": .string(error.message), "data": .null])
    }

    static func success(_ data: JSONValue) -> Response {
        response(code: 200, body: .object(["code": 200, "msg": "success", "data": data]))
    }

    /// The success envelope around a typed `data` object.
    struct Envelope<Payload: Encodable & Sendable>: Encodable, Sendable {
        var code: Int
        var msg: String
        var data: Payload
    }

    /// Market's state words.
    static func state(_ state: TaskState) -> String {
        switch state {
        case .queued: "waiting"
        case .running: "generating"
        case .succeeded: "success"
        case .failed: "fail"
        }
    }
}

/// `Authorization: Bearer KEY` → KEY (scheme case-insensitive, surrounding spaces ignored).
func bearerToken(_ request: Request) -> String? {
    guard let header = request.headers[.authorization] else { return nil }
    let value = header.trimmingSpaces()
    let scheme = "bearer".utf8
    guard value.utf8.count > scheme.count + 1,
        value.utf8.prefix(scheme.count).elementsEqual(scheme, by: { $0 | 0x20 == $1 }),
        value.utf8.dropFirst(scheme.count).first == UInt8(ascii: " ")
    else { return nil }
    // The scheme and its space are ASCII, so they are exactly that many characters.
    return String(value.dropFirst(scheme.count + 1).trimmingSpaces())
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs (header values; cheaper than Foundation's trimming).
    func trimmingSpaces() -> Substring {
        let string = Substring(self)
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = string.firstIndex(where: { !isSpace($0) }), let end = string.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return string[start...end]
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
}
