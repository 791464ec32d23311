import Foundation
import HTTPTypes
import HummingbirdTesting
import KlingAPI
import KlingCore
import KlingServer
import NIOCore
import Testing

/// Credits, prices, refunds, limits and switches through HTTP in both dialects.
@Suite("Billing, limits and switches", .timeLimit(.minutes(5)))
struct BillingTests {
    /// 5 s std without audio: 50 credits at the default prices.
    static let bodies: [TestDialect: String] = [
        .market: #"{"model":"kling-3.0/video","input":{"prompt":"a cat","duration":"5","mode":"std","sound":false}}"#,
        .crun: #"{"model":"kling/v3","input":{"prompt":"a cat","duration":5,"mode":"std","multi_shots":false,"audio":false}}"#,
    ]
    static let price: Int64 = 50

    func balance(_ client: any TestClientProtocol, _ dialect: TestDialect, key: String) async throws -> Int64? {
        let path = dialect == .market ? "/api/v1/chat/credit" : "/api/v1/client/account/balance"
        let answer = try await client.execute(uri: path, method: .get, headers: dialect.headers(key: key)) { JSONAnswer($0) }
        #expect(answer.status == 200)
        if dialect == .market { return (answer.object["data"] as? Int).map(Int64.init) }
        return (answer.data?["balance"] as? Int).map(Int64.init)
    }

    @Test(arguments: [TestDialect.market, .crun])
    func balanceShrinksByThePriceAndDetailsReportIt(_ dialect: TestDialect) async throws {
        let server = try await TestServer.make(credits: 1000)
        try await server.run { client in
            #expect(try await balance(client, dialect, key: server.key) == 1000)
            let created = try await client.create(dialect, body: Self.bodies[dialect]!, key: server.key)
            let id = try #require(created.data?[dialect.idKey] as? String)
            #expect(try await balance(client, dialect, key: server.key) == 1000 - Self.price)
            let details = try #require(try await client.query(dialect, id: id, key: server.key).data)
            #expect(details[dialect == .market ? "consumeCredits" : "credits"] as? Int == Int(Self.price))
            // The other account paid nothing.
            #expect(try await balance(client, dialect, key: server.otherKey) == 1000)
        }
    }

    @Test(arguments: [TestDialect.market, .crun])
    func insufficientCreditsGets402AndStoresNothing(_ dialect: TestDialect) async throws {
        let server = try await TestServer.make(credits: Self.price - 1)
        try await server.run { client in
            let answer = try await client.create(dialect, body: Self.bodies[dialect]!, key: server.key)
            #expect(answer.status == 402)
            #expect(answer.code == 402)
            #expect(answer.object["data"] is NSNull)
            #expect(answer.message(dialect).contains("insufficient credits"))
            #expect(answer.message(dialect).contains("\(Self.price)"))
            #expect(try await server.totalTasks() == 0)
            #expect(try await balance(client, dialect, key: server.key) == Self.price - 1)
            #expect(try await server.store.ledgerMismatches().isEmpty)
        }
    }

