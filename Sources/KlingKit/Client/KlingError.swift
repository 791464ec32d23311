import KlingAPI

/// Every error KlingKit throws: what kind of failure, the provider's code and message, and its request id.
///
/// The struct is extensible: match on ``kind`` (`error.kind == .validation`), never exhaustively.
public struct KlingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure. New kinds may be added.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case validation, api, transport, timeout, unsupported, download, signature
        }
        private let base: Base

        /// The request is invalid: found locally before any network call, or refused by the provider (400/422).
        public static let validation = Kind(base: .validation)
        /// The provider answered with an error (auth, credits, rate limit, not found, maintenance, server error).
        public static let api = Kind(base: .api)
        /// The network failed or the answer could not be read.
        public static let transport = Kind(base: .transport)
        /// Waiting hit its ceiling; ``KlingError/taskID`` says which task is still running.
        public static let timeout = Kind(base: .timeout)
        /// The dialect or credentials cannot do this (for example uploads with Kling access keys).
        public static let unsupported = Kind(base: .unsupported)
        /// A download could not be completed (also after resuming).
        public static let download = Kind(base: .download)
        /// A webhook's signature or timestamp did not check out (``WebhookVerifier``).
        public static let signature = Kind(base: .signature)

        /// The kind's name.
        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public var kind: Kind
    /// What went wrong, in the provider's words when it answered.
    public var message: String
    /// The provider's error code as it sent it (`422`, `1201`, ...), when it answered.
    public var code: String?
    /// The HTTP status of the answer, when there was one.
    public var httpStatus: Int?
    /// The provider's request id (Kling's `request_id`, or an `X-Request-Id` header), when it sent one.
    public var requestID: String?
    /// The task this error concerns, when one exists (a timeout never loses the task id).
    public var taskID: String?
    /// Field problems of a validation error, one per field.
    public var issues: [ValidationIssue]
    /// How long the provider asked to wait before trying again (`Retry-After`).
    public var retryAfter: Duration?

    /// An error of `kind` with a message and any known details.
    public init(
        _ kind: Kind, message: String, code: String? = nil, httpStatus: Int? = nil, requestID: String? = nil, taskID: String? = nil,
        issues: [ValidationIssue] = [], retryAfter: Duration? = nil
    ) {
        self.kind = kind
        self.message = message
        self.code = code
        self.httpStatus = httpStatus
        self.requestID = requestID
        self.taskID = taskID
        self.issues = issues
        self.retryAfter = retryAfter
    }

    /// A local validation failure listing every issue.
    static func invalid(_ issues: [ValidationIssue]) -> KlingError {
        KlingError(.validation, message: issues.summary, issues: issues)
    }

    /// Whether repeating the same request may succeed: network failures, 429, 5xx (not 501, a failed generation).
    var isTransient: Bool {
        if kind == .transport { return true }
        guard kind == .api, let status = httpStatus else { return false }
        return status == 429 || status == 500 || status == 502 || status == 503 || status == 504
    }

    /// One line: the message, then the code, HTTP status, task and request id when known.
    public var description: String {
        var details: [String] = []
        if let code { details.append("code \(code)") }
        if let httpStatus, code != String(httpStatus) { details.append("HTTP \(httpStatus)") }
        if let taskID { details.append("task \(taskID)") }
        if let requestID { details.append("request \(requestID)") }
        return details.isEmpty ? message : "\(message) (\(details.joined(separator: ", ")))"
    }
}
