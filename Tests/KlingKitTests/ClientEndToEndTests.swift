import Foundation
import KlingKit
import Testing

/// The library against a real kling-server on loopback in each dialect: create, wait with progress, download.
@Suite("KlingClient end to end", .serialized, .timeLimit(.minutes(5)))
struct ClientEndToEndTests {
    @Test(arguments: [KlingClient.Dialect.market, .crun, .klingOfficial])
    func createsWaitsAndDownloadsInEachDialect(dialect: KlingClient.Dialect) async throws {
        let server = try await LiveServer.make(workers: 1, credits: 1000)
        try await server.run { baseURL in
            // Kling official goes through minted JWTs (access key + secret key); the others through API keys.
            let client = server.client(baseURL, dialect, jwt: dialect == .klingOfficial)
            let request = VideoRequest(prompt: "A red fox runs through snow at dawn").mode(.std).duration(3).audio(false)
            let created = try await client.create(request)
            #expect(!created.id.isEmpty)
            #expect(created.state == .queued)

            var updates: [TaskProgress] = []
            for try await update in client.wait(for: created.id) { updates.append(update) }
            let last = try #require(updates.last)
            #expect(last.task.state == .succeeded, "\(last.task)")
            #expect(last.taskID == created.id)
            #expect(last.task.engine == "preview")
            #expect(last.task.progress == 100)
            #expect(updates.dropLast().allSatisfy { !$0.task.state.isTerminal })
            #expect(zip(updates, updates.dropFirst()).allSatisfy { $0.elapsed <= $1.elapsed && $0.queries < $1.queries })

            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("klingkit-dl-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let file = folder.appendingPathComponent("fox.mp4")
            let result = try await client.download(taskID: created.id, to: file)
            #expect(result.resumes == 0)
            #expect(TestMedia.isMP4(file))
            #expect(result.bytes == (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int64))
            #expect(!FileManager.default.fileExists(atPath: file.path + ".part"))

            // 3 s std without audio costs 30 of alice's 1000 credits.
            if dialect == .klingOfficial {
                await #expect(throws: KlingError.self) { try await client.credits() }
                #expect(try await server.client(baseURL, .klingOfficial).credits() == 970)
            } else {
                #expect(try await client.credits() == 970)
            }
        }
    }

    @Test func cancelRefundsAQueuedTaskAndQuotePricesWithoutCharging() async throws {
        let server = try await LiveServer.make(workers: 0, credits: 1000)
        try await server.run { baseURL in
            let client = server.client(baseURL, .crun)
            let request = VideoRequest(prompt: "A lighthouse in a storm").mode(.pro).duration(10).audio(true)
            let quote = try await client.quote(request)
            #expect(quote.credits == 210)
            #expect(quote.balance == 1000)
            #expect(quote.affordable)
            let task = try await client.create(request, idempotencyKey: "lighthouse-1")
            #expect(try await client.credits() == 790)
            // The same idempotency key returns the first task and charges nothing more.
            #expect(try await client.create(request, idempotencyKey: "lighthouse-1").id == task.id)
            #expect(try await client.credits() == 790)
            let cancelled = try await client.cancel(task.id)
            #expect(cancelled.state == .failed)
            #expect(cancelled.failure?.code == "499")
            #expect(try await client.task(task.id).state == .failed)
            #expect(try await client.credits() == 1000)
        }
    }

    @Test func waitingStopsAtTheCeilingWithTheTaskID() async throws {
        let server = try await LiveServer.make(workers: 0)
        try await server.run { baseURL in
            var configuration = server.client(baseURL, .market).configuration
            configuration.polling = .init(initialInterval: .milliseconds(100), ceiling: .milliseconds(800))
            let client = KlingClient(configuration: configuration)
            let task = try await client.create(VideoRequest(prompt: "A slow sunrise").mode(.std).duration(3))
            var seen = 0
            var caught: KlingError?
            do {
                for try await update in client.wait(for: task.id) {
                    #expect(update.task.state == .queued)
                    seen += 1
                }
            } catch let error as KlingError {
                caught = error
            }
            #expect(caught?.kind == .timeout)
            #expect(caught?.taskID == task.id)
            #expect(caught?.message.contains("still not finished") == true)
            #expect(seen >= 1)
        }
    }

    @Test func apiErrorsCarryTheProvidersCodeAndMessage() async throws {
        let server = try await LiveServer.make(workers: 0)
        try await server.run { baseURL in
            let wrongKey = KlingClient(configuration: .init(baseURL: baseURL, credentials: .bearer("nope"), dialect: .market))
            let unauthorized = await #expect(throws: KlingError.self) { try await wrongKey.credits() }
            #expect(unauthorized?.kind == .api)
            #expect(unauthorized?.code == "401")
            #expect(unauthorized?.httpStatus == 401)

            let kling = server.client(baseURL, .klingOfficial, jwt: true)
            let missing = await #expect(throws: KlingError.self) { try await kling.task("task_does_not_exist") }
            #expect(missing?.code == "1203")
            #expect(missing?.httpStatus == 404)
            #expect(missing?.requestID?.isEmpty == false)

            let uploadWithJWT = await #expect(throws: KlingError.self) {
                try await kling.upload(file: URL(fileURLWithPath: #filePath))
            }
            #expect(uploadWithJWT?.kind == .unsupported)
        }
    }

    @Test func uploadsALocalImageAndUsesItAsTheFirstFrame() async throws {
        let server = try await LiveServer.make(workers: 1)
        let image = try await TestMedia.png(width: 720, height: 1280)
        defer { try? FileManager.default.removeItem(at: image.deletingLastPathComponent()) }
        try await server.run { baseURL in
            let client = server.client(baseURL, .market)
            let uploaded = try await client.upload(file: image)
            #expect(uploaded.mimeType == "image/png")
            #expect(uploaded.fileSize == (try FileManager.default.attributesOfItem(atPath: image.path)[.size] as? Int64))
            let request = VideoRequest(prompt: "The frame comes alive").firstFrame(uploaded.downloadURL).mode(.std).duration(3).audio(false)
            let task = try await client.waitUntilFinished(try await client.create(request).id)
            #expect(task.state == .succeeded, "\(task)")
        }
    }
}
