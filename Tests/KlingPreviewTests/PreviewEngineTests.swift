import Foundation
import KlingAPI
import KlingCore
import Testing

@testable import KlingPreview

/// Renders real requests with ffmpeg and checks the files with ffprobe and ffmpeg filters.
@Suite("Preview engine renders", .timeLimit(.minutes(5)))
struct PreviewEngineTests {
    @Test(arguments: [
        (GenerationRequest.Mode.std, GenerationRequest.AspectRatio?.some(.landscape), 1280, 720),
        (.std, .portrait, 720, 1280),
        (.std, nil, 720, 720),
        (.pro, .portrait, 1080, 1920),
    ])
    func sizeAndFrameCountFollowModeAspectAndDuration(
        _ mode: GenerationRequest.Mode, _ aspect: GenerationRequest.AspectRatio?, _ width: Int, _ height: Int
    ) async throws {
        let (output, root) = try await render(
            GenerationRequest(prompt: "a quiet harbour", duration: 3, aspectRatio: aspect, mode: mode, audio: false))
        defer { try? FileManager.default.removeItem(at: root) }
        let probe = try MediaProbe(output.videoFile)
        #expect(probe.width == width && probe.height == height)
        #expect(probe.frames == 72)
        #expect(probe.frameRate == "24/1")
        #expect(probe.pixelFormat == "yuv420p")
        #expect(probe.videoCodec == "h264")
        #expect(probe.audioCodec == nil && probe.streamCount == 1, "audio off means no audio stream")
        #expect(output.width == width && output.height == height && !output.hasAudio && output.durationSeconds == 3)
        let cover = try MediaProbe(try #require(output.coverFile))
        #expect(cover.videoCodec == "mjpeg" && cover.width == width && cover.height == height)
        let files = try FileManager.default.contentsOfDirectory(atPath: output.videoFile.deletingLastPathComponent().path).sorted()
        #expect(files == ["cover.jpg", "video.mp4"], "no partial files left behind")
    }

    /// The scratch folder may be on another file system than the results (here /dev/shm, a tmpfs): the finished files
    /// are then copied into place instead of renamed.
    @Test(.enabled(if: onAnotherFileSystem("/dev/shm", than: FileManager.default.temporaryDirectory.path)))
    func filesReachTheirPlaceFromAScratchFolderOnAnotherFileSystem() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kling-preview-\(UUID().uuidString)")
        let output = URL(fileURLWithPath: "/dev/shm/kling-preview-\(UUID().uuidString)")
        defer {
            try? FileManager.default.removeItem(at: root)
            try? FileManager.default.removeItem(at: output)
        }
        // One process and no audio: ffmpeg writes the finished video into the scratch folder.
        var configuration = PreviewEngine.Configuration()
        configuration.parallelRenders = 1
        let job = RenderJob(
            taskID: "exdev", request: GenerationRequest(prompt: "a quiet harbour", duration: 3, mode: .std, audio: false).normalized(),
            outputDirectory: output, scratchDirectory: root.appendingPathComponent("tmp"))
        let rendered = try await PreviewEngine(configuration: configuration, fetcher: HTTPInputFetcher()).render(job) { _ in }
        #expect(try MediaProbe(rendered.videoFile).frames == 72)
        #expect(try MediaProbe(try #require(rendered.coverFile)).videoCodec == "mjpeg")
        let files = try FileManager.default.contentsOfDirectory(atPath: output.path).sorted()
        #expect(files == ["cover.jpg", "video.mp4"], "no partial or copy files left behind")
    }

