import Foundation
import Hummingbird
import HummingbirdTesting
import KlingCore
import KlingServer
import KlingUpstream
import KlingUpstreamFakes
import Testing

/// The `openai-videos` engine in a real server: one kling-server whose engine is a second kling-server's `/v1/videos`
/// (the `openai` profile), and one whose GPU server fails a video (refunded with the server's message).
@Suite(.serialized) struct OpenAIVideosChainTests {
    static let marketBody = """
        {"model":"kling-3.0/video","input":{"prompt":"A red fox runs through snow at dawn","duration":"4","mode":"std","aspect_ratio":"16:9","sound":false}}
        """

    static func front(videosURL: String, key: String, profile: String = "openai") async throws -> TestServer {
        try await TestServer.make(workers: 1) { configuration in
            configuration.upstream.engines = ["openai-videos"]
            configuration.upstream.openAIVideosURLs = [videosURL]
            configuration.upstream.openAIVideosKey = Secret(key)
            configuration.upstream.openAIVideosModel = "kling-3.0"
            configuration.upstream.openAIVideosProfile = profile
            configuration.upstream.following.firstPoll = .milliseconds(100)
            configuration.upstream.following.maxPollInterval = .milliseconds(400)
            configuration.upstream.requestTimeout = .seconds(5)
        }
    }

    @Test func aKlingServerGeneratesThroughAnotherKlingServersVideosAPI() async throws {
        let back = try await TestServer.make(workers: 1)
        try await back.run { backClient in
            let backURL = "http://127.0.0.1:\(try #require(backClient.port))"
            let front = try await Self.front(videosURL: backURL, key: back.key)
            try await front.run { client in
                let created = try await client.create(.market, body: Self.marketBody, key: front.key)
                let id = try #require(created.data?["taskId"] as? String, "\(created.raw)")
                let answer = try await client.waitForTerminal(.market, id: id, key: front.key)
                let data = try #require(answer.data)
                #expect(data["state"] as? String == "success", "\(answer.raw)")
                #expect(data["engine"] as? String == "openai-videos")
                let result = try #require((data["resultJson"] as? String).flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
                let url = try #require((result["resultUrls"] as? [String])?.first)
                // Served from the front server's own storage, not the back server's.
                #expect(url.contains("/files/results/\(id)/") && !url.contains(backURL))
                let components = try #require(URLComponents(string: url))
                let bytes = try await client.execute(uri: components.percentEncodedPath + "?" + (components.percentEncodedQuery ?? ""), method: .get) {
                    Data(buffer: $0.body)
                }
                // The back server made it: its preview engine, at the size and length asked.
                let backVideos = try await back.store.listTasks(accountID: try #require(try await back.store.account(named: "alice")).id, limit: 10, after: nil, ascending: true, offset: 0)
                let made = try #require(backVideos.tasks.first)
                #expect(backVideos.tasks.count == 1 && made.dialect == "openai" && made.engine == "preview")
                #expect(made.request.duration == 4 && made.request.mode == .std && made.request.aspectRatio == .landscape)
                #expect(made.result?.width == 1280 && made.result?.height == 720)
                #expect(bytes.count > 10_000)
            }
        }
    }

    @Test func aVideoTheGPUServerFailsIsRefundedWithItsMessage() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kling-fake-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var script = FakeVideosServer.Script()
        script.failure = "CUDA out of memory"
        script.key = "gpu-key"
        script.renderTime = .milliseconds(200)
        let fake = FakeVideosServer(flavor: .sglang, script: script, videoFile: try FakeMedia.make(in: directory).video)
        try await fake.run { base in
            let front = try await Self.front(videosURL: base, key: "gpu-key", profile: "sglang-wan2.2")
            try await front.run { client in
                let alice = try #require(try await front.store.account(named: "alice")).id
                let before = try await front.store.balance(accountID: alice)
                let body = Self.marketBody.replacingOccurrences(of: "\"duration\":\"4\"", with: "\"duration\":\"5\"")
                let created = try await client.create(.market, body: body, key: front.key)
                let id = try #require(created.data?["taskId"] as? String, "\(created.raw)")
                let data = try #require(try await client.waitForTerminal(.market, id: id, key: front.key).data)
                #expect(data["state"] as? String == "fail")
                #expect(data["failMsg"] as? String == "openai-videos: CUDA out of memory")
                #expect(try await front.store.balance(accountID: alice) == before)
                #expect(fake.record.creates.first?.fields["num_frames"] == "81")
            }
        }
    }
}
