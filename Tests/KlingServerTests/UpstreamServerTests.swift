import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KlingAPI
import KlingCore
import KlingServer
import KlingUpstream
import KlingUpstreamFakes
import NIOCore
import Testing

/// A real kling-server whose engine is Kling's official API (a loopback fake): tasks created in the Market dialect are
/// forwarded, followed, copied into our storage and served from our own URLs; failures are refunded.
@Suite(.serialized) struct UpstreamServerTests {
    static let marketBody = """
        {"model":"kling-3.0/video","callBackUrl":"https://client.example/hook","input":{"prompt":"A red fox runs through snow at dawn","duration":"5","mode":"std","sound":true}}
        """

    static func server(officialURL: String, engines: [String] = ["official"], firstPoll: Duration = .milliseconds(100)) async throws -> TestServer {
        try await TestServer.make(workers: 1) { configuration in
            configuration.upstream.engines = engines
            configuration.upstream.officialURL = officialURL
            configuration.upstream.officialAccessKey = Secret("official-key")
            configuration.upstream.officialSecretKey = Secret("official-secret-0123456789abcdefghij")
            configuration.upstream.following.firstPoll = firstPoll
            configuration.upstream.following.maxPollInterval = max(firstPoll, .milliseconds(500))
            configuration.upstream.requestTimeout = .seconds(3)
        }
    }

    static func fake(script: FakeScript = FakeScript()) throws -> (FakeProvider, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kling-fake-\(UUID().uuidString)", isDirectory: true)
        let media = try FakeMedia.make(in: directory)
        return (
            FakeProvider(
                flavor: .official, key: "official-key", secretKey: "official-secret-0123456789abcdefghij", script: script, videoFile: media.video,
                coverFile: media.cover), directory
        )
    }

    @Test func aMarketTaskRunsOnKlingOfficialAndIsServedFromOurStorage() async throws {
        let (fake, media) = try Self.fake()
        defer { try? FileManager.default.removeItem(at: media) }
        try await fake.run { base in
            let server = try await Self.server(officialURL: base)
            try await server.run { client in
                let created = try await client.create(.market, body: Self.marketBody, key: server.key)
                let id = try #require(created.data?["taskId"] as? String)
                let answer = try await client.waitForTerminal(.market, id: id, key: server.key)
                let data = try #require(answer.data)
                #expect(data["state"] as? String == "success")
                #expect(data["engine"] as? String == "kling-official")
                // The provider's task id never reaches the client.
                #expect(!answer.raw.contains("official-1"))
                let result = try #require((data["resultJson"] as? String).flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
                let url = try #require((result["resultUrls"] as? [String])?.first)
                #expect(url.contains("/files/results/\(id)/") && !url.contains(base))
                // Our own URL serves the MP4 the provider made.
                let components = try #require(URLComponents(string: url))
                let path = components.percentEncodedPath + "?" + (try #require(components.percentEncodedQuery))
                let bytes = try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .ok)
                    return Data(buffer: response.body)
                }
                #expect(bytes == FileManager.default.contents(atPath: media.appendingPathComponent("result.mp4").path))

                // What went upstream: our task id as external_task_id and our own signed callback, not the client's.
                let sent = try #require(fake.record.creates.first).json
                #expect(sent["external_task_id"] as? String == id)
                let callback = try #require(sent["callback_url"] as? String)
                #expect(callback.contains("/api/v1/upstream/callbacks/\(id)?token="))
                #expect(!callback.contains("client.example"))
            }
        }
    }

    @Test func anUpstreamFailureFailsTheTaskWithKlingsReasonAndRefundsIt() async throws {
        var script = FakeScript()
        script.outcome = .fail(reason: "Failure to pass the risk control system")
        let (fake, media) = try Self.fake(script: script)
        defer { try? FileManager.default.removeItem(at: media) }
        try await fake.run { base in
            let server = try await Self.server(officialURL: base)
            try await server.run { client in
                let before = try await server.store.balance(accountID: try #require(try await server.store.account(named: "alice")).id)
                let created = try await client.create(.market, body: Self.marketBody, key: server.key)
                let id = try #require(created.data?["taskId"] as? String)
                let data = try #require(try await client.waitForTerminal(.market, id: id, key: server.key).data)
                #expect(data["state"] as? String == "fail")
                #expect(data["failMsg"] as? String == "kling-official: Failure to pass the risk control system")
                #expect(data["consumeCredits"] as? Int == 0)
                let after = try await server.store.balance(accountID: try #require(try await server.store.account(named: "alice")).id)
                #expect(after == before)
            }
        }
    }

    @Test func aProviderCallbackWakesTheFollower() async throws {
        var script = FakeScript()
        script.runFor = .seconds(1)
        script.sendCallbacks = true
        let (fake, media) = try Self.fake(script: script)
        defer { try? FileManager.default.removeItem(at: media) }
        try await fake.run { base in
            // Polling alone would first ask after 10 minutes: only the callback can finish this task sooner.
            let server = try await Self.server(officialURL: base, firstPoll: .seconds(600))
            try await server.run { client in
                let created = try await client.create(.market, body: Self.marketBody, key: server.key)
                let id = try #require(created.data?["taskId"] as? String)
                let data = try #require(try await client.waitForTerminal(.market, id: id, key: server.key, timeout: .seconds(300)).data)
                #expect(data["state"] as? String == "success")
                #expect(fake.record.callbacksSent == 1)
                #expect(fake.record.queries.count == 1)
            }
        }
    }

    @Test func theCallbackEndpointRefusesTokensNotSignedForTheTask() async throws {
        let server = try await Self.server(officialURL: "http://127.0.0.1:9")
        try await server.run { client in
            for uri in ["/api/v1/upstream/callbacks/task_x?token=forged", "/api/v1/upstream/callbacks/task_x"] {
                let status = try await client.execute(uri: uri, method: .post, body: ByteBuffer(string: "{}")) { $0.status.code }
                #expect(status == 403)
            }
        }
    }

    @Test func aProviderThatIsDownFailsOverToThePreviewEngine() async throws {
        let server = try await Self.server(officialURL: "http://127.0.0.1:9", engines: ["official", "preview"])
        try await server.run { client in
            let body = """
                {"model":"kling-3.0/video","input":{"prompt":"A red fox","duration":"3","mode":"std","sound":false}}
                """
            let created = try await client.create(.market, body: body, key: server.key)
            let id = try #require(created.data?["taskId"] as? String)
            let data = try #require(try await client.waitForTerminal(.market, id: id, key: server.key).data)
            #expect(data["state"] as? String == "success")
            #expect(data["engine"] as? String == "preview")
        }
    }
}