    @Test func quoteAnswersThePriceWithoutCharging() async throws {
        let server = try await TestServer.make(credits: 1000)
        try await server.run { client in
            let body = #"{"model":"kling-3.0/video","input":{"prompt":"a cat","duration":"10","mode":"pro","sound":true}}"#
            let answer = try await client.execute(
                uri: "/api/v1/jobs/quote", method: .post, headers: TestDialect.market.headers(key: server.key), body: ByteBuffer(string: body)
            ) { JSONAnswer($0) }
            #expect(answer.status == 200)
            #expect(answer.data?["credits"] as? Int == 210)  // 10 s x 14 x 1.5
            #expect(answer.data?["balance"] as? Int == 1000)
            #expect(answer.data?["affordable"] as? Bool == true)
            #expect(try await balance(client, .market, key: server.key) == 1000)
            #expect(try await server.totalTasks() == 0)
            // The same validation as createTask.
            let bad = try await client.execute(
                uri: "/api/v1/jobs/quote", method: .post, headers: TestDialect.market.headers(key: server.key),
                body: ByteBuffer(string: #"{"model":"kling-3.0/video","input":{"prompt":"a","duration":"99"}}"#)
            ) { JSONAnswer($0) }
            #expect(bad.status == 422)
            #expect(bad.message(.market).hasPrefix("input.duration"))
        }
    }

    @Test func concurrentCreatesRacingForTheLastCreditsNeverOverdraw() async throws {
        let server = try await TestServer.make(credits: 20 * Self.price)
        try await server.run { client in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<40 {
                    let dialect: TestDialect = index.isMultiple(of: 2) ? .market : .crun
                    group.addTask { try await client.create(dialect, body: Self.bodies[dialect]!, key: server.key).status }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 }.count == 20)
            #expect(statuses.filter { $0 == 402 }.count == 20)
            #expect(try await balance(client, .market, key: server.key) == 0)
            #expect(try await server.totalTasks() == 20)
            #expect(try await server.store.ledgerMismatches().isEmpty)
        }
    }

    @Test(arguments: [TestDialect.market, .crun])
    func failedTaskIsRefundedAndReportsZeroCredits(_ dialect: TestDialect) async throws {
        let server = try await TestServer.make(workers: 1, credits: 1000)
        try await server.run { client in
            let port = try #require(client.port)
            // An input that cannot be fetched (404 from this very server) fails the task.
            let missing = "http://127.0.0.1:\(port)/files/results/missing.png"
            let body =
                dialect == .market
                ? #"{"model":"kling-3.0/video","input":{"prompt":"p","duration":"5","mode":"std","sound":false,"image_urls":["\#(missing)"]}}"#
                : #"{"model":"kling/v3","input":{"prompt":"p","duration":5,"mode":"std","multi_shots":false,"audio":false,"img_urls":["\#(missing)"]}}"#
            let created = try await client.create(dialect, body: body, key: server.key)
            let id = try #require(created.data?[dialect.idKey] as? String, "\(created.raw)")
            #expect(try await balance(client, dialect, key: server.key) == 1000 - Self.price)
            let done = try #require(try await client.waitForTerminal(dialect, id: id, key: server.key).data)
            #expect(done[dialect == .market ? "state" : "status"] as? String == (dialect == .market ? "fail" : "failed"))
            #expect(done[dialect == .market ? "consumeCredits" : "credits"] as? Int == 0)
            #expect(try await balance(client, dialect, key: server.key) == 1000)
            let account = try #require(try await server.store.account(named: "alice"))
            let kinds = try await server.store.ledger(accountID: account.id).map(\.kind)
            #expect(kinds == [.topUp, .charge, .refund])
            #expect(try await server.store.ledgerMismatches().isEmpty)
        }
    }

    @Test func refusedPrivateInputFailsTheTaskNamingTheFieldAndIsRefunded() async throws {
        let server = try await TestServer.make(workers: 1, credits: 1000, allowPrivateFetches: false)
        try await server.run { client in
            let port = try #require(client.port)
            let body =
                #"{"model":"kling-3.0/video","input":{"prompt":"p","duration":"5","mode":"std","sound":false,"image_urls":["http://127.0.0.1:\#(port)/healthz"]}}"#
            let id = try #require(try await client.create(.market, body: body, key: server.key).data?["taskId"] as? String)
            let done = try #require(try await client.waitForTerminal(.market, id: id, key: server.key).data)
            #expect(done["state"] as? String == "fail")
            #expect(done["failCode"] as? String == "422")
            let message = done["failMsg"] as? String ?? ""
            #expect(message.hasPrefix("image_urls[0]") && message.contains("loopback"), "\(message)")
            #expect(done["consumeCredits"] as? Int == 0)
            #expect(try await balance(client, .market, key: server.key) == 1000)
        }
    }

