import AsyncHTTPClient
import Foundation
import KlingAPI
import KlingCore
import MultipartKit
import NIOCore
import NIOHTTP1

/// JSON over HTTP to one provider, with a time limit per call and errors sorted into ``UpstreamError`` kinds.
/// Headers (and so credentials) never appear in an error.
struct UpstreamHTTP: Sendable {
    /// The engine name errors are labelled with.
    let engine: String
    /// The provider's base URL, without a trailing slash.
    let baseURL: String
    let client: HTTPClient
    /// Time for one call, connecting included.
    let timeout: Duration

    /// A provider's answer: the HTTP status, `Retry-After` if any, and the parsed JSON body (`nil` when not JSON).
    struct Answer: Sendable {
        var status: Int
        var retryAfter: Duration?
        var json: JSONValue?
    }

    /// The client providers use unless given one: lives as long as the process (like `HTTPClient.shared`), with room
    /// for many connections per provider, so calls the rate limiter lets through are not held back in a small pool
    /// and then released in a burst.
    static let sharedClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 128
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    init(engine: String, baseURL: String, client: HTTPClient, timeout: Duration) {
        self.engine = engine
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.client = client
        self.timeout = timeout
    }

    /// Sends one call; transport failures (timeouts, refused connections) throw ``UpstreamError/unavailable``.
    func send(
        _ method: HTTPMethod, _ path: String, headers: [(String, String)], body: JSONValue? = nil, form: [MultipartPart]? = nil
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "KlingKit/1.0 (upstream engine)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.jsonString()))
        } else if let form {
            let boundary = "kling-" + UUID().uuidString
            var bytes = ByteBuffer()
            try MultipartSerializer().serialize(parts: form, boundary: boundary, into: &bytes)
            request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
            request.body = .bytes(bytes)
        }
        let deadline = TimeAmount.milliseconds(max(1, timeout.milliseconds))
        do {
            let response = try await client.execute(request, timeout: deadline)
            let bytes = try await response.body.collect(upTo: 4 << 20)
            return Answer(
                status: Int(response.status.code),
                retryAfter: response.headers.first(name: "retry-after").flatMap(Self.retryAfter),
                json: JSONValue.parse(Data(bytes.readableBytesView)))
        } catch let error as UpstreamError {
            throw error
        } catch {
            if error is CancellationError || (error as? HTTPClientError) == .cancelled { throw CancellationError() }
            throw UpstreamError.unavailable(engine, status: nil, message: "\(method) \(path) failed: \(Self.reason(error))")
        }
    }

    /// The error kind an HTTP status means, for answers that are not a success.
    func failure(status: Int, message: String, retryAfter: Duration?) -> UpstreamError {
        switch status {
        case 429: .rateLimited(engine, status: status, message: message, retryAfter: retryAfter)
        case 401, 403: .unauthorized(engine, status: status, message: message)
        case 500...: .unavailable(engine, status: status, message: message, retryAfter: retryAfter)
        default: .rejected(engine, status: status, message: message)
        }
    }

    /// A short, credential-free reason for a transport error.
    static func reason(_ error: any Error) -> String {
        switch error as? HTTPClientError {
        case .deadlineExceeded?, .readTimeout?, .connectTimeout?: return "timed out"
        case .remoteConnectionClosed?: return "the connection was closed"
        case let error?: return "\(error)"
        case nil:
            let text = String(describing: error)
            if text.localizedCaseInsensitiveContains("refused") { return "connection refused" }
            return text
        }
    }

    /// `Retry-After` as seconds or an HTTP date.
    static func retryAfter(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed), seconds >= 0 { return .milliseconds(Int64(seconds * 1000)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return .milliseconds(Int64(max(0, date.timeIntervalSinceNow) * 1000))
    }
}

extension JSONValue {
    /// The member `key` of an object.
    subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// The text of a string, or a number written as text.
    var text: String? {
        switch self {
        case .string(let value): return value
        case .number(let value): return value.rounded() == value ? String(Int64(value)) : String(value)
        default: return nil
        }
    }

    /// An integer from a number or a numeric string.
    var integer: Int? {
        switch self {
        case .number(let value): return Int(exactly: value.rounded())
        case .string(let value): return Int(value)
        default: return nil
        }
    }

    var array: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    var number: Double? {
        if case .number(let value) = self { return value }
        return nil
    }
}
