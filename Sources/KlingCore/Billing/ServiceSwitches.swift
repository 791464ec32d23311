import KlingAPI

/// Operator switches read on every create: maintenance mode and per-feature switches, changed without a restart.
public struct ServiceSwitches: Sendable, Hashable, Codable {
    /// When on, creates answer 455; queries are still answered.
    public var maintenance: Bool = false
    /// Features that answer 505 when a request uses them.
    public var disabledFeatures: Set<Feature> = []

    public init(maintenance: Bool = false, disabledFeatures: Set<Feature> = []) {
        self.maintenance = maintenance
        self.disabledFeatures = disabledFeatures
    }

    /// The switches stored as settings rows (`maintenance`, `feature.NAME`, each `on` or `off`); other rows are ignored.
    public init(settings: some Sequence<(key: String, value: String)>) {
        self.init()
        for (key, value) in settings {
            if key == Self.maintenanceSetting { maintenance = value == "on" }
            if key.hasPrefix("feature."), value == "off", let feature = Feature(rawValue: String(key.dropFirst(8))) {
                disabledFeatures.insert(feature)
            }
        }
    }

    /// The settings row that stores maintenance mode.
    public static let maintenanceSetting = "maintenance"

    /// The settings row (key and value) that stores maintenance mode set `on`.
    public static func setting(maintenance on: Bool) -> (key: String, value: String) {
        (maintenanceSetting, on ? "on" : "off")
    }

    /// The settings row (key and value) that stores `feature` switched on or off.
    public static func setting(_ feature: Feature, enabled: Bool) -> (key: String, value: String) {
        ("feature." + feature.rawValue, enabled ? "on" : "off")
    }

    /// The settings row that stores the installation secret `name` (see ``SwitchStore/installationSecret(_:)``).
    public static func secretSetting(_ name: String) -> String { "secret." + name }

    /// A request feature that can be switched off.
    public enum Feature: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
        case fourK = "4k"
        case multiShot = "multi-shot"
        case elements
        case audio
        case imageToVideo = "image-to-video"

        public static func < (lhs: Feature, rhs: Feature) -> Bool { lhs.rawValue < rhs.rawValue }

        /// The features a normalized request uses, each with the field that uses it.
        public static func used(by request: GenerationRequest) -> [(Feature, field: String)] {
            var used: [(Feature, field: String)] = []
            if request.mode == .fourK { used.append((.fourK, "mode")) }
            if request.multiShot { used.append((.multiShot, "multi_shots")) }
            if !request.elements.isEmpty { used.append((.elements, "elements")) }
            if request.hasAudio { used.append((.audio, "audio")) }
            if !request.imageURLs.isEmpty { used.append((.imageToVideo, "image_urls")) }
            return used
        }
    }
}