    @Test func randomizedRunKeepsTheLedgerExact() async throws {
        let server = try await TestServer.make(workers: 2, credits: 5000)
        try await server.run { client in
            let port = try #require(client.port)
            var generator = SystemRandomNumberGenerator()
            var expectedSpend: Int64 = 0
            var tasks: [(TestDialect, String, succeeds: Bool, price: Int64)] = []
            for _ in 0..<14 {
                let dialect: TestDialect = Bool.random(using: &generator) ? .market : .crun
                let duration = Int.random(in: 3...4, using: &generator)
                let audio = Bool.random(using: &generator)
                let broken = Int.random(in: 0..<3, using: &generator) == 0
                let images = broken ? #"["http://127.0.0.1:\#(port)/files/results/none.png"]"# : "[]"
                let body =
                    dialect == .market
                    ? #"{"model":"kling-3.0/video","input":{"prompt":"p","duration":"\#(duration)","mode":"std","sound":\#(audio),"image_urls":\#(images)}}"#
                    : #"{"model":"kling/v3","input":{"prompt":"p","duration":\#(duration),"mode":"std","multi_shots":false,"audio":\#(audio),"img_urls":\#(images)}}"#
                let created = try await client.create(dialect, body: body, key: server.key)
                let id = try #require(created.data?[dialect.idKey] as? String, "\(created.raw)")
                let price = Int64((Double(duration * 10) * (audio ? 1.5 : 1)).rounded(.up))
                tasks.append((dialect, id, !broken, price))
            }
            for (dialect, id, succeeds, price) in tasks {
                let done = try #require(try await client.waitForTerminal(dialect, id: id, key: server.key).data)
                let state = done[dialect == .market ? "state" : "status"] as? String
                #expect(state == (succeeds ? "success" : (dialect == .market ? "fail" : "failed")), "\(done)")
                #expect(done[dialect == .market ? "consumeCredits" : "credits"] as? Int == (succeeds ? Int(price) : 0))
                if succeeds { expectedSpend += price }
            }
            #expect(try await balance(client, .market, key: server.key) == 5000 - expectedSpend)
            #expect(try await server.store.ledgerMismatches().isEmpty)
        }
    }

    @Test func stuckTaskIsFailedAndRefundedBySweeper() async throws {
        // No workers: the task stays queued until the sweeper's timeout.
        let server = try await TestServer.make(credits: 1000) { $0.taskTimeout = .seconds(1) }
        try await server.run { client in
            let created = try await client.create(.market, body: Self.bodies[.market]!, key: server.key)
            let id = try #require(created.data?["taskId"] as? String)
            let done = try #require(try await client.waitForTerminal(.market, id: id, key: server.key, timeout: .seconds(20)).data)
            #expect(done["state"] as? String == "fail")
            #expect(done["failCode"] as? String == "500")
            #expect((done["failMsg"] as? String ?? "").contains("timed out"))
            #expect(done["consumeCredits"] as? Int == 0)
            #expect(try await balance(client, .market, key: server.key) == 1000)
            #expect(try await server.store.ledgerMismatches().isEmpty)
        }
    }

