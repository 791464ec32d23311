/// The dialect-specific knobs of validation: field names and the few rules on which the two seeds differ.
public struct ValidationRules: Sendable {
    /// What to do with an explicit `audio: false` on a multi-shot request.
    public enum MultiShotAudioPolicy: Sendable { case reject, force }

    public var names: FieldNames
    public var multiShotAudioOff: MultiShotAudioPolicy
    /// How many reference images an image element takes.
    public var elementImageCount: ClosedRange<Int>
    /// Whether an element may instead be exactly one video.
    public var elementVideoAllowed: Bool
    /// Whether `@element` references in prompts need an image list (seed 004).
    public var imagesRequiredForElementReferences: Bool

    public init(
        names: FieldNames,
        multiShotAudioOff: MultiShotAudioPolicy,
        elementImageCount: ClosedRange<Int>,
        elementVideoAllowed: Bool,
        imagesRequiredForElementReferences: Bool
    ) {
        self.names = names
        self.multiShotAudioOff = multiShotAudioOff
        self.elementImageCount = elementImageCount
        self.elementVideoAllowed = elementVideoAllowed
        self.imagesRequiredForElementReferences = imagesRequiredForElementReferences
    }

    /// OpenAI Videos (`POST /v1/videos`) field names; the request shape allows no multi-shot or elements.
    public static let openAI = ValidationRules(
        names: FieldNames(
            prompt: "prompt", negativePrompt: "negative_prompt", multiShot: "multi_shot", shotType: "shot_type", shots: "shots",
            duration: "seconds", aspectRatio: "size", mode: "size", audio: "audio", images: "input_reference",
            elements: "elements", elementImages: "image_urls", elementVideos: "video_urls", callbackURL: "callback_url"
        ),
        multiShotAudioOff: .force,
        elementImageCount: 1...4,
        elementVideoAllowed: false,
        imagesRequiredForElementReferences: false
    )

    /// Kling's official API (`/v1/videos/text2video`, `/v1/videos/image2video`) field names; `image` is image[0] and
    /// `image_tail` image[1].
    public static let klingOfficial = ValidationRules(
        names: FieldNames(
            prompt: "prompt", negativePrompt: "negative_prompt", multiShot: "multi_shot", shotType: "shot_type", shots: "multi_prompt",
            duration: "duration", aspectRatio: "aspect_ratio", mode: "mode", audio: "sound", images: "image", elements: "elements",
            elementImages: "image_urls", elementVideos: "video_urls", callbackURL: "callback_url"
        ),
        multiShotAudioOff: .force,
        elementImageCount: 1...4,
        elementVideoAllowed: false,
        imagesRequiredForElementReferences: false
    )

    /// Seed 004 (Market, kie.ai) rules.
    public static let market = ValidationRules(
        names: FieldNames(
            prompt: "input.prompt", negativePrompt: "input.negative_prompt", multiShot: "input.multi_shots",
            shotType: "input.shot_type", shots: "input.multi_prompt", duration: "input.duration",
            aspectRatio: "input.aspect_ratio", mode: "input.mode", audio: "input.sound", images: "input.image_urls",
            elements: "input.kling_elements", elementImages: "element_input_urls",
            elementVideos: "element_input_video_urls", callbackURL: "callBackUrl"
        ),
        multiShotAudioOff: .reject,
        elementImageCount: 2...4,
        elementVideoAllowed: true,
        imagesRequiredForElementReferences: true
    )

    /// Seed 000 (CRUN) rules.
    public static let crun = ValidationRules(
        names: FieldNames(
            prompt: "input.prompt", negativePrompt: "input.negative_prompt", multiShot: "input.multi_shots",
            shotType: "input.shot_type", shots: "input.multi_prompt", duration: "input.duration",
            aspectRatio: "input.aspect_ratio", mode: "input.mode", audio: "input.audio", images: "input.img_urls",
            elements: "input.element_list", elementImages: "element_image_urls",
            elementVideos: "element_video_urls", callbackURL: "callback_url"
        ),
        multiShotAudioOff: .force,
        elementImageCount: 1...4,
        elementVideoAllowed: false,
        imagesRequiredForElementReferences: false
    )
}

/// A dialect's names for the canonical request's fields, used in validation messages.
public struct FieldNames: Sendable {
    public var prompt: String
    public var negativePrompt: String
    public var multiShot: String
    public var shotType: String
    public var shots: String
    public var duration: String
    public var aspectRatio: String
    public var mode: String
    public var audio: String
    public var images: String
    public var elements: String
    /// Name of an element's image list, relative to the element.
    public var elementImages: String
    /// Name of an element's video list, relative to the element.
    public var elementVideos: String
    public var callbackURL: String

    public init(
        prompt: String, negativePrompt: String, multiShot: String, shotType: String, shots: String, duration: String,
        aspectRatio: String, mode: String, audio: String, images: String, elements: String, elementImages: String,
        elementVideos: String, callbackURL: String
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
        self.images = images
        self.elements = elements
        self.elementImages = elementImages
        self.elementVideos = elementVideos
        self.callbackURL = callbackURL
    }

    func shot(_ index: Int) -> String { "\(shots)[\(index)]" }
    func image(_ index: Int) -> String { "\(images)[\(index)]" }
    func element(_ index: Int) -> String { "\(elements)[\(index)]" }
}
