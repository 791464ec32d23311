import ArgumentParser
import Foundation
import KlingKit

extension GenerationRequest.Mode: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.lowercased()) }
}

extension GenerationRequest.AspectRatio: ExpressibleByArgument {}

/// The video a command asks for: prompt, mode, duration, images, shots, elements. Local files are uploaded.
struct RequestOptions: ParsableArguments {
    @Argument(help: "What the video shows (reference elements as @name).")
    var prompt: String?

    @Option(help: "Quality: std, pro or 4k.")
    var mode: GenerationRequest.Mode?

    @Option(help: "Length in seconds (3-15; with --shots, their sum). Default 5.")
    var duration: Int?

    @Option(help: "Aspect ratio: 16:9, 9:16 or 1:1.")
    var aspect: GenerationRequest.AspectRatio?

    @Option(help: "First frame: a local JPG/PNG file (uploaded) or an http(s) URL.")
    var image: String?

    @Option(name: .customLong("last-image"), help: "Last frame (needs --image): a local file or an http(s) URL.")
    var lastImage: String?

    @Flag(inversion: .prefixedNo, help: "Give the video an audio track (multi-shot videos always have one).")
    var audio: Bool?

    @Option(help: "A JSON file with the shots: [{\"prompt\": \"...\", \"duration\": 3}, ...].")
    var shots: String?

    @Option(
        name: .customLong("element"),
        help: ArgumentHelp("A reference element prompts mention as @name: name=a.png,b.png (local files or URLs).", valueName: "name=files"))
    var elements: [String] = []

    @Option(name: .customLong("callback-url"), help: "Where the provider posts the task's callbacks.")
    var callbackURL: String?

    /// A local file to upload, and where its link goes in the request.
    struct LocalFile {
        var path: String
        var placeholder: String
    }

    /// The request with a placeholder link for every local file (so it validates before anything is uploaded), and
    /// the local files to upload.
    func request() throws(KlingError) -> (VideoRequest, [LocalFile]) {
        var locals: [LocalFile] = []
        func link(_ value: String, field: String) throws(KlingError) -> String {
            if value.hasPrefix("http://") || value.hasPrefix("https://") { return value }
            let path = (value as NSString).expandingTildeInPath
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw KlingError(.validation, message: "\(field): \(value) is not a readable file (give a local file or an http(s) URL)")
            }
            let placeholder = "https://upload.invalid/\(locals.count)/\(URL(fileURLWithPath: path).lastPathComponent)"
            locals.append(LocalFile(path: path, placeholder: placeholder))
            return placeholder
        }
        var request = VideoRequest(prompt: prompt ?? "")
        if prompt == nil { request.generation.prompt = nil }
        if let mode { request = request.mode(mode) }
        if let aspect { request = request.aspectRatio(aspect) }
        if let audio { request = request.audio(audio) }
        if let callbackURL { request = request.callback(callbackURL) }
        if let image { request = request.firstFrame(try link(image, field: "--image")) }
        if let lastImage {
            guard image != nil else { throw KlingError(.validation, message: "--last-image: needs --image (the first frame) too") }
            request = request.lastFrame(try link(lastImage, field: "--last-image"))
        }
        if let shots {
            let parsed = try Self.readShots(shots)
            request = request.shots(parsed)
            request = request.duration(duration ?? parsed.reduce(0) { $0 + $1.duration })
        } else if let duration {
            request = request.duration(duration)
        }
        for element in elements {
            guard let equals = element.firstIndex(of: "="), element.startIndex != equals else {
                throw KlingError(.validation, message: "--element: \(element) must look like name=a.png,b.png")
            }
            let name = String(element[..<equals])
            var files: [String] = []
            for file in element[element.index(after: equals)...].split(separator: ",") where !file.isEmpty {
                files.append(try link(String(file), field: "--element \(name)"))
            }
            let isVideo = files.count == 1 && [".mp4", ".mov"].contains { files[0].lowercased().hasSuffix($0) }
            request = request.element(name, description: name, imageURLs: isVideo ? [] : files, videoURLs: isVideo ? files : [])
        }
        return (request, locals)
    }

    static func readShots(_ path: String) throws(KlingError) -> [GenerationRequest.Shot] {
        struct Shot: Decodable { var prompt: String; var duration: Int }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: (path as NSString).expandingTildeInPath))
        } catch {
            throw KlingError(.validation, message: "--shots: cannot read \(path)")
        }
        do {
            return try JSONDecoder().decode([Shot].self, from: data).map { GenerationRequest.Shot(prompt: $0.prompt, duration: $0.duration) }
        } catch {
            throw KlingError(
                .validation, message: "--shots: \(path) must be a JSON array of {\"prompt\": text, \"duration\": seconds} objects")
        }
    }
}

extension VideoRequest {
    /// The request with every placeholder replaced by the uploaded file's link.
    func replacing(_ links: [String: String]) -> VideoRequest {
        var copy = self
        copy.generation.imageURLs = generation.imageURLs.map { links[$0] ?? $0 }
        copy.generation.elements = generation.elements.map { element in
            var element = element
            element.imageURLs = element.imageURLs.map { links[$0] ?? $0 }
            element.videoURLs = element.videoURLs.map { links[$0] ?? $0 }
            return element
        }
        return copy
    }
}
