import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite("End to end: create, poll, download, probe", .timeLimit(.minutes(5)))
struct EndToEndTests {
    @Test func marketTextToVideoWithAudioProducesAPlayableMP4() async throws {
        let server = try await TestServer.make(workers: 1)
        try await server.run { client in
            let body =
                #"{"model":"kling-3.0/video","input":{"prompt":"A lighthouse at dusk, waves \"Hello there\" she says","duration":"3","mode":"std","aspect_ratio":"16:9","sound":true}}"#
            let created = try await client.create(.market, body: body, key: server.key)
            #expect(created.status == 200, "\(created.raw)")
            let id = try #require(created.data?["taskId"] as? String)
            let done = try await client.waitForTerminal(.market, id: id, key: server.key)
            let data = try #require(done.data)
            #expect(data["state"] as? String == "success", "\(done.raw)")
            #expect(data["progress"] as? Int == 100)
            #expect(data["engine"] as? String == "preview")
            #expect((data["costTime"] as? Int ?? 0) > 0)
            let resultJSON = try #require(data["resultJson"] as? String)
            let result = try #require(try JSONSerialization.jsonObject(with: Data(resultJSON.utf8)) as? [String: Any])
            let url = try #require((result["resultUrls"] as? [String])?.first)
            let path = try #require(URLComponents(string: url).map { $0.percentEncodedPath + "?" + ($0.percentEncodedQuery ?? "") })
            #expect(path.hasPrefix("/files/"))

            let whole = try await client.execute(uri: path, method: .get) { $0 }
            #expect(whole.status == .ok)
            #expect(whole.headers[.contentType] == "video/mp4")
            #expect(whole.headers[.acceptRanges] == "bytes")
            let file = server.directory.appendingPathComponent("download.mp4")
            try Data(buffer: whole.body).write(to: file)
            let probe = try Probe(file)
            #expect(probe.width == 1280 && probe.height == 720)
            #expect(probe.videoCodec == "h264")
            #expect(probe.frames == 72)
            #expect(probe.audioCodec == "aac")

            let partial = try await client.execute(uri: path, method: .get, headers: [.range: "bytes=0-99"]) { $0 }
            #expect(partial.status == .partialContent)
            #expect(partial.body.readableBytes == 100)
            #expect(partial.headers[.contentRange] == "bytes 0-99/\(whole.body.readableBytes)")
        }
    }

    @Test func crunMultiShotFromAFirstFrameProducesAudioAndExactFrames() async throws {
        try await ImageServer.withImage(width: 640, height: 480) { imageURL in
            let server = try await TestServer.make(workers: 1)
            try await server.run { client in
                let body = """
                    {"model":"kling/v3","input":{"multi_shots":true,"shot_type":"customize","img_urls":["\(imageURL)"],"duration":4,"mode":"std","audio":false,
                     "multi_prompt":[{"prompt":"a wide shot of hills","duration":1},{"prompt":"close up of a flower","duration":3}]}}
                    """
                let created = try await client.create(.crun, body: body, key: server.key)
                #expect(created.status == 200, "\(created.raw)")
                let id = try #require(created.data?["task_id"] as? String)
                let done = try await client.waitForTerminal(.crun, id: id, key: server.key)
                let data = try #require(done.data)
                #expect(data["status"] as? String == "success", "\(done.raw)")
                let result = try #require(data["result"] as? [String: Any])
                let url = try #require((result["media_urls"] as? [String])?.first)
                let path = try #require(URLComponents(string: url).map { $0.percentEncodedPath + "?" + ($0.percentEncodedQuery ?? "") })
                let video = try await client.execute(uri: path, method: .get) { $0 }
                let file = server.directory.appendingPathComponent("multi.mp4")
                try Data(buffer: video.body).write(to: file)
                let probe = try Probe(file)
                #expect(probe.frames == 96)
                // 4:3 first frame at std class: the output follows the image's aspect.
                #expect(probe.width * 3 == probe.height * 4 || abs(Double(probe.width) / Double(probe.height) - 4.0 / 3.0) < 0.01)
                #expect(probe.audioCodec == "aac", "multi-shot forces audio on")
            }
        }
    }

    @Test func unfetchableFirstFrameFailsTheTaskWith422Reason() async throws {
        let server = try await TestServer.make(workers: 1)
        try await server.run { client in
            // Nothing listens on port 9 (discard) on loopback.
            let body =
                #"{"model":"kling-3.0/video","input":{"prompt":"p","duration":"3","mode":"std","image_urls":["http://127.0.0.1:9/missing.png"]}}"#
            let created = try await client.create(.market, body: body, key: server.key)
            let id = try #require(created.data?["taskId"] as? String)
            let done = try await client.waitForTerminal(.market, id: id, key: server.key)
            let data = try #require(done.data)
            #expect(data["state"] as? String == "fail")
            #expect(data["failCode"] as? String == "422")
            #expect((data["failMsg"] as? String ?? "").contains("image_urls[0]"))
            #expect(data["resultJson"] is NSNull)
        }
    }
}

/// ffprobe's view of a file.
struct Probe {
    var width = 0
    var height = 0
    var frames = 0
    var videoCodec = ""
    var audioCodec: String?

    init(_ file: URL) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", file.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let json = try JSONSerialization.jsonObject(with: output) as? [String: Any] ?? [:]
        for stream in json["streams"] as? [[String: Any]] ?? [] {
            if stream["codec_type"] as? String == "video" {
                width = stream["width"] as? Int ?? 0
                height = stream["height"] as? Int ?? 0
                videoCodec = stream["codec_name"] as? String ?? ""
                frames = Int(stream["nb_read_frames"] as? String ?? "") ?? 0
            } else if stream["codec_type"] as? String == "audio" {
                audioCodec = stream["codec_name"] as? String
            }
        }
    }
}

/// A real HTTP server on loopback serving one generated PNG, standing in for a client's image host.
enum ImageServer {
    static func withImage(width: Int, height: Int, _ body: @Sendable (String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kling-img-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let image = directory.appendingPathComponent("start.png")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=\(width)x\(height)", "-frames:v", "1", image.path]
        try process.run()
        process.waitUntilExit()
        let router = Router()
        router.add(middleware: FileMiddleware(directory.path))
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            try await body("http://127.0.0.1:\(port)/start.png")
        }
    }
}
