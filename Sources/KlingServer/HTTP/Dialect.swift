import Foundation
import Hummingbird
import KlingAPI

/// How one wire dialect spells its envelopes and finds its API key.
public protocol Dialect: Sendable {
    /// Stable name stored with tasks created through it (`market`, `crun`).
    static var name: String { get }
    /// The create body's field that holds the callback URL, named when the address is refused; `nil` when the
    /// dialect takes no callback.
    static var callbackField: String? { get }
    /// The key the caller presented, or `nil` when none.
    static func apiKey(from request: Request) -> String?
    /// The dialect's error envelope for `error`.
    static func errorBody(_ error: APIError) -> JSONValue
    /// The HTTP status sent for an error code (by default the code itself).
    static func httpStatus(_ code: Int) -> Int
}

extension Dialect {
    static func httpStatus(_ code: Int) -> Int { code }

    /// A JSON response with the HTTP status mirroring `code` (455/501/505 sent as themselves).
    static func response(code: Int, body: JSONValue, headers: HTTPFields = [:]) -> Response {
        JSONResponse.make(status: code, body: body, headers: headers)
    }

    static func errorResponse(_ error: APIError) -> Response {
        var headers: HTTPFields = [:]
        if let seconds = error.retryAfterSeconds { headers[.retryAfter] = String(seconds) }
        return response(code: httpStatus(error.code), body: errorBody(error), headers: headers)
    }
}

/// Encodes JSON responses.
enum JSONResponse {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()

    static func make(status: Int, body: some Encodable, headers: HTTPFields = [:]) -> Response {
        make(status: status, bytes: encode(body), headers: headers)
    }

    /// A JSON response around an already encoded body.
    static func make(status: Int, bytes: ByteBuffer, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(
            status: HTTPResponse.Status(code: status, reasonPhrase: reasonPhrase(status)),
            headers: fields,
            body: ResponseBody(byteBuffer: bytes)
        )
    }

    /// The JSON text of `body`.
    static func encode(_ body: some Encodable) -> ByteBuffer {
        ByteBuffer(bytes: (try? encoder.encode(body)) ?? Data("null".utf8))
    }

    static func reasonPhrase(_ code: Int) -> String {
        switch code {
        case 200: "OK"
        case 401: "Unauthorized"
        case 400: "Bad Request"
        case 402: "Payment Required"
        case 403: "Forbidden"
        case 409: "Conflict"
        case 404: "Not Found"
        case 413: "Content Too Large"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 455: "Maintenance"
        case 500: "Internal Server Error"
        case 501: "Generation Failed"
        case 503: "Service Unavailable"
        case 505: "Feature Disabled"
        default: "Error"
        }
    }
}
