import Foundation
import Hummingbird
import KlingAPI
import KlingCore

/// Kling's official API dialect (legacy v1): `{code, message, request_id, data}` with Kling's numeric codes.
enum KlingOfficialDialect: Dialect {
    static let name = "kling"
    static let callbackField: String? = "callback_url"

    static func apiKey(from request: Request) -> String? { bearerToken(request) }

    /// Kling's code and HTTP status for one of our errors.
    static func klingCode(_ error: APIError) -> (code: Int, status: Int) {
        switch error.code {
        case 401:
            switch error.reason {
            case .credentialsMissing?: (1001, 401)
            case .tokenNotYetValid?: (1003, 401)
            case .tokenExpired?: (1004, 401)
            default: (1002, 401)
            }
        case 402: (1102, 429)
        case 404: (1203, 404)
        case 409, 413, 422: (1201, 400)
        case 429: error.reason == .tooManyActiveTasks ? (1303, 429) : (1302, 429)
        case 455: (5001, 503)
        case 505: (1103, 403)
        default: (5000, 500)
        }
    }

    static func httpStatus(_ code: Int) -> Int {
        klingCode(APIError(code: code, message: "")).status
    }

    static func errorBody(_ error: APIError) -> JSONValue {
        .object([
            "code": .number(Double(klingCode(error).code)), "message": .string(error.message),
            "request_id": .string(APIKeys.randomID()), "data": .null,
        ])
    }

    /// Kling's status words.
    static func status(_ state: TaskState) -> String {
        switch state {
        case .queued: "submitted"
        case .running: "processing"
        case .succeeded: "succeed"
        case .failed: "failed"
        }
    }

    /// The success envelope.
    struct Envelope<Payload: Encodable & Sendable>: Encodable, Sendable {
        var code = 0
        var message = "SUCCEED"
        var requestID = APIKeys.randomID()
        var data: Payload
        private enum CodingKeys: String, CodingKey { case code, message, requestID = "request_id", data }
    }
}

/// The `data` object of a Kling task (also its callback payload).
struct KlingTaskData: Encodable, Sendable {
    var taskID: String
    var taskStatus: String
    var taskStatusMessage: String
    var taskInfo: [String: String]
    var createdAt: Int64
    var updatedAt: Int64
    var finalUnitDeduction: String
    var taskResult: TaskResult?
    /// KlingKit extensions.
    var progress: Int
    var engine: String?

    struct TaskResult: Encodable, Sendable {
        var videos: [Video]
    }

    struct Video: Encodable, Sendable {
        var id: String
        var url: String
        var duration: String
    }

    init(_ task: TaskRecord, links: ResultLinks) {
        taskID = task.id
        taskStatus = KlingOfficialDialect.status(task.state)
        taskStatusMessage = task.failure?.message ?? ""
        taskInfo = task.externalID.map { ["external_task_id": $0] } ?? [:]
        createdAt = task.createdAt
        updatedAt = task.updatedAt
        finalUnitDeduction = String(task.consumedCredits)
        if task.state == .succeeded, let url = links.videoURL(task) {
            taskResult = TaskResult(videos: [Video(id: task.id + "-0", url: url, duration: String(task.request.duration))])
        }
        progress = task.progress
        engine = task.engine
    }

    private enum CodingKeys: String, CodingKey {
        case taskID = "task_id", taskStatus = "task_status", taskStatusMessage = "task_status_msg", taskInfo = "task_info"
        case createdAt = "created_at", updatedAt = "updated_at", finalUnitDeduction = "final_unit_deduction", taskResult = "task_result"
        case progress, engine
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(taskID, forKey: .taskID)
        try container.encode(taskStatus, forKey: .taskStatus)
        try container.encode(taskStatusMessage, forKey: .taskStatusMessage)
        try container.encode(taskInfo, forKey: .taskInfo)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
        try container.encode(finalUnitDeduction, forKey: .finalUnitDeduction)
        try container.encode(taskResult, forKey: .taskResult)
        try container.encode(progress, forKey: .progress)
        try container.encode(engine, forKey: .engine)
    }
}
