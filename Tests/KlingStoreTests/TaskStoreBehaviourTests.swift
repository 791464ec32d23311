import Foundation
import KlingAPI
import KlingCore
import KlingPostgres
import KlingSQLite
import KlingTestSupport
import Logging
import Synchronization
import Testing

/// The behaviour every `TaskStore` must show; every test runs against each backend: SQLite always, PostgreSQL when
/// `KLING_TEST_DATABASE_URL` names a server (scripts/test.sh starts one with scripts/start-postgres.sh).
@Suite("TaskStore behaviour")
struct TaskStoreBehaviourTests {
    /// One backend under test with a fresh database; `open` makes another, independent handle on the same database
    /// (as a second process would have).
    struct Backend {
        var name: String
        var open: () async throws -> any TaskStore
        /// Closes the handles `open` made and deletes the database.
        var tearDown: () async throws -> Void
    }

    /// The backends of one test, each with a database of its own.
    static func makeBackends() async throws -> [Backend] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kling-store-\(UUID().uuidString)")
        var backends = [
            Backend(name: "sqlite") {
                try SQLiteTaskStore.sqlite(path: directory.appendingPathComponent("t.sqlite").path)
            } tearDown: {
                try? FileManager.default.removeItem(at: directory)
            }
        ]
        if let server = PostgresTestDatabase.serverURL {
            let database = try await PostgresTestDatabase.create(serverURL: server)
            let opened = OpenedStores()
            backends.append(
                Backend(name: "postgres") {
                    var logger = Logger(label: "kling.tests.postgres")
                    logger.logLevel = .warning
                    let store = try await PostgresTaskStore.connect(url: database.url, logger: logger)
                    opened.stores.withLock { $0.append(store) }
                    return store
                } tearDown: {
                    for store in opened.stores.withLock({ $0 }) { await store.close() }
                    try await database.drop()
                })
        }
        return backends
    }

    @Test(
        "PostgreSQL backend is configured",
        .enabled(
            if: PostgresTestDatabase.serverURL != nil,
            "KLING_TEST_DATABASE_URL is not set: the TaskStore behaviour suite ran against SQLite only (scripts/test.sh starts PostgreSQL)"
        ))
    func postgresBackendIsConfigured() async throws {
        let backends = try await Self.makeBackends()
        for backend in backends { try await backend.tearDown() }
        #expect(backends.map(\.name) == ["sqlite", "postgres"])
    }

    func withStores(_ body: (any TaskStore) async throws -> Void) async throws {
        try await withBackends { try await body($0.open()) }
    }

    func withBackends(_ body: (Backend) async throws -> Void) async throws {
        for backend in try await Self.makeBackends() {
            do {
                try await body(backend)
            } catch {
                try? await backend.tearDown()
                throw BackendFailure(backend: backend.name, error: error)
            }
            try await backend.tearDown()
        }
    }

    /// The PostgreSQL handles a test opened, closed when it ends.
    final class OpenedStores: Sendable {
        let stores = Mutex<[PostgresTaskStore]>([])
    }

    /// An error thrown while testing one backend, naming it.
    struct BackendFailure: Error, CustomStringConvertible {
        var backend: String
        var error: any Error
        var description: String { "[\(backend)] \(error)" }
    }

    /// Whether `condition` holds: at once on SQLite; on a store that caches until another process's change is
    /// announced (PostgreSQL), once the notification has arrived (within 10 s here; milliseconds in practice).
    func soon(_ reader: any TaskStore, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(reader is any QueueAnnouncing ? 10 : 0)
        while true {
            if try await condition() { return true }
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func queuedTask(_ store: any TaskStore, account: Account, id: String, createdAt: Int64) async throws {
        let request = GenerationRequest(prompt: "p", duration: 3, mode: .std).normalized()
        try await store.insert(
            TaskRecord(
                id: id, accountID: account.id, dialect: "market", model: "kling-3.0", request: request, params: "{}",
                createdAt: createdAt, updatedAt: createdAt), maxActiveTasks: nil)
    }


    func pricedTask(_ store: any TaskStore, account: Account, id: String, credits: Int64, maxActive: Int? = nil) async throws {
        let request = GenerationRequest(prompt: "p", duration: 3, mode: .std).normalized()
        try await store.insert(
            TaskRecord(
                id: id, accountID: account.id, dialect: "market", model: "kling-3.0", request: request, params: "{}", createdAt: 1,
                updatedAt: 1, credits: credits), maxActiveTasks: maxActive)
    }


    func task(
        _ account: Account, id: String, createdAt: Int64 = 1, credits: Int64 = 0, dialect: String = "market", callbackURL: String? = nil,
        externalID: String? = nil
    ) -> TaskRecord {
        let request = GenerationRequest(prompt: "p", duration: 3, mode: .std, callbackURL: callbackURL).normalized()
        return TaskRecord(
            id: id, accountID: account.id, dialect: dialect, model: "kling-3.0", request: request, params: "{}", createdAt: createdAt,
            updatedAt: createdAt, credits: credits, externalID: externalID)
    }

}
