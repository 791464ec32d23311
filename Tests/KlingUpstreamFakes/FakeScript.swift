import Foundation

/// How a fake provider behaves: refusals to send first, how long tasks take, how they end, callbacks, links, limits.
public struct FakeScript: Sendable {
    /// A scripted refusal of one call.
    public enum Refusal: Sendable, Hashable {
        /// 429 with the provider's rate-limit code and, if set, `Retry-After` seconds.
        case rateLimited(retryAfter: Int?)
        /// 500 with the provider's internal-error code.
        case serverError
        /// Any HTTP status with the provider's `code` and message.
        case status(Int, code: Int, message: String)
        /// Closes the connection without an answer after waiting (a timeout for a short client limit).
        case stall(Duration)
    }

    /// How a task ends.
    public enum Outcome: Sendable, Hashable {
        case succeed
        case fail(reason: String)
    }

    /// A token bucket over every API call (creates and queries): `perSecond` refill, `burst` capacity.
    public struct RateLimit: Sendable, Hashable {
        public var perSecond: Double
        public var burst: Double
        public init(perSecond: Double, burst: Double) {
            self.perSecond = perSecond
            self.burst = burst
        }
    }

    /// Answers to the first creates, in order; later creates are accepted.
    public var createRefusals: [Refusal] = []
    /// Answers to the first status queries, in order; later ones answer normally.
    public var queryRefusals: [Refusal] = []
    /// Time before each create is answered (a slow provider).
    public var createDelay: Duration = .zero
    /// The query (1-based) at which a task is finished; earlier queries see it queued (the first) or running.
    public var queriesUntilDone = 2
    /// When set, tasks finish this long after creation instead (and callbacks go out then).
    public var runFor: Duration?
    public var outcome: Outcome = .succeed
    /// Whether finished tasks are announced to their `callback_url`.
    public var sendCallbacks = true
    /// The first this many result downloads answer 403, as an expired link does.
    public var expiredDownloads = 0
    /// Progress reported while running, if any.
    public var runningProgress: Int?
    /// Whether finished tasks link a cover image.
    public var withCover = true
    public var rateLimit: RateLimit?

    public init() {}
}
