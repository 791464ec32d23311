import Foundation
import KlingAPI
import KlingCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The built-in engine: a deterministic CPU renderer on ffmpeg and espeak-ng that honours the request's size,
/// duration, shots, first and last frames, elements and audio. Its output is a labelled preview, never Kling output.
public struct PreviewEngine: VideoEngine {
    /// Tools and encoder settings, with defaults for Debian's packages (ffmpeg, espeak-ng, fonts-dejavu-core).
    public struct Configuration: Sendable {
        /// ffmpeg executable: a name looked up on `PATH`, or a path. Default `ffmpeg`.
        public var ffmpeg = "ffmpeg"
        /// ffprobe executable. Default `ffprobe`.
        public var ffprobe = "ffprobe"
        /// espeak-ng executable. Default `espeak-ng`.
        public var espeak = "espeak-ng"
        /// x264 preset. Default `ultrafast`: the only preset whose renders stay within 1.2x of a bare encode on 2 cores
        /// while leaving room for the graph; `veryfast` makes files about 30% smaller at twice the encode time.
        public var preset = "ultrafast"
        /// x264 threads. Default 4. Fixed (never "auto") because x264's output depends on its thread count:
        /// a fixed count keeps renders byte-identical across machines with the same ffmpeg build.
        public var threads = 4
        /// Font for captions and labels. Default DejaVu Sans from Debian's fonts-dejavu-core; when the file is
        /// missing, fontconfig's default sans is used.
        public var fontFile = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
        /// Largest accepted image input in bytes. Default 10 MB.
        public var maxImageBytes = 10 * 1024 * 1024
        /// ffmpeg processes run at once for one render (each shot and the audio render separately, then are joined).
        /// Default: the number of cores, at least 2.
        public var parallelRenders = max(2, ProcessInfo.processInfo.activeProcessorCount)
        /// Largest accepted video element in bytes. Default 50 MB.
        public var maxVideoBytes = 50 * 1024 * 1024

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
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: scratch, withIntermediateDirectories: true)
        try fileManager.createDirectory(at: job.outputDirectory, withIntermediateDirectories: true)
        let plan = ShotPlan(request: request)
        let reporter = FrameProgress(total: plan.totalFrames, report: progress)
        await reporter.percent(0)
        let looks = plan.shots.enumerated().map { PreviewLook(prompt: $0.element.prompt, index: $0.offset) }
        let media = InputMedia(
            fetcher: fetcher, ffprobe: configuration.ffprobe, maxImageBytes: configuration.maxImageBytes,
            maxVideoBytes: configuration.maxVideoBytes, ffmpeg: configuration.ffmpeg)

        // Inputs, all fetched and checked before anything is rendered: the first frame (it decides the size), the
        // last frame, and every reference of every element, also of elements no shot mentions.
        // The API takes a last frame only for a single shot; given one with several shots, the last shot ends on it.
        var inputs: [InputMedia.Input] = []
        for (index, url) in request.imageURLs.prefix(2).enumerated() {
            inputs.append(.init(url: url, field: "image_urls[\(index)]", name: index == 0 ? "first" : "last"))
        }
        for (index, element) in request.elements.enumerated() {
            for (number, url) in element.imageURLs.enumerated() {
                inputs.append(.init(url: url, field: "elements[\(index)].image_urls[\(number)]", name: "element\(index)-\(number)"))
            }
            for (number, url) in element.videoURLs.enumerated() {
                inputs.append(
                    .init(url: url, field: "elements[\(index)].video_urls[\(number)]", name: "element\(index)-video\(number)", isVideo: true))
            }
        }
        let fetched = Dictionary(uniqueKeysWithValues: zip(inputs.map(\.field), try await media.fetchAll(inputs, into: scratch)))
        func image(_ field: String) -> InputMedia.Image? {
            if case .image(let image)? = fetched[field] { return image }
            return nil
        }
        func video(_ field: String) -> InputMedia.Video? {
            if case .video(let video)? = fetched[field] { return video }
            return nil
        }

        var size = FrameSize.forAspect(request.aspectRatio, mode: request.mode)
        let firstFrame = image("image_urls[0]")
        let lastFrame = image("image_urls[1]")
        if let firstFrame {
            size = FrameSize.forImage(width: firstFrame.width, height: firstFrame.height, mode: request.mode)
        }
        var elements: [FilterGraphBuilder.ElementOverlay] = []
        for (index, element) in request.elements.enumerated() {
            // Shown where mentioned: a video element's frames, otherwise its first reference image.
            let shots = plan.shots(mentioning: element.name)
            let source =
                video("elements[\(index)].video_urls[0]").map { FilterGraphBuilder.ElementOverlay.Source.video(file: $0.file) }
                ?? image("elements[\(index)].image_urls[0]").map { .image($0.still) }
            guard !shots.isEmpty, let source else { continue }
            let labelFile = "element\(index).txt"
            try Self.write(element.name, to: scratch.appendingPathComponent(labelFile))
            elements.append(.init(source: source, labelFile: labelFile, shots: shots))
        }

        var captionFiles: [String] = []
        for (index, shot) in plan.shots.enumerated() {
            let file = "caption\(index).txt"
            try Self.write(
                CaptionText.wrap(shot.prompt, width: size.width, height: size.height), to: scratch.appendingPathComponent(file))
            captionFiles.append(file)
        }
        try Self.write("KlingKit preview", to: scratch.appendingPathComponent("label.txt"))

