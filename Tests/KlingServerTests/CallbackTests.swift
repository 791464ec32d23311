import Foundation
import HTTPTypes
import HummingbirdTesting
import KlingCore
import KlingServer
import NIOCore
import Testing

/// Callbacks: payload shapes per dialect, signatures (ours and an independent implementation), retries and their
/// limits, no redirects, the address rule, delivery attempts listed.
@Suite("Callbacks", .timeLimit(.minutes(5)))
struct CallbackTests {
    static func marketBody(_ url: String, image: String? = nil) -> String {
        let images = image.map { #","image_urls":["\#($0)"]"# } ?? ""
        return #"{"model":"kling-3.0/video","callBackUrl":"\#(url)","input":{"prompt":"a cat","duration":"3","mode":"std","sound":false\#(images)}}"#
    }
    static func crunBody(_ url: String) -> String {
        #"{"model":"kling/v3","callback_url":"\#(url)","input":{"prompt":"a cat","duration":3,"mode":"std","multi_shots":false,"audio":false}}"#
    }

    func secrets(_ server: TestServer) async throws -> [String] {
        let account = try #require(try await server.store.account(named: "alice"))
        return try await server.store.webhookSecrets(accountID: account.id, now: TaskWorker.nowMillis())
    }

    /// Verifies with the `standardwebhooks` package from PyPI; `nil` when it is not installed.
    func verifiedByStandardWebhooks(_ delivery: CallbackReceiver.Delivery, secret: String) throws -> Bool? {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kling-wh-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try delivery.body.write(to: folder.appendingPathComponent("body"))
        let headers = ["webhook-id", "webhook-timestamp", "webhook-signature"].reduce(into: [String: String]()) {
            $0[$1] = delivery.headers[$1]
        }
        try JSONSerialization.data(withJSONObject: headers).write(to: folder.appendingPathComponent("headers.json"))
        let script = """
            import json, sys
            try:
                from standardwebhooks.webhooks import Webhook
            except ImportError:
                sys.exit(3)
            body = open(sys.argv[1] + "/body", "rb").read()
            headers = json.load(open(sys.argv[1] + "/headers.json"))
            Webhook(sys.argv[2]).verify(body, headers)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, folder.path, secret]
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        if process.terminationStatus == 3 { return nil }
        return process.terminationStatus == 0
    }

    @Test func marketCallbackCarriesTheTaskDetailsCreditsAndBothSignatures() async throws {
        try await CallbackReceiver.with { receiver in
            let server = try await TestServer.make(workers: 1, credits: 1000)
            try await server.run { client in
                let created = try await client.create(.market, body: Self.marketBody(receiver.url), key: server.key)
                let id = try #require(created.data?["taskId"] as? String, "\(created.raw)")
                let delivery = try #require(try await receiver.waitFor(1).first)
                #expect(delivery.path == "/hook")
                let json = delivery.json
                #expect(json["code"] as? Int == 200)
                let data = try #require(json["data"] as? [String: Any])
                #expect(data["taskId"] as? String == id)
                #expect(data["state"] as? String == "success")
                #expect((data["resultJson"] as? String ?? "").contains("resultUrls"))
                #expect(data["consumeCredits"] as? Int == 30)
                #expect(data["remainedCredits"] as? Int == 970)
                #expect(data["engine"] as? String == "preview")

                let secrets = try await secrets(server)
                let webhookID = try #require(delivery.headers["webhook-id"])
                let timestamp = try #require(delivery.headers["webhook-timestamp"].flatMap { Int64($0) })
                #expect(webhookID.hasPrefix("msg_"))
                #expect(abs(timestamp - TaskWorker.nowMillis() / 1000) < 60)
                #expect(
                    WebhookSigner.verify(
                        secrets: secrets, id: webhookID, timestamp: timestamp, body: delivery.body,
                        signatureHeader: delivery.headers["webhook-signature"] ?? "", now: TaskWorker.nowMillis() / 1000))
                #expect(
                    !WebhookSigner.verify(
                        secrets: secrets, id: webhookID, timestamp: timestamp, body: delivery.body + Data("x".utf8),
                        signatureHeader: delivery.headers["webhook-signature"] ?? "", now: TaskWorker.nowMillis() / 1000))
                // scripts/install-deps.sh installs the package; without it this check cannot run, and says so.
                let independent = try verifiedByStandardWebhooks(delivery, secret: secrets[0])
                #expect(independent != nil, "the standardwebhooks package is missing (scripts/install-deps.sh installs it)")
                #expect(independent != false, "the standardwebhooks package rejects our signature")
                #expect(delivery.headers["x-webhook-timestamp"] == String(timestamp))
                #expect(
                    delivery.headers["x-webhook-signature"]
                        == WebhookSigner.marketSignature(secret: secrets[0], taskID: id, timestamp: timestamp))

                // The attempts are listed for the owner.
                var listed: [[String: Any]] = []
                for _ in 0..<50 {
                    let answer = try await client.execute(
                        uri: "/api/v1/callbacks?taskId=\(id)", method: .get, headers: TestDialect.market.headers(key: server.key)
                    ) { JSONAnswer($0) }
                    listed = answer.object["data"] as? [[String: Any]] ?? []
                    if listed.first?["state"] as? String == "delivered" { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(listed.count == 1)
                #expect(listed.first?["callbackId"] as? String == webhookID)
                #expect((listed.first?["deliveries"] as? [[String: Any]])?.last?["status"] as? Int == 200)
                let theirs = try await client.execute(
                    uri: "/api/v1/callbacks?taskId=\(id)", method: .get, headers: TestDialect.market.headers(key: server.otherKey)
                ) { JSONAnswer($0) }
                #expect(theirs.status == 404)
            }
        }
    }

    @Test func crunCallbackIsTheTaskInfoDataObject() async throws {
        try await CallbackReceiver.with { receiver in
            let server = try await TestServer.make(workers: 1, credits: 1000)
            try await server.run { client in
                let created = try await client.create(.crun, body: Self.crunBody(receiver.url), key: server.key)
                let id = try #require(created.data?["task_id"] as? String, "\(created.raw)")
                let delivery = try #require(try await receiver.waitFor(1).first)
                let json = delivery.json
                #expect(json["task_id"] as? String == id)
                #expect(json["status"] as? String == "success")
                #expect(json["credits"] as? Int == 30)
                #expect(((json["result"] as? [String: Any])?["media_urls"] as? [String])?.count == 1)
                #expect(delivery.headers["x-webhook-signature"] == nil, "Market-only header")
                #expect(delivery.headers["webhook-signature"]?.hasPrefix("v1,") == true)
            }
        }
    }

    @Test func failedTaskCallbackSays501WithNothingConsumed() async throws {
        try await CallbackReceiver.with { receiver in
            let server = try await TestServer.make(workers: 1, credits: 1000)
            try await server.run { client in
                let missing = "http://127.0.0.1:\(receiver.port)/missing.png"
                let created = try await client.create(.market, body: Self.marketBody(receiver.url, image: missing), key: server.key)
                _ = try #require(created.data?["taskId"] as? String, "\(created.raw)")
                let delivery = try #require(try await receiver.waitFor(1).first)
                #expect(delivery.json["code"] as? Int == 501)
                let data = try #require(delivery.json["data"] as? [String: Any])
                #expect(data["state"] as? String == "fail")
                #expect(data["consumeCredits"] as? Int == 0)
                #expect(data["remainedCredits"] as? Int == 1000)
            }
        }
    }

    @Test func retriesAfterErrorsAndTimeoutsWithTheSameWebhookIDAndHonoursRetryAfter() async throws {
        let script: [CallbackReceiver.Answer] = [
            .status(500), .stall(.seconds(8)), .status(429, headers: ["Retry-After": "2"]), .status(200),
        ]
        try await CallbackReceiver.with(script: script) { receiver in
            let server = try await TestServer.make(workers: 1, credits: 1000) {
                $0.callbacks.retryDelays = Array(repeating: .milliseconds(200), count: 5)
                $0.callbacks.timeout = .seconds(3)
            }
            try await server.run { client in
                let created = try await client.create(.market, body: Self.marketBody(receiver.url), key: server.key)
                let id = try #require(created.data?["taskId"] as? String)
                let deliveries = try await receiver.waitFor(4, timeout: .seconds(60))
                let alice = try #require(try await server.store.account(named: "alice"))
                let state = try await server.store.callbacks(taskID: id, accountID: alice.id)
                try #require(deliveries.count == 4, "\(state)")
                #expect(Set(deliveries.compactMap { $0.headers["webhook-id"] }).count == 1, "one webhook-id across retries")
                #expect(Set(deliveries.map(\.body)).count == 1, "the same body on every attempt")
                #expect(deliveries[3].at - deliveries[2].at >= .milliseconds(1900), "Retry-After: 2 honoured")
                try await Task.sleep(for: .milliseconds(500))
                let callbacks = try await server.store.callbacks(
                    taskID: id, accountID: try #require(try await server.store.account(named: "alice")).id)
                let (record, attempts) = try #require(callbacks.first)
                #expect(record.state == .delivered)
                #expect(attempts.map(\.status) == [500, nil, 429, 200])
                #expect(attempts[1].error?.isEmpty == false, "the timeout is recorded")
                #expect(await receiver.deliveries().count == 4, "nothing after the 2xx")
            }
        }
    }

    @Test func redirectsAreNotFollowedAnd410StopsDelivery() async throws {
        try await CallbackReceiver.with(script: [.status(302, headers: ["Location": "/elsewhere"]), .status(410)]) { receiver in
            let server = try await TestServer.make(workers: 1, credits: 1000)
            try await server.run { client in
                let created = try await client.create(.market, body: Self.marketBody(receiver.url), key: server.key)
                let id = try #require(created.data?["taskId"] as? String)
                _ = try await receiver.waitFor(2)
                try await Task.sleep(for: .seconds(1.5))
                let deliveries = await receiver.deliveries()
                #expect(deliveries.map(\.path) == ["/hook", "/hook"], "no request to the redirect target, nothing after 410")
                let account = try #require(try await server.store.account(named: "alice"))
                let (record, attempts) = try #require(try await server.store.callbacks(taskID: id, accountID: account.id).first)
                #expect(record.state == .gone)
                #expect(attempts.map(\.status) == [302, 410])
            }
        }
    }

    @Test func exhaustedScheduleMarksTheCallbackFailed() async throws {
        try await CallbackReceiver.with(script: Array(repeating: .status(503), count: 3)) { receiver in
            let server = try await TestServer.make(workers: 1, credits: 1000) { $0.callbacks.retryDelays = [.milliseconds(100), .milliseconds(100)] }
            try await server.run { client in
                let created = try await client.create(.market, body: Self.marketBody(receiver.url), key: server.key)
                let id = try #require(created.data?["taskId"] as? String)
                _ = try await receiver.waitFor(3)
                try await Task.sleep(for: .seconds(1))
                #expect(await receiver.deliveries().count == 3, "first attempt plus two retries")
                let account = try #require(try await server.store.account(named: "alice"))
                let failed = try #require(try await server.store.callbacks(taskID: id, accountID: account.id).first?.0)
                #expect(failed.state == .failed)

                // An operator re-sends it (kling-server callbacks resend): delivered, same webhook-id.
                #expect(try await server.store.resendCallback(id: failed.id, now: TaskWorker.nowMillis()))
                let all = try await receiver.waitFor(4)
                #expect(all.count == 4)
                #expect(all.last?.headers["webhook-id"] == failed.id)
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await server.store.callbacks(taskID: id, accountID: account.id).first?.0.state == .delivered)
            }
        }
    }

    @Test(arguments: [TestDialect.market, .crun])
    func callbackToAPrivateAddressIsRefusedAtCreate(_ dialect: TestDialect) async throws {
        let server = try await TestServer.make(credits: 1000) { $0.callbacks.allowPrivateAddresses = false }
        try await server.run { client in
            for url in ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "http://[::1]/hook", "http://10.1.2.3/x"] {
                let body = dialect == .market ? Self.marketBody(url) : Self.crunBody(url)
                let answer = try await client.create(dialect, body: body, key: server.key)
                #expect(answer.status == 422, "\(url)")
                #expect(answer.message(dialect).hasPrefix(dialect == .market ? "callBackUrl:" : "callback_url:"), "\(answer.raw)")
            }
            #expect(try await server.totalTasks() == 0)
        }
    }

    @Test func rotatedSecretsBothSignDuringTheOverlap() async throws {
        let server = try await TestServer.make()
        let account = try #require(try await server.store.account(named: "alice"))
        let now = TaskWorker.nowMillis()
        let first = try await server.store.webhookSecrets(accountID: account.id, now: now)
        #expect(first.count == 1 && first[0].hasPrefix("whsec_"))
        let rotated = try await server.store.rotateWebhookSecret(accountID: account.id, previousUntil: now + 60_000, now: now)
        #expect(rotated.count == 2 && rotated[1] == first[0] && rotated[0] != first[0])
        let body = Data("{}".utf8)
        let header = WebhookSigner.signature(secrets: rotated, id: "msg_x", timestamp: now / 1000, body: body)
        #expect(header.split(separator: " ").count == 2)
        for secret in rotated {
            #expect(WebhookSigner.verify(secrets: [secret], id: "msg_x", timestamp: now / 1000, body: body, signatureHeader: header, now: now / 1000))
        }
        // After the overlap only the new secret signs.
        #expect(try await server.store.webhookSecrets(accountID: account.id, now: now + 60_001) == [rotated[0]])
        #expect(
            !WebhookSigner.verify(secrets: rotated, id: "msg_x", timestamp: now / 1000, body: body, signatureHeader: header, now: now / 1000 + 301))
        try? FileManager.default.removeItem(at: server.directory)
    }
}
