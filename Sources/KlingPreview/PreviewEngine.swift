import Foundation
import KlingAPI
import KlingCore

/// The built-in engine: a deterministic CPU renderer on ffmpeg and espeak-ng that honours the request's size,
/// duration, shots, first and last frames and audio. Its output is a preview, never Kling output.
public struct PreviewEngine: VideoEngine {
    /// Tools and encoder settings, with defaults for Debian's packages.
    public struct Configuration: Sendable {
        /// ffmpeg executable (name on PATH or absolute path).
        public var ffmpeg = "ffmpeg"
        /// ffprobe executable.
        public var ffprobe = "ffprobe"
        /// espeak-ng executable.
        public var espeak = "espeak-ng"
        /// x264 preset; `ultrafast` keeps a 5 s 720p render well under a second on 2 cores.
        public var preset = "ultrafast"
        /// Caption font; Debian's fonts-dejavu-core. When missing, fontconfig's default sans is used.
        public var fontFile = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
        /// Largest accepted image input.
        public var maxImageBytes = 10 * 1024 * 1024

        public init() {}
    }

    public let name = "preview"
    private let configuration: Configuration
    private let fetcher: any InputFetching

    public init(configuration: Configuration = .init(), fetcher: any InputFetching) {
        self.configuration = configuration
        self.fetcher = fetcher
    }

