import Foundation
import Hummingbird
import KlingKit
import NIOCore
import Testing

/// `WebhookVerifier` against signatures made by the server's real callback deliveries.
@Suite("Webhook verification", .serialized, .timeLimit(.minutes(3)))
struct WebhookVerifierTests {
    /// A callback as a receiver saw it.
    struct Delivery: Sendable {
        var headers: [String: String]
        var body: Data
    }

    actor Inbox {
        var deliveries: [Delivery] = []
        func add(_ delivery: Delivery) { deliveries.append(delivery) }
        func waitFor(_ count: Int) async throws -> [Delivery] {
            let deadline = ContinuousClock.now + .seconds(120)
            while deliveries.count < count && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
            return deliveries
        }
    }

    /// Creates one task with a callback to a loopback receiver in `dialect` and returns the deliveries it got.
    func deliveries(_ dialect: KlingClient.Dialect, count: Int) async throws -> (secrets: [String], deliveries: [Delivery]) {
        let inbox = Inbox()
        let router = Router()
        router.post("hook") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            await inbox.add(Delivery(headers: headers, body: Data(buffer: body)))
            return Response(status: .ok)
        }
        return try await withLoopbackApp(router) { receiver in
            let server = try await LiveServer.make(workers: 1)
            return try await server.run { baseURL in
                let secrets = try await server.webhookSecrets()
                let client = server.client(baseURL, dialect, jwt: dialect == .klingOfficial)
                let task = try await client.create(VideoRequest(prompt: "a cat").mode(.std).duration(3).audio(false).callback(receiver + "/hook"))
                _ = try await client.waitUntilFinished(task.id)
                return (secrets, try await inbox.waitFor(count))
            }
        }
    }

    @Test func verifiesStandardWebhooksAndMarketSignaturesOfRealDeliveries() async throws {
        let (secrets, deliveries) = try await deliveries(.market, count: 1)
        let delivery = try #require(deliveries.first)
        let verifier = WebhookVerifier(secret: try #require(secrets.first))
        let message = try verifier.verify(body: delivery.body, headers: delivery.headers)
        #expect(message.id == delivery.headers["webhook-id"])
        #expect(message.id.hasPrefix("msg_"))
        let taskID = try verifier.verifyMarket(body: delivery.body, headers: delivery.headers)
        #expect(!taskID.isEmpty)

        // A changed body, another secret, or an old timestamp are all refused.
        var tampered = delivery.body
        tampered.append(contentsOf: Array(" ".utf8))
        #expect(throws: KlingError.self) { try verifier.verify(body: tampered, headers: delivery.headers) }
        let strangerSecret = "whsec_" + Data(repeating: 7, count: 32).base64EncodedString()
        let stranger = WebhookVerifier(secret: strangerSecret)
        #expect(throws: KlingError.self) { try stranger.verify(body: delivery.body, headers: delivery.headers) }
        #expect(throws: KlingError.self) { try stranger.verifyMarket(body: delivery.body, headers: delivery.headers) }
        let replay = #expect(throws: KlingError.self) {
            try verifier.verify(body: delivery.body, headers: delivery.headers, now: Date().addingTimeInterval(3600))
        }
        #expect(replay?.kind == .signature)
        // Headers are matched whatever their case; while rotating, any one of several secrets verifies.
        let upper = Dictionary(uniqueKeysWithValues: delivery.headers.map { ($0.key.uppercased(), $0.value) })
        try WebhookVerifier(secrets: [strangerSecret, secrets[0]]).verify(body: delivery.body, headers: upper)
    }

    @Test func verifiesKlingCallbacksOnEveryStatusChange() async throws {
        // Kling callbacks go out when rendering starts and when it ends.
        let (secrets, deliveries) = try await deliveries(.klingOfficial, count: 2)
        #expect(deliveries.count >= 2)
        let verifier = WebhookVerifier(secrets: secrets)
        var ids: Set<String> = []
        for delivery in deliveries {
            ids.insert(try verifier.verify(body: delivery.body, headers: delivery.headers).id)
        }
        #expect(ids.count == deliveries.count)
    }
}
