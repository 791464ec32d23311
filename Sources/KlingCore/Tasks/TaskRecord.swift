import KlingAPI

/// One generation task as stored: the canonical request, its lifecycle state and its result or failure.
public struct TaskRecord: Sendable, Hashable, Codable {
    public var id: String
    public var accountID: String
    /// The dialect the task was created through (`market`, `crun`, ...).
    public var dialect: String
    /// The model name the caller sent.
    public var model: String
    /// The validated, normalized request.
    public var request: GenerationRequest
    /// The caller's original create body as JSON text (echoed back as `param`).
    public var params: String
    public var state: TaskState
    /// 0-100, reported by the engine.
    public var progress: Int
    /// How many times a worker has claimed the task (also the fencing token of the current claim).
    public var attempts: Int
    /// The engine that rendered (or is rendering) the task.
    public var engine: String?
    /// Unix milliseconds.
    public var createdAt: Int64
    public var updatedAt: Int64
    public var startedAt: Int64?
    public var completedAt: Int64?
    public var result: TaskResult?
    public var failure: TaskFailure?
    /// The price charged when the task was accepted.
    public var credits: Int64
    /// Credits given back (the whole price, once, when the task failed).
    public var refundedCredits: Int64
    /// When the retention sweeper deleted the result files (Unix milliseconds); `nil` while they are kept.
    public var resultsExpiredAt: Int64?
    /// The caller's own id for the task (Kling's `external_task_id`), unique per account.
    public var externalID: String?

    public init(
        id: String, accountID: String, dialect: String, model: String, request: GenerationRequest, params: String,
        state: TaskState = .queued, progress: Int = 0, attempts: Int = 0, engine: String? = nil, createdAt: Int64,
        updatedAt: Int64, startedAt: Int64? = nil, completedAt: Int64? = nil, result: TaskResult? = nil,
        failure: TaskFailure? = nil, credits: Int64 = 0, refundedCredits: Int64 = 0, resultsExpiredAt: Int64? = nil,
        externalID: String? = nil
    ) {
        self.id = id
        self.accountID = accountID
        self.dialect = dialect
        self.model = model
        self.request = request
        self.params = params
        self.state = state
        self.progress = progress
        self.attempts = attempts
        self.engine = engine
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.result = result
        self.failure = failure
        self.credits = credits
        self.refundedCredits = refundedCredits
        self.resultsExpiredAt = resultsExpiredAt
        self.externalID = externalID
    }

    /// Credits the task finally cost: its price, or 0 once refunded.
    public var consumedCredits: Int64 { credits - refundedCredits }

    /// Milliseconds from the first claim to the terminal state (0 until then).
    public var costTimeMillis: Int64 {
        guard let startedAt, let completedAt else { return 0 }
        return max(0, completedAt - startedAt)
    }
}

/// Where a task is in its life.
public enum TaskState: String, Sendable, Hashable, Codable, CaseIterable {
    case queued
    case running
    case succeeded
    case failed

    public var isTerminal: Bool { self == .succeeded || self == .failed }
}

/// The files of a finished task, as paths relative to the artifact directory.
public struct TaskResult: Sendable, Hashable, Codable {
    public var videoPath: String
    public var coverPath: String?
    public var width: Int
    public var height: Int
    public var durationSeconds: Double
    public var hasAudio: Bool

    public init(videoPath: String, coverPath: String?, width: Int, height: Int, durationSeconds: Double, hasAudio: Bool) {
        self.videoPath = videoPath
        self.coverPath = coverPath
        self.width = width
        self.height = height
        self.durationSeconds = durationSeconds
        self.hasAudio = hasAudio
    }
}

/// Why a task failed: a dialect-neutral code (422 bad input, 501 generation failed, 500 internal) and a reason.
public struct TaskFailure: Sendable, Hashable, Codable {
    public var code: Int
    public var message: String

    public init(code: Int, message: String) {
        self.code = code
        self.message = message
    }

    /// The code of a task its client cancelled.
    public static let cancelledCode = 499
}
