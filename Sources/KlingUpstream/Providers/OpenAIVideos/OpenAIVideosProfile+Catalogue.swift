import KlingAPI

extension OpenAIVideosProfile {
    /// Every profile by name. Frame rates, frame-count rules and sizes are the models' own (the README's table, with
    /// sources in shared/research/local-engines.md); the expected times only shape the progress estimate.
    public static let all: [String: OpenAIVideosProfile] = Dictionary(
        uniqueKeysWithValues: [
            openAI, sora, wan22("sglang-wan2.2"), wan22("vllm-omni-wan2.2"), ltx2("sglang-ltx2"), ltx2("vllm-omni-ltx2"),
            hunyuan("sglang-hunyuanvideo"), hunyuan("vllm-omni-hunyuanvideo"),
        ].map { ($0.name, $0) })

    /// The names, sorted, for messages.
    public static var names: [String] { all.keys.sorted() }

    /// `openai` (the default): `seconds` and `size` exactly as asked, for servers that take any (another KlingKit,
    /// LiteLLM's proxy in front of such a server).
    public static let openAI = OpenAIVideosProfile(
        name: "openai", seconds: Set(3...15), sizes: classSizes([.std, .pro, .fourK]), model: nil, takesFirstFrame: true,
        expectedSecondsPerVideoSecond: [.std: 6, .pro: 8, .fourK: 16])

    /// `sora`: OpenAI's own limits (sora-2 and sora-2-pro): 4, 8 or 12 s; 1280x720 or 720x1280, and 1792x1024 or
    /// 1024x1792 for the pro class (sora-2-pro); no square, no 4K.
    public static let sora = OpenAIVideosProfile(
        name: "sora", seconds: [4, 8, 12],
        sizes: [
            .std: [.landscape: .init(width: 1280, height: 720), .portrait: .init(width: 720, height: 1280)],
            .pro: [.landscape: .init(width: 1792, height: 1024), .portrait: .init(width: 1024, height: 1792)],
        ], model: nil, takesFirstFrame: true, expectedSecondsPerVideoSecond: [.std: 10, .pro: 20])

    /// Wan 2.2 (A14B T2V/I2V): 16 fps, 4n+1 frames, up to 81 frames (5 s), 720p class only.
    static func wan22(_ name: String) -> OpenAIVideosProfile {
        OpenAIVideosProfile(
            name: name, seconds: Set(3...5),
            sizes: [.std: [.landscape: .init(width: 1280, height: 720), .portrait: .init(width: 720, height: 1280), .square: .init(width: 960, height: 960)]],
            model: ModelSettings(fps: 16, frameMultiple: 4, steps: [.std: 40], guidance: 1...9), takesFirstFrame: true,
            expectedSecondsPerVideoSecond: [.std: 60])
    }

    /// LTX-2: 24 fps, 8n+1 frames, sizes in multiples of 32, up to 10 s; 720p and 1080p classes.
    static func ltx2(_ name: String) -> OpenAIVideosProfile {
        OpenAIVideosProfile(
            name: name, seconds: Set(3...10),
            sizes: [
                .std: [.landscape: .init(width: 1280, height: 704), .portrait: .init(width: 704, height: 1280), .square: .init(width: 960, height: 960)],
                .pro: [.landscape: .init(width: 1920, height: 1088), .portrait: .init(width: 1088, height: 1920), .square: .init(width: 1440, height: 1440)],
            ], model: ModelSettings(fps: 24, frameMultiple: 8, steps: [.std: 30, .pro: 40], guidance: 1...7), takesFirstFrame: true,
            expectedSecondsPerVideoSecond: [.std: 20, .pro: 45])
    }

    /// HunyuanVideo 1.5: 24 fps, 4n+1 frames, up to 121 frames (5 s), 720p class.
    static func hunyuan(_ name: String) -> OpenAIVideosProfile {
        OpenAIVideosProfile(
            name: name, seconds: Set(3...5),
            sizes: [.std: [.landscape: .init(width: 1280, height: 720), .portrait: .init(width: 720, height: 1280), .square: .init(width: 960, height: 960)]],
            model: ModelSettings(fps: 24, frameMultiple: 4, steps: [.std: 50], guidance: 1...9), takesFirstFrame: true,
            expectedSecondsPerVideoSecond: [.std: 80])
    }

    /// Kling's own frame sizes of each class at each aspect (what KlingKit's OpenAI dialect takes).
    private static func classSizes(_ modes: [GenerationRequest.Mode]) -> [GenerationRequest.Mode: [GenerationRequest.AspectRatio: FrameSize]] {
        var sizes: [GenerationRequest.Mode: [GenerationRequest.AspectRatio: FrameSize]] = [:]
        for mode in modes {
            for aspect in GenerationRequest.AspectRatio.allCases {
                var request = GenerationRequest(aspectRatio: aspect, mode: mode)
                request.aspectRatio = aspect
                let parts = OpenAICreateRequest.size(of: request).split(separator: "x").compactMap { Int($0) }
                sizes[mode, default: [:]][aspect] = FrameSize(width: parts[0], height: parts[1])
            }
        }
        return sizes
    }
}
