import Foundation

/// The OpenAI Videos create body (`POST /v1/videos`, JSON or multipart form fields).
public enum OpenAICreateRequest {
    /// Model names accepted: KlingKit's, and OpenAI's so unchanged programs work (`sora-2-pro` means pro quality
    /// when `size` does not say otherwise).
    public static let models: Set<String> = ["kling-3.0", "kling-3.0/video", "sora-2", "sora-2-pro"]
    /// The model reported when the caller sends none.
    public static let defaultModel = "kling-3.0"

    /// `size` values: each is a mode (frame size class) and an aspect ratio.
    public static let sizes: [String: (GenerationRequest.Mode, GenerationRequest.AspectRatio)] = [
        "1280x720": (.std, .landscape), "720x1280": (.std, .portrait), "720x720": (.std, .square),
        "1920x1080": (.pro, .landscape), "1080x1920": (.pro, .portrait), "1080x1080": (.pro, .square),
        "1792x1024": (.pro, .landscape), "1024x1792": (.pro, .portrait),
        "3840x2160": (.fourK, .landscape), "2160x3840": (.fourK, .portrait), "2160x2160": (.fourK, .square),
    ]

    /// The `size` string of a request (the class's frame size at its aspect ratio).
    public static func size(of request: GenerationRequest) -> String {
        let (long, short) =
            switch request.mode {
            case .std: (1280, 720)
            case .pro: (1920, 1080)
            case .fourK: (3840, 2160)
            }
        switch request.aspectRatio ?? .landscape {
        case .landscape: return "\(long)x\(short)"
        case .portrait: return "\(short)x\(long)"
        case .square: return "\(short)x\(short)"
        }
    }

    /// Decodes a JSON body.
    public static func decode(_ body: Data, firstFrameURL: String? = nil) -> Result<DecodedCreateRequest, CreateRequestRejection> {
        switch CreateRequestDecoding.topLevelObject(body) {
        case .success(let object): return decode(object, firstFrameURL: firstFrameURL)
        case .failure(let rejection): return .failure(rejection)
        }
    }

    /// Decodes the fields of a JSON object or a multipart form (an uploaded `input_reference` arrives as
    /// `firstFrameURL`).
    public static func decode(_ object: [String: JSONValue], firstFrameURL: String?) -> Result<DecodedCreateRequest, CreateRequestRejection> {
        var top = FieldReader(object: object)
        var request = GenerationRequest()
        let model = top.string("model") ?? defaultModel
        if !models.contains(model) { top.fail("model", "must be kling-3.0 (or sora-2, sora-2-pro) (got \"\(model)\")") }
        request.prompt = top.string("prompt", required: true)
        request.duration = top.integer("seconds") ?? 4
        let size = top.string("size") ?? "1280x720"
        if let (mode, aspect) = sizes[size] {
            request.mode = model == "sora-2-pro" && mode == .std ? .pro : mode
            request.aspectRatio = aspect
        } else {
            top.fail("size", "must be one of \(sizes.keys.sorted().joined(separator: ", ")) (got \"\(size)\")")
        }
        request.audio = true  // OpenAI videos come with sound
        if let firstFrameURL {
            request.imageURLs = [firstFrameURL]
        } else if case .string(let url)? = object["input_reference"] {
            request.imageURLs = [url]
        } else if object["input_reference"] != nil, object["input_reference"] != .null {
            if var reference = top.object("input_reference") {
                if let url = reference.string("image_url", required: true) { request.imageURLs = [url] }
                top.append(reference.issues)
            }
        }
        request.callbackURL = nil
        var params = object
        params["model"] = .string(model)
        let envelope = CreateRequestDecoding.Envelope(
            object: params, top: top, input: FieldReader(object: [:]), model: model, request: request)
        return CreateRequestDecoding.finish(envelope, request: request, input: FieldReader(object: [:]), rules: .openAI)
    }
}
