import Foundation
import Testing

@Suite("Authentication and tenant isolation", .timeLimit(.minutes(3)))
struct AuthTests {
    static let bodies: [TestDialect: String] = [
        .market: #"{"model":"kling-3.0/video","input":{"prompt":"a cat","duration":"3","mode":"std"}}"#,
        .crun: #"{"model":"kling/v3","input":{"prompt":"a cat","duration":3,"mode":"std","multi_shots":false}}"#,
    ]

    @Test(arguments: [TestDialect.market, .crun])
    func missingKeyGets401InDialect(_ dialect: TestDialect) async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            let answer = try await client.create(dialect, body: Self.bodies[dialect]!, key: nil)
            #expect(answer.status == 401)
            #expect(answer.code == 401)
            #expect(answer.message(dialect).contains("API key"))
            let query = try await client.query(dialect, id: "task_x", key: nil)
            #expect(query.status == 401 && query.code == 401)
            #expect(try await server.totalTasks() == 0)
        }
    }

    @Test(arguments: [TestDialect.market, .crun])
    func wrongKeyGets401InDialect(_ dialect: TestDialect) async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            let answer = try await client.create(dialect, body: Self.bodies[dialect]!, key: server.key + "x")
            #expect(answer.status == 401)
            #expect(answer.code == 401)
            #expect(answer.message(dialect) == "invalid API key")
        }
    }

    @Test func authorizationHeaderIsReadAsRFC6750Says() async throws {
        let server = try await TestServer.make()
        try await server.run { (client) async throws -> Void in
            func status(_ value: String) async throws -> Int {
                try await client.execute(
                    uri: "/api/v1/jobs/recordInfo?taskId=task_x", method: .get, headers: [.authorization: value]
                ) { JSONAnswer($0) }.status
            }
            // The scheme is case-insensitive and spaces around the credentials do not matter: 404 means authenticated.
            #expect(try await status("Bearer \(server.key)") == 404)
            #expect(try await status("bearer \(server.key)") == 404)
            #expect(try await status("BEARER  \(server.key) ") == 404)
            for bad in ["Bearer", "Bearer ", "Basic \(server.key)", "Bearer\(server.key)", server.key, "Bearer x\(server.key)"] {
                #expect(try await status(bad) == 401, "\(bad)")
            }
        }
    }

    @Test func keyOfOneDialectIsNotReadFromTheOtherDialectsHeader() async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            // A Market-style bearer header on a CRUN route is not an x-api-key.
            let answer = try await client.execute(
                uri: TestDialect.crun.createPath, method: .post, headers: TestDialect.market.headers(key: server.key),
                body: .init(string: Self.bodies[.crun]!)
            ) { JSONAnswer($0) }
            #expect(answer.status == 401)
        }
    }

    @Test(arguments: [TestDialect.market, .crun])
    func taskIsVisibleOnlyToItsOwner(_ dialect: TestDialect) async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            let created = try await client.create(dialect, body: Self.bodies[dialect]!, key: server.key)
            let id = try #require(created.data?[dialect.idKey] as? String)
            let mine = try await client.query(dialect, id: id, key: server.key)
            #expect(mine.status == 200)
            let theirs = try await client.query(dialect, id: id, key: server.otherKey)
            #expect(theirs.status == 404)
            #expect(theirs.code == 404)
            let unknown = try await client.query(dialect, id: "task_doesnotexist", key: server.key)
            #expect(unknown.status == 404)
            #expect(unknown.raw.contains("task_doesnotexist"))
        }
    }

    @Test(arguments: [TestDialect.market, .crun])
    func queryWithoutTaskIdGets422NamingIt(_ dialect: TestDialect) async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            let path = dialect == .market ? "/api/v1/jobs/recordInfo" : "/api/v1/client/job/TaskInfo"
            let answer = try await client.execute(uri: path, method: .get, headers: dialect.headers(key: server.key)) { JSONAnswer($0) }
            #expect(answer.status == 422)
            #expect(answer.message(dialect).hasPrefix(dialect == .market ? "taskId:" : "task_id:"))
        }
    }

    @Test func keysAreStoredOnlyAsHashes() async throws {
        let server = try await TestServer.make()
        defer { try? FileManager.default.removeItem(at: server.directory) }
        if server.database != nil {
            // On PostgreSQL (KLING_TEST_STORE=postgres) the key rows themselves are checked.
            for name in ["alice", "bob"] {
                let account = try #require(try await server.store.account(named: name))
                for record in try await server.store.apiKeys(accountID: account.id) {
                    #expect(record.hash != server.key && record.hash != server.otherKey)
                }
            }
            try await server.closeDatabase()
            return
        }
        let database = try Data(contentsOf: URL(fileURLWithPath: server.configuration.databasePath))
        let wal = (try? Data(contentsOf: URL(fileURLWithPath: server.configuration.databasePath + "-wal"))) ?? Data()
        for blob in [database, wal] {
            #expect(blob.range(of: Data(server.key.utf8)) == nil)
            #expect(blob.range(of: Data(server.otherKey.utf8)) == nil)
        }
    }

    @Test func queuedTaskShowsDialectStateWordsAndEchoesParams() async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            let created = try await client.create(.market, body: Self.bodies[.market]!, key: server.key)
            let id = try #require(created.data?["taskId"] as? String)
            let market = try #require(try await client.query(.market, id: id, key: server.key).data)
            #expect(market["state"] as? String == "waiting")
            #expect(market["param"] as? String == #"{"input":{"duration":"3","mode":"std","prompt":"a cat"},"model":"kling-3.0/video"}"#)
            #expect(market["model"] as? String == "kling-3.0/video")
            #expect(market["failCode"] as? String == "")
            #expect((market["createTime"] as? Int ?? 0) > 1_700_000_000_000)
            // Readable through the other dialect too.
            let crun = try #require(try await client.query(.crun, id: id, key: server.key).data)
            #expect(crun["status"] as? String == "pending")
            #expect((crun["param"] as? [String: Any])?["model"] as? String == "kling-3.0/video")
            #expect(crun["result"] is NSNull)
        }
    }
}
