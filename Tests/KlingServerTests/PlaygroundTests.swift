import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// The web playground's files at `/` and the task list it reads (`GET /api/v1/jobs/list`). The page itself is driven
/// in headless Chromium by `Tests/Playground/playground_ui_test.py`.
@Suite("Playground", .timeLimit(.minutes(4)))
struct PlaygroundTests {
    static let short = #"{"model":"kling-3.0/video","input":{"prompt":"PROMPT","duration":"3","mode":"std","sound":false}}"#

    func list(_ client: any TestClientProtocol, key: String?, query: String = "") async throws -> JSONAnswer {
        try await client.execute(uri: "/api/v1/jobs/list\(query)", method: .get, headers: TestDialect.market.headers(key: key)) {
            JSONAnswer($0)
        }
    }

    func tasks(_ answer: JSONAnswer) -> [[String: Any]] {
        answer.data?["tasks"] as? [[String: Any]] ?? []
    }

    @Test func servesThePageAndEveryFileItLinksWithAStrictContentSecurityPolicy() async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            let page = try await client.execute(uri: "/", method: .get) { $0 }
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            let html = String(buffer: page.body)
            #expect(html.contains("<title>KlingKit Playground</title>"))
            let policy = try #require(page.headers[.contentSecurityPolicy])
            #expect(policy.contains("script-src 'self'"))
            #expect(policy.contains("connect-src 'self'"))
            #expect(!policy.contains("unsafe-inline"))
            #expect(page.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")

            // Every file the page links is served, with its type; nothing comes from another origin.
            let linked = html.matches(of: /(?:src|href)="(\/playground\/[^"]+)"/).map { String($0.output.1) }
            #expect(Set(linked) == ["/playground/playground.css", "/playground/playground.js", "/playground/icon.svg"])
            #expect(!html.contains("http://") && !html.contains("https://"))
            let types = ["css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8", "svg": "image/svg+xml"]
            for path in Set(linked) {
                let file = try await client.execute(uri: path, method: .get) { $0 }
                #expect(file.status == .ok, "\(path)")
                #expect(file.headers[.contentType] == types[String(path.split(separator: ".").last!)], "\(path)")
                #expect(file.body.readableBytes > 0, "\(path)")
            }
            // The script is an ES module: it and every module it imports (`from "./x.js"`, transitively) are served as
            // JavaScript, and between them they use each endpoint the page needs.
            var modules: [String: String] = [:]
            var pending = ["/playground/playground.js"]
            while let path = pending.popLast() {
                if modules[path] != nil { continue }
                let file = try await client.execute(uri: path, method: .get) { $0 }
                #expect(file.status == .ok, "\(path)")
                #expect(file.headers[.contentType] == "text/javascript; charset=utf-8", "\(path)")
                let text = String(buffer: file.body)
                modules[path] = text
                for match in text.matches(of: /from\s+["']\.\/([^"'\/]+)["']/) {
                    pending.append("/playground/" + String(match.output.1))
                }
            }
            let script = modules.values.joined(separator: "\n")
            for endpoint in ["/api/v1/jobs/quote", "/api/v1/jobs/createTask", "/api/v1/jobs/list", "/events", "/api/file-stream-upload"] {
                #expect(script.contains(endpoint), "the page's scripts should use \(endpoint)")
            }
            #expect(try await client.execute(uri: "/playground/missing.js", method: .get) { $0.status } == .notFound)
            #expect(try await client.execute(uri: "/playground/..%2FPlaygroundRoutes.swift", method: .get) { $0.status } == .notFound)
        }
    }

    @Test func listsOnlyTheCallersTasksNewestFirstWithStateCostEngineAndLinks() async throws {
        let server = try await TestServer.make(workers: 1, credits: 1000)
        try await server.run { client in
            var ids: [String] = []
            for prompt in ["first", "second"] {
                let created = try await client.create(.market, body: Self.short.replacingOccurrences(of: "PROMPT", with: prompt), key: server.key)
                ids.append(try #require(created.data?["taskId"] as? String, "\(created.raw)"))
            }
            let theirs = try await client.create(.market, body: Self.short.replacingOccurrences(of: "PROMPT", with: "bob's"), key: server.otherKey)
            let bobID = try #require(theirs.data?["taskId"] as? String)
            for id in ids { _ = try await client.waitForTerminal(.market, id: id, key: server.key) }

            let all = try await list(client, key: server.key)
            #expect(all.status == 200, "\(all.raw)")
            #expect(all.code == 200)
            #expect(tasks(all).map { $0["taskId"] as? String } == ids.reversed())
            #expect(all.data?["hasMore"] as? Bool == false)
            #expect(all.data?["pageNum"] as? Int == 1)
            #expect(all.data?["pageSize"] as? Int == 20)

            let done = try #require(tasks(all).last)
            #expect(done["state"] as? String == "success")
            #expect(done["engine"] as? String == "preview")
            #expect(done["consumeCredits"] as? Int == 30)
            #expect((done["param"] as? String)?.contains("first") == true)
            let result = try #require((done["resultJson"] as? String).flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any])
            let video = try #require((result["resultUrls"] as? [String])?.first)
            let link = try #require(URLComponents(string: video))
            let path = link.percentEncodedPath + "?" + (link.percentEncodedQuery ?? "")
            #expect(try await client.execute(uri: path, method: .get) { $0.status } == .ok)

            // Pages of one: newest first, then the next; past the end, empty.
            let first = try await list(client, key: server.key, query: "?pageNum=1&pageSize=1")
            #expect(tasks(first).map { $0["taskId"] as? String } == [ids[1]])
            #expect(first.data?["hasMore"] as? Bool == true)
            let second = try await list(client, key: server.key, query: "?pageNum=2&pageSize=1")
            #expect(tasks(second).map { $0["taskId"] as? String } == [ids[0]])
            #expect(second.data?["hasMore"] as? Bool == false)
            #expect(tasks(try await list(client, key: server.key, query: "?pageNum=3&pageSize=1")).isEmpty)

            // Tenant isolation.
            let bobs = try await list(client, key: server.otherKey)
            #expect(tasks(bobs).map { $0["taskId"] as? String } == [bobID])

            // Bad paging and missing keys answer in the Market envelope.
            let badSize = try await list(client, key: server.key, query: "?pageSize=101")
            #expect(badSize.status == 422)
            #expect(badSize.message(.market).hasPrefix("pageSize:"))
            #expect(try await list(client, key: server.key, query: "?pageNum=0").status == 422)
            let anonymous = try await list(client, key: nil)
            #expect(anonymous.status == 401)
            #expect(anonymous.code == 401)
        }
    }
}
