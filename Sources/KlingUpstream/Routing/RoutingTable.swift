import KlingAPI

/// Which engines may produce a request, in order of preference: the first rule whose conditions all hold names the
/// list, else the default list (`KLING_ENGINES`).
///
/// Written as `KLING_ROUTES`: rules separated by `;`, each `CONDITIONS:ENGINES` with conditions joined by `+`
/// (`model=NAME`, `mode=std|pro|4k`, `multi-shot`, `elements`, `video-elements`, `audio`, `image-to-video`, or `*`)
/// and engines comma-separated, e.g. `mode=4k:official,crun; multi-shot+elements:official,market; *:official,preview`.
public struct RoutingTable: Sendable, Hashable {
    /// One condition on a task.
    public enum Condition: Sendable, Hashable {
        case model(String)
        case mode(GenerationRequest.Mode)
        case multiShot
        case elements
        case videoElements
        case audio
        case imageToVideo

        func holds(model: String, request: GenerationRequest) -> Bool {
            switch self {
            case .model(let name): return name == model
            case .mode(let mode): return request.mode == mode
            case .multiShot: return request.multiShot
            case .elements: return !request.elements.isEmpty
            case .videoElements: return request.elements.contains { !$0.videoURLs.isEmpty }
            case .audio: return request.hasAudio
            case .imageToVideo: return !request.imageURLs.isEmpty
            }
        }
    }

    /// A list of engines for tasks meeting every condition (none: every task).
    public struct Rule: Sendable, Hashable {
        public var conditions: [Condition]
        public var engines: [String]

        public init(conditions: [Condition], engines: [String]) {
            self.conditions = conditions
            self.engines = engines
        }
    }

    public var rules: [Rule]
    /// Engines for tasks no rule matches.
    public var defaultEngines: [String]

    public init(rules: [Rule] = [], defaultEngines: [String] = ["preview"]) {
        self.rules = rules
        self.defaultEngines = defaultEngines
    }

    /// The engines to try for a task, in order.
    public func engines(model: String, request: GenerationRequest) -> [String] {
        rules.first { rule in rule.conditions.allSatisfy { $0.holds(model: model, request: request) } }?.engines ?? defaultEngines
    }

    /// Every engine any rule or the default list names.
    public var allEngines: [String] {
        var seen: [String] = []
        for name in defaultEngines + rules.flatMap(\.engines) where !seen.contains(name) { seen.append(name) }
        return seen
    }

    /// Parses `KLING_ROUTES`; the error names the part it could not read.
    public static func parseRules(_ text: String) throws(RoutingError) -> [Rule] {
        var rules: [Rule] = []
        for part in text.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            guard let colon = part.firstIndex(of: ":") else { throw RoutingError("KLING_ROUTES: \"\(part)\" needs CONDITIONS:ENGINES") }
            let engines = try parseEngines(String(part[part.index(after: colon)...]), setting: "KLING_ROUTES")
            var conditions: [Condition] = []
            for term in part[..<colon].split(separator: "+").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
                switch term {
                case "*", "": continue
                case "multi-shot", "multishot": conditions.append(.multiShot)
                case "elements": conditions.append(.elements)
                case "video-elements": conditions.append(.videoElements)
                case "audio", "sound": conditions.append(.audio)
                case "image-to-video", "image": conditions.append(.imageToVideo)
                case _ where term.hasPrefix("mode="):
                    guard let mode = GenerationRequest.Mode(rawValue: String(term.dropFirst(5))) else {
                        throw RoutingError("KLING_ROUTES: \"\(term)\": the mode must be std, pro or 4k")
                    }
                    conditions.append(.mode(mode))
                case _ where term.hasPrefix("model="):
                    conditions.append(.model(String(term.dropFirst(6))))
                default:
                    throw RoutingError(
                        "KLING_ROUTES: unknown condition \"\(term)\" (use model=, mode=, multi-shot, elements, video-elements, audio, image-to-video or *)")
                }
            }
            rules.append(Rule(conditions: conditions, engines: engines))
        }
        return rules
    }

    /// Parses a comma-separated engine list (`KLING_ENGINES`, or the right side of a rule).
    public static func parseEngines(_ text: String, setting: String) throws(RoutingError) -> [String] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw RoutingError("\(setting): name at least one engine (\(EngineKey.listed))") }
        for name in names where EngineKey(name) == nil {
            throw RoutingError("\(setting): unknown engine \"\(name)\" (use \(EngineKey.listed))")
        }
        return names.compactMap { EngineKey($0)?.rawValue }
    }
}

/// The engines configuration can name.
public enum EngineKey: String, Sendable, CaseIterable {
    case official, market, crun, preview
    /// A server with OpenAI's `/v1/videos` contract (SGLang Diffusion, vLLM-Omni, another KlingKit, ...).
    case openAIVideos = "openai-videos"
    /// ComfyUI instances running the operator's workflow templates.
    case comfyUI = "comfyui"

    /// Every name, for messages: `official, market, crun, preview or openai-videos`.
    static var listed: String {
        let names = allCases.map(\.rawValue)
        return names.dropLast().joined(separator: ", ") + " or " + names.last!
    }

    /// Accepts the short name or the engine name (`official` or `kling-official`).
    public init?(_ text: String) {
        let text = text.hasPrefix("kling-") ? String(text.dropFirst(6)) : text
        self.init(rawValue: text)
    }
}

/// A routing setting that could not be read.
public struct RoutingError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
