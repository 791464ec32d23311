import KlingAPI

/// A typed video generation request, built fluently and checked locally with the server's own validation.
///
/// ```swift
/// let request = VideoRequest(prompt: "A red fox runs through snow at dawn")
///     .mode(.std).duration(5).aspectRatio(.landscape).audio(true)
/// let issues = request.validate(for: .market)  // the same messages the server would answer, no network call
/// ```
public struct VideoRequest: Sendable, Hashable {
    /// The canonical request the dialects encode (shared with the server through `KlingAPI`).
    public var generation: GenerationRequest
    /// Kling official only: your own id for the task, unique per account; a repeated create with the same id and
    /// body returns the first task, so it also makes retries of the create safe.
    public var externalTaskID: String?

    /// A single-shot request from a prompt, with the canonical defaults (5 s, `pro`, audio as the dialect defaults).
    public init(prompt: String) {
        self.generation = GenerationRequest(prompt: prompt)
    }

    /// A request from a canonical ``GenerationRequest``.
    public init(_ generation: GenerationRequest) {
        self.generation = generation
    }

    /// Sets the quality class (`std`, `pro`, `4k`).
    public func mode(_ mode: GenerationRequest.Mode) -> VideoRequest { with { $0.generation.mode = mode } }
    /// Sets the duration in whole seconds (3-15; with shots, their sum).
    public func duration(_ seconds: Int) -> VideoRequest { with { $0.generation.duration = seconds } }
    /// Sets the aspect ratio.
    public func aspectRatio(_ ratio: GenerationRequest.AspectRatio?) -> VideoRequest { with { $0.generation.aspectRatio = ratio } }
    /// Turns the audio track on or off (multi-shot videos always have one).
    public func audio(_ on: Bool) -> VideoRequest { with { $0.generation.audio = on } }
    /// Sets what the video should avoid.
    public func negativePrompt(_ text: String?) -> VideoRequest { with { $0.generation.negativePrompt = text } }
    /// Sets the first frame image (an http(s) URL, for example an upload's ``UploadedFile/downloadURL``).
    public func firstFrame(_ url: String) -> VideoRequest {
        with { request in
            if request.generation.imageURLs.isEmpty { request.generation.imageURLs = [url] } else { request.generation.imageURLs[0] = url }
        }
    }
    /// Sets the last frame image of a single-shot video (needs a first frame).
    public func lastFrame(_ url: String) -> VideoRequest {
        with { request in
            switch request.generation.imageURLs.count {
            case 0, 1: request.generation.imageURLs.append(url)
            default: request.generation.imageURLs[1] = url
            }
        }
    }
    /// Makes the request multi-shot with these shots (`customize`); their durations must add up to the duration.
    public func shots(_ shots: [GenerationRequest.Shot]) -> VideoRequest {
        with {
            $0.generation.multiShot = !shots.isEmpty
            $0.generation.shotType = shots.isEmpty ? nil : .customize
            $0.generation.shots = shots
        }
    }
    /// Makes the request multi-shot with shots the model plans from the prompt (`intelligence`; CRUN and Kling).
    public func intelligentShots() -> VideoRequest {
        with {
            $0.generation.multiShot = true
            $0.generation.shotType = .intelligence
            $0.generation.shots = []
        }
    }
    /// Adds a reference element that prompts mention as `@name`.
    public func element(_ name: String, description: String, imageURLs: [String] = [], videoURLs: [String] = []) -> VideoRequest {
        with {
            $0.generation.elements.append(
                GenerationRequest.Element(name: name, description: description, imageURLs: imageURLs, videoURLs: videoURLs))
        }
    }
    /// Sets where the provider posts the task's callbacks.
    public func callback(_ url: String?) -> VideoRequest { with { $0.generation.callbackURL = url } }
    /// Sets an explicit camera move (Kling official `camera_control`).
    public func camera(_ motion: GenerationRequest.CameraMotion?) -> VideoRequest { with { $0.generation.cameraMotion = motion } }
    /// Sets the Kling official `external_task_id`.
    public func externalTaskID(_ id: String?) -> VideoRequest { with { $0.externalTaskID = id } }

    /// Every problem the provider would report for this request in `dialect`, with the server's exact field names
    /// and messages, plus anything the dialect cannot express; empty when the request may be sent.
    public func validate(for dialect: KlingClient.Dialect) -> [ValidationIssue] {
        WireRequest(self, dialect: dialect).issues
    }

    private func with(_ change: (inout VideoRequest) -> Void) -> VideoRequest {
        var copy = self
        change(&copy)
        return copy
    }
}
