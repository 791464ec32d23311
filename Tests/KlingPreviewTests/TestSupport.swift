import Foundation
import Hummingbird
import HummingbirdTesting
import KlingAPI
import KlingCore
import NIOCore
import Testing

@testable import KlingPreview

/// Renders `request` with the real fetcher into a fresh temporary folder; the caller removes `root`.
func render(
    _ request: GenerationRequest, configuration: PreviewEngine.Configuration = .init(),
    progress: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws -> (output: RenderOutput, root: URL) {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("kling-preview-\(UUID().uuidString)")
    let job = RenderJob(
        taskID: "t", request: request.normalized(), outputDirectory: root.appendingPathComponent("out"),
        scratchDirectory: root.appendingPathComponent("tmp"))
    do {
        let output = try await PreviewEngine(configuration: configuration, fetcher: HTTPInputFetcher.development).render(job, progress: progress)
        return (output, root)
    } catch {
        try? FileManager.default.removeItem(at: root)
        throw error
    }
}

extension HTTPInputFetcher {
    /// A fetcher for inputs served from loopback: the private-address rule lifted, otherwise the defaults.
    static var development: HTTPInputFetcher {
        var configuration = Configuration()
        configuration.allowPrivateAddresses = true
        return HTTPInputFetcher(configuration: configuration)
    }
}

/// Collects progress values in the order they were reported.
actor ProgressLog {
    var values: [Int] = []
    func add(_ value: Int) { values.append(value) }
}

/// Test inputs served by a real HTTP server on loopback (Hummingbird), standing in for a client's image host.
///
/// Files: `start.png` (640x480 test card), `end.png` (640x480 bars), `red.png` and `blue.png` (400x400 solid colours),
/// `tiny.png` (200x200), `photo.jpg` (500x400 JPEG), `wide.png` (1000x300), `png-named.gif` (a PNG under a GIF name and Content-Type),
/// `clip.mp4` (2 s 480x480 H.264, red with a moving yellow square), `not-an-image.png` (text), `truncated.png` (`start.png` cut after 3000 bytes). Routes: `/stream?bytes=N` streams N bytes without a
/// Content-Length; `/redirect?to=URL` answers 302 to URL; `/hops/N` redirects N times before serving `start.png`;
/// `/host` answers the request's Host header.
struct InputServer: Sendable {
    let directory: URL
    let port: Int

    /// The input files, made once per test process (every suite's servers share them; they are only read).
    private static let fixtures: Result<URL, any Error> = Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kling-inputs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, source) in [
            ("start.png", "testsrc2=size=640x480"), ("end.png", "smptehdbars=size=640x480"), ("red.png", "color=c=red:size=400x400"),
            ("blue.png", "color=c=blue:size=400x400"), ("tiny.png", "color=c=red:size=200x200"),
            ("wide.png", "color=c=red:size=1000x300"), ("png-named.gif", "color=c=red:size=400x400"),
        ] {
            try Tool.run(
                "ffmpeg",
                [
                    "-v", "error", "-y", "-f", "lavfi", "-i", source, "-frames:v", "1", "-f", "image2", "-c:v", "png",
                    directory.appendingPathComponent(name).path,
                ])
        }
        try Tool.run(
            "ffmpeg",
            ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=500x400", "-frames:v", "1", directory.appendingPathComponent("photo.jpg").path])
        // A red clip with a yellow square moving across it: a video element whose frames change.
        try Tool.run(
            "ffmpeg",
            [
                "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:size=480x480:rate=24", "-f", "lavfi", "-i",
                "color=c=yellow:size=80x80:rate=24", "-filter_complex", "[0:v][1:v]overlay=x='mod(t*192,400)':y=200", "-frames:v", "48", "-c:v",
                "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                directory.appendingPathComponent("clip.mp4").path,
            ])
        try Data("this is text, not a PNG".utf8).write(to: directory.appendingPathComponent("not-an-image.png"))
        // A PNG cut off after its header: the size reads fine, the pixels do not decode.
        try Data(contentsOf: directory.appendingPathComponent("start.png")).prefix(3000).write(to: directory.appendingPathComponent("truncated.png"))
        return directory
    }

    static func with(_ body: @Sendable (InputServer) async throws -> Void) async throws {
        let directory = try fixtures.get()
        let router = Router()
        router.get("stream") { request, _ -> Response in
            let bytes = request.uri.queryParameters.get("bytes", as: Int.self) ?? 0
            return Response(
                status: .ok,
                body: ResponseBody { writer in
                    var left = bytes
                    while left > 0 {
                        let count = min(left, 16 * 1024)
                        try await writer.write(ByteBuffer(repeating: 0x41, count: count))
                        left -= count
                    }
                    try await writer.finish(nil)
                })
        }
        router.get("redirect") { request, _ -> Response in
            let target = request.uri.queryParameters.get("to") ?? "/"
            return Response(status: .found, headers: [.location: target])
        }
        router.get("hops/:count") { _, context -> Response in
            let count = try context.parameters.require("count", as: Int.self)
            return Response(status: .found, headers: [.location: count > 1 ? "/hops/\(count - 1)" : "/start.png"])
        }
        router.get("slow") { _, _ -> Response in
            try await Task.sleep(for: .seconds(3))
            return Response(status: .ok)
        }
        router.get("host") { request, _ -> String in request.head.authority ?? "" }
        router.add(middleware: FileMiddleware(directory.path))
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await body(InputServer(directory: directory, port: try #require(client.port)))
        }
    }

    func url(_ name: String, host: String = "127.0.0.1") -> String { "http://\(host):\(port)/\(name)" }
    func file(_ name: String) -> URL { directory.appendingPathComponent(name) }
}

/// Runs command-line tools for checks (not the code under test).
enum Tool {
    struct Failed: Error, CustomStringConvertible {
        let output: String
        var description: String { output }
    }

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
    var videoCodec = "", pixelFormat = "", frameRate = ""
    var audioCodec: String?
    var audioChannels = 0, sampleRate = 0
    var videoDuration: Double?
    var audioDuration: Double?
    var streamCount = 0

    init(_ file: URL) throws {
        let output = try Tool.run("ffprobe", ["-v", "error", "-count_frames", "-show_streams", "-of", "json", file.path])
        let json = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any] ?? [:]
        let streams = json["streams"] as? [[String: Any]] ?? []
        streamCount = streams.count
        for stream in streams {
            if stream["codec_type"] as? String == "video" {
                width = stream["width"] as? Int ?? 0
                height = stream["height"] as? Int ?? 0
                videoCodec = stream["codec_name"] as? String ?? ""
                pixelFormat = stream["pix_fmt"] as? String ?? ""
                frameRate = stream["r_frame_rate"] as? String ?? ""
                frames = Int(stream["nb_read_frames"] as? String ?? "") ?? 0
                videoDuration = Double(stream["duration"] as? String ?? "")
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
    /// Mean luma (YAVG) and blue- and red-difference chroma (UAVG, VAVG) of the given frames, optionally of a crop `w:h:x:y`.
    static func means(_ file: URL, frames: [Int], crop: String? = nil) throws -> [(y: Double, u: Double, v: Double)] {
        let select = frames.map { "eq(n\\,\($0))" }.joined(separator: "+")
        let filter = "select='\(select)'" + (crop.map { ",crop=\($0)" } ?? "") + ",signalstats,metadata=print"
        let output = try Tool.run("ffmpeg", ["-v", "info", "-i", file.path, "-vf", filter, "-an", "-fps_mode", "passthrough", "-f", "null", "-"])
        func values(_ key: String) -> [Double] {
            output.split(separator: "\n").compactMap { line in
                guard let range = line.range(of: "lavfi.signalstats.\(key)=") else { return nil }
                return Double(line[range.upperBound...].trimmingCharacters(in: .whitespaces))
            }
        }
        return zip(values("YAVG"), zip(values("UAVG"), values("VAVG"))).map { (y: $0.0, u: $0.1.0, v: $0.1.1) }
    }

    /// SSIM of frame `frame` of the video against the image fitted to the video size at its aspect (black bars);
    /// with `view` (a `crop` filter's `w:h:x:y` over the fitted image), against that part of it scaled to the frame.
    static func ssim(_ video: URL, frame: Int, against image: URL, width: Int, height: Int, view: String? = nil) throws -> Double {
        let crop = view.map { ",crop=\($0),scale=\(width):\(height)" } ?? ""
        let output = try Tool.run(
            "ffmpeg",
            [
                "-v", "info", "-i", video.path, "-i", image.path, "-filter_complex",
                "[0:v]trim=start_frame=\(frame):end_frame=\(frame + 1),setpts=PTS-STARTPTS,format=yuv420p[a];"
                    + "[1:v]scale=\(width):\(height):force_original_aspect_ratio=decrease:force_divisible_by=2,"
                    + "pad=\(width):\(height):(ow-iw)/2:(oh-ih)/2\(crop),format=yuv420p[b];[a][b]ssim",
                "-f", "null", "-",
            ])
        guard let range = output.range(of: "All:") else { return 0 }
        let number = output[range.upperBound...].prefix { $0 == "." || $0.isNumber }
        return Double(number) ?? 0
    }

    /// SSIM of every frame of video `a` against the same frame of video `b`, optionally of a crop `w:h:x:y`.
    static func ssimPerFrame(_ a: URL, _ b: URL, crop: String? = nil) throws -> [Double] {
        let cropped = crop.map { "crop=\($0)" } ?? "null"
        let output = try Tool.run(
            "ffmpeg",
            [
                "-v", "error", "-i", a.path, "-i", b.path, "-filter_complex",
                "[0:v]\(cropped)[a];[1:v]\(cropped)[b];[a][b]ssim=stats_file=-", "-f", "null", "-",
            ])
        return output.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "All:") else { return nil }
            return Double(line[range.upperBound...].prefix { $0 == "." || $0.isNumber })
        }
    }

    /// SSIM between frames `a` and `b` of the same video.
    static func ssim(_ video: URL, frame a: Int, against b: Int) throws -> Double {
        let output = try Tool.run(
            "ffmpeg",
            [
                "-v", "info", "-i", video.path, "-i", video.path, "-filter_complex",
                "[0:v]trim=start_frame=\(a):end_frame=\(a + 1),setpts=PTS-STARTPTS[a];"
                    + "[1:v]trim=start_frame=\(b):end_frame=\(b + 1),setpts=PTS-STARTPTS[b];[a][b]ssim",
                "-f", "null", "-",
            ])
        guard let range = output.range(of: "All:") else { return 0 }
        return Double(output[range.upperBound...].prefix { $0 == "." || $0.isNumber }) ?? 0
    }

    /// Frame numbers where ffmpeg's scene detection sees a cut (scene score above `threshold`).
    static func sceneCuts(_ video: URL, threshold: Double = 0.3) throws -> [Int] {
        let output = try Tool.run(
            "ffmpeg", ["-v", "info", "-i", video.path, "-vf", "select='gt(scene,\(threshold))',showinfo", "-an", "-f", "null", "-"])
        return output.split(separator: "\n").compactMap { line in
            guard line.contains("Parsed_showinfo"), let range = line.range(of: "pts_time:") else { return nil }
            let number = line[range.upperBound...].prefix { $0 == "." || $0.isNumber }
            return Double(number).map { Int(($0 * 24).rounded()) }
        }
    }

    /// Overall RMS level in dB of the audio between `start` and `end` seconds.
    static func rmsLevel(_ file: URL, from start: Double, to end: Double) throws -> Double {
        let output = try Tool.run(
            "ffmpeg", ["-v", "info", "-i", file.path, "-vn", "-af", "atrim=start=\(start):end=\(end),astats", "-f", "null", "-"])
        let levels = output.split(separator: "\n").compactMap { line -> Double? in
            guard let range = line.range(of: "RMS level dB: ") else { return nil }
            return Double(line[range.upperBound...].trimmingCharacters(in: .whitespaces)) ?? -200
        }
        return levels.last ?? -200
    }
}

/// Whether process `pid` is running (a zombie still answers kill(0); its state in /proc says it has ended).
func isRunning(_ pid: pid_t) -> Bool {
    guard kill(pid, 0) == 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
    return !(stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? true)
}

/// Whether another process works in, or has a file open under, `directory` (ffmpeg names its files through a link in
/// a folder of its own, so its command line does not show where it writes).
func processUses(_ directory: URL) -> Bool {
    let prefix = directory.resolvingSymlinksInPath().path + "/"
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return false }
    for entry in entries where entry.allSatisfy(\.isNumber) && entry != "\(getpid())" {
        let links = ["/proc/\(entry)/cwd"] + ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(entry)/fd")) ?? []).map { "/proc/\(entry)/fd/\($0)" }
        for link in links {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link) else { continue }
            if (target + "/").hasPrefix(prefix) { return true }
        }
    }
    return false
}

/// A new empty folder under the system's temporary directory (the caller removes it).
func scratchDirectory(_ prefix: String) throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

/// Whether `path` exists and lies on another file system (device) than `other`.
func onAnotherFileSystem(_ path: String, than other: String) -> Bool {
    var a = stat(), b = stat()
    return stat(path, &a) == 0 && stat(other, &b) == 0 && a.st_dev != b.st_dev
}
