import Foundation

/// The Market dialect's create body (seed 004, `POST /api/v1/jobs/createTask`).
public enum MarketCreateRequest {
    /// Model names this dialect accepts (the seed's schema and its own examples disagree; both are taken).
    public static let acceptedModels: Set<String> = ["kling-3.0/video", "kling-3.0"]

    /// Decodes and validates a create body.
    public static func decode(_ body: Data) -> Result<DecodedCreateRequest, CreateRequestRejection> {
        let envelope: CreateRequestDecoding.Envelope
        switch CreateRequestDecoding.envelope(body, acceptedModels: acceptedModels, modelHint: "kling-3.0/video", callbackKey: "callBackUrl") {
        case .success(let value): envelope = value
        case .failure(let rejection): return .failure(rejection)
        }
        var input = envelope.input
        var request = envelope.request
        request.prompt = input.string("prompt")
        request.negativePrompt = input.string("negative_prompt")
        request.imageURLs = input.stringArray("image_urls") ?? []
        request.audio = input.bool("sound")
        request.duration = input.integer("duration") ?? 5
        request.aspectRatio = CreateRequestDecoding.aspect(input.string("aspect_ratio"), reader: &input, key: "aspect_ratio")
        request.mode = CreateRequestDecoding.mode(input.string("mode"), field: "mode", reader: &input, key: "mode") ?? .pro
        request.multiShot = input.bool("multi_shots") ?? false
        if request.multiShot {
            request.shotType = .customize
            request.shots = CreateRequestDecoding.shots(&input, key: "multi_prompt")
        }
        if let items = input.objects("kling_elements") {
            for var item in items {
                let element = GenerationRequest.Element(
                    name: item.string("name", required: true) ?? "",
                    description: item.string("description", required: true) ?? "",
                    imageURLs: item.stringArray("element_input_urls") ?? [],
                    videoURLs: item.stringArray("element_input_video_urls") ?? []
                )
                input.append(item.issues)
                request.elements.append(element)
            }
        }
        return CreateRequestDecoding.finish(envelope, request: request, input: input, rules: .market)
    }
}
