import Foundation
import Hummingbird
import HummingbirdTesting
import KlingAPI
import KlingCore
import KlingPreview
import Testing

/// Renders real requests with ffmpeg and checks the files with ffprobe and ffmpeg filters.
@Suite("Preview engine renders")
struct PreviewEngineTests {
    func render(_ request: GenerationRequest, progress: @escaping @Sendable (Int) async -> Void = { _ in }) async throws -> (RenderOutput, URL) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kling-preview-\(UUID().uuidString)")
        let job = RenderJob(
            taskID: "t", request: request.normalized(), outputDirectory: root.appendingPathComponent("out"),
            scratchDirectory: root.appendingPathComponent("tmp"))
        do {
            let output = try await PreviewEngine(fetcher: HTTPInputFetcher()).render(job, progress: progress)
            return (output, root)
        } catch {
            try? FileManager.default.removeItem(at: root)
            throw error
        }
    }

    @Test(arguments: [
        (GenerationRequest.Mode.std, GenerationRequest.AspectRatio?.some(.landscape), 1280, 720),
        (.std, .portrait, 720, 1280),
        (.std, nil, 720, 720),
        (.pro, .square, 1080, 1080),
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
        #expect(probe.pixelFormat == "yuv420p")
        #expect(probe.videoCodec == "h264")
        #expect(probe.audioCodec == nil, "audio off means no audio stream")
        #expect(output.width == width && output.height == height && !output.hasAudio)
        #expect(FileManager.default.fileExists(atPath: try #require(output.coverFile).path))
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
        #expect(abs(audioDuration - 4.0) <= 1024.0 / 48_000, "within one AAC frame")
        #expect(probe.frames == 96)
    }

    @Test func multiShotCutsExactlyAtShotBoundaries() async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(
                multiShot: true, shotType: .customize,
                shots: [.init(prompt: "red desert at noon", duration: 1), .init(prompt: "blue ocean at night", duration: 2)],
                duration: 3, mode: .std, imageURLs: [inputs.url("start.png")])
            let (output, root) = try await render(request)
            defer { try? FileManager.default.removeItem(at: root) }
            #expect(try MediaProbe(output.videoFile).frames == 72)
            // Scene change scores: the largest jump must be at frame 24, the shot boundary.
            let scores = try FrameStatistics.sceneScores(output.videoFile)
            let cut = scores.enumerated().max { $0.element < $1.element }?.offset
            #expect(cut == 24, "largest scene change at frame \(cut ?? -1)")
        }
    }

    @Test func firstFrameImageOpensTheVideo() async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(prompt: "the test card slowly comes alive", duration: 3, mode: .std, imageURLs: [inputs.url("start.png")])
            let (output, root) = try await render(request)
            defer { try? FileManager.default.removeItem(at: root) }
            let probe = try MediaProbe(output.videoFile)
            #expect(probe.width == 1280 && probe.height == 960, "a 4:3 image gives a 4:3 video")
            let ssim = try FrameStatistics.ssimOfFirstFrame(output.videoFile, against: inputs.file("start.png"), width: 1280, height: 960)
            #expect(ssim > 0.8, "SSIM of frame 0 against the image: \(ssim)")
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
        #expect(values.last == 100)
        #expect(values == values.sorted())
        #expect(values.contains { $0 > 0 && $0 < 100 }, "intermediate progress from ffmpeg: \(values)")
    }

    @Test func fileThatIsNotAnImageFailsWithCode422NamingTheField() async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(prompt: "p", duration: 3, mode: .std, imageURLs: [inputs.url("not-an-image.png")])
            do {
                _ = try await render(request)
                Issue.record("expected a failure")
            } catch let error as EngineError {
                #expect(error.code == 422)
                #expect(error.message.hasPrefix("image_urls[0]:"))
            }
        }
    }

    @Test func fetcherAbortsDownloadsOverTheByteLimit() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kling-fetch-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try await InputServer.with { inputs in
            do {
                try await HTTPInputFetcher().fetch(inputs.url("start.png"), field: "image_urls[0]", maxBytes: 100, to: file)
                Issue.record("expected the limit to stop the download")
            } catch let error as EngineError {
                #expect(error.code == 422)
                #expect(error.message.contains("limit"))
            }
        }
    }

    @Test func fetcherReportsHTTPErrors() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kling-fetch-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try await InputServer.with { inputs in
            await #expect(throws: EngineError.self) {
                try await HTTPInputFetcher().fetch(inputs.url("missing.png"), field: "image_urls[1]", maxBytes: 1000, to: file)
            }
        }
    }
}

