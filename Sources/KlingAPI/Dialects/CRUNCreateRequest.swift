import Foundation

/// The CRUN dialect's create body (seed 000, `POST /api/v1/client/job/CreateTask`).
public enum CRUNCreateRequest {
    /// The only model name this dialect accepts.
    public static let model = "kling/v3"

    /// Decodes and validates a create body.
    public static func decode(_ body: Data) -> Result<DecodedCreateRequest, CreateRequestRejection> {
        let envelope: CreateRequestDecoding.Envelope
        switch CreateRequestDecoding.envelope(body, acceptedModels: [Self.model], modelHint: "kling/v3", callbackKey: "callback_url") {
        case .success(let value): envelope = value
        case .failure(let rejection): return .failure(rejection)
        }
        var input = envelope.input
        var request = envelope.request
        request.prompt = input.string("prompt")
        request.negativePrompt = input.string("negative_prompt")
        request.imageURLs = input.stringArray("img_urls") ?? []
        request.audio = input.bool("audio")
        request.duration = input.integer("duration") ?? 5
        request.aspectRatio = CreateRequestDecoding.aspect(input.string("aspect_ratio"), reader: &input, key: "aspect_ratio")
        request.mode = CreateRequestDecoding.mode(input.string("mode"), field: "mode", reader: &input, key: "mode") ?? .pro
        request.multiShot = input.bool("multi_shots", required: true) ?? false
        if request.multiShot {
            if let text = input.string("shot_type") {
                if let type = GenerationRequest.ShotType(rawValue: text) {
                    request.shotType = type
                } else {
                    input.fail("shot_type", "must be customize or intelligence (got \"\(text)\")")
                }
            }
            request.shots = CreateRequestDecoding.shots(&input, key: "multi_prompt")
            if request.shotType == nil { request.shotType = request.shots.isEmpty && input.has("prompt") ? .intelligence : .customize }
        }
        for key in ["input_compliance", "output_compliance"] {
            if let value = input.string(key), value != "enabled", value != "disabled" {
                input.fail(key, "must be enabled or disabled (got \"\(value)\")")
            }
        }
        if let items = input.objects("element_list") {
            for var item in items {
                let element = GenerationRequest.Element(
                    name: item.string("name", required: true) ?? "",
                    description: item.string("description", required: true) ?? "",
                    imageURLs: item.stringArray("element_image_urls") ?? []
                )
                input.append(item.issues)
                request.elements.append(element)
            }
        }
        return CreateRequestDecoding.finish(envelope, request: request, input: input, rules: .crun)
    }
}
