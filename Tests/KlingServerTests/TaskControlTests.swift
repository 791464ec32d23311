import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import KlingCore
import KlingServer
import NIOCore
import Testing

/// Cancel, progress streams and idempotency keys, through HTTP.
@Suite("Cancel, events, idempotency", .timeLimit(.minutes(5)))
struct TaskControlTests {
    static let short = #"{"model":"kling-3.0/video","input":{"prompt":"a cat","duration":"3","mode":"std","sound":false}}"#
    static let long = #"{"model":"kling-3.0/video","input":{"prompt":"a long one","duration":"15","mode":"pro","sound":true}}"#

    func cancel(_ client: any TestClientProtocol, _ id: String, key: String) async throws -> JSONAnswer {
        try await client.execute(uri: "/api/v1/jobs/\(id)/cancel", method: .post, headers: TestDialect.market.headers(key: key)) {
            JSONAnswer($0)
        }
    }

    func balance(_ client: any TestClientProtocol, key: String) async throws -> Int {
        try await client.execute(uri: "/api/v1/chat/credit", method: .get, headers: TestDialect.market.headers(key: key)) {
            JSONAnswer($0).object["data"] as? Int ?? -1
        }
    }

    @Test func queuedTaskIsCancelledRefundedAndItsCallbackSaysSo() async throws {
        try await CallbackReceiver.with { receiver in
            let server = try await TestServer.make(credits: 1000)
            try await server.run { client in
                let body = Self.short.replacingOccurrences(of: #""model""#, with: #""callBackUrl":"\#(receiver.url)","model""#)
                let id = try #require(try await client.create(.market, body: body, key: server.key).data?["taskId"] as? String)
                #expect(try await balance(client, key: server.key) == 970)
                #expect(try await cancel(client, id, key: server.otherKey).status == 404)
                let cancelled = try await cancel(client, id, key: server.key)
                #expect(cancelled.status == 200, "\(cancelled.raw)")
                #expect(cancelled.data?["state"] as? String == "fail")
                #expect(cancelled.data?["failMsg"] as? String == "cancelled by the caller")
                #expect(cancelled.data?["consumeCredits"] as? Int == 0)
                #expect(try await balance(client, key: server.key) == 1000)
                let again = try await cancel(client, id, key: server.key)
                #expect(again.status == 409)
                #expect(again.code == 409)
                let delivery = try #require(try await receiver.waitFor(1).first)
                #expect((delivery.json["data"] as? [String: Any])?["failMsg"] as? String == "cancelled by the caller")
                #expect(try await server.store.ledgerMismatches().isEmpty)
            }
        }
    }

    @Test func runningRenderIsStoppedAndFinishedTasksCannotBeCancelled() async throws {
        let server = try await TestServer.make(workers: 1, credits: 10_000)
        try await server.run { client in
            let id = try #require(try await client.create(.market, body: Self.long, key: server.key).data?["taskId"] as? String)
            var state = ""
            for _ in 0..<200 where state != "generating" {
                state = try await client.query(.market, id: id, key: server.key).data?["state"] as? String ?? ""
                if state != "generating" { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(state == "generating")
            #expect(try await cancel(client, id, key: server.key).status == 200)
            // The worker drops the render and takes the next task at once.
            let next = try #require(try await client.create(.market, body: Self.short, key: server.key).data?["taskId"] as? String)
            let done = try await client.waitForTerminal(.market, id: next, key: server.key, timeout: .seconds(30))
            #expect(done.data?["state"] as? String == "success")
            let cancelled = try #require(try await client.query(.market, id: id, key: server.key).data)
            #expect(cancelled["state"] as? String == "fail")
            #expect(cancelled["resultJson"] is NSNull)
            #expect(try await cancel(client, next, key: server.key).status == 409)
            #expect(try await balance(client, key: server.key) == 10_000 - 30)
            #expect(try await server.store.ledgerMismatches().isEmpty)
        }
    }

    @Test func cancelsRacingWithClaimsLeaveEveryTaskConsistent() async throws {
        let server = try await TestServer.make(workers: 2, credits: 10_000)
        try await server.run { client in
            var ids: [String] = []
            for _ in 0..<8 {
                let id = try #require(try await client.create(.market, body: Self.short, key: server.key).data?["taskId"] as? String)
                ids.append(id)
                _ = try await cancel(client, id, key: server.key)  // queued, being claimed, or rendering
            }
            for id in ids {
                let done = try #require(try await client.waitForTerminal(.market, id: id, key: server.key, timeout: .seconds(30)).data)
                #expect(done["state"] as? String == "fail", "\(done)")
                #expect(done["consumeCredits"] as? Int == 0)
            }
            #expect(try await balance(client, key: server.key) == 10_000)
            #expect(try await server.store.ledgerMismatches().isEmpty)
        }
    }

    @Test func progressStreamSendsEveryChangeUntilTheTerminalEvent() async throws {
        let server = try await TestServer.make(workers: 1)
        try await server.run { client in
            let id = try #require(try await client.create(.market, body: Self.short, key: server.key).data?["taskId"] as? String)
            let port = try #require(client.port)
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/jobs/\(id)/events")
            request.headers.add(name: "Authorization", value: "Bearer \(server.key)")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "Content-Type") == "text/event-stream")
            var text = ""
            for try await chunk in response.body { text += String(buffer: chunk) }  // ends when the server closes it
            let events = text.components(separatedBy: "\n\n").filter { $0.hasPrefix("event: status") }
            let states = events.compactMap { event -> (String, Int)? in
                guard let line = event.split(separator: "\n").first(where: { $0.hasPrefix("data: ") }),
                    let json = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any]
                else { return nil }
                return (json["state"] as? String ?? "", json["progress"] as? Int ?? -1)
            }
            #expect(states.count >= 2, "\(text)")
            #expect(states.last?.0 == "success")
            #expect(states.last?.1 == 100)
            #expect(zip(states, states.dropFirst()).allSatisfy { $0.1 <= $1.1 }, "progress never goes back: \(states)")

            var other = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/jobs/\(id)/events")
            other.headers.add(name: "Authorization", value: "Bearer \(server.otherKey)")
            #expect(try await HTTPClient.shared.execute(other, timeout: .seconds(10)).status == .notFound)
        }
    }

