import Foundation
import Hummingbird
import KlingAPI
import KlingCore

/// The OpenAI Videos dialect: `Authorization: Bearer`, OpenAI's error object and HTTP statuses.
enum OpenAIDialect: Dialect {
    static let name = "openai"
    static let callbackField: String? = nil

    static func apiKey(from request: Request) -> String? { bearerToken(request) }

    static func httpStatus(_ code: Int) -> Int {
        switch code {
        case 402, 429: 429
        case 422, 505: 400
        case 455: 503
        case 501: 500
        default: code
        }
    }

    static func errorBody(_ error: APIError) -> JSONValue {
        let (type, code): (String, String?) =
            switch error.code {
            case 401: ("invalid_request_error", "invalid_api_key")
            case 402: ("insufficient_quota", "insufficient_quota")
            case 404: ("invalid_request_error", "not_found")
            case 409: ("invalid_request_error", "conflict")
            case 413, 422: ("invalid_request_error", "invalid_value")
            case 429: ("rate_limit_exceeded", "rate_limit_exceeded")
            case 455: ("server_error", "maintenance")
            case 505: ("invalid_request_error", "feature_disabled")
            default: ("server_error", nil)
            }
        // Our messages start with the field they are about ("seconds: must be ..."): that is OpenAI's `param`.
        let head = error.message.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        let param: JSONValue = !head.isEmpty && !head.contains(" ") && head != error.message ? .string(head) : .null
        return .object([
            "error": .object([
                "message": .string(error.message), "type": .string(type), "param": param, "code": code.map(JSONValue.string) ?? .null,
            ])
        ])
    }

    /// OpenAI's status words.
    static func status(_ state: TaskState) -> String {
        switch state {
        case .queued: "queued"
        case .running: "in_progress"
        case .succeeded: "completed"
        case .failed: "failed"
        }
    }
}

/// The OpenAI video object of a task.
struct OpenAIVideo: Encodable, Sendable {
    var id: String
    var model: String
    var status: String
    var progress: Int
    var createdAt: Int64
    var completedAt: Int64?
    var expiresAt: Int64?
    var prompt: String?
    var seconds: String
    var size: String
    var error: VideoError?
    /// KlingKit extension: the engine that produced (or is producing) the video.
    var engine: String?

    struct VideoError: Encodable, Sendable {
        var code: String
        var message: String
    }

    init(_ task: TaskRecord, links: ResultLinks) {
        id = task.id
        model = task.model
        status = OpenAIDialect.status(task.state)
        progress = task.progress
        createdAt = task.createdAt / 1000
        completedAt = task.completedAt.map { $0 / 1000 }
        expiresAt = task.state == .succeeded && task.resultsExpiredAt == nil ? links.resultExpiry(task) : nil
        prompt = task.request.prompt
        seconds = String(task.request.duration)
        // The frame size made (a first frame's aspect decides it), else the one asked for.
        size = task.result.map { "\($0.width)x\($0.height)" } ?? OpenAICreateRequest.size(of: task.request)
        error = task.failure.map { VideoError(code: String($0.code), message: $0.message) }
        engine = task.engine
    }

    private enum CodingKeys: String, CodingKey {
        case id, object, model, status, progress, createdAt = "created_at", completedAt = "completed_at", expiresAt = "expires_at"
        case prompt, seconds, size, error, remixedFrom = "remixed_from_video_id", engine
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode("video", forKey: .object)
        try container.encode(model, forKey: .model)
        try container.encode(status, forKey: .status)
        try container.encode(progress, forKey: .progress)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(completedAt, forKey: .completedAt)
        try container.encode(expiresAt, forKey: .expiresAt)
        try container.encode(prompt, forKey: .prompt)
        try container.encode(seconds, forKey: .seconds)
        try container.encode(size, forKey: .size)
        try container.encode(error, forKey: .error)
        try container.encodeNil(forKey: .remixedFrom)
        try container.encode(engine, forKey: .engine)
    }
}
