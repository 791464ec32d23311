/// An error a dialect renders in its own envelope: a code from the seeds' list and a message naming the field.
public struct APIError: Error, Sendable, Hashable {
    /// The code in the body: 401, 402, 404, 413, 422, 429, 455, 500, 501, 505.
    public var code: Int
    public var message: String
    /// Seconds to send as `Retry-After` (429 answers).
    public var retryAfterSeconds: Int?
    /// A finer reason, for dialects whose codes tell these apart (Kling's 1001-1004, 1302/1303).
    public var reason: Reason?

    /// Finer reasons behind a code.
    public enum Reason: Sendable, Hashable {
        case credentialsMissing, tokenNotYetValid, tokenExpired, tooManyActiveTasks
    }

    public init(code: Int, message: String, retryAfterSeconds: Int? = nil, reason: Reason? = nil) {
        self.code = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
        self.reason = reason
    }

    public static func unauthorized(_ message: String) -> APIError { APIError(code: 401, message: message) }
    public static func notFound(_ message: String) -> APIError { APIError(code: 404, message: message) }
    public static func validation(_ message: String) -> APIError { APIError(code: 422, message: message) }
    public static func tooLarge(_ message: String) -> APIError { APIError(code: 413, message: message) }
    /// 429 with the seconds to wait.
    public static func rateLimited(_ message: String, retryAfter: Duration) -> APIError {
        let seconds = max(1, Int((Double(retryAfter.components.seconds) + Double(retryAfter.components.attoseconds) / 1e18).rounded(.up)))
        return APIError(code: 429, message: message, retryAfterSeconds: seconds)
    }
    public static func `internal`(_ message: String) -> APIError { APIError(code: 500, message: message) }
}