    public func render(_ job: RenderJob, progress: @escaping @Sendable (Int) async -> Void) async throws -> RenderOutput {
        let request = job.request
        let scratch = job.scratchDirectory
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        await progress(0)

        // Inputs: first (and last) frame images, fetched and checked.
        var firstFrame: FilterGraphBuilder.Still?
        var lastFrame: FilterGraphBuilder.Still?
        var size = FrameSize.forAspect(request.aspectRatio, mode: request.mode)
        if let url = request.firstFrameURL {
            let (file, width, height) = try await fetchImage(url, field: "image_urls[0]", name: "first", into: scratch)
            firstFrame = .init(file: file)
            size = FrameSize.forImage(width: width, height: height, mode: request.mode)
        }
        if let url = request.lastFrameURL {
            let (file, _, _) = try await fetchImage(url, field: "image_urls[1]", name: "last", into: scratch)
            lastFrame = .init(file: file)
        }

        let plan = ShotPlan(request: request)
        var captionFiles: [String] = []
        for (index, shot) in plan.shots.enumerated() {
            let file = "caption\(index).txt"
            try Self.wrap(shot.prompt, width: size.width, height: size.height).write(
                to: scratch.appendingPathComponent(file), atomically: true, encoding: .utf8)
            captionFiles.append(file)
        }
        try "KlingKit preview · not Kling output".write(to: scratch.appendingPathComponent("label.txt"), atomically: true, encoding: .utf8)

        var speech: [Int: String] = [:]
        if request.hasAudio {
            let synthesizer = SpeechSynthesizer(executable: configuration.espeak)
            for (index, shot) in plan.shots.enumerated() {
                guard let line = SpeechSynthesizer.dialogue(in: shot.prompt) else { continue }
                let file = "speech\(index).wav"
                try await synthesizer.speak(line, to: scratch.appendingPathComponent(file))
                speech[index] = file
            }
        }

        let builder = FilterGraphBuilder(
            size: size, plan: plan, looks: plan.shots.map { PreviewLook(prompt: $0.prompt) }, captionFiles: captionFiles,
            labelFile: "label.txt", fontFile: FileManager.default.fileExists(atPath: configuration.fontFile) ? configuration.fontFile : nil,
            firstFrame: firstFrame, lastFrame: lastFrame, audio: request.hasAudio, speech: speech,
            audioSeed: PreviewLook.fnv1a(plan.shots.map(\.prompt).joined(separator: "|")), preset: configuration.preset)

        let totalFrames = plan.totalFrames
        let reporter = FrameProgress(total: totalFrames, report: progress)
        let outcome = try await ProcessRunner.runFFmpeg(
            configuration.ffmpeg, builder.arguments(output: "video.mp4"), in: scratch
        ) { frame in await reporter.frame(frame) }
        try Task.checkCancellation()
        guard outcome.succeeded else {
            throw EngineError.renderFailed("ffmpeg failed: \(ProcessRunner.reason(outcome.standardError))")
        }
        let cover = try await ProcessRunner.run(
            configuration.ffmpeg,
            [
                "-nostdin", "-v", "error", "-y", "-i", "video.mp4", "-frames:v", "1", "-q:v", "3", "-fflags", "+bitexact", "-flags:v", "+bitexact",
                "cover.jpg",
            ],
            in: scratch)
        guard cover.succeeded else {
            throw EngineError.renderFailed("ffmpeg failed making the cover: \(ProcessRunner.reason(cover.standardError))")
        }

        // Move finished files into place; a crash before this leaves nothing under the final names.
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: job.outputDirectory, withIntermediateDirectories: true)
        let video = job.outputDirectory.appendingPathComponent("video.mp4")
        let coverFile = job.outputDirectory.appendingPathComponent("cover.jpg")
        for (from, to) in [("cover.jpg", coverFile), ("video.mp4", video)] {
            if fileManager.fileExists(atPath: to.path) { try fileManager.removeItem(at: to) }
            try fileManager.moveItem(at: scratch.appendingPathComponent(from), to: to)
        }
        await progress(100)
        return RenderOutput(
            videoFile: video, coverFile: coverFile, width: size.width, height: size.height,
            durationSeconds: Double(totalFrames) / 24, hasAudio: request.hasAudio)
    }

    /// Fetches an image input, checks it is a decodable JPEG or PNG, and returns its relative name and size.
    private func fetchImage(_ url: String, field: String, name: String, into scratch: URL) async throws -> (String, Int, Int) {
        let file = scratch.appendingPathComponent(name)
        try await fetcher.fetch(url, field: field, maxBytes: configuration.maxImageBytes, to: file)
        let handle = try FileHandle(forReadingFrom: file)
        let magic = [UInt8](try handle.read(upToCount: 8) ?? Data())
        try handle.close()
        let isPNG = magic.starts(with: [0x89, 0x50, 0x4E, 0x47])
        let isJPEG = magic.starts(with: [0xFF, 0xD8, 0xFF])
        guard isPNG || isJPEG else {
            throw EngineError.badInput("\(field): \(url) is not a JPEG or PNG image")
        }
        let probe = try await ProcessRunner.run(
            configuration.ffprobe, ["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0", file.path])
        let numbers = probe.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").compactMap { Int($0) }
        guard probe.succeeded, numbers.count == 2, numbers[0] > 0, numbers[1] > 0 else {
            throw EngineError.badInput("\(field): \(url) could not be decoded as an image")
        }
        return (name, numbers[0], numbers[1])
    }

    /// Wraps a caption to the frame width, at most 3 lines.
    static func wrap(_ text: String, width: Int, height: Int) -> String {
        let fontSize = max(18, height / 24)
        let perLine = max(12, Int(Double(width) * 0.85 / (Double(fontSize) * 0.55)))
        var lines: [String] = []
        var current = ""
        for word in text.split(whereSeparator: \.isWhitespace) {
            if current.isEmpty {
                current = String(word.prefix(perLine))
            } else if current.count + 1 + word.count <= perLine {
                current += " " + word
            } else {
                lines.append(current)
                current = String(word.prefix(perLine))
            }
        }
        if !current.isEmpty { lines.append(current) }
        if lines.count > 3 {
            lines = Array(lines.prefix(3))
            lines[2] = String(lines[2].prefix(perLine - 1)) + "…"
        }
        return lines.isEmpty ? " " : lines.joined(separator: "\n")
    }
}

/// Turns ffmpeg's frame counter into 0-99 progress, reporting only increases.
actor FrameProgress {
    private let total: Int
    private let report: @Sendable (Int) async -> Void
    private var last = 0

    init(total: Int, report: @escaping @Sendable (Int) async -> Void) {
        self.total = max(1, total)
        self.report = report
    }

    func frame(_ frame: Int) async {
        let value = min(99, frame * 100 / total)
        guard value > last else { return }
        last = value
        await report(value)
    }
}
