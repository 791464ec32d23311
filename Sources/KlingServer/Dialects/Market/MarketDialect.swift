import Foundation
import Hummingbird
import KlingAPI
import KlingCore

/// The Market dialect (seed 004, kie.ai): `Authorization: Bearer`, `{code, msg, data}` envelopes.
enum MarketDialect: Dialect {
    static let name = "market"

    static func apiKey(from request: Request) -> String? {
        bearerToken(request)
    }

    static func errorBody(_ error: APIError) -> JSONValue {
        .object(["code": .number(Double(error.code)), "msg": .string(error.message), "data": .null])
    }

    static func success(_ data: JSONValue) -> Response {
        response(code: 200, body: .object(["code": 200, "msg": "success", "data": data]))
    }

    /// Market's state words.
    static func state(_ state: TaskState) -> String {
        switch state {
        case .queued: "waiting"
        case .running: "generating"
        case .succeeded: "success"
        case .failed: "fail"
        }
    }

    /// The `recordInfo` data object of a task.
    static func taskDetails(_ task: TaskRecord, links: ResultLinks) -> JSONValue {
        var resultJSON: JSONValue = .null
        if task.state == .succeeded, let video = links.videoURL(task) {
            var result: [String: JSONValue] = ["resultUrls": .array([.string(video)])]
            if let cover = links.coverURL(task) { result["coverUrl"] = .string(cover) }
            resultJSON = .string(JSONValue.object(result).jsonString())
        }
        return .object([
            "taskId": .string(task.id),
            "model": .string(task.model),
            "state": .string(state(task.state)),
            "param": .string(task.params),
            "resultJson": resultJSON,
            "failCode": .string(task.failure.map { String($0.code) } ?? ""),
            "failMsg": .string(task.failure?.message ?? ""),
            "costTime": .number(Double(task.costTimeMillis)),
            "completeTime": task.completedAt.map { .number(Double($0)) } ?? .null,
            "createTime": .number(Double(task.createdAt)),
            "updateTime": .number(Double(task.updatedAt)),
            "progress": .number(Double(task.progress)),
            "engine": task.engine.map(JSONValue.string) ?? .null,
        ])
    }
}

/// `Authorization: Bearer KEY` → KEY.
func bearerToken(_ request: Request) -> String? {
    guard let header = request.headers[.authorization] else { return nil }
    let parts = header.split(separator: " ", maxSplits: 1)
    guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
    return parts[1].trimmingCharacters(in: .whitespaces)
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
}
