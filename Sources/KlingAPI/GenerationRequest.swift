/// The canonical video generation request every dialect decodes into.
///
/// Business rules live once, in ``GenerationRequest/validate(rules:)``; dialects only translate field names.
public struct GenerationRequest: Sendable, Hashable, Codable {
    /// Main prompt (single shot, or the storyboard text for `intelligence` multi-shot).
    public var prompt: String?
    /// What the video should avoid.
    public var negativePrompt: String?
    /// Multi-shot generation on or off.
    public var multiShot: Bool
    /// How shots are defined in multi-shot mode; `nil` for a single shot.
    public var shotType: ShotType?
    /// Shots of a `customize` multi-shot request.
    public var shots: [Shot]
    /// Total duration in whole seconds (3-15).
    public var duration: Int
    /// Requested aspect ratio; `nil` means the default (1:1 without a first frame, the first frame's aspect with one).
    public var aspectRatio: AspectRatio?
    /// Output quality class.
    public var mode: Mode
    /// Audio on or off; `nil` means the dialect's default.
    public var audio: Bool?
    /// Image inputs in order: first frame, then last frame.
    public var imageURLs: [String]
    /// Reference elements, referenced from prompts as `@name`.
    public var elements: [Element]
    /// Where the terminal callback goes.
    public var callbackURL: String?
    /// An explicit camera move (Kling's `camera_control`); without it the prompt's words decide.
    public var cameraMotion: CameraMotion?
    /// How closely the video follows the prompt, 0-1 (Kling's `cfg_scale`); `nil` means the engine's default.
    public var cfgScale: Double?

    public init(
        prompt: String? = nil,
        negativePrompt: String? = nil,
        multiShot: Bool = false,
        shotType: ShotType? = nil,
        shots: [Shot] = [],
        duration: Int = 5,
        aspectRatio: AspectRatio? = nil,
        mode: Mode = .pro,
        audio: Bool? = nil,
        imageURLs: [String] = [],
        elements: [Element] = [],
        callbackURL: String? = nil
    ) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.multiShot = multiShot
        self.shotType = shotType
        self.shots = shots
        self.duration = duration
        self.aspectRatio = aspectRatio
        self.mode = mode
        self.audio = audio
        self.imageURLs = imageURLs
        self.elements = elements
        self.callbackURL = callbackURL
    }

    /// A camera move over the shot.
    public enum CameraMotion: String, Sendable, Hashable, Codable, CaseIterable {
        case pushIn = "push_in"
        case pullBack = "pull_back"
        case panLeft = "pan_left"
        case panRight = "pan_right"
        case tiltUp = "tilt_up"
        case tiltDown = "tilt_down"
        case orbit
        case still
    }

    /// How a multi-shot request defines its shots.
    public enum ShotType: String, Sendable, Hashable, Codable, CaseIterable {
        case customize
        case intelligence
    }

    /// Output quality class; decides the frame size.
    public enum Mode: String, Sendable, Hashable, Codable, CaseIterable {
        case std
        case pro
        case fourK = "4k"
    }

    /// Aspect ratios a request may name.
    public enum AspectRatio: String, Sendable, Hashable, Codable, CaseIterable {
        case landscape = "16:9"
        case portrait = "9:16"
        case square = "1:1"
    }

    /// One shot of a multi-shot storyboard.
    public struct Shot: Sendable, Hashable, Codable {
        public var prompt: String
        public var duration: Int

        public init(prompt: String, duration: Int) {
            self.prompt = prompt
            self.duration = duration
        }
    }

    /// A reference element: images (or one video) that prompts refer to as `@name`.
    public struct Element: Sendable, Hashable, Codable {
        public var name: String
        public var description: String
        public var imageURLs: [String]
        public var videoURLs: [String]

        public init(name: String, description: String, imageURLs: [String] = [], videoURLs: [String] = []) {
            self.name = name
            self.description = description
            self.imageURLs = imageURLs
            self.videoURLs = videoURLs
        }
    }
}

extension GenerationRequest {
    /// The first frame image, if any.
    public var firstFrameURL: String? { imageURLs.first }
    /// The last frame image of a single-shot first/last request, if any.
    public var lastFrameURL: String? { !multiShot && imageURLs.count > 1 ? imageURLs[1] : nil }
    /// Whether the output has an audio track (multi-shot always has one).
    public var hasAudio: Bool { multiShot ? true : (audio ?? false) }
}
