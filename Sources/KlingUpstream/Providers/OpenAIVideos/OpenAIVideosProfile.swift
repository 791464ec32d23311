import Foundation
import KlingAPI

/// How a canonical request becomes one `/v1/videos` server's request (`KLING_OPENAI_VIDEOS_PROFILE`).
///
/// A profile never changes what was asked: the duration, the size class (the mode) and the aspect ratio are sent as
/// the model makes them or the request is refused (``unsupportedReason(_:)``), so the router tries the next engine.
public struct OpenAIVideosProfile: Sendable, Hashable {
    /// The profile's name in `KLING_OPENAI_VIDEOS_PROFILE`.
    public var name: String
    /// Durations the server makes, in whole seconds.
    public var seconds: Set<Int>
    /// The frame size sent for each size class and aspect ratio; a pair that is missing is not made by the model.
    public var sizes: [GenerationRequest.Mode: [GenerationRequest.AspectRatio: FrameSize]]
    /// For servers with SGLang's extension fields (SGLang Diffusion, vLLM-Omni): the model's frame rate, its
    /// frame-count rule and the sampler settings. `nil` sends OpenAI's fields only.
    public var model: ModelSettings?
    /// Whether the server takes a first frame (`input_reference`).
    public var takesFirstFrame: Bool
    /// A typical generation time for one second of video at each size class, for the progress estimate of servers
    /// that report none (SGLang answers `queued` until the video is done).
    public var expectedSecondsPerVideoSecond: [GenerationRequest.Mode: Double]

    /// A frame size in pixels.
    public struct FrameSize: Sendable, Hashable {
        public var width: Int
        public var height: Int
        public var text: String { "\(width)x\(height)" }
    }

    /// What an open-weight model needs besides OpenAI's fields.
    public struct ModelSettings: Sendable, Hashable {
        /// Frames per second the model was trained at.
        public var fps: Int
        /// Frame counts the model makes: `4n+1` (Wan, HunyuanVideo) or `8n+1` (LTX-2).
        public var frameMultiple: Int
        /// Sampler steps per size class (`num_inference_steps`).
        public var steps: [GenerationRequest.Mode: Int]
        /// `guidance_scale` at `cfg_scale` 0 and 1 (linear between); `cfg_scale` absent sends the midpoint.
        public var guidance: ClosedRange<Double>

        /// The frame count for a duration: `fps × seconds + 1`, which is of the model's form for every whole second
        /// (16 × s and 24 × s are multiples of 4 and 8).
        public func frames(seconds: Int) -> Int { fps * seconds + 1 }

        /// The guidance scale for a request's `cfg_scale`.
        public func guidanceScale(_ cfgScale: Double?) -> Double {
            let position = min(1, max(0, cfgScale ?? 0.5))
            return ((guidance.lowerBound + (guidance.upperBound - guidance.lowerBound) * position) * 100).rounded() / 100
        }
    }

    /// Why the server cannot make `request` exactly, naming the field, or `nil` when it can.
    public func unsupportedReason(_ request: GenerationRequest) -> String? {
        if request.lastFrameURL != nil { return "image_urls[1]: a last frame is not part of the /v1/videos contract" }
        if !request.elements.isEmpty { return "elements: element references are not part of the /v1/videos contract" }
        if request.firstFrameURL != nil && !takesFirstFrame { return "image_urls[0]: the \(name) profile takes no first frame" }
        if request.multiShot {
            if request.shotType == .intelligence { return "shot_type: intelligence multi-shot needs a model that writes its own storyboard" }
            for (index, shot) in request.shots.enumerated() where !seconds.contains(shot.duration) {
                return "multi_prompt[\(index)].duration: the \(name) profile makes \(Self.list(seconds)) s shots (asked \(shot.duration))"
            }
        } else if !seconds.contains(request.duration) {
            return "duration: the \(name) profile makes \(Self.list(seconds)) s videos (asked \(request.duration))"
        }
        guard let byAspect = sizes[request.mode] else {
            return "mode: the \(name) profile makes no \(request.mode == .fourK ? "4K" : request.mode.rawValue) videos"
        }
        if byAspect[request.aspectRatio ?? .landscape] == nil {
            return "aspect_ratio: the \(name) profile makes no \((request.aspectRatio ?? .landscape).rawValue) videos in \(request.mode.rawValue) mode"
        }
        return nil
    }

    /// The frame size sent for a request (one that ``unsupportedReason(_:)`` accepted).
    public func size(for request: GenerationRequest) -> FrameSize? {
        sizes[request.mode]?[request.aspectRatio ?? .landscape]
    }

    /// The form fields of one generation of `seconds` (a whole request, or one shot of it).
    func fields(for request: GenerationRequest, prompt: String, seconds: Int, model: String?, seed: Int) -> [(String, String)] {
        var fields: [(String, String)] = [("prompt", prompt), ("seconds", String(seconds))]
        if let model { fields.append(("model", model)) }
        if let size = size(for: request) { fields.append(("size", size.text)) }
        guard let settings = self.model, let size = size(for: request) else { return fields }
        fields += [
            ("width", String(size.width)), ("height", String(size.height)), ("fps", String(settings.fps)),
            ("num_frames", String(settings.frames(seconds: seconds))), ("seed", String(seed)),
            ("guidance_scale", String(settings.guidanceScale(request.cfgScale))),
        ]
        if let steps = settings.steps[request.mode] { fields.append(("num_inference_steps", String(steps))) }
        if let negative = request.negativePrompt, !negative.isEmpty { fields.append(("negative_prompt", negative)) }
        return fields
    }

    /// A typical generation time for `seconds` of video, for the progress estimate.
    func expectedDuration(seconds: Int, mode: GenerationRequest.Mode) -> Double {
        max(10, Double(seconds) * (expectedSecondsPerVideoSecond[mode] ?? 30))
    }

    private static func list(_ values: Set<Int>) -> String {
        let sorted = values.sorted()
        if sorted.count > 3, sorted.last! - sorted.first! == sorted.count - 1 { return "\(sorted.first!)-\(sorted.last!)" }
        return sorted.map(String.init).joined(separator: ", ").replacingLastComma()
    }
}

extension String {
    /// `4, 8, 12` → `4, 8 or 12`.
    fileprivate func replacingLastComma() -> String {
        guard let range = range(of: ", ", options: .backwards) else { return self }
        return replacingCharacters(in: range, with: " or ")
    }
}
