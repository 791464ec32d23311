import KlingAPI
import KlingCore

/// The `data` object of Market's `recordInfo` answer (and of its callbacks): one task as the contract spells it.
struct MarketTaskDetails: Encodable, Sendable {
    var taskId: String
    var model: String
    var state: String
    /// The create request's `input` and model, as the JSON string the client sent (re-serialised).
    var param: String
    /// `{"resultUrls": [...], "coverUrl": ...}` as a JSON string once the task succeeded; otherwise null.
    var resultJson: String?
    var failCode: String
    var failMsg: String
    var costTime: Int64
    var completeTime: Int64?
    var createTime: Int64
    var updateTime: Int64
    /// Credits the task cost: its price, or 0 once a failure refunded it.
    var consumeCredits: Int64
    /// The account's balance after the task: in callbacks only.
    var remainedCredits: Int64?
    /// KlingKit extension: real progress 0-100 from the engine.
    var progress: Int
    /// KlingKit extension: the engine that produced (or is producing) the video, so a preview is never mistaken
    /// for Kling output.
    var engine: String?

    init(_ task: TaskRecord, links: ResultLinks) {
        taskId = task.id
        model = task.model
        state = MarketDialect.state(task.state)
        param = task.params
        if task.state == .succeeded, let video = links.videoURL(task) {
            var result: [String: JSONValue] = ["resultUrls": .array([.string(video)])]
            if let cover = links.coverURL(task) { result["coverUrl"] = .string(cover) }
            resultJson = JSONValue.object(result).jsonString()
        }
        failCode = task.failure.map { String($0.code) } ?? ""
        failMsg = task.failure?.message ?? ""
        costTime = task.costTimeMillis
        completeTime = task.completedAt
        createTime = task.createdAt
        updateTime = task.updatedAt
        consumeCredits = task.consumedCredits
        progress = task.progress
        engine = task.engine
    }

    private enum CodingKeys: String, CodingKey {
        case taskId, model, state, param, resultJson, failCode, failMsg, costTime, completeTime, createTime, updateTime
        case consumeCredits, remainedCredits, progress, engine
    }

    // Written out so absent values appear as `null`, as in the contract, instead of being left out.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(taskId, forKey: .taskId)
        try container.encode(model, forKey: .model)
        try container.encode(state, forKey: .state)
        try container.encode(param, forKey: .param)
        try container.encode(resultJson, forKey: .resultJson)
        try container.encode(failCode, forKey: .failCode)
        try container.encode(failMsg, forKey: .failMsg)
        try container.encode(costTime, forKey: .costTime)
        try container.encode(completeTime, forKey: .completeTime)
        try container.encode(createTime, forKey: .createTime)
        try container.encode(updateTime, forKey: .updateTime)
        try container.encode(consumeCredits, forKey: .consumeCredits)
        try container.encodeIfPresent(remainedCredits, forKey: .remainedCredits)
        try container.encode(progress, forKey: .progress)
        try container.encode(engine, forKey: .engine)
    }
}