    @Test func audioTrackIsAACStereoOfTheVideosExactLength() async throws {
        let (output, root) = try await render(
            GenerationRequest(prompt: #"A café. "Good morning," says the waiter."#, duration: 4, mode: .std, audio: true))
        defer { try? FileManager.default.removeItem(at: root) }
        let probe = try MediaProbe(output.videoFile)
        #expect(probe.audioCodec == "aac")
        #expect(probe.audioChannels == 2)
        #expect(probe.sampleRate == 48_000)
        let audioDuration = try #require(probe.audioDuration)
        #expect(abs(audioDuration - 4.0) <= 1024.0 / 48_000, "within one AAC frame: \(audioDuration)")
        #expect(probe.frames == 96)
        #expect(output.hasAudio)
    }

    @Test func customizedShotsCutExactlyAtTheirBoundaries() async throws {
        let request = GenerationRequest(
            multiShot: true, shotType: .customize,
            shots: [.init(prompt: "red desert at noon", duration: 1), .init(prompt: "blue ocean at night", duration: 2)],
            duration: 3, mode: .std)
        let (output, root) = try await render(request)
        defer { try? FileManager.default.removeItem(at: root) }
        let probe = try MediaProbe(output.videoFile)
        #expect(probe.frames == 72)
        #expect(probe.audioCodec == "aac", "multi-shot always has audio")
        let means = try FrameStatistics.means(output.videoFile, frames: [22, 23, 24, 25])
        try #require(means.count == 4)
        #expect(abs(means[0].y - means[1].y) < 8, "no change inside a shot")
        #expect(abs(means[2].y - means[3].y) < 8, "no change inside a shot")
        #expect(abs(means[1].y - means[2].y) > 30, "strong change between frames 23 and 24: \(means)")
    }

    @Test func intelligenceShotsSumToTheDurationAndCutOnWholeSeconds() async throws {
        let prompt = "A lighthouse keeper climbs the stairs. The lamp flickers to life. Ships pass in the storm."
        let request = GenerationRequest(prompt: prompt, multiShot: true, shotType: .intelligence, duration: 5, mode: .std)
        let plan = ShotPlan(request: request.normalized())
        #expect(plan.shots.count == 3)
        #expect(plan.totalFrames == 120)
        let (output, root) = try await render(request)
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(try MediaProbe(output.videoFile).frames == 120)
        for boundary in plan.shots.dropFirst().map(\.startFrame) {
            #expect(boundary % 24 == 0)
            let means = try FrameStatistics.means(output.videoFile, frames: [boundary - 1, boundary])
            try #require(means.count == 2)
            #expect(abs(means[0].y - means[1].y) > 30, "cut at frame \(boundary): \(means)")
        }
    }

    @Test func firstFrameImageOpensTheVideoAtItsAspect() async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(
                prompt: "the test card slowly comes alive", duration: 3, aspectRatio: .portrait, mode: .std,
                imageURLs: [inputs.url("start.png")])
            let (output, root) = try await render(request)
            defer { try? FileManager.default.removeItem(at: root) }
            let probe = try MediaProbe(output.videoFile)
            #expect(probe.width == 1280 && probe.height == 960, "a 4:3 image gives a 4:3 video, whatever the aspect asked")
            #expect(probe.frames == 72)
            let opening = try FrameStatistics.ssim(output.videoFile, frame: 0, against: inputs.file("start.png"), width: 1280, height: 960)
            #expect(opening > 0.8, "SSIM of frame 0 against the image: \(opening)")
            let other = try FrameStatistics.ssim(output.videoFile, frame: 0, against: inputs.file("end.png"), width: 1280, height: 960)
            #expect(other < opening - 0.2, "a different image does not match: \(other)")
        }
    }

