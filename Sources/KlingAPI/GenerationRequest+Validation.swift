import Foundation

extension GenerationRequest {
    /// Longest main (and negative) prompt, in characters.
    public static let maxPromptLength = 2500
    /// Longest prompt of one shot, in characters.
    public static let maxShotPromptLength = 500
    public static let durationRange = 3...15
    public static let shotDurationRange = 1...12
    public static let maxShots = 6
    public static let maxElements = 3
    /// Path extensions that name an image format other than JPEG or PNG.
    static let rejectedImageExtensions: Set<String> = [
        "gif", "webp", "bmp", "tif", "tiff", "svg", "heic", "heif", "avif", "ico", "psd", "raw", "jp2",
    ]
    /// Path extensions that name a video format other than MP4 or MOV.
    static let rejectedVideoExtensions: Set<String> = [
        "avi", "mkv", "webm", "flv", "wmv", "mpg", "mpeg", "3gp", "gif", "m4v", "ts", "ogv",
    ]

    /// Every problem with this request under `rules`, in field order; empty when the request is valid.
    public func validate(rules: ValidationRules) -> [ValidationIssue] {
        let names = rules.names
        var issues: [ValidationIssue] = []
        func fail(_ field: String, _ message: String) { issues.append(ValidationIssue(field: field, message: message)) }

        let effectiveShotType = multiShot ? (shotType ?? .customize) : nil
        let promptIsUsed = !multiShot || effectiveShotType == .intelligence
        let trimmedPrompt = prompt?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""

        if promptIsUsed && trimmedPrompt.isEmpty {
            fail(names.prompt, multiShot ? "is required when shot_type is intelligence" : "is required when multi_shots is false")
        }
        if let prompt, prompt.count > Self.maxPromptLength {
            fail(names.prompt, "must be at most \(Self.maxPromptLength) characters (got \(prompt.count))")
        }
        if let negativePrompt, negativePrompt.count > Self.maxPromptLength {
            fail(names.negativePrompt, "must be at most \(Self.maxPromptLength) characters (got \(negativePrompt.count))")
        }

        if !Self.durationRange.contains(duration) {
            fail(names.duration, "must be between 3 and 15 seconds (got \(duration))")
        }

        if multiShot {
            if imageURLs.count != 1 {
                fail(names.images, "must contain exactly 1 image (the first frame) when multi_shots is true (got \(imageURLs.count))")
            }
            if audio == false && rules.multiShotAudioOff == .reject {
                fail(names.audio, "must be true when multi_shots is true (multi-shot videos always have audio)")
            }
            switch effectiveShotType {
            case .intelligence?:
                if !shots.isEmpty {
                    fail(names.shots, "must not be provided when shot_type is intelligence")
                }
            default:
                validateShots(names: names, fail: fail)
            }
        } else if imageURLs.count > 2 {
            fail(names.images, "must contain 1 image (first frame) or 2 images (first and last frame), not \(imageURLs.count)")
        }

        for (index, url) in imageURLs.enumerated() {
            if let problem = Self.urlProblem(url, rejectedExtensions: Self.rejectedImageExtensions, accepted: "JPG, JPEG or PNG") {
                fail(names.image(index), problem)
            }
        }

        validateElements(rules: rules, fail: fail)

        // Element references: every @name used in a prompt must be defined.
        let defined = Set(elements.map(\.name))
        var referenced = false
        func checkReferences(in text: String?, field: String) {
            guard let text else { return }
            for name in Self.elementReferences(in: text) {
                referenced = true
                if !defined.contains(name) {
                    fail(field, "references undefined element @\(name) (define it in \(names.elements))")
                }
            }
        }
        if promptIsUsed { checkReferences(in: prompt, field: names.prompt) }
        if multiShot && effectiveShotType == .customize {
            for (index, shot) in shots.enumerated() { checkReferences(in: shot.prompt, field: "\(names.shot(index)).prompt") }
        }
        if referenced && rules.imagesRequiredForElementReferences && imageURLs.isEmpty {
            fail(names.images, "is required when the prompt references elements with @name")
        }

        if let callbackURL, Self.httpURL(callbackURL) == nil {
            fail(names.callbackURL, "must be an absolute http or https URL")
        }
        return issues
    }

