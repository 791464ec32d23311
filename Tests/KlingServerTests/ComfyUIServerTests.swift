import Foundation
import Hummingbird
import HummingbirdTesting
import KlingCore
import KlingServer
import KlingUpstream
import KlingUpstreamFakes
import Testing

/// A real kling-server whose engine is a ComfyUI instance (a loopback fake) running the shipped Wan 2.2 templates.
@Suite(.serialized) struct ComfyUIServerTests {
    static let workflows = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../workflows/comfyui")
        .standardizedFileURL

    @Test func aMarketTaskIsMadeByComfyUIAndServedFromOurStorage() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kling-comfy-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let fake = FakeComfyUI(videoFile: try FakeMedia.make(in: directory).video)
        try await fake.run { base in
            let server = try await TestServer.make(workers: 1) { configuration in
                configuration.upstream.engines = ["comfyui"]
                configuration.upstream.comfyUIURLs = [base]
                configuration.upstream.comfyUIWorkflows = Self.workflows
                configuration.upstream.following.firstPoll = .milliseconds(100)
                configuration.upstream.following.maxPollInterval = .milliseconds(300)
            }
            try await server.run { client in
                let body = """
                    {"model":"kling-3.0/video","input":{"prompt":"A red fox runs through snow at dawn","duration":"5","mode":"std","aspect_ratio":"16:9","sound":true}}
                    """
                let created = try await client.create(.market, body: body, key: server.key)
                let id = try #require(created.data?["taskId"] as? String, "\(created.raw)")
                let data = try #require(try await client.waitForTerminal(.market, id: id, key: server.key).data)
                #expect(data["state"] as? String == "success", "\(data)")
                #expect(data["engine"] as? String == "comfyui")
                let task = try #require(try await server.store.task(id: id))
                // Wan's 81 frames become exactly 5 s; the fake's clip has sound, which the request asked for.
                #expect(task.result?.durationSeconds == 5 && task.result?.width == 1280 && task.result?.hasAudio == true)
                #expect(fake.record.prompts.count == 1)
            }
        }
    }
}
