import Foundation
import KlingAPI
import KlingCore

/// The `data` object of CRUN's `TaskInfo` answer (and its callback payload): one task as the contract spells it.
struct CRUNTaskInfo: Encodable, Sendable {
    var taskID: String
    var status: String
    /// The create request's parameters as the object the client sent.
    var param: JSONValue
    var createAt: Int64
    /// `{media_urls, cover_url}` on success, `{code, message}` on failure, otherwise null.
    var result: JSONValue
    /// Generation time in seconds once finished.
    var durationSeconds: Double?
    var completeAt: Int64?
    /// Credits the task cost: its price, or 0 once a failure refunded it.
    var credits: Int64
    /// KlingKit extension: real progress 0-100 from the engine.
    var progress: Int
    /// KlingKit extension: the engine that produced (or is producing) the video.
    var engine: String?

    init(_ task: TaskRecord, links: ResultLinks) {
        taskID = task.id
        status = CRUNDialect.status(task.state)
        param = JSONValue.parse(Data(task.params.utf8)) ?? .null
        createAt = task.createdAt / 1000
        result = .null
        if task.state == .succeeded, let video = links.videoURL(task) {
            var object: [String: JSONValue] = ["media_urls": .array([.string(video)])]
            if let cover = links.coverURL(task) { object["cover_url"] = .string(cover) }
            result = .object(object)
        } else if task.state == .failed, let failure = task.failure {
            result = .object(["code": .number(Double(failure.code)), "message": .string(failure.message)])
        }
        durationSeconds = task.completedAt == nil ? nil : Double(task.costTimeMillis) / 1000
        completeAt = task.completedAt.map { $0 / 1000 }
        credits = task.consumedCredits
        progress = task.progress
        engine = task.engine
    }

    private enum CodingKeys: String, CodingKey {
        case taskID = "task_id", provider, modelVersion = "model_version", status, param, createAt = "create_at", result
        case durationSeconds = "duration_s", completeAt = "complete_at", credits, source, progress, engine
    }

    // Written out so absent values appear as `null`, as in the contract, instead of being left out.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(taskID, forKey: .taskID)
        try container.encode("kling", forKey: .provider)
        try container.encode("kling/v3", forKey: .modelVersion)
        try container.encode(status, forKey: .status)
        try container.encode(param, forKey: .param)
        try container.encode(createAt, forKey: .createAt)
        try container.encode(result, forKey: .result)
        try container.encode(durationSeconds, forKey: .durationSeconds)
        try container.encode(completeAt, forKey: .completeAt)
        try container.encode(credits, forKey: .credits)
        try container.encode("api", forKey: .source)
        try container.encode(progress, forKey: .progress)
        try container.encode(engine, forKey: .engine)
    }
}
