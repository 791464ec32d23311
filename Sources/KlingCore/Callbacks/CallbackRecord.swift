/// One callback in the outbox: recorded with a task's terminal state, delivered at least once by the deliverer.
public struct CallbackRecord: Sendable, Hashable, Codable {
    /// Where a callback stands.
    public enum State: String, Sendable, Hashable, Codable {
        /// Waiting for its next attempt (or being attempted now).
        case pending
        /// A 2xx answer was received.
        case delivered
        /// Every scheduled attempt failed.
        case failed
        /// The receiver answered 410 Gone: no more attempts.
        case gone
    }

    /// Also the `webhook-id` header, the same on every attempt.
    public var id: String
    public var taskID: String
    public var accountID: String
    public var url: String
    /// The dialect the task was created in; decides the payload shape.
    public var dialect: String
    /// The body, fixed at the first attempt so every retry sends the same bytes.
    public var payload: String?
    /// The state change this callback reports when it is not the terminal one (Kling's `processing`).
    public var event: String?
    public var state: State
    /// Attempts started so far.
    public var attempts: Int
    /// Unix milliseconds of the next attempt (or the end of the current attempt's lease).
    public var nextAttemptAt: Int64
    public var createdAt: Int64
    public var updatedAt: Int64
    public var lastStatus: Int?
    public var lastError: String?

    public init(
        id: String, taskID: String, accountID: String, url: String, dialect: String, payload: String?, state: State, attempts: Int,
        nextAttemptAt: Int64, createdAt: Int64, updatedAt: Int64, lastStatus: Int?, lastError: String?, event: String? = nil
    ) {
        self.id = id
        self.taskID = taskID
        self.accountID = accountID
        self.url = url
        self.dialect = dialect
        self.payload = payload
        self.state = state
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.lastStatus = lastStatus
        self.lastError = lastError
        self.event = event
    }
}

/// One delivery attempt of a callback, as `GET /api/v1/callbacks` lists it.
public struct CallbackAttempt: Sendable, Hashable, Codable {
    public var callbackID: String
    public var attempt: Int
    /// The receiver's HTTP status, when it answered.
    public var status: Int?
    /// Why the attempt failed (connection error, timeout, refusal, non-2xx).
    public var error: String?
    public var durationMillis: Int64
    /// Unix milliseconds.
    public var at: Int64

    public init(callbackID: String, attempt: Int, status: Int?, error: String?, durationMillis: Int64, at: Int64) {
        self.callbackID = callbackID
        self.attempt = attempt
        self.status = status
        self.error = error
        self.durationMillis = durationMillis
        self.at = at
    }
}

/// What follows an attempt.
public enum CallbackNext: Sendable, Hashable {
    case delivered
    case retry(at: Int64)
    /// The schedule is exhausted.
    case failed
    /// 410 Gone.
    case gone

    /// The state a callback is stored in after this outcome, and when it is next due (`now` once it is settled).
    public func stored(now: Int64) -> (state: CallbackRecord.State, nextAttemptAt: Int64) {
        switch self {
        case .delivered: (.delivered, now)
        case .retry(let at): (.pending, at)
        case .failed: (.failed, now)
        case .gone: (.gone, now)
        }
    }
}
