/// A provider call that did not get an answer we can use. Messages never carry credentials.
public struct UpstreamError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable { case rateLimited, unavailable, rejected, unauthorized, malformed }
    private let kind: Kind
    /// The engine that called (`kling-official`, ...).
    public let engine: String
    /// The HTTP status, when there was an answer.
    public let httpStatus: Int?
    /// What went wrong, in the provider's words where it gave some.
    public let message: String
    /// How long the provider asked us to wait (`Retry-After`).
    public let retryAfter: Duration?

    /// 429 or the provider's rate-limit code.
    public static func rateLimited(_ engine: String, status: Int?, message: String, retryAfter: Duration?) -> UpstreamError {
        UpstreamError(kind: .rateLimited, engine: engine, httpStatus: status, message: message, retryAfter: retryAfter)
    }
    /// 5xx, a timeout, a refused or dropped connection.
    public static func unavailable(_ engine: String, status: Int?, message: String, retryAfter: Duration? = nil) -> UpstreamError {
        UpstreamError(kind: .unavailable, engine: engine, httpStatus: status, message: message, retryAfter: retryAfter)
    }
    /// The provider refused the request itself (a 4xx other than 401/403/429).
    public static func rejected(_ engine: String, status: Int?, message: String) -> UpstreamError {
        UpstreamError(kind: .rejected, engine: engine, httpStatus: status, message: message, retryAfter: nil)
    }
    /// The provider refused our credentials (the operator's configuration).
    public static func unauthorized(_ engine: String, status: Int?, message: String) -> UpstreamError {
        UpstreamError(kind: .unauthorized, engine: engine, httpStatus: status, message: message, retryAfter: nil)
    }
    /// An answer that does not follow the provider's contract.
    public static func malformed(_ engine: String, status: Int?, message: String) -> UpstreamError {
        UpstreamError(kind: .malformed, engine: engine, httpStatus: status, message: message, retryAfter: nil)
    }

    /// Whether asking again (or another engine) may work: rate limits, 5xx, timeouts, refused connections.
    public var isRetryable: Bool { kind == .rateLimited || kind == .unavailable }
    public var isRateLimited: Bool { kind == .rateLimited }
    /// Whether the provider refused the request's content (the caller's to fix).
    public var isRejection: Bool { kind == .rejected }
    public var isUnauthorized: Bool { kind == .unauthorized }

    public var description: String {
        "\(engine): " + (httpStatus.map { "HTTP \($0): " } ?? "") + message
    }
}