        var speech: [Int: [SpeechSynthesizer.Clip]] = [:]
        if request.hasAudio {
            // Every quoted line of every shot, spoken concurrently (espeak-ng is mostly start-up time), each named
            // speaker with their own voice throughout the video.
            let synthesizer = SpeechSynthesizer(executable: configuration.espeak)
            let lines = plan.shots.map { SpeechSynthesizer.lines(in: $0.prompt) }
            let voices = SpeechSynthesizer.voiceAssignments(lines)
            try await withThrowingTaskGroup(of: (Int, Int, SpeechSynthesizer.Clip).self) { group in
                for (shot, shotLines) in lines.enumerated() {
                    for (number, line) in shotLines.enumerated() {
                        let file = "speech\(shot)-\(number).wav"
                        let voice = SpeechSynthesizer.voice(for: line, in: voices)
                        group.addTask {
                            let samples = try await synthesizer.speak(
                                line.text, voice: voice, to: scratch.appendingPathComponent(file), sampleRate: FilterGraphBuilder.sampleRate)
                            return (shot, number, SpeechSynthesizer.Clip(file: file, samples: samples))
                        }
                    }
                }
                var spoken: [Int: [(Int, SpeechSynthesizer.Clip)]] = [:]
                for try await (shot, number, clip) in group { spoken[shot, default: []].append((number, clip)) }
                speech = spoken.mapValues { $0.sorted { $0.0 < $1.0 }.map(\.1) }
            }
        }

        let builder = FilterGraphBuilder(
            size: size, plan: plan, looks: looks,
            moves: plan.shots.map { shot in job.request.cameraMotion.map(CameraMove.init) ?? CameraMove(prompt: shot.prompt) },
            captionFiles: captionFiles,
            labelFile: "label.txt",
            fontFile: fileManager.fileExists(atPath: configuration.fontFile) ? configuration.fontFile : nil,
            firstFrame: firstFrame?.still, lastFrame: lastFrame?.still, elements: elements,
            audio: request.hasAudio, speech: speech,
            audioSeed: StableHash.fnv1a(plan.shots.map(\.prompt).joined(separator: "\n")),
            preset: configuration.preset, threads: configuration.threads)

        // Render under temporary names next to the final files; only a finished render is renamed into place.
        let video = job.outputDirectory.appendingPathComponent("video.mp4")
        let cover = job.outputDirectory.appendingPathComponent("cover.jpg")
        let partialVideo = job.outputDirectory.appendingPathComponent("video.mp4.partial")
        let partialCover = job.outputDirectory.appendingPathComponent("cover.jpg.partial")
        defer {
            try? fileManager.removeItem(at: partialVideo)
            try? fileManager.removeItem(at: partialCover)
        }
        // Each shot renders as its own ffmpeg process (video only; shot 1 also writes the cover) and the audio as
        // another, up to `parallelRenders` at once; then the segments and the audio are joined by stream copy.
        // Separate processes use both cores where one filter graph runs mostly on one.
        enum Piece: Sendable {
            case shot(Int)
            case audio
        }
        let pieces = (request.hasAudio ? [Piece.audio] : []) + plan.shots.indices.map { Piece.shot($0) }
        let ffmpeg = configuration.ffmpeg
        let coverPath = partialCover.path
        @Sendable func render(_ piece: Piece) async throws {
            let outcome: ProcessRunner.Outcome
            switch piece {
            case .audio:
                outcome = try await ProcessRunner.run(ffmpeg, builder.audioArguments(output: "audio.m4a"), in: scratch)
            case .shot(let index):
                let arguments = builder.segmentArguments(shot: index, video: "segment\(index).mp4", cover: index == 0 ? coverPath : nil)
                outcome = try await ProcessRunner.runFFmpeg(ffmpeg, arguments, in: scratch) { frame in
                    await reporter.frame(frame, segment: index)
                }
            }
            try Task.checkCancellation()
            guard outcome.succeeded else {
                throw EngineError.renderFailed("ffmpeg failed: \(ProcessRunner.reason(outcome.standardError))")
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var waiting = pieces[...]
            for piece in waiting.prefix(max(1, configuration.parallelRenders)) {
                group.addTask { try await render(piece) }
                waiting.removeFirst()
            }
            while try await group.next() != nil {
                if let piece = waiting.popFirst() { group.addTask { try await render(piece) } }
            }
        }
        let list = "ffconcat version 1.0\n" + plan.shots.indices.map { "file segment\($0).mp4\n" }.joined()
        try Self.write(list, to: scratch.appendingPathComponent("segments.ffconcat"))
        let mux = try await ProcessRunner.run(
            configuration.ffmpeg,
            FilterGraphBuilder.muxArguments(list: "segments.ffconcat", audio: request.hasAudio ? "audio.m4a" : nil, video: partialVideo.path),
            in: scratch)
        try Task.checkCancellation()
        guard mux.succeeded else {
            throw EngineError.renderFailed("ffmpeg failed: \(ProcessRunner.reason(mux.standardError))")
        }
        try Self.moveIntoPlace(partialCover, as: cover)
        try Self.moveIntoPlace(partialVideo, as: video)
        await progress(100)
        return RenderOutput(
            videoFile: video, coverFile: cover, width: size.width, height: size.height,
            durationSeconds: Double(plan.totalFrames) / Double(FilterGraphBuilder.fps), hasAudio: request.hasAudio)
    }

    private static func write(_ text: String, to file: URL) throws {
        try Data(text.utf8).write(to: file)
    }

    /// Atomically replaces `destination` with `source` (same directory, so `rename(2)` never copies).
    private static func moveIntoPlace(_ source: URL, as destination: URL) throws {
        guard rename(source.path, destination.path) == 0 else {
            let reason = String(cString: strerror(errno))
            throw EngineError.renderFailed("could not move \(source.lastPathComponent) into place: \(reason)")
        }
    }
}
