import AsyncHTTPClient
import Foundation
import KlingAPI

/// The CRUN reseller (seed 000): `POST /api/v1/client/job/CreateTask`, `GET /api/v1/client/job/TaskInfo?task_id=`,
/// `x-api-key: KEY`.
public struct CRUNProvider: UpstreamProvider {
    public let engineName = "kling-crun"
    private let reseller: ResellerConnection

    public init(baseURL: String, key: String, client: HTTPClient? = nil, timeout: Duration = .seconds(30)) {
        reseller = ResellerConnection(engine: engineName, baseURL: baseURL, keyHeader: ("x-api-key", key), client: client, timeout: timeout)
    }

    /// The CreateTask body for a canonical request (no negative prompt or camera field in seed 000).
    public static func body(for request: GenerationRequest, callbackURL: String?) -> JSONValue {
        var input: [String: JSONValue] = [
            "duration": .number(Double(request.duration)),
            "mode": .string(request.mode == .fourK ? "4K" : request.mode.rawValue),
            "audio": .bool(request.hasAudio),
            "multi_shots": .bool(request.multiShot),
        ]
        if let prompt = request.prompt { input["prompt"] = .string(prompt) }
        if !request.imageURLs.isEmpty { input["img_urls"] = .array(request.imageURLs.map(JSONValue.string)) }
        if let aspect = request.aspectRatio { input["aspect_ratio"] = .string(aspect.rawValue) }
        if request.multiShot {
            input["shot_type"] = .string((request.shotType ?? .customize).rawValue)
            if !request.shots.isEmpty {
                input["multi_prompt"] = .array(
                    request.shots.map { .object(["prompt": .string($0.prompt), "duration": .number(Double($0.duration))]) })
            }
        }
        if !request.elements.isEmpty {
            input["element_list"] = .array(
                request.elements.map {
                    .object([
                        "name": .string($0.name), "description": .string($0.description),
                        "element_image_urls": .array($0.imageURLs.map(JSONValue.string)),
                    ])
                })
        }
        var body: [String: JSONValue] = ["model": .string("kling/v3"), "input": .object(input)]
        if let callbackURL { body["callback_url"] = .string(callbackURL) }
        return .object(body)
    }

    public func unsupportedReason(_ request: GenerationRequest) -> String? {
        if request.elements.contains(where: { !$0.videoURLs.isEmpty }) { return "the CRUN API takes no video elements" }
        return nil
    }

    public func submit(_ request: GenerationRequest, taskID: String, callbackURL: String?) async throws -> String {
        try await reseller.create(
            "/api/v1/client/job/CreateTask", body: Self.body(for: request, callbackURL: callbackURL), action: "CreateTask", idField: "task_id")
    }

    public func status(of upstreamTaskID: String, request: GenerationRequest) async throws -> UpstreamStatus {
        let query = KlingOfficialProvider.escaped(upstreamTaskID)
        let (data, status) = try await reseller.call(.GET, "/api/v1/client/job/TaskInfo?task_id=\(query)", action: "TaskInfo")
        switch data["status"]?.text {
        case "pending": return .queued
        case "running": return .running(progress: data["progress"]?.integer)
        case "success":
            guard let url = data["result"]?["media_urls"]?.array?.first?.text else {
                throw UpstreamError.malformed(engineName, status: status, message: "status success without result.media_urls[0]")
            }
            return .succeeded(videoURL: url, coverURL: data["result"]?["cover_url"]?.text)
        case "failed":
            let message = data["result"]?["message"]?.text.flatMap { $0.isEmpty ? nil : $0 } ?? "the task failed without a reason"
            let code = data["result"]?["code"]?.integer
            return .failed(reason: code.map { "\(message) (code \($0))" } ?? message)
        case let other:
            throw UpstreamError.malformed(engineName, status: status, message: "unknown status \(other ?? "null")")
        }
    }
}