    @Test(arguments: [TestDialect.market, .crun])
    func createRateLimitGets429WithRetryAfterAndChargesNothing(_ dialect: TestDialect) async throws {
        let server = try await TestServer.make(credits: 1000) {
            $0.limits.createsPerWindow = 3
            $0.limits.createWindowSeconds = 10
        }
        try await server.run { client in
            for _ in 0..<3 { #expect(try await client.create(dialect, body: Self.bodies[dialect]!, key: server.key).status == 200) }
            let limited = try await client.execute(
                uri: dialect.createPath, method: .post, headers: dialect.headers(key: server.key), body: ByteBuffer(string: Self.bodies[dialect]!)
            ) { ($0.headers[.retryAfter], JSONAnswer($0)) }
            #expect(limited.1.status == 429)
            #expect(limited.1.code == 429)
            #expect(limited.1.message(dialect).contains("3 tasks per 10 s"))
            let retryAfter = try #require(limited.0.flatMap { Int($0) })
            #expect((1...10).contains(retryAfter))
            #expect(try await server.totalTasks() == 3)
            #expect(try await balance(client, dialect, key: server.key) == 1000 - 3 * Self.price)
            // Another key has its own window.
            #expect(try await client.create(dialect, body: Self.bodies[dialect]!, key: server.otherKey).status == 200)
        }
    }

    @Test(arguments: [TestDialect.market, .crun])
    func queryRateLimitGets429(_ dialect: TestDialect) async throws {
        let server = try await TestServer.make(credits: 1000) { $0.limits.queriesPerSecond = 2 }
        try await server.run { client in
            // Fired together; timing-independent: at most 2 per started second are admitted, the rest get 429.
            let start = ContinuousClock.now
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<20 { group.addTask { try await client.query(dialect, id: "task_x", key: server.key).status } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            let seconds = Int((ContinuousClock.now - start).components.seconds) + 1
            let admitted = statuses.filter { $0 == 404 }.count
            #expect(admitted >= 2 && admitted <= 2 * (seconds + 1), "\(statuses) in \(seconds) s")
            #expect(statuses.filter { $0 == 429 }.count == 20 - admitted)
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try await client.query(dialect, id: "task_x", key: server.otherKey).status == 404)
            #expect(try await client.query(dialect, id: "task_x", key: server.key).status == 404)
        }
    }

    @Test(arguments: [TestDialect.market, .crun])
    func activeTaskLimitGets429SayingSo(_ dialect: TestDialect) async throws {
        let server = try await TestServer.make(credits: 1000) { $0.limits.maxActiveTasks = 2 }
        try await server.run { client in
            for _ in 0..<2 { #expect(try await client.create(dialect, body: Self.bodies[dialect]!, key: server.key).status == 200) }
            let third = try await client.create(dialect, body: Self.bodies[dialect]!, key: server.key)
            #expect(third.status == 429)
            #expect(third.message(dialect).contains("too many active tasks"))
            #expect(try await server.totalTasks() == 2)
            #expect(try await balance(client, dialect, key: server.key) == 1000 - 2 * Self.price)
            // A per-account override lifts it for this account only.
            let accounts = AccountService(store: server.store)
            _ = try await accounts.setLimits(accountName: "alice", LimitOverrides(maxActiveTasks: 3))
            #expect(try await client.create(dialect, body: Self.bodies[dialect]!, key: server.key).status == 200)
        }
    }

    @Test(arguments: [TestDialect.market, .crun])
    func maintenanceAndFeatureSwitchesApplyWhileRunning(_ dialect: TestDialect) async throws {
        let server = try await TestServer.make(credits: 10_000)
        try await server.run { client in
            let accounts = AccountService(store: server.store)
            let created = try await client.create(dialect, body: Self.bodies[dialect]!, key: server.key)
            let id = try #require(created.data?[dialect.idKey] as? String)

            try await accounts.setMaintenance(true)
            let refused = try await client.create(dialect, body: Self.bodies[dialect]!, key: server.key)
            #expect(refused.status == 455)
            #expect(refused.code == 455)
            #expect(refused.message(dialect).contains("maintenance"))
            #expect(try await client.query(dialect, id: id, key: server.key).status == 200)
            try await accounts.setMaintenance(false)
            #expect(try await client.create(dialect, body: Self.bodies[dialect]!, key: server.key).status == 200)

            try await accounts.setFeature(.fourK, enabled: false)
            let fourK = Self.bodies[dialect]!.replacingOccurrences(of: #""mode":"std""#, with: #""mode":"4K""#)
            let disabled = try await client.create(dialect, body: fourK, key: server.key)
            #expect(disabled.status == 505)
            #expect(disabled.code == 505)
            #expect(disabled.message(dialect).contains("4k"))
            #expect(try await client.create(dialect, body: Self.bodies[dialect]!, key: server.key).status == 200)
            try await accounts.setFeature(.fourK, enabled: true)
            #expect(try await client.create(dialect, body: fourK, key: server.key).status == 200)
            #expect(try await server.totalTasks() == 4)
            #expect(try await server.store.ledgerMismatches().isEmpty)
        }
    }

    @Test func adminAPIManagesAccountsKeysCreditsAndSwitches() async throws {
        let adminToken = "admin-token-" + APIKeys.randomID()
        let server = try await TestServer.make(credits: 0) { $0.adminToken = adminToken }
        try await server.run { client in
            func admin(_ method: HTTPRequest.Method, _ path: String, _ body: String? = nil) async throws -> JSONAnswer {
                try await request(method, path, body, token: adminToken)
            }
            func request(_ method: HTTPRequest.Method, _ path: String, _ body: String?, token: String?) async throws -> JSONAnswer {
                var headers: HTTPFields = [.contentType: "application/json"]
                if let token { headers[.authorization] = "Bearer \(token)" }
                return try await client.execute(uri: "/admin/v1" + path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
                {
                    JSONAnswer($0)
                }
            }
            #expect(try await request(.get, "/accounts", nil, token: nil).status == 401)
            #expect(try await request(.get, "/accounts", nil, token: "wrong-token-wrong-token").status == 401)

            let created = try await admin(.post, "/accounts", #"{"name":"carol","credits":100}"#)
            #expect(created.status == 200)
            #expect(created.data?["balance"] as? Int == 100)
            #expect(try await admin(.post, "/accounts", #"{"name":"carol"}"#).status == 422)
            #expect(try await admin(.post, "/accounts/carol/credits", #"{"amount":50,"note":"top-up"}"#).data?["balance"] as? Int == 150)
            #expect(try await admin(.post, "/accounts/nobody/credits", #"{"amount":50}"#).status == 404)

            let key = try #require(try await admin(.post, "/accounts/carol/keys").data?["key"] as? String)
            let keyID = try #require(try await admin(.get, "/accounts/carol").data?["keys"] as? [[String: Any]]).first?["id"] as? String
            #expect(try await client.create(.market, body: Self.bodies[.market]!, key: key).status == 200)
            #expect(try await admin(.get, "/accounts/carol").data?["balance"] as? Int == 100)

            let limits = try await admin(.put, "/accounts/carol/limits", #"{"maxActiveTasks":1}"#)
            #expect(limits.data?["maxActiveTasks"] as? Int == 1)
            #expect(try await client.create(.market, body: Self.bodies[.market]!, key: key).status == 429)

            #expect(try await admin(.put, "/maintenance", #"{"enabled":true}"#).data?["maintenance"] as? Bool == true)
            #expect(try await client.create(.market, body: Self.bodies[.market]!, key: server.key).status == 455)
            _ = try await admin(.put, "/maintenance", #"{"enabled":false}"#)
            _ = try await admin(.put, "/features/audio", #"{"enabled":false}"#)
            let audio = Self.bodies[.market]!.replacingOccurrences(of: #""sound":false"#, with: #""sound":true"#)
            #expect(try await client.create(.market, body: audio, key: key).status == 505)
            #expect(try await admin(.put, "/features/nonsense", #"{"enabled":false}"#).status == 404)

            #expect(try await admin(.delete, "/accounts/carol/keys/\(try #require(keyID))").status == 200)
            #expect(try await client.query(.market, id: "task_x", key: key).status == 401)

            let check = try await admin(.get, "/ledger/check")
            #expect(check.data?["ok"] as? Bool == true)
            let ledger = try #require(try await admin(.get, "/accounts/carol/ledger").object["data"] as? [[String: Any]])
            #expect(ledger.map { $0["kind"] as? String } == ["topup", "topup", "charge"])
        }
    }

    @Test func adminAPIIsAbsentWithoutAToken() async throws {
        let server = try await TestServer.make()
        try await server.run { client in
            let answer = try await client.execute(uri: "/admin/v1/accounts", method: .get) { $0.status }
            #expect(answer == .notFound)
        }
    }
}
