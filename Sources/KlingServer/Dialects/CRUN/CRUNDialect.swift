import Foundation
import HTTPTypes
import Hummingbird
import KlingAPI
import KlingCore

/// The CRUN dialect (seed 000): `x-api-key`, `{code, message, data}` envelopes.
enum CRUNDialect: Dialect {
    static let name = "crun"
    static let callbackField: String? = "callback_url"
    private static let apiKeyField = HTTPField.Name("x-api-key")!

    static func apiKey(from request: Request) -> String? {
        request.headers[apiKeyField].map { String($0.trimmingSpaces()) }
    }

    static func errorBody(_ error: APIError) -> JSONValue {
        .object(["code": .number(Double(error.code)), "message": .string(error.message), "data": .null])
    }

    static func success(_ data: JSONValue) -> Response {
        response(code: 200, body: .object(["code": 200, "message": "success", "data": data]))
    }

    /// The success envelope around a typed `data` object.
    struct Envelope<Payload: Encodable & Sendable>: Encodable, Sendable {
        var code: Int
        var message: String
        var data: Payload
    }

    /// CRUN's status words.
    static func status(_ state: TaskState) -> String {
        switch state {
        case .queued: "pending"
        case .running: "running"
        case .succeeded: "success"
        case .failed: "failed"
        }
    }
}