    private func validateShots(names: FieldNames, fail: (String, String) -> Void) {
        guard !shots.isEmpty else {
            fail(names.shots, "is required when multi_shots is true and shot_type is customize")
            return
        }
        if shots.count > Self.maxShots {
            fail(names.shots, "must contain 1 to \(Self.maxShots) shots (got \(shots.count))")
        }
        for (index, shot) in shots.enumerated() {
            let field = names.shot(index)
            if shot.prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                fail("\(field).prompt", "is required")
            } else if shot.prompt.count > Self.maxShotPromptLength {
                fail("\(field).prompt", "must be at most \(Self.maxShotPromptLength) characters (got \(shot.prompt.count))")
            }
            if !Self.shotDurationRange.contains(shot.duration) {
                fail("\(field).duration", "must be between 1 and 12 seconds (got \(shot.duration))")
            }
        }
        let total = shots.reduce(0) { $0 + $1.duration }
        if total != duration {
            fail(names.shots, "shot durations must add up to \(names.duration) (\(duration) s), but they add up to \(total) s")
        }
    }

    private func validateElements(rules: ValidationRules, fail: (String, String) -> Void) {
        let names = rules.names
        if elements.count > Self.maxElements {
            fail(names.elements, "must contain at most \(Self.maxElements) elements (got \(elements.count))")
        }
        var seen: Set<String> = []
        for (index, element) in elements.enumerated() {
            let field = names.element(index)
            let name = element.name.trimmingCharacters(in: .whitespaces)
            if name.isEmpty {
                fail("\(field).name", "is required")
            } else if !name.unicodeScalars.allSatisfy(Self.isElementNameScalar) {
                fail("\(field).name", "must contain only letters, digits, '_' and '-' so prompts can reference it as @name")
            } else if !seen.insert(name).inserted {
                fail("\(field).name", "duplicates the name of another element (\(name))")
            }
            if element.description.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                fail("\(field).description", "is required")
            }
            let imagesField = "\(field).\(names.elementImages)"
            let videosField = "\(field).\(names.elementVideos)"
            if rules.elementVideoAllowed && !element.videoURLs.isEmpty {
                if !element.imageURLs.isEmpty {
                    fail(field, "must have either \(names.elementImages) or \(names.elementVideos), not both")
                } else if element.videoURLs.count != 1 {
                    fail(videosField, "must contain exactly 1 video URL (got \(element.videoURLs.count))")
                }
            } else if !rules.elementImageCount.contains(element.imageURLs.count) {
                let range = rules.elementImageCount
                let alternative = rules.elementVideoAllowed ? ", or give exactly 1 URL in \(names.elementVideos)" : ""
                fail(imagesField, "must contain \(range.lowerBound) to \(range.upperBound) image URLs (got \(element.imageURLs.count))\(alternative)")
            }
            for (i, url) in element.imageURLs.enumerated() {
                if let problem = Self.urlProblem(url, rejectedExtensions: Self.rejectedImageExtensions, accepted: "JPG, JPEG or PNG") {
                    fail("\(imagesField)[\(i)]", problem)
                }
            }
            for (i, url) in element.videoURLs.enumerated() {
                if let problem = Self.urlProblem(url, rejectedExtensions: Self.rejectedVideoExtensions, accepted: "MP4 or MOV") {
                    fail("\(videosField)[\(i)]", problem)
                }
            }
        }
    }

    /// The canonical form a valid request is stored and rendered as: defaults applied, dialect leniencies resolved.
    public func normalized() -> GenerationRequest {
        var copy = self
        if multiShot {
            copy.shotType = shotType ?? .customize
            copy.audio = true
            if copy.shotType == .intelligence { copy.shots = [] } else { copy.prompt = prompt?.isEmpty == true ? nil : prompt }
        } else {
            copy.shotType = nil
            copy.shots = []
            copy.audio = audio ?? false
        }
        return copy
    }

    /// Names referenced as `@name` in a prompt, in order of first appearance.
    public static func elementReferences(in text: String) -> [String] {
        var names: [String] = []
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index < scalars.count {
            defer { index += 1 }
            guard scalars[index] == "@" else { continue }
            if index > 0, isElementNameScalar(scalars[index - 1]) { continue }  // e-mail addresses, not references
            var end = index + 1
            while end < scalars.count, isElementNameScalar(scalars[end]) { end += 1 }
            guard end > index + 1 else { continue }
            var name = String(String.UnicodeScalarView(scalars[(index + 1)..<end]))
            while name.hasSuffix("-") { name.removeLast() }
            if !name.isEmpty && !names.contains(name) { names.append(name) }
            index = end - 1
        }
        return names
    }

    static func isElementNameScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "_", "-": true
        default: false
        }
    }

    /// Parses an absolute http(s) URL with a host.
    static func httpURL(_ text: String) -> URLComponents? {
        guard let components = URLComponents(string: text),
            let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = components.host, !host.isEmpty
        else { return nil }
        return components
    }

    static func urlProblem(_ text: String, rejectedExtensions: Set<String>, accepted: String) -> String? {
        guard let components = httpURL(text) else { return "must be an absolute http or https URL" }
        let fileName = components.path.split(separator: "/").last.map(String.init) ?? ""
        if let dot = fileName.lastIndex(of: ".") {
            let ext = fileName[fileName.index(after: dot)...].lowercased()
            if rejectedExtensions.contains(ext) { return "names a .\(ext) file; only \(accepted) are accepted" }
        }
        return nil
    }
}
