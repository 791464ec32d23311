import AsyncHTTPClient
import Foundation
import KlingAPI

/// The Market reseller (seed 004, kie.ai): `POST /api/v1/jobs/createTask`, `GET /api/v1/jobs/recordInfo?taskId=`,
/// `Authorization: Bearer KEY`.
public struct MarketProvider: UpstreamProvider {
    public let engineName = "kling-market"
    private let reseller: ResellerConnection

    public init(baseURL: String, key: String, client: HTTPClient? = nil, timeout: Duration = .seconds(30)) {
        reseller = ResellerConnection(
            engine: engineName, baseURL: baseURL, keyHeader: ("Authorization", "Bearer \(key)"), client: client, timeout: timeout)
    }

    /// The createTask body for a canonical request (a negative prompt and an explicit camera move have no Market
    /// field and are left out; the prompt still carries its words).
    public static func body(for request: GenerationRequest, callbackURL: String?) -> JSONValue {
        var input: [String: JSONValue] = [
            "duration": .string(String(request.duration)),
            "mode": .string(request.mode.rawValue),
            "sound": .bool(request.hasAudio),
            "multi_shots": .bool(request.multiShot),
        ]
        if let prompt = request.prompt, !request.multiShot { input["prompt"] = .string(prompt) }
        if !request.imageURLs.isEmpty { input["image_urls"] = .array(request.imageURLs.map(JSONValue.string)) }
        if let aspect = request.aspectRatio { input["aspect_ratio"] = .string(aspect.rawValue) }
        if request.multiShot {
            input["multi_prompt"] = .array(
                request.shots.map { .object(["prompt": .string($0.prompt), "duration": .number(Double($0.duration))]) })
        }
        if !request.elements.isEmpty {
            input["kling_elements"] = .array(
                request.elements.map { element in
                    var item: [String: JSONValue] = ["name": .string(element.name), "description": .string(element.description)]
                    if !element.imageURLs.isEmpty { item["element_input_urls"] = .array(element.imageURLs.map(JSONValue.string)) }
                    if !element.videoURLs.isEmpty { item["element_input_video_urls"] = .array(element.videoURLs.map(JSONValue.string)) }
                    return .object(item)
                })
        }
        var body: [String: JSONValue] = ["model": .string("kling-3.0/video"), "input": .object(input)]
        if let callbackURL { body["callBackUrl"] = .string(callbackURL) }
        return .object(body)
    }

    public func unsupportedReason(_ request: GenerationRequest) -> String? {
        if request.mode == .fourK { return "the Market API has no 4k mode" }
        if request.multiShot && request.shotType == .intelligence { return "the Market API has no intelligence multi-shot" }
        return nil
    }

    public func submit(_ request: GenerationRequest, taskID: String, callbackURL: String?) async throws -> String {
        try await reseller.create(
            "/api/v1/jobs/createTask", body: Self.body(for: request, callbackURL: callbackURL), action: "createTask", idField: "taskId")
    }

    public func status(of upstreamTaskID: String, request: GenerationRequest) async throws -> UpstreamStatus {
        let query = KlingOfficialProvider.escaped(upstreamTaskID)
        let (data, status) = try await reseller.call(.GET, "/api/v1/jobs/recordInfo?taskId=\(query)", action: "recordInfo")
        switch data["state"]?.text {
        case "waiting", "queuing": return .queued
        case "generating": return .running(progress: data["progress"]?.integer)
        case "success":
            // resultJson is a JSON string: {"resultUrls":[...],"coverUrl":...}
            let result = data["resultJson"]?.text.flatMap { JSONValue.parse(Data($0.utf8)) }
            guard let url = result?["resultUrls"]?.array?.first?.text else {
                throw UpstreamError.malformed(engineName, status: status, message: "state success without resultJson.resultUrls[0]")
            }
            return .succeeded(videoURL: url, coverURL: result?["coverUrl"]?.text)
        case "fail":
            let message = data["failMsg"]?.text.flatMap { $0.isEmpty ? nil : $0 } ?? "the task failed without a reason"
            let code = data["failCode"]?.text.flatMap { $0.isEmpty ? nil : $0 }
            return .failed(reason: code.map { "\(message) (failCode \($0))" } ?? message)
        case let other:
            throw UpstreamError.malformed(engineName, status: status, message: "unknown state \(other ?? "null")")
        }
    }
}
