import Foundation
import KlingAPI

/// A ``VideoRequest`` in one dialect's words: the create path, the JSON body, and every issue the server's decoder
/// (the same `KlingAPI` code) finds in that body, plus what the dialect cannot express.
struct WireRequest {
    let path: String
    let body: JSONValue
    let issues: [ValidationIssue]

    init(_ request: VideoRequest, dialect: KlingClient.Dialect) {
        let generation = request.generation
        var unsupported: [ValidationIssue] = []
        func refuse(_ field: String, _ message: String) { unsupported.append(ValidationIssue(field: field, message: message)) }
        switch dialect {
        case .market:
            path = "/api/v1/jobs/createTask"
            body = Self.market(generation)
            if generation.multiShot && generation.shotType == .intelligence {
                refuse("input.shot_type", "intelligence is not available in the Market dialect (it takes customize shots only); use the crun or kling dialect")
            }
            if generation.cameraMotion != nil { refuse("camera_control", "is only available in the kling dialect") }
            if request.externalTaskID != nil { refuse("external_task_id", "is only available in the kling dialect") }
        case .crun:
            path = "/api/v1/client/job/CreateTask"
            body = Self.crun(generation)
            for (index, element) in generation.elements.enumerated() where !element.videoURLs.isEmpty {
                refuse("input.element_list[\(index)].element_video_urls", "video elements are only available in the market dialect")
            }
            if generation.cameraMotion != nil { refuse("camera_control", "is only available in the kling dialect") }
            if request.externalTaskID != nil { refuse("external_task_id", "is only available in the kling dialect") }
        case .klingOfficial:
            let kind: KlingOfficialCreateRequest.Kind = generation.imageURLs.isEmpty ? .textToVideo : .imageToVideo
            path = "/v1/videos/\(kind.rawValue)"
            body = Self.kling(generation, externalTaskID: request.externalTaskID)
            if !generation.elements.isEmpty { refuse("elements", "are not available in the kling dialect; use the market or crun dialect") }
            if generation.imageURLs.count > 2 {
                refuse("image", "the kling dialect takes at most a first frame (image) and a last frame (image_tail)")
            }
        }
        var checked = body
        if dialect == .klingOfficial {
            // The server keeps raw base64 `image` / `image_tail` as uploads before decoding, and refuses anything else
            // that is not an http(s) URL with this one message.
            for (index, key) in ["image", "image_tail"].enumerated() where index < generation.imageURLs.count {
                let value = generation.imageURLs[index]
                guard !value.isEmpty, !value.hasPrefix("http://"), !value.hasPrefix("https://") else { continue }
                guard !value.hasPrefix("data:"), let bytes = Data(base64Encoded: value, options: .ignoreUnknownCharacters), !bytes.isEmpty else {
                    issues = [ValidationIssue(field: key, message: "must be an http(s) URL or raw base64 (without a data: prefix)")]
                    return
                }
                if case .object(var object) = checked {
                    object[key] = .string("https://upload.invalid/\(key).png")
                    checked = .object(object)
                }
            }
        }
        let data = Data(checked.jsonString().utf8)
        let decoded: Result<DecodedCreateRequest, CreateRequestRejection>
        switch dialect {
        case .market: decoded = MarketCreateRequest.decode(data)
        case .crun: decoded = CRUNCreateRequest.decode(data)
        case .klingOfficial:
            decoded = KlingOfficialCreateRequest.decode(data, kind: generation.imageURLs.isEmpty ? .textToVideo : .imageToVideo).map(\.request)
        }
        var issues = unsupported
        switch decoded {
        case .success: break
        case .failure(.invalid(let found)): issues.append(contentsOf: found)
        case .failure(.malformed(let message)): issues.append(ValidationIssue(field: "body", message: message))
        }
        self.issues = issues
    }

    /// The body as bytes.
    var data: Data { Data(body.jsonString().utf8) }

    private static func string(_ value: String?) -> JSONValue? { value.map { .string($0) } }
    private static func number(_ value: Int) -> JSONValue { .number(Double(value)) }

