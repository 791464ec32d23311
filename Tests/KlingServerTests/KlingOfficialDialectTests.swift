import Foundation
import HTTPTypes
import HummingbirdTesting
import JWTKit
import KlingCore
import NIOCore
import Testing

/// The Kling official dialect: JWT and API-key auth, create, query by task id or external id, list, and its codes.
@Suite("Kling official dialect", .timeLimit(.minutes(5)))
struct KlingOfficialDialectTests {
    struct Claims: JWTPayload {
        var iss: IssuerClaim
        var exp: ExpirationClaim
        var nbf: NotBeforeClaim
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// A token as Kling's documentation builds it: HS256, iss = access key, exp = now + 1800, nbf = now - 5.
    static func token(accessKey: String, secretKey: String, exp: TimeInterval = 1800, nbf: TimeInterval = -5) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secretKey), digestAlgorithm: .sha256)
        let now = Date()
        return try await keys.sign(
            Claims(iss: .init(value: accessKey), exp: .init(value: now.addingTimeInterval(exp)), nbf: .init(value: now.addingTimeInterval(nbf))))
    }

    static func send(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, token: String?, body: String? = nil
    ) async throws -> JSONAnswer {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { JSONAnswer($0) }
    }

    static let text =
        #"{"model_name":"kling-v3","prompt":"A red fox in snow","duration":"5","mode":"std","sound":"off","external_task_id":"order-1"}"#

    @Test func jwtAuthAcceptsGoodTokensAndNamesEachFailure() async throws {
        let server = try await TestServer.make()
        let pair = try await AccountService(store: server.store).createJWTCredential(accountName: "alice")
        let other = try await AccountService(store: server.store).createJWTCredential(accountName: "bob")
        try await server.run { (client) async throws -> Void in
            func code(_ token: String?) async throws -> (Int, Int?) {
                let answer = try await Self.send(client, .get, "/v1/videos/text2video?pageNum=1&pageSize=10", token: token)
                return (answer.status, answer.code)
            }
            #expect(try await code(try await Self.token(accessKey: pair.accessKey, secretKey: pair.secretKey)) == (200, 0))
            #expect(try await code(server.key) == (200, 0), "API keys work too")
            #expect(try await code(nil) == (401, 1001))
            #expect(try await code(try await Self.token(accessKey: pair.accessKey, secretKey: pair.secretKey, exp: -60)) == (401, 1004))
            #expect(try await code(try await Self.token(accessKey: pair.accessKey, secretKey: pair.secretKey, nbf: 60)) == (401, 1003))
            #expect(try await code(try await Self.token(accessKey: pair.accessKey, secretKey: other.secretKey)) == (401, 1002))
            #expect(try await code(try await Self.token(accessKey: "ak_unknown", secretKey: pair.secretKey)) == (401, 1002))
            #expect(try await code("not.a.jwt") == (401, 1002))
            // Small clock skew is tolerated.
            #expect(try await code(try await Self.token(accessKey: pair.accessKey, secretKey: pair.secretKey, exp: -2)) == (200, 0))
        }
    }

    @Test func createQueryByIdOrExternalIdAndList() async throws {
        let server = try await TestServer.make(workers: 1, credits: 1000)
        try await server.run { (client) async throws -> Void in
            let created = try await Self.send(client, .post, "/v1/videos/text2video", token: server.key, body: Self.text)
            #expect(created.status == 200, "\(created.raw)")
            #expect(created.code == 0)
            #expect(created.object["message"] as? String == "SUCCEED")
            #expect((created.object["request_id"] as? String)?.isEmpty == false)
            let data = try #require(created.data)
            let id = try #require(data["task_id"] as? String)
            #expect(data["task_status"] as? String == "submitted")
            #expect((data["task_info"] as? [String: Any])?["external_task_id"] as? String == "order-1")
            #expect((data["created_at"] as? Int ?? 0) > 1_700_000_000_000, "milliseconds")

            var task: [String: Any] = [:]
            for _ in 0..<300 {
                task = try await Self.send(client, .get, "/v1/videos/text2video/\(id)", token: server.key).data ?? [:]
                if task["task_status"] as? String == "succeed" { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(task["task_status"] as? String == "succeed")
            #expect(task["final_unit_deduction"] as? String == "50")
            let videos = try #require((task["task_result"] as? [String: Any])?["videos"] as? [[String: Any]])
            #expect(videos.count == 1 && (videos[0]["url"] as? String)?.contains("/files/results/") == true)
            #expect(videos[0]["duration"] as? String == "5")

            let byExternal = try await Self.send(client, .get, "/v1/videos/text2video/order-1", token: server.key)
            #expect(byExternal.data?["task_id"] as? String == id)
            // A retry with the same external_task_id and body is the same task; a different body is refused.
            let retried = try await Self.send(client, .post, "/v1/videos/text2video", token: server.key, body: Self.text)
            #expect(retried.data?["task_id"] as? String == id)
            let changed = Self.text.replacingOccurrences(of: "A red fox", with: "A blue fox")
            let duplicate = try await Self.send(client, .post, "/v1/videos/text2video", token: server.key, body: changed)
            #expect(duplicate.status == 400 && duplicate.code == 1201, "\(duplicate.raw)")
            #expect(try await server.totalTasks() == 1)
            // A task from another dialect reads through this one.
            let market = #"{"model":"kling-3.0/video","input":{"prompt":"market","duration":"5","mode":"std"}}"#
            let marketID = try #require(try await client.create(.market, body: market, key: server.key).data?["taskId"] as? String)
            #expect(try await Self.send(client, .get, "/v1/videos/text2video/\(marketID)", token: server.key).data?["task_id"] as? String == marketID)

            let listed = try await Self.send(client, .get, "/v1/videos/text2video?pageNum=1&pageSize=5", token: server.key)
            // Newest first, every dialect's tasks.
            #expect((listed.object["data"] as? [[String: Any]])?.compactMap { $0["task_id"] as? String } == [marketID, id])
            let empty = try await Self.send(client, .get, "/v1/videos/text2video?pageNum=3&pageSize=1", token: server.key)
            #expect((empty.object["data"] as? [[String: Any]])?.isEmpty == true)
            #expect(try await Self.send(client, .get, "/v1/videos/text2video?pageSize=501", token: server.key).code == 1201)
            let missing = try await Self.send(client, .get, "/v1/videos/text2video/task_nope", token: server.key)
            #expect(missing.status == 404 && missing.code == 1203)
            #expect(try await Self.send(client, .get, "/v1/videos/text2video/\(id)", token: server.otherKey).status == 404)
        }
    }

    @Test func image2videoTakesRawBase64AndRejectsBadFieldsNamingThem() async throws {
        let server = try await TestServer.make(workers: 1, credits: 1000)
        try await server.run { (client) async throws -> Void in
            let base64 = FilesTests.png.base64EncodedString()
            let body = #"{"model_name":"kling-v3","image":"\#(base64)","duration":"3","mode":"std"}"#
            let created = try await Self.send(client, .post, "/v1/videos/image2video", token: server.key, body: body)
            let id = try #require(created.data?["task_id"] as? String, "\(created.raw)")
            var status = ""
            for _ in 0..<300 where status != "succeed" && status != "failed" {
                status = try await Self.send(client, .get, "/v1/videos/image2video/\(id)", token: server.key).data?["task_status"] as? String ?? ""
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(status == "succeed")

            let bad: [(String, String, String)] = [
                ("text2video", #"{"duration":"5"}"#, "prompt"),
                ("text2video", #"{"prompt":"p","cfg_scale":2}"#, "cfg_scale"),
                ("text2video", #"{"prompt":"p","sound":"loud"}"#, "sound"),
                ("text2video", #"{"prompt":"p","duration":"20"}"#, "duration"),
                ("text2video", #"{"prompt":"p","model_name":"kling-v1"}"#, "model_name"),
                ("text2video", #"{"prompt":"p","camera_control":{"type":"simple","config":{"pan":3,"zoom":2}}}"#, "camera_control.config"),
                ("text2video", #"{"prompt":"p","camera_control":{"type":"spin"}}"#, "camera_control.type"),
                ("image2video", #"{"prompt":"p"}"#, "image"),
                ("image2video", #"{"image":"data:image/png;base64,AAAA"}"#, "image"),
                (
                    "image2video",
                    #"{"image":"https://example.com/a.png","image_tail":"https://example.com/b.png","camera_control":{"type":"down_back"}}"#,
                    "image_tail"
                ),
                ("text2video", #"{"prompt":"p","multi_shot":true,"multi_prompt":[{"index":2,"prompt":"a","duration":5}]}"#, "multi_prompt[0].index"),
            ]
            for (kind, body, field) in bad {
                let answer = try await Self.send(client, .post, "/v1/videos/\(kind)", token: server.key, body: body)
                #expect(answer.status == 400, "\(body)")
                #expect(answer.code == 1201, "\(body)")
                #expect((answer.object["message"] as? String ?? "").contains(field), "\(body): \(answer.raw)")
            }
        }
    }

    @Test func callbacksGoOutOnEveryStatusChangeWithTheQueryDataObject() async throws {
        try await CallbackReceiver.with { receiver in
            let server = try await TestServer.make(workers: 1, credits: 1000)
            try await server.run { (client) async throws -> Void in
                let body = #"{"prompt":"A red fox","duration":"3","callback_url":"\#(receiver.url)"}"#
                let id = try #require(
                    try await Self.send(client, .post, "/v1/videos/text2video", token: server.key, body: body).data?["task_id"] as? String)
                let deliveries = try await receiver.waitFor(2)
                #expect(deliveries.count == 2)
                #expect(Set(deliveries.compactMap { $0.json["task_id"] as? String }) == [id])
                #expect(Set(deliveries.compactMap { $0.json["task_status"] as? String }) == ["processing", "succeed"])
                #expect(Set(deliveries.compactMap { $0.headers["webhook-id"] }).count == 2, "one message per status change")
                let final = try #require(deliveries.first { $0.json["task_status"] as? String == "succeed" })
                #expect(((final.json["task_result"] as? [String: Any])?["videos"] as? [[String: Any]])?.count == 1)
            }
        }
    }

    @Test func activeTaskLimitIs1303AndRateLimitIs1302() async throws {
        let server = try await TestServer.make(credits: 1000) {
            $0.limits.maxActiveTasks = 1
            $0.limits.queriesPerSecond = 1
        }
        try await server.run { (client) async throws -> Void in
            let text = #"{"prompt":"a fox","duration":"3"}"#
            #expect(try await Self.send(client, .post, "/v1/videos/text2video", token: server.key, body: text).code == 0)
            let busy = try await Self.send(client, .post, "/v1/videos/text2video", token: server.key, body: text)
            #expect(busy.status == 429 && busy.code == 1303, "\(busy.raw)")
            _ = try await Self.send(client, .get, "/v1/videos/text2video/task_x", token: server.key)
            let limited = try await Self.send(client, .get, "/v1/videos/text2video/task_x", token: server.key)
            #expect(limited.status == 429 && limited.code == 1302, "\(limited.raw)")
        }
    }

    @Test func billingAndSwitchesUseKlingCodes() async throws {
        let server = try await TestServer.make(credits: 10)
        try await server.run { (client) async throws -> Void in
            let broke = try await Self.send(client, .post, "/v1/videos/text2video", token: server.key, body: Self.text)
            #expect(broke.status == 429 && broke.code == 1102)
            try await AccountService(store: server.store).setMaintenance(true)
            let maintenance = try await Self.send(client, .post, "/v1/videos/text2video", token: server.key, body: Self.text)
            #expect(maintenance.status == 503 && maintenance.code == 5001)
            #expect(try await server.totalTasks() == 0)
        }
    }
}
