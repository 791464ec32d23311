import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KlingAPI
import KlingCore
import KlingPostgres
import KlingPreview
import KlingSQLite
import KlingServer
import KlingTestSupport
import Logging
import NIOCore
import Testing

/// A real server on loopback with a fresh SQLite file (or, with `KLING_TEST_STORE=postgres`, a fresh PostgreSQL
/// database on `KLING_TEST_DATABASE_URL`), one account per test, and small request helpers.
struct TestServer {
    let directory: URL
    let store: any TaskStore
    /// The PostgreSQL database of this server, dropped after ``run(_:)``.
    var database: PostgresTestDatabase? = nil
    let configuration: ServerConfiguration
    /// Key of account "alice".
    let key: String
    /// Key of account "bob" (for tenant isolation).
    let otherKey: String
    /// Whether input fetches may reach loopback (test inputs are served there).
    var allowPrivateFetches = true

    /// A server with `workers` renders; alice and bob start with `credits` each. Rate limits are off unless
    /// `configure` sets them (tests fire requests faster than any client should).
    static func make(
        workers: Int = 0, credits: Int64 = 1_000_000, allowPrivateFetches: Bool = true,
        configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> TestServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kling-test-\(UUID().uuidString)", isDirectory: true)
        var configuration = ServerConfiguration.forTests(directory: directory, workers: workers)
        configure(&configuration)
        let store: any TaskStore
        var database: PostgresTestDatabase?
        // On PostgreSQL only when asked (KLING_TEST_STORE=postgres); the SQLite file is the default.
        if ProcessInfo.processInfo.environment["KLING_TEST_STORE"] == "postgres", let server = PostgresTestDatabase.serverURL {
            let created = try await PostgresTestDatabase.create(serverURL: server)
            var logger = Logger(label: "test.postgres")
            logger.logLevel = .warning
            store = try await PostgresTaskStore.connect(url: created.url, logger: logger)
            database = created
        } else {
            store = try SQLiteTaskStore.sqlite(path: configuration.databasePath)
        }
        let accounts = AccountService(store: store)
        _ = try await accounts.createAccount(name: "alice", credits: credits)
        _ = try await accounts.createAccount(name: "bob", credits: credits)
        let key = try await accounts.createKey(accountName: "alice").key
        let otherKey = try await accounts.createKey(accountName: "bob").key
        return TestServer(
            directory: directory, store: store, database: database, configuration: configuration, key: key, otherKey: otherKey,
            allowPrivateFetches: allowPrivateFetches)
    }

    /// Runs `body` against the live application, then removes the data directory.
    func run<T: Sendable>(_ body: @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        defer { try? FileManager.default.removeItem(at: directory) }
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        // Test inputs are served from loopback, so the development switch is on.
        var fetching = HTTPInputFetcher.Configuration()
        fetching.allowPrivateAddresses = allowPrivateFetches
        fetching.connectTimeout = .seconds(2)
        let app = try await buildApplication(
            configuration: configuration, store: store, fetcher: HTTPInputFetcher(configuration: fetching),
            makeEngine: { PreviewEngine(fetcher: $0) }, logger: logger)
        do {
            let value = try await app.test(.ahc(.http), body)
            try await closeDatabase()
            return value
        } catch {
            try? await closeDatabase()
            throw error
        }
    }

    /// Closes and drops the PostgreSQL database, if this server has one.
    func closeDatabase() async throws {
        guard let database else { return }
        await (store as? PostgresTaskStore)?.close()
        try await database.drop()
    }

    func totalTasks() async throws -> Int {
        try await store.taskCounts().values.reduce(0, +)
    }
}

/// Which dialect a request speaks.
enum TestDialect: String, Sendable, CustomTestStringConvertible {
    case market, crun

    var testDescription: String { rawValue }
    var createPath: String { self == .market ? "/api/v1/jobs/createTask" : "/api/v1/client/job/CreateTask" }
    func queryPath(_ id: String) -> String {
        self == .market ? "/api/v1/jobs/recordInfo?taskId=\(id)" : "/api/v1/client/job/TaskInfo?task_id=\(id)"
    }
    var messageKey: String { self == .market ? "msg" : "message" }
    var idKey: String { self == .market ? "taskId" : "task_id" }

    func headers(key: String?) -> HTTPFields {
        var fields: HTTPFields = [.contentType: "application/json"]
        if let key {
            if self == .market {
                fields[.authorization] = "Bearer \(key)"
            } else {
                fields[HTTPField.Name("x-api-key")!] = key
            }
        }
        return fields
    }
}

/// A decoded JSON answer.
struct JSONAnswer {
    let status: Int
    let object: [String: Any]
    let raw: String

    init(_ response: TestResponse) {
        status = response.status.code
        raw = String(buffer: response.body)
        object = (try? JSONSerialization.jsonObject(with: Data(raw.utf8))) as? [String: Any] ?? [:]
    }

    var code: Int? { object["code"] as? Int }
    var data: [String: Any]? { object["data"] as? [String: Any] }
    func message(_ dialect: TestDialect) -> String { object[dialect.messageKey] as? String ?? "" }
}

extension TestClientProtocol {
    func create(_ dialect: TestDialect, body: String, key: String?) async throws -> JSONAnswer {
        try await execute(
            uri: dialect.createPath, method: .post, headers: dialect.headers(key: key), body: ByteBuffer(string: body)
        ) { JSONAnswer($0) }
    }

    func query(_ dialect: TestDialect, id: String, key: String?) async throws -> JSONAnswer {
        try await execute(uri: dialect.queryPath(id), method: .get, headers: dialect.headers(key: key)) { JSONAnswer($0) }
    }

    /// Polls until the task is terminal (or the deadline passes) and returns the last answer.
    func waitForTerminal(_ dialect: TestDialect, id: String, key: String, timeout: Duration = .seconds(120)) async throws -> JSONAnswer {
        let deadline = ContinuousClock.now + timeout
        while true {
            let answer = try await query(dialect, id: id, key: key)
            let state = answer.data?[dialect == .market ? "state" : "status"] as? String ?? ""
            if ["success", "fail", "failed"].contains(state) || ContinuousClock.now > deadline { return answer }
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}