    @Test func quietStreamSendsKeepAlives() async throws {
        let server = try await TestServer.make { $0.eventKeepAlive = .milliseconds(300) }
        try await server.run { client in
            let id = try #require(try await client.create(.market, body: Self.short, key: server.key).data?["taskId"] as? String)
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(try #require(client.port))/api/v1/jobs/\(id)/events")
            request.headers.add(name: "Authorization", value: "Bearer \(server.key)")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            var text = ""
            let deadline = ContinuousClock.now + .seconds(2)
            for try await chunk in response.body {
                text += String(buffer: chunk)
                if text.components(separatedBy: ": keep-alive").count > 2 || ContinuousClock.now > deadline { break }
            }
            #expect(text.hasPrefix("event: status"))
            #expect(text.components(separatedBy: ": keep-alive").count > 2, "\(text)")
        }
    }

    @Test(arguments: [TestDialect.market, .crun])
    func idempotentRetriesInParallelMakeOneTaskAndOneCharge(_ dialect: TestDialect) async throws {
        let server = try await TestServer.make(credits: 1000)
        try await server.run { client in
            let body =
                dialect == .market
                ? Self.short
                : #"{"model":"kling/v3","input":{"prompt":"a cat","duration":3,"mode":"std","multi_shots":false,"audio":false}}"#
            func create(_ body: String, key: String?) async throws -> JSONAnswer {
                var headers = dialect.headers(key: server.key)
                if let key { headers[HTTPField.Name("Idempotency-Key")!] = key }
                return try await client.execute(uri: dialect.createPath, method: .post, headers: headers, body: ByteBuffer(string: body)) {
                    JSONAnswer($0)
                }
            }
            let ids = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<10 { group.addTask { try await create(body, key: "order-42").data?[dialect.idKey] as? String } }
                return try await group.reduce(into: [String?]()) { $0.append($1) }
            }
            #expect(ids.allSatisfy { $0 != nil })
            #expect(Set(ids).count == 1, "\(ids)")
            #expect(try await server.totalTasks() == 1)
            #expect(try await balance(client, key: server.key) == 970)

            let changed = body.replacingOccurrences(of: "a cat", with: "a dog")
            let conflict = try await create(changed, key: "order-42")
            #expect(conflict.status == 409)
            #expect(conflict.message(dialect).hasPrefix("Idempotency-Key"))
            #expect(try await create(changed, key: "order-43").status == 200)
            #expect(try await create(body, key: "has space").status == 422)
            #expect(try await server.totalTasks() == 2)
            #expect(try await server.store.ledgerMismatches().isEmpty)
        }
    }
}
