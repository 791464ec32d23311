import AsyncHTTPClient
import Foundation
import KlingAPI
import KlingJWT

/// Kling's official API (legacy v1): `POST /v1/videos/text2video` or `/image2video` with a JWT, then
/// `GET /v1/videos/{kind}/{task_id}`. Our task id goes out as `external_task_id`, so a create repeated after a crash
/// finds the first task instead of making a second.
public struct KlingOfficialProvider: UpstreamProvider {
    public let engineName = "kling-official"
    private let http: UpstreamHTTP
    private let signer: KlingTokenMinter

    /// A provider at `baseURL` (e.g. `https://api.klingai.com`) with the operator's access key / secret key pair.
    public init(baseURL: String, accessKey: String, secretKey: String, client: HTTPClient? = nil, timeout: Duration = .seconds(30)) async {
        http = UpstreamHTTP(engine: engineName, baseURL: baseURL, client: client ?? UpstreamHTTP.sharedClient, timeout: timeout)
        signer = KlingTokenMinter(accessKey: accessKey, secretKey: secretKey)
    }

    /// The endpoint kind of a request: image2video when it has a first frame.
    static func kind(of request: GenerationRequest) -> String { request.imageURLs.isEmpty ? "text2video" : "image2video" }

    /// The create body for a canonical request.
    public static func body(for request: GenerationRequest, taskID: String, callbackURL: String?) -> JSONValue {
        var body: [String: JSONValue] = [
            "model_name": .string("kling-v3"),
            "mode": .string(request.mode.rawValue),
            "duration": .string(String(request.duration)),
            "sound": .string(request.hasAudio ? "on" : "off"),
            "external_task_id": .string(taskID),
        ]
        if let prompt = request.prompt { body["prompt"] = .string(prompt) }
        if let negative = request.negativePrompt { body["negative_prompt"] = .string(negative) }
        if let aspect = request.aspectRatio { body["aspect_ratio"] = .string(aspect.rawValue) }
        if let callbackURL { body["callback_url"] = .string(callbackURL) }
        if let first = request.imageURLs.first { body["image"] = .string(first) }
        if let last = request.lastFrameURL { body["image_tail"] = .string(last) }
        if request.multiShot {
            body["multi_shot"] = .bool(true)
            body["shot_type"] = .string((request.shotType ?? .customize).rawValue)
            if !request.shots.isEmpty {
                body["multi_prompt"] = .array(
                    request.shots.enumerated().map { index, shot in
                        .object(["index": .number(Double(index + 1)), "prompt": .string(shot.prompt), "duration": .string(String(shot.duration))])
                    })
            }
        }
        if !request.elements.isEmpty {
            body["element_list"] = .array(
                request.elements.map { element in
                    var item: [String: JSONValue] = ["name": .string(element.name), "description": .string(element.description)]
                    if !element.imageURLs.isEmpty { item["element_input_urls"] = .array(element.imageURLs.map(JSONValue.string)) }
                    if !element.videoURLs.isEmpty { item["element_input_video_urls"] = .array(element.videoURLs.map(JSONValue.string)) }
                    return .object(item)
                })
        }
        if let camera = request.cameraMotion, request.lastFrameURL == nil, let control = cameraControl(camera) {
            body["camera_control"] = control
        }
        return .object(body)
    }

    /// `camera_control` for a canonical move (the inverse of how KlingKit's own Kling dialect reads it).
    static func cameraControl(_ motion: GenerationRequest.CameraMotion) -> JSONValue? {
        func simple(_ axis: String, _ amount: Double) -> JSONValue {
            .object(["type": .string("simple"), "config": .object([axis: .number(amount)])])
        }
        switch motion {
        case .pushIn: return simple("zoom", 5)
        case .pullBack: return simple("zoom", -5)
        case .panLeft: return simple("pan", -5)
        case .panRight: return simple("pan", 5)
        case .tiltUp: return simple("tilt", 5)
        case .tiltDown: return simple("tilt", -5)
        case .orbit: return .object(["type": .string("right_turn_forward")])
        case .still: return nil
        }
    }

    public func unsupportedReason(_ request: GenerationRequest) -> String? { nil }

    public func submit(_ request: GenerationRequest, taskID: String, callbackURL: String?) async throws -> String {
        let body = Self.body(for: request, taskID: taskID, callbackURL: callbackURL)
        let answer = try await http.send(.POST, "/v1/videos/\(Self.kind(of: request))", headers: try await authorization(), body: body)
        let data = try envelope(answer, action: "create")
        guard let id = data["task_id"]?.text, !id.isEmpty else {
            throw UpstreamError.malformed(engineName, status: answer.status, message: "create answered without data.task_id")
        }
        return id
    }

    public func status(of upstreamTaskID: String, request: GenerationRequest) async throws -> UpstreamStatus {
        let path = "/v1/videos/\(Self.kind(of: request))/\(Self.escaped(upstreamTaskID))"
        let answer = try await http.send(.GET, path, headers: try await authorization())
        let data = try envelope(answer, action: "query")
        switch data["task_status"]?.text {
        case "submitted": return .queued
        case "processing": return .running(progress: data["progress"]?.integer)
        case "succeed":
            guard let video = data["task_result"]?["videos"]?.array?.first, let url = video["url"]?.text else {
                throw UpstreamError.malformed(engineName, status: answer.status, message: "task succeeded without task_result.videos[0].url")
            }
            return .succeeded(videoURL: url, coverURL: video["cover_url"]?.text ?? video["cover_image_url"]?.text)
        case "failed":
            // Kling's reason is in task_status_msg, not in the envelope's message.
            let reason = data["task_status_msg"]?.text.flatMap { $0.isEmpty ? nil : $0 } ?? "the task failed without a reason"
            return .failed(reason: reason)
        case let other:
            throw UpstreamError.malformed(engineName, status: answer.status, message: "unknown task_status \(other ?? "null")")
        }
    }

    private func authorization() async throws -> [(String, String)] {
        [("Authorization", "Bearer " + (try await signer.token()))]
    }

    /// The `data` of a successful envelope (`code` 0), or the error Kling's code and HTTP status mean.
    private func envelope(_ answer: UpstreamHTTP.Answer, action: String) throws -> JSONValue {
        let code = answer.json?["code"]?.integer
        let message = answer.json?["message"]?.text ?? "no message"
        if (200..<300).contains(answer.status), code == 0, let data = answer.json?["data"], data != .null { return data }
        let described = "\(action) refused" + (code.map { " with code \($0)" } ?? "") + ": \(message)"
        switch code {
        case 1302?, 1303?: return try fail(.rateLimited(engineName, status: answer.status, message: described, retryAfter: answer.retryAfter))
        case 1102?:  // the operator's Kling account is out of credits: another engine may still serve
            return try fail(.unavailable(engineName, status: answer.status, message: described))
        case 1000?, 1001?, 1002?, 1003?, 1004?, 1103?:
            return try fail(.unauthorized(engineName, status: answer.status, message: described))
        case 5000?, 5001?: return try fail(.unavailable(engineName, status: answer.status, message: described, retryAfter: answer.retryAfter))
        default:
            if (200..<300).contains(answer.status) {
                return try fail(.malformed(engineName, status: answer.status, message: described))
            }
            return try fail(http.failure(status: answer.status, message: described, retryAfter: answer.retryAfter))
        }
    }

    private func fail(_ error: UpstreamError) throws -> JSONValue { throw error }

    static func escaped(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? id
    }
}
