import Foundation
import HTTPTypes
import Hummingbird
import KlingAPI
import KlingCore

/// The CRUN dialect (seed 000): `x-api-key`, `{code, message, data}` envelopes.
enum CRUNDialect: Dialect {
    static let name = "crun"

    static func apiKey(from request: Request) -> String? {
        guard let field = HTTPField.Name("x-api-key") else { return nil }
        return request.headers[field]?.trimmingCharacters(in: .whitespaces)
    }

    static func errorBody(_ error: APIError) -> JSONValue {
        .object(["code": .number(Double(error.code)), "message": .string(error.message), "data": .null])
    }

    static func success(_ data: JSONValue) -> Response {
        response(code: 200, body: .object(["code": 200, "message": "success", "data": data]))
    }

    /// CRUN's status words.
    static func status(_ state: TaskState) -> String {
        switch state {
        case .queued: "pending"
        case .running: "running"
        case .succeeded: "success"
        case .failed: "failed"
        }
    }

    /// The `TaskInfo` data object of a task (also the callback payload).
    static func taskInfo(_ task: TaskRecord, links: ResultLinks) -> JSONValue {
        var result: JSONValue = .null
        if task.state == .succeeded, let video = links.videoURL(task) {
            var object: [String: JSONValue] = ["media_urls": .array([.string(video)])]
            if let cover = links.coverURL(task) { object["cover_url"] = .string(cover) }
            result = .object(object)
        } else if task.state == .failed, let failure = task.failure {
            result = .object(["code": .number(Double(failure.code)), "message": .string(failure.message)])
        }
        let params = JSONValue.parse(Data(task.params.utf8)) ?? .null
        return .object([
            "task_id": .string(task.id),
            "provider": "kling",
            "model_version": "kling/v3",
            "status": .string(status(task.state)),
            "param": params,
            "create_at": .number(Double(task.createdAt / 1000)),
            "result": result,
            "duration_s": task.completedAt == nil ? .null : .number(Double(task.costTimeMillis) / 1000),
            "complete_at": task.completedAt.map { .number(Double($0 / 1000)) } ?? .null,
            "credits": 0,
            "source": "api",
            "progress": .number(Double(task.progress)),
            "engine": task.engine.map(JSONValue.string) ?? .null,
        ])
    }
}