    /// Seed 004: `{model, callBackUrl, input:{prompt, image_urls, sound, duration, aspect_ratio, mode, multi_shots, multi_prompt, kling_elements}}`.
    static func market(_ request: GenerationRequest) -> JSONValue {
        var input: [String: JSONValue] = [
            "duration": .string(String(request.duration)), "mode": .string(request.mode == .fourK ? "4K" : request.mode.rawValue),
            "multi_shots": .bool(request.multiShot),
        ]
        input["prompt"] = string(request.prompt)
        input["negative_prompt"] = string(request.negativePrompt)
        if !request.imageURLs.isEmpty { input["image_urls"] = .array(request.imageURLs.map { .string($0) }) }
        if let audio = request.audio { input["sound"] = .bool(audio) }
        input["aspect_ratio"] = string(request.aspectRatio?.rawValue)
        if request.multiShot {
            input["multi_prompt"] = .array(request.shots.map { .object(["prompt": .string($0.prompt), "duration": number($0.duration)]) })
        }
        if !request.elements.isEmpty {
            input["kling_elements"] = .array(
                request.elements.map { element in
                    var object: [String: JSONValue] = ["name": .string(element.name), "description": .string(element.description)]
                    if !element.imageURLs.isEmpty { object["element_input_urls"] = .array(element.imageURLs.map { .string($0) }) }
                    if !element.videoURLs.isEmpty { object["element_input_video_urls"] = .array(element.videoURLs.map { .string($0) }) }
                    return .object(object)
                })
        }
        var top: [String: JSONValue] = ["model": .string("kling-3.0/video"), "input": .object(input)]
        top["callBackUrl"] = string(request.callbackURL)
        return .object(top)
    }

    /// Seed 000: `{model, callback_url, input:{prompt, img_urls, audio, duration, aspect_ratio, mode, multi_shots, shot_type, multi_prompt, element_list}}`.
    static func crun(_ request: GenerationRequest) -> JSONValue {
        var input: [String: JSONValue] = [
            "duration": number(request.duration), "mode": .string(request.mode == .fourK ? "4K" : request.mode.rawValue),
            "multi_shots": .bool(request.multiShot),
        ]
        input["prompt"] = string(request.prompt)
        input["negative_prompt"] = string(request.negativePrompt)
        if !request.imageURLs.isEmpty { input["img_urls"] = .array(request.imageURLs.map { .string($0) }) }
        if let audio = request.audio { input["audio"] = .bool(audio) }
        input["aspect_ratio"] = string(request.aspectRatio?.rawValue)
        if request.multiShot {
            input["shot_type"] = .string((request.shotType ?? .customize).rawValue)
            if request.shotType != .intelligence {
                input["multi_prompt"] = .array(request.shots.map { .object(["prompt": .string($0.prompt), "duration": number($0.duration)]) })
            }
        }
        if !request.elements.isEmpty {
            input["element_list"] = .array(
                request.elements.map {
                    .object([
                        "name": .string($0.name), "description": .string($0.description),
                        "element_image_urls": .array($0.imageURLs.map { .string($0) }),
                    ])
                })
        }
        var top: [String: JSONValue] = ["model": .string("kling/v3"), "input": .object(input)]
        top["callback_url"] = string(request.callbackURL)
        return .object(top)
    }

    /// Kling official v1: flat fields; `image` / `image_tail` for image2video.
    static func kling(_ request: GenerationRequest, externalTaskID: String?) -> JSONValue {
        var top: [String: JSONValue] = [
            "model_name": .string("kling-v3"), "mode": .string(request.mode.rawValue), "duration": .string(String(request.duration)),
        ]
        top["prompt"] = string(request.prompt)
        top["negative_prompt"] = string(request.negativePrompt)
        top["aspect_ratio"] = string(request.aspectRatio?.rawValue)
        if let audio = request.audio { top["sound"] = .string(audio ? "on" : "off") }
        if let motion = request.cameraMotion, let camera = camera(motion) { top["camera_control"] = camera }
        if request.multiShot {
            top["multi_shot"] = .bool(true)
            top["shot_type"] = .string((request.shotType ?? .customize).rawValue)
            if request.shotType != .intelligence {
                top["multi_prompt"] = .array(
                    request.shots.enumerated().map { index, shot in
                        .object(["index": number(index + 1), "prompt": .string(shot.prompt), "duration": .string(String(shot.duration))])
                    })
            }
        }
        if let first = request.imageURLs.first { top["image"] = .string(first) }
        if request.imageURLs.count > 1 { top["image_tail"] = .string(request.imageURLs[1]) }
        top["callback_url"] = string(request.callbackURL)
        top["external_task_id"] = string(externalTaskID)
        return .object(top)
    }

    /// Kling's `camera_control` for a canonical camera move (`nil` for a still camera: no control at all).
    static func camera(_ motion: GenerationRequest.CameraMotion) -> JSONValue? {
        let (axis, amount): (String, Int)
        switch motion {
        case .pushIn: (axis, amount) = ("zoom", 5)
        case .pullBack: (axis, amount) = ("zoom", -5)
        case .panLeft: (axis, amount) = ("pan", -5)
        case .panRight: (axis, amount) = ("pan", 5)
        case .tiltUp: (axis, amount) = ("tilt", 5)
        case .tiltDown: (axis, amount) = ("tilt", -5)
        case .orbit: (axis, amount) = ("roll", 5)
        case .still: return nil
        }
        return .object(["type": .string("simple"), "config": .object([axis: .number(Double(amount))])])
    }
}