actor ProgressLog {
    var values: [Int] = []
    func add(_ value: Int) { values.append(value) }
}

/// Test inputs served by a real HTTP server on loopback (Hummingbird), standing in for a client's image host.
struct InputServer: Sendable {
    let directory: URL
    let port: Int

    static func with(_ body: @Sendable (InputServer) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kling-inputs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Tool.run(
            "ffmpeg",
            ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x480", "-frames:v", "1", directory.appendingPathComponent("start.png").path])
        try Data("this is text, not a PNG".utf8).write(to: directory.appendingPathComponent("not-an-image.png"))
        let router = Router()
        router.add(middleware: FileMiddleware(directory.path))
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await body(InputServer(directory: directory, port: try #require(client.port)))
        }
    }

    func url(_ name: String) -> String { "http://127.0.0.1:\(port)/\(name)" }
    func file(_ name: String) -> URL { directory.appendingPathComponent(name) }
}

enum Tool {
    struct Failed: Error { let output: String }

    /// Runs a tool and returns its standard output and error, throwing on a non-zero exit.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else { throw Failed(output: output) }
        return output
    }
}

/// ffprobe's view of a media file.
struct MediaProbe {
    var width = 0, height = 0, frames = 0
    var videoCodec = "", pixelFormat = ""
    var audioCodec: String?
    var audioChannels = 0, sampleRate = 0
    var audioDuration: Double?

    init(_ file: URL) throws {
        let output = try Tool.run("ffprobe", ["-v", "error", "-count_frames", "-show_streams", "-of", "json", file.path])
        let json = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any] ?? [:]
        for stream in json["streams"] as? [[String: Any]] ?? [] {
            if stream["codec_type"] as? String == "video" {
                width = stream["width"] as? Int ?? 0
                height = stream["height"] as? Int ?? 0
                videoCodec = stream["codec_name"] as? String ?? ""
                pixelFormat = stream["pix_fmt"] as? String ?? ""
                frames = Int(stream["nb_read_frames"] as? String ?? "") ?? 0
            } else if stream["codec_type"] as? String == "audio" {
                audioCodec = stream["codec_name"] as? String
                audioChannels = stream["channels"] as? Int ?? 0
                sampleRate = Int(stream["sample_rate"] as? String ?? "") ?? 0
                audioDuration = Double(stream["duration"] as? String ?? "")
            }
        }
    }
}

/// Measurements made with ffmpeg filters.
enum FrameStatistics {
    /// Scene-change score of every frame (index = frame number).
    static func sceneScores(_ file: URL) throws -> [Double] {
        let output = try Tool.run(
            "ffmpeg", ["-v", "info", "-i", file.path, "-vf", "select='gte(scene,0)',metadata=print:key=lavfi.scene_score", "-an", "-f", "null", "-"])
        return output.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "lavfi.scene_score=") else { return nil }
            return Double(line[range.upperBound...].trimmingCharacters(in: .whitespaces))
        }
    }

    /// SSIM of the video's first frame against an image scaled to the video's size.
    static func ssimOfFirstFrame(_ video: URL, against image: URL, width: Int, height: Int) throws -> Double {
        let output = try Tool.run(
            "ffmpeg",
            [
                "-v", "info", "-i", video.path, "-i", image.path, "-filter_complex",
                "[0:v]trim=end_frame=1,format=yuv420p[a];[1:v]scale=\(width):\(height),format=yuv420p[b];[a][b]ssim", "-f", "null", "-",
            ])
        guard let range = output.range(of: "All:") else { return 0 }
        let number = output[range.upperBound...].prefix { $0 == "." || $0.isNumber }
        return Double(number) ?? 0
    }
}
