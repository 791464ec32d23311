import Foundation

/// Kling's official create bodies (`POST /v1/videos/text2video`, `POST /v1/videos/image2video`).
public enum KlingOfficialCreateRequest {
    /// Which endpoint the body came to.
    public enum Kind: String, Sendable, CaseIterable {
        case textToVideo = "text2video"
        case imageToVideo = "image2video"
    }

    /// Model names accepted.
    public static let models: Set<String> = ["kling-v3"]

    /// A decoded body with the fields the canonical request does not carry.
    public struct Decoded: Sendable {
        public var request: DecodedCreateRequest
        public var externalTaskID: String?
    }

    /// Decodes and validates a body whose `image` / `image_tail` are already URLs (the server turns raw base64 into
    /// links to uploads first).
    public static func decode(_ body: Data, kind: Kind) -> Result<Decoded, CreateRequestRejection> {
        let object: [String: JSONValue]
        switch CreateRequestDecoding.topLevelObject(body) {
        case .success(let value): object = value
        case .failure(let rejection): return .failure(rejection)
        }
        var top = FieldReader(object: object)
        var request = GenerationRequest()
        let model = top.string("model_name") ?? "kling-v3"
        if !models.contains(model) { top.fail("model_name", "must be kling-v3 (got \"\(model)\")") }
        request.prompt = top.string("prompt", required: kind == .textToVideo) ?? (kind == .imageToVideo ? "image to video" : nil)
        request.negativePrompt = top.string("negative_prompt")
        request.mode = CreateRequestDecoding.mode(top.string("mode"), field: "mode", reader: &top, key: "mode") ?? .std
        request.duration = top.integer("duration") ?? 5
        request.aspectRatio = CreateRequestDecoding.aspect(top.string("aspect_ratio"), reader: &top, key: "aspect_ratio")
        if kind == .textToVideo && request.aspectRatio == nil { request.aspectRatio = .landscape }
        switch top.string("sound") {
        case nil, "off": request.audio = false
        case "on": request.audio = true
        case let other?: top.fail("sound", "must be on or off (got \"\(other)\")")
        }
        if let value = object["cfg_scale"], value != .null {
            if case .number(let scale) = value, (0...1).contains(scale) {
                request.cfgScale = scale
            } else {
                top.fail("cfg_scale", "must be a number from 0 to 1 (got \(value.jsonString()))")
            }
        }
        let hasCamera = object["camera_control"] != nil && object["camera_control"] != .null
        if hasCamera, var camera = top.object("camera_control") {
            checkCamera(&camera, into: &top)
            request.cameraMotion = cameraMotion(object["camera_control"])
        }
        request.multiShot = top.bool("multi_shot") ?? false
        if request.multiShot {
            if let text = top.string("shot_type") {
                if let type = GenerationRequest.ShotType(rawValue: text) {
                    request.shotType = type
                } else {
                    top.fail("shot_type", "must be customize or intelligence (got \"\(text)\")")
                }
            }
            if let items = top.objects("multi_prompt") {
                for (position, var item) in items.enumerated() {
                    if let index = item.integer("index"), index != position + 1 {
                        item.fail("index", "must be \(position + 1) (shots are numbered from 1 in order; got \(index))")
                    }
                    let prompt = item.string("prompt", required: true)
                    let duration = item.integer("duration", required: true)
                    top.append(item.issues)
                    request.shots.append(GenerationRequest.Shot(prompt: prompt ?? "", duration: duration ?? 0))
                }
            }
            if request.shotType == nil { request.shotType = request.shots.isEmpty ? .intelligence : .customize }
        }
        if kind == .imageToVideo {
            if let image = top.string("image", required: true) { request.imageURLs.append(image) }
            if let tail = top.string("image_tail"), !tail.isEmpty {
                request.imageURLs.append(tail)
                if hasCamera { top.fail("image_tail", "cannot be used together with camera_control") }
            }
        } else {
            for key in ["image", "image_tail"] where top.has(key) {
                top.fail(key, "is for POST /v1/videos/image2video; text2video takes no image")
            }
        }
        let callback = top.string("callback_url")
        request.callbackURL = callback?.isEmpty == true ? nil : callback
        let external = top.string("external_task_id")
        if let external, external.isEmpty || external.count > 128 {
            top.fail("external_task_id", "must be 1 to 128 characters")
        }
        let envelope = CreateRequestDecoding.Envelope(object: object, top: top, input: FieldReader(object: [:]), model: model, request: request)
        return CreateRequestDecoding.finish(envelope, request: request, input: FieldReader(object: [:]), rules: .klingOfficial)
            .map { Decoded(request: $0, externalTaskID: external) }
    }

    /// The move a valid `camera_control` asks for: the simple axes by sign, the named types by their shape.
    static func cameraMotion(_ value: JSONValue?) -> GenerationRequest.CameraMotion? {
        guard case .object(let camera)? = value, case .string(let type)? = camera["type"] else { return nil }
        switch type {
        case "down_back": return .pullBack
        case "forward_up": return .pushIn
        case "right_turn_forward", "left_turn_forward": return .orbit
        default: break
        }
        guard case .object(let config)? = camera["config"] else { return nil }
        for (axis, value) in config {
            guard case .number(let amount) = value, amount != 0 else { continue }
            switch axis {
            case "zoom": return amount > 0 ? .pushIn : .pullBack
            case "horizontal", "pan": return amount > 0 ? .panRight : .panLeft
            case "vertical", "tilt": return amount > 0 ? .tiltUp : .tiltDown
            case "roll": return .orbit
            default: continue
            }
        }
        return nil
    }

    /// `camera_control`: a known type; `simple` needs a config with exactly one of the axes, in [-10, 10].
    private static func checkCamera(_ camera: inout FieldReader, into top: inout FieldReader) {
        let types = ["simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward"]
        let type = camera.string("type", required: true)
        if let type, !types.contains(type) { camera.fail("type", "must be one of \(types.joined(separator: ", ")) (got \"\(type)\")") }
        if type == "simple" {
            if var config = camera.object("config", required: true) {
                let axes = ["horizontal", "vertical", "pan", "tilt", "roll", "zoom"]
                var set: [String] = []
                for axis in axes where config.has(axis) {
                    if let value = config.integer(axis, allowString: false) {
                        if !(-10...10).contains(value) { config.fail(axis, "must be from -10 to 10 (got \(value))") }
                        if value != 0 { set.append(axis) }
                    }
                }
                if set.count != 1 { camera.fail("config", "must set exactly one of \(axes.joined(separator: ", ")) to a non-zero value") }
                camera.append(config.issues)
            }
        }
        top.append(camera.issues)
    }
}
