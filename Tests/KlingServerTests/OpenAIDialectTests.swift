import Foundation
import HTTPTypes
import HummingbirdTesting
import KlingCore
import NIOCore
import Testing

/// The OpenAI Videos dialect: driven by the official `openai` Python package, plus the shapes and errors it relies on.
@Suite("OpenAI Videos dialect", .timeLimit(.minutes(5)))
struct OpenAIDialectTests {
    static let sdkScript = """
        import sys, warnings, openai
        warnings.simplefilter("ignore")
        key, base, out, frame = sys.argv[1:5]
        client = openai.OpenAI(api_key=key, base_url=base, max_retries=0)
        video = client.videos.create_and_poll(model="kling-3.0", prompt="A red fox runs through snow", seconds="4",
                                              size="1280x720", poll_interval_ms=200)
        assert video.status == "completed", video
        assert video.progress == 100 and video.seconds == "4" and video.size == "1280x720", video
        client.videos.download_content(video.id).write_to_file(out)
        client.videos.download_content(video.id, variant="thumbnail").write_to_file(out + ".jpg")
        with open(frame, "rb") as f:
            portrait = client.videos.create_and_poll(prompt="From this frame", input_reference=("frame.png", f, "image/png"),
                                                     seconds="4", size="720x1280", poll_interval_ms=200)
        assert portrait.status == "completed" and portrait.size == "720x720", portrait
        client.videos.download_content(portrait.id).write_to_file(out + ".portrait.mp4")
        page = client.videos.list(limit=1)
        assert page.data[0].id == portrait.id and page.has_more, page
        assert [v.id for v in client.videos.list(order="asc")] == [video.id, portrait.id]
        deleted = client.videos.delete(video.id)
        assert deleted.deleted and deleted.id == video.id and deleted.object == "video.deleted", deleted
        try:
            client.videos.download_content(video.id)
            raise SystemExit("content of a deleted video")
        except openai.NotFoundError:
            pass
        try:
            client.videos.create(prompt="x", seconds="99")
            raise SystemExit("seconds 99 accepted")
        except openai.BadRequestError as error:
            assert error.body["param"] == "seconds", error.body
        try:
            openai.OpenAI(api_key="wrong", base_url=base, max_retries=0).videos.retrieve(portrait.id)
            raise SystemExit("wrong key accepted")
        except openai.AuthenticationError:
            pass
        print("ok")
        """

    @Test func officialOpenAISDKCreatesPollsDownloadsListsAndDeletes() async throws {
        let server = try await TestServer.make(workers: 1)
        try await server.run { client in
            let port = try #require(client.port)
            let folder = server.directory.appendingPathComponent("sdk", isDirectory: true)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let frame = folder.appendingPathComponent("frame.png")
            try FilesTests.png.write(to: frame)
            let out = folder.appendingPathComponent("video.mp4")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", Self.sdkScript, server.key, "http://127.0.0.1:\(port)/v1", out.path, frame.path]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = await Task.detached { String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }.value
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(text)")
            #expect(text.hasSuffix("ok\n"), "\(text)")

            let landscape = try Probe(out)
            #expect(landscape.width == 1280 && landscape.height == 720)
            #expect(landscape.videoCodec == "h264")
            #expect(landscape.audioCodec == "aac")
            #expect(landscape.frames == 96)
            // With a first frame the output takes the image's aspect (400x400 here) at the size class asked for.
            let portrait = try Probe(folder.appendingPathComponent("video.mp4.portrait.mp4"))
            #expect(portrait.width == 720 && portrait.height == 720)
            let thumbnail = try Data(contentsOf: folder.appendingPathComponent("video.mp4.jpg"))
            #expect(thumbnail.starts(with: [0xFF, 0xD8, 0xFF]))
        }
    }

    @Test func errorsUseOpenAIsShapeAndStatuses() async throws {
        let server = try await TestServer.make(credits: 10)
        try await server.run { client in
            func post(_ body: String, key: String? = nil) async throws -> (HTTPResponse.Status, [String: Any]) {
                var headers: HTTPFields = [.contentType: "application/json"]
                headers[.authorization] = "Bearer \(key ?? server.key)"
                return try await client.execute(uri: "/v1/videos", method: .post, headers: headers, body: ByteBuffer(string: body)) {
                    ($0.status, (JSONAnswer($0).object["error"] as? [String: Any]) ?? [:])
                }
            }
            let bad = try await post(#"{"prompt":"p","size":"640x480"}"#)
            #expect(bad.0 == .badRequest)
            #expect(bad.1["type"] as? String == "invalid_request_error")
            #expect(bad.1["param"] as? String == "size")
            let missing = try await post(#"{"seconds":"4"}"#)
            #expect(missing.0 == .badRequest && missing.1["param"] as? String == "prompt")
            let model = try await post(#"{"prompt":"p","model":"veo-3"}"#)
            #expect(model.0 == .badRequest && model.1["param"] as? String == "model")
            let unauthorized = try await post(#"{"prompt":"p"}"#, key: "nope")
            #expect(unauthorized.0 == .unauthorized && unauthorized.1["code"] as? String == "invalid_api_key")
            let broke = try await post(#"{"prompt":"p"}"#)
            #expect(broke.0 == .tooManyRequests && broke.1["type"] as? String == "insufficient_quota")
            let notFound = try await client.execute(
                uri: "/v1/videos/video_nope", method: .get, headers: [.authorization: "Bearer \(server.key)"]
            ) { $0.status }
            #expect(notFound == .notFound)
            #expect(try await server.totalTasks() == 0)
        }
    }

    @Test func taskFromAnotherDialectReadsAsAVideo() async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            let body = #"{"model":"kling-3.0/video","input":{"prompt":"market made","duration":"5","mode":"pro","aspect_ratio":"9:16"}}"#
            let id = try #require(try await client.create(.market, body: body, key: server.key).data?["taskId"] as? String)
            let video = try await client.execute(uri: "/v1/videos/\(id)", method: .get, headers: [.authorization: "Bearer \(server.key)"]) {
                JSONAnswer($0).object
            }
            #expect(video["object"] as? String == "video")
            #expect(video["status"] as? String == "queued")
            #expect(video["seconds"] as? String == "5")
            #expect(video["size"] as? String == "1080x1920")
            #expect(video["prompt"] as? String == "market made")
        }
    }
}