    @Test func lastFrameImageEndsTheVideo() async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(
                prompt: "from test card to bars", duration: 3, mode: .std, imageURLs: [inputs.url("start.png"), inputs.url("end.png")])
            let (output, root) = try await render(request)
            defer { try? FileManager.default.removeItem(at: root) }
            #expect(try MediaProbe(output.videoFile).frames == 72)
            let opening = try FrameStatistics.ssim(output.videoFile, frame: 0, against: inputs.file("start.png"), width: 1280, height: 960)
            let ending = try FrameStatistics.ssim(output.videoFile, frame: 71, against: inputs.file("end.png"), width: 1280, height: 960)
            #expect(opening > 0.8, "opens on the first image: \(opening)")
            #expect(ending > 0.8, "ends on the last image: \(ending)")
        }
    }

    @Test func mentionedElementIsOverlaidOnlyInItsShots() async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(
                multiShot: true, shotType: .customize,
                shots: [.init(prompt: "@robot walks into the bar", duration: 1), .init(prompt: "an empty street", duration: 2)],
                duration: 3, mode: .std,
                elements: [.init(name: "robot", description: "a red robot", imageURLs: [inputs.url("red.png")])])
            let (output, root) = try await render(request)
            defer { try? FileManager.default.removeItem(at: root) }
            // The thumbnail (120 px square at 720 px height) sits 24 px from the top-right corner: sample inside it.
            let patch = try FrameStatistics.means(output.videoFile, frames: [12, 36], crop: "60:60:\(720 - 24 - 100):\(24 + 30)")
            try #require(patch.count == 2)
            #expect(patch[0].v > 215, "red element shown in shot 1: \(patch[0])")
            #expect(patch[1].v < 215, "not shown in shot 2: \(patch[1])")
        }
    }

    @Test func sameRequestGivesTheSameBytes() async throws {
        let request = GenerationRequest(prompt: #"Two friends at a bus stop. "Late again," she sighs."#, duration: 3, mode: .std, audio: true)
        let (first, rootA) = try await render(request)
        let (second, rootB) = try await render(request)
        defer {
            try? FileManager.default.removeItem(at: rootA)
            try? FileManager.default.removeItem(at: rootB)
        }
        #expect(try Data(contentsOf: first.videoFile) == Data(contentsOf: second.videoFile))
        #expect(try Data(contentsOf: try #require(first.coverFile)) == Data(contentsOf: try #require(second.coverFile)))
    }

    @Test func differentPromptsLookDifferent() async throws {
        let (a, rootA) = try await render(GenerationRequest(prompt: "alpha", duration: 3, mode: .std))
        let (b, rootB) = try await render(GenerationRequest(prompt: "omega", duration: 3, mode: .std))
        defer {
            try? FileManager.default.removeItem(at: rootA)
            try? FileManager.default.removeItem(at: rootB)
        }
        #expect(try Data(contentsOf: a.videoFile) != Data(contentsOf: b.videoFile))
    }

    @Test func progressRisesMonotonicallyAndEndsAt100() async throws {
        let seen = ProgressLog()
        let (_, root) = try await render(GenerationRequest(prompt: "progress", duration: 5, mode: .std)) { await seen.add($0) }
        defer { try? FileManager.default.removeItem(at: root) }
        let values = await seen.values
        #expect(values.first == 0)
        #expect(values.last == 100)
        #expect(zip(values, values.dropFirst()).allSatisfy { $0 < $1 }, "strictly rising: \(values)")
        #expect(values.contains { $0 > 0 && $0 < 100 }, "intermediate progress from ffmpeg: \(values)")
    }

    /// `KLING_FFMPEG_WARM`: a render leaves a spare ffmpeg per process it ran, and the next render with the same
    /// settings runs on them. The engines here call ffmpeg through a link of their own, so the shared pool's spares for
    /// that command line are this test's alone.
    @Test(arguments: [true, false])
    func aRenderLeavesSparesThatTheNextRenderRunsOn(_ warm: Bool) async throws {
        let tools = try scratchDirectory("ffmpeg-link")
        defer { try? FileManager.default.removeItem(at: tools) }
        let ffmpeg = tools.appendingPathComponent("ffmpeg")
        let real = try Tool.run("sh", ["-c", "command -v ffmpeg"]).trimmingCharacters(in: .whitespacesAndNewlines)
        try FileManager.default.createSymbolicLink(atPath: ffmpeg.path, withDestinationPath: real)
        var configuration = PreviewEngine.Configuration()
        configuration.ffmpeg = ffmpeg.path
        configuration.warmProcesses = warm
        /// Waiting spares started through this test's link.
        func spares() -> Set<pid_t> {
            Set(FFmpegPool.shared.spareProcessIDs.filter { pid in
                let command = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
                return command.split(separator: 0).first.map { String(decoding: $0, as: UTF8.self) } == ffmpeg.path
            })
        }
        func waitForSpares(_ count: Int) async throws {
            let deadline = ContinuousClock.now + .seconds(20)
            while spares().count < count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        }
        let request = GenerationRequest(prompt: "a quiet harbour", duration: 2, mode: .std, audio: false)

        let (_, firstRoot) = try await render(request, configuration: configuration)
        defer { try? FileManager.default.removeItem(at: firstRoot) }
        guard warm else {
            try await Task.sleep(for: .milliseconds(500))
            #expect(spares().isEmpty, "KLING_FFMPEG_WARM=false keeps no spares")
            return
        }
        // Two processes (the frames are split in two), so two command lines with a spare each.
        try await waitForSpares(2)
        let before = spares()
        #expect(before.count == 2)

        let (second, secondRoot) = try await render(request, configuration: configuration)
        defer { try? FileManager.default.removeItem(at: secondRoot) }
        #expect(try MediaProbe(second.videoFile).frames == 48)
        // The spares did the second render's work and ended; two new ones wait.
        #expect(!before.contains(where: isRunning), "the spares ran the second render")
        try await waitForSpares(2)
        #expect(spares().count == 2 && spares().isDisjoint(with: before))
        FFmpegPool.shared.drain()
    }

    @Test func cancellingTheRenderStopsFFmpeg() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kling-preview-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let job = RenderJob(
            taskID: "cancel", request: GenerationRequest(prompt: "long", duration: 15, mode: .pro).normalized(),
            outputDirectory: root.appendingPathComponent("out"), scratchDirectory: root.appendingPathComponent("tmp"))
        let (started, startedContinuation) = AsyncStream.makeStream(of: Int.self)
        let render = Task {
            // Ends the wait below even if the render stops before reporting progress, so the test cannot hang.
            defer { startedContinuation.finish() }
            return try await PreviewEngine(fetcher: HTTPInputFetcher()).render(job) { value in
                if value > 0 { startedContinuation.yield(value) }
            }
        }
        for await _ in started { break }
        render.cancel()
        let result = await render.result
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(!processUses(root), "no ffmpeg left running")
        let outputs = (try? FileManager.default.contentsOfDirectory(atPath: job.outputDirectory.path)) ?? []
        #expect(outputs.isEmpty, "nothing under final or partial names: \(outputs)")
    }

    @Test func fileThatIsNotAnImageFailsWithCode422NamingTheField() async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(prompt: "p", duration: 3, mode: .std, imageURLs: [inputs.url("not-an-image.png")])
            let error = await #expect(throws: EngineError.self) { try await render(request) }
            #expect(error?.code == 422)
            #expect(error?.message.hasPrefix("image_urls[0]:") == true, "\(error?.message ?? "")")
        }
    }

    @Test func unreachableImageFailsWithCode422() async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(
                prompt: "p", duration: 3, mode: .std, imageURLs: [inputs.url("start.png"), inputs.url("missing.png")])
            let error = await #expect(throws: EngineError.self) { try await render(request) }
            #expect(error?.code == 422)
            #expect(error?.message.hasPrefix("image_urls[1]: could not fetch") == true, "\(error?.message ?? "")")
        }
    }

    @Test func ffmpegFailureIsCode501WithItsReason() async throws {
        var configuration = PreviewEngine.Configuration()
        configuration.preset = "no-such-preset"
        let error = await #expect(throws: EngineError.self) {
            try await render(GenerationRequest(prompt: "p", duration: 3, mode: .std), configuration: configuration)
        }
        #expect(error?.code == 501)
        #expect(error?.message.hasPrefix("ffmpeg failed:") == true)
        #expect(error?.message.contains("preset") == true, "\(error?.message ?? "")")
    }

    @Test func missingFFmpegIsCode501() async throws {
        var configuration = PreviewEngine.Configuration()
        configuration.ffmpeg = "/nonexistent/ffmpeg"
        let error = await #expect(throws: EngineError.self) {
            try await render(GenerationRequest(prompt: "p", duration: 3, mode: .std), configuration: configuration)
        }
        #expect(error?.code == 501)
    }
}
