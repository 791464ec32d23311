import CFFmpeg
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
        /// Video processes for one render: a video at least `splitFromPixels` large splits its frames over this many,
        /// in equal runs (the audio always renders beside them). Default 2. Fixed (not the number of cores) because
        /// the split decides where x264 starts a new stream: a fixed count keeps renders byte-identical across machines.
        public var parallelRenders = 2
        /// Frame size (width x height) from which a video renders in several processes. Default 0: every size.
        /// ffmpeg 5.1 runs a filter graph on one thread, which holds the encoder back at every size; two processes
        /// finish a 720p or 1080p multi-shot render 10-25% sooner.
        public var splitFromPixels = 0
        /// Whether spare ffmpeg processes wait for the next render, libraries loaded (``FFmpegPool``). Default true:
        /// each render's video processes then start 0.05-0.06 s sooner. Spares end after two idle minutes.
        public var warmProcesses = true
        /// Largest accepted video element in bytes. Default 50 MB.
        public var maxVideoBytes = 50 * 1024 * 1024
        /// ffmpeg's `-cpuflags` for the render processes, or `nil` for ffmpeg's own choice. Default
        /// ``defaultCPUFlags``. The flags pick among SIMD versions of the same routines, so renders stay byte-identical.
        public var cpuFlags: String? = Configuration.defaultCPUFlags

        /// `+slowgather` on AMD processors, otherwise `nil`. ffmpeg 5.1 scales with AVX2 gathers unless told they are
        /// slow; on this machine's AMD EPYC they made every scaled frame (a zooming still, a fitted image) a third
        /// slower than the SSSE3 version: a 1080p render's filter graph took 0.59 s instead of 0.44 s.
        public static let defaultCPUFlags: String? = {
            #if arch(x86_64)
            guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
                info.contains("AuthenticAMD")
            else { return nil }
            return "+slowgather"
            #else
            return nil
            #endif
        }()

        /// Whether ffmpeg accepts `flags` as its `-cpuflags` value (`+slowgather`, `-avx2`, ...), checked with the
        /// parser ffmpeg itself uses: a value it refuses would fail every render.
        public static func acceptsCPUFlags(_ flags: String) -> Bool {
            var parsed: UInt32 = 0
            return av_parse_cpu_caps(&parsed, flags) >= 0
        }

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
        // The audio track depends only on the prompts: it renders (speech synthesis, then ``AudioRenderer`` in this
        // process) while the inputs are fetched and the video renders.
        async let audioTrack: URL? =
            request.hasAudio ? PreviewAudioTrack(espeak: configuration.espeak).render(plan: plan, in: scratch) : nil
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
            // Shown where mentioned: a video element's frames, otherwise its reference images.
            let shots = plan.shots(mentioning: element.name)
            let stills = element.imageURLs.indices.compactMap { image("elements[\(index)].image_urls[\($0)]")?.still }
            let source =
                video("elements[\(index)].video_urls[0]").map { FilterGraphBuilder.ElementOverlay.Source.video(file: $0.file) }
                ?? (stills.isEmpty ? nil : .images(stills))
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

        let builder = FilterGraphBuilder(
            size: size, plan: plan, looks: looks,
            moves: plan.shots.map { shot in job.request.cameraMotion.map(CameraMove.init) ?? CameraMove(prompt: shot.prompt) },
            captionFiles: captionFiles,
            labelFile: "label.txt",
            fontFile: fileManager.fileExists(atPath: configuration.fontFile) ? configuration.fontFile : nil,
            firstFrame: firstFrame?.still, lastFrame: lastFrame?.still, elements: elements,
            preset: configuration.preset, threads: configuration.threads, cpuFlags: configuration.cpuFlags)

        // Every image must decode: those the render draws are decoded by it (and checked one by one only if it fails),
        // the others now.
        let images = inputs.compactMap { input in image(input.field).map { (input, $0) } }
        let drawn = builder.drawnFiles
        try await media.checkImagesDecode(images.filter { !drawn.contains($0.1.file) }, in: scratch)
        let fetchedImages = images.filter { drawn.contains($0.1.file) }

        // Render into the scratch folder (the joined video under a temporary name next to the final one); only a
        // finished render is renamed into place.
        let video = job.outputDirectory.appendingPathComponent("video.mp4")
        let cover = job.outputDirectory.appendingPathComponent("cover.jpg")
        let partialVideo = job.outputDirectory.appendingPathComponent("video.mp4.partial")
        defer { try? fileManager.removeItem(at: partialVideo) }
        // The video's frames render in two ffmpeg processes side by side (a filter graph runs on one core), the first
        // also writing the cover; ``FFmpegPool`` has them started ahead. A video in one process and without audio is
        // written finished by ffmpeg; otherwise the pieces (and the audio track) are joined by stream copy.
        let groups = builder.groups(
            count: Self.processCount(size: size, limit: configuration.parallelRenders, from: configuration.splitFromPixels))
        let joins = groups.count > 1 || request.hasAudio
        let ffmpeg = configuration.ffmpeg
        let warm = configuration.warmProcesses
        let link = FilterGraphBuilder.scratchLink
        let graphs = groups.indices.map { builder.videoGraph(pieces: groups[$0], cover: $0 == 0) }
        let videoArguments = groups.indices.map { group in
            builder.videoArguments(
                inputs: graphs[group].inputs, video: joins ? "\(link)/segment\(group).mp4" : "\(link)/video.mp4",
                cover: group == 0 ? "\(link)/cover.jpg" : nil, faststart: !joins)
        }
        defer {
            // Spares for the next render start once this one is done (not for command lines with per-render inputs).
            if warm {
                for group in groups.indices where graphs[group].inputs.isEmpty {
                    FFmpegPool.shared.keepSpares(ffmpeg, videoArguments[group])
                }
            }
        }
        @Sendable func renderVideo(_ group: Int) async throws {
            let outcome = try await FFmpegPool.shared.run(
                ffmpeg, videoArguments[group], graph: graphs[group].graph, scratch: scratch
            ) { frame in
                await reporter.frame(frame, segment: group)
            }
            try Task.checkCancellation()
            guard outcome.succeeded else {
                // An input that does not decode is the request's fault: name its field (422), not ffmpeg's (501).
                try await media.checkImagesDecode(fetchedImages, in: scratch)
                throw EngineError.renderFailed("ffmpeg failed: \(ProcessRunner.reason(outcome.standardError))")
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in groups.indices { group.addTask { try await renderVideo(index) } }
            try await group.waitForAll()
        }
        let audioFile = try await audioTrack
        if joins {
            do {
                try await MP4Joiner.join(
                    segments: groups.indices.map { scratch.appendingPathComponent("segment\($0).mp4") }, audio: audioFile, into: partialVideo)
            } catch {
                throw EngineError.renderFailed("joining the rendered pieces failed: \(error)")
            }
        }
        try Self.moveIntoPlace(scratch.appendingPathComponent("cover.jpg"), as: cover)
        try Self.moveIntoPlace(joins ? partialVideo : scratch.appendingPathComponent("video.mp4"), as: video)
        await progress(100)
        return RenderOutput(
            videoFile: video, coverFile: cover, width: size.width, height: size.height,
            durationSeconds: Double(plan.totalFrames) / Double(FilterGraphBuilder.fps), hasAudio: request.hasAudio)
    }

    /// How many ffmpeg processes render one video: `limit`, for frames at least `pixels` large (where the
    /// single-threaded filter graph would otherwise hold the encoder back), otherwise one.
    static func processCount(size: FrameSize, limit: Int, from pixels: Int) -> Int {
        size.width * size.height >= pixels ? max(1, limit) : 1
    }

    private static func write(_ text: String, to file: URL) throws {
        try Data(text.utf8).write(to: file)
    }

    /// Atomically replaces `destination` with `source` (`rename(2)`; from another file system, a copy next to the
    /// destination first).
    private static func moveIntoPlace(_ source: URL, as destination: URL) throws {
        if rename(source.path, destination.path) == 0 { return }
        var reason = String(cString: strerror(errno))
        if errno == EXDEV {
            let copy = destination.appendingPathExtension("copy")
            do {
                try? FileManager.default.removeItem(at: copy)
                try FileManager.default.copyItem(at: source, to: copy)
                try? FileManager.default.removeItem(at: source)
                if rename(copy.path, destination.path) == 0 { return }
                reason = String(cString: strerror(errno))
            } catch {
                reason = "\(error)"
            }
        }
        throw EngineError.renderFailed("could not move \(source.lastPathComponent) into place: \(reason)")
    }
}
