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

    @Test func accountNamesAreUnique() async throws {
        try await withStores { store in
            _ = try await store.createAccount(name: "a", credits: 0, now: 1)
            await #expect(throws: StoreError.self) { _ = try await store.createAccount(name: "a", credits: 0, now: 2) }
        }
    }

    @Test func keysResolveToTheirAccountAndRevokedOrUnknownKeysDoNot() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await store.addAPIKey(APIKeyRecord(id: "k1", accountID: account.id, hash: APIKeys.hash("secret"), prefix: "sec", createdAt: 1))
            try await store.addAPIKey(
                APIKeyRecord(id: "k2", accountID: account.id, hash: APIKeys.hash("old"), prefix: "old", createdAt: 1, revokedAt: 2))
            #expect(try await store.account(forKeyHash: APIKeys.hash("secret"))?.id == account.id)
            #expect(try await store.account(forKeyHash: APIKeys.hash("old")) == nil)
            #expect(try await store.account(forKeyHash: APIKeys.hash("nope")) == nil)
        }
    }

    @Test func revokedKeyStopsAuthenticatingAtOnce() async throws {
        try await withStores { store in
            let alice = try await store.createAccount(name: "alice", credits: 0, now: 1)
            let bob = try await store.createAccount(name: "bob", credits: 0, now: 1)
            let hash = APIKeys.hash("secret")
            try await store.addAPIKey(APIKeyRecord(id: "k1", accountID: alice.id, hash: hash, prefix: "sec", createdAt: 1))
            #expect(try await store.account(forKeyHash: hash)?.id == alice.id)
            #expect(try await store.revokeAPIKey(id: "k1", accountID: bob.id, now: 2) == false)
            #expect(try await store.account(forKeyHash: hash)?.id == alice.id)
            #expect(try await store.revokeAPIKey(id: "k1", accountID: alice.id, now: 3))
            #expect(try await store.account(forKeyHash: hash) == nil)
            #expect(try await store.revokeAPIKey(id: "k1", accountID: alice.id, now: 4) == false)
            #expect(try await store.apiKeys(accountID: alice.id).first?.revokedAt == 3)
        }
    }

    /// Reads are cached per process; a write through any other handle (another process) must show at once.
    @Test func everyHandleSeesAnotherHandlesWritesAtOnce() async throws {
        try await withBackends { backend in
            let reader = try await backend.open()
            let writer = try await backend.open()
            let account = try await writer.createAccount(name: "a", credits: 0, now: 1)
            let hash = APIKeys.hash("k")
            try await writer.addAPIKey(APIKeyRecord(id: "k", accountID: account.id, hash: hash, prefix: "k", createdAt: 1))
            for index in 0..<3 { try await queuedTask(writer, account: account, id: "t\(index)", createdAt: Int64(index)) }

            func readState(_ id: String) async throws -> TaskRecord? {
                // Twice: the first read may fill the cache, the second must still be current.
                _ = try await reader.task(id: id, accountID: account.id)
                return try await reader.task(id: id, accountID: account.id)
            }
            #expect(try await reader.account(forKeyHash: hash)?.id == account.id)
            #expect(try await readState("t0")?.state == .queued)

            _ = try await writer.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 10, maxAttempts: 1)
            #expect(try await readState("t0")?.state == .running)
            _ = try await writer.updateProgress(taskID: "t0", attempt: 1, progress: 40, now: 3)
            #expect(try await readState("t0")?.progress == 40)
            _ = try await writer.complete(taskID: "t0", attempt: 1, result: Self.result, now: 4)
            #expect(try await readState("t0")?.state == .succeeded)

            _ = try await writer.claimNext(worker: "w", engine: "preview", now: 5, leaseUntil: 10, maxAttempts: 1)
            #expect(try await readState("t1")?.state == .running)
            _ = try await writer.fail(taskID: "t1", attempt: 1, failure: TaskFailure(code: 501, message: "x"), now: 6)
            #expect(try await readState("t1")?.failure?.code == 501)

            // A bulk change (abandoned claims failed in one statement) reaches cached copies too.
            _ = try await writer.claimNext(worker: "w", engine: "preview", now: 7, leaseUntil: 10, maxAttempts: 1)
            #expect(try await readState("t2")?.state == .running)
            #expect(try await writer.failAbandoned(now: 11, maxAttempts: 1) == 1)
            #expect(try await readState("t2")?.state == .failed)

            // Key lookups and switches are the per-request reads a PostgreSQL handle keeps while changes are announced
            // to it: another process's change shows as soon as its notification arrives (SQLite: at once).
            #expect(try await reader.account(forKeyHash: hash)?.id == account.id)
            #expect(try await reader.switches().maintenance == false)
            #expect(try await writer.revokeAPIKey(id: "k", accountID: account.id, now: 12))
            try await writer.setMaintenance(true)
            #expect(try await soon(reader) { try await reader.account(forKeyHash: hash) == nil })
            #expect(try await soon(reader) { try await reader.switches().maintenance })
        }
    }

    @Test func ownChangesToKeysLimitsAndSwitchesShowAtOnceThroughTheSameHandle() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            let hash = APIKeys.hash("k")
            try await store.addAPIKey(APIKeyRecord(id: "k", accountID: account.id, hash: hash, prefix: "k", createdAt: 1))
            for _ in 0..<2 { #expect(try await store.account(forKeyHash: hash)?.limits == LimitOverrides()) }
            try await store.setLimits(accountID: account.id, limits: LimitOverrides(maxActiveTasks: 3))
            #expect(try await store.account(forKeyHash: hash)?.limits.maxActiveTasks == 3)
            for _ in 0..<2 { #expect(try await store.switches().disabledFeatures.isEmpty) }
            try await store.setFeature(.fourK, enabled: false)
            #expect(try await store.switches().disabledFeatures == [.fourK])
        }
    }

    func pricedTask(_ store: any TaskStore, account: Account, id: String, credits: Int64, maxActive: Int? = nil) async throws {
        let request = GenerationRequest(prompt: "p", duration: 3, mode: .std).normalized()
        try await store.insert(
            TaskRecord(
                id: id, accountID: account.id, dialect: "market", model: "kling-3.0", request: request, params: "{}", createdAt: 1,
                updatedAt: 1, credits: credits), maxActiveTasks: maxActive)
    }

    @Test func chargesAndRefundsHappenOnceAndTheLedgerAlwaysBalances() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 100, now: 1)
            try await pricedTask(store, account: account, id: "t1", credits: 60)
            #expect(try await store.balance(accountID: account.id) == 40)
            await #expect(throws: StoreError.self) { try await pricedTask(store, account: account, id: "t2", credits: 50) }
            #expect(try await store.task(id: "t2") == nil)
            #expect(try await store.balance(accountID: account.id) == 40)

            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 10, maxAttempts: 3)
            #expect(try await store.fail(taskID: "t1", attempt: 1, failure: TaskFailure(code: 501, message: "x"), now: 3))
            #expect(try await store.fail(taskID: "t1", attempt: 1, failure: TaskFailure(code: 501, message: "x"), now: 4) == false)
            #expect(try await store.failStuck(createdBefore: 1000, message: "late", now: 5) == 0)
            #expect(try await store.balance(accountID: account.id) == 100)
            let task = try #require(try await store.task(id: "t1"))
            #expect(task.credits == 60 && task.refundedCredits == 60 && task.consumedCredits == 0)
            #expect(try await store.ledger(accountID: account.id).map(\.amount) == [100, -60, 60])
            #expect(try await store.ledgerMismatches().isEmpty)
        }
    }

    @Test func succeededTasksKeepTheirChargeAndAbandonedOrStuckOnesAreRefunded() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 100, now: 1)
            // Claimed in id order (same creation time): done, then abandoned; stuck stays queued.
            for id in ["a-done", "b-abandoned", "c-stuck"] { try await pricedTask(store, account: account, id: id, credits: 10) }
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 10, maxAttempts: 1)
            #expect(try await store.complete(taskID: "a-done", attempt: 1, result: Self.result, now: 3))
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 4, leaseUntil: 10, maxAttempts: 1)
            #expect(try await store.failAbandoned(now: 11, maxAttempts: 1) == 1)
            #expect(try await store.failStuck(createdBefore: 1000, message: "timed out", now: 12) == 1)
            #expect(try await store.failStuck(createdBefore: 1000, message: "timed out", now: 13) == 0)
            #expect(try await store.task(id: "c-stuck")?.failure?.message == "timed out")
            #expect(try await store.task(id: "b-abandoned")?.consumedCredits == 0)
            #expect(try await store.task(id: "a-done")?.consumedCredits == 10)
            #expect(try await store.balance(accountID: account.id) == 90)
            #expect(try await store.ledgerMismatches().isEmpty)
        }
    }

    @Test func activeTaskLimitRefusesWithoutCharging() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 100, now: 1)
            try await pricedTask(store, account: account, id: "t1", credits: 10, maxActive: 2)
            try await pricedTask(store, account: account, id: "t2", credits: 10, maxActive: 2)
            await #expect(throws: StoreError.self) { try await pricedTask(store, account: account, id: "t3", credits: 10, maxActive: 2) }
            #expect(try await store.balance(accountID: account.id) == 80)
            #expect(try await store.task(id: "t3") == nil)
        }
    }

    @Test func concurrentChargesNeverOverdraw() async throws {
        try await withBackends { backend in
            let first = try await backend.open()
            let second = try await backend.open()  // another process on the same database
            let account = try await first.createAccount(name: "a", credits: 1000, now: 1)
            let accepted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<60 {
                    let store = index.isMultiple(of: 2) ? first : second
                    group.addTask {
                        do {
                            try await pricedTask(store, account: account, id: "t\(index)", credits: 30)
                            return true
                        } catch let error as StoreError where error.isInsufficientCredits {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(accepted == 33)
            #expect(try await first.balance(accountID: account.id) == 10)
            #expect(try await second.ledgerMismatches().isEmpty)
        }
    }

    @Test func aBadCreateAmongConcurrentOnesFailsAloneAndChargesNothing() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 1000, now: 1)
            // Eleven creates at once (PostgreSQL writes them in groups); one reuses an id.
            let ids = (0..<10).map { "t\($0)" } + ["t3"]
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for id in ids {
                    group.addTask {
                        do {
                            try await pricedTask(store, account: account, id: id, credits: 10)
                            return true
                        } catch is StoreError {
                            throw CancellationError()  // a refusal is not what this test sends
                        } catch {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 10)
            #expect(try await store.balance(accountID: account.id) == 900)
            #expect(try await store.taskCounts()[.queued] == 10)
            #expect(try await store.ledgerMismatches().isEmpty)
        }
    }

    @Test func creditsCannotGoNegativeAndSwitchesReachEveryHandle() async throws {
        try await withBackends { backend in
            let writer = try await backend.open()
            let reader = try await backend.open()
            let account = try await writer.createAccount(name: "a", credits: 5, now: 1)
            await #expect(throws: StoreError.self) { _ = try await writer.addCredits(accountID: account.id, amount: -6, note: "x", now: 2) }
            #expect(try await writer.addCredits(accountID: account.id, amount: -5, note: "x", now: 2) == 0)
            #expect(try await reader.switches() == ServiceSwitches())
            try await writer.setMaintenance(true)
            try await writer.setFeature(.fourK, enabled: false)
            #expect(try await soon(reader) { try await reader.switches() == ServiceSwitches(maintenance: true, disabledFeatures: [.fourK]) })
            try await writer.setFeature(.fourK, enabled: true)
            #expect(try await soon(reader) { try await reader.switches().disabledFeatures.isEmpty })
            try await writer.setLimits(accountID: account.id, limits: LimitOverrides(maxActiveTasks: 7))
            #expect(try await reader.account(named: "a")?.limits.maxActiveTasks == 7)
        }
    }

    @Test func tasksAreVisibleOnlyToTheirOwner() async throws {
        try await withStores { store in
            let alice = try await store.createAccount(name: "alice", credits: 0, now: 1)
            let bob = try await store.createAccount(name: "bob", credits: 0, now: 1)
            try await queuedTask(store, account: alice, id: "t1", createdAt: 10)
            #expect(try await store.task(id: "t1", accountID: alice.id)?.request.prompt == "p")
            #expect(try await store.task(id: "t1", accountID: bob.id) == nil)
        }
    }

    @Test func claimsOldestFirstAndFencesStaleClaims() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await queuedTask(store, account: account, id: "late", createdAt: 20)
            try await queuedTask(store, account: account, id: "early", createdAt: 10)
            let first = try #require(try await store.claimNext(worker: "w1", engine: "preview", now: 100, leaseUntil: 200, maxAttempts: 3))
            #expect(first.id == "early")
            #expect(first.state == .running && first.attempts == 1 && first.engine == "preview")
            let second = try #require(try await store.claimNext(worker: "w2", engine: "preview", now: 100, leaseUntil: 200, maxAttempts: 3))
            #expect(second.id == "late")
            #expect(try await store.claimNext(worker: "w3", engine: "preview", now: 100, leaseUntil: 200, maxAttempts: 3) == nil)

            // The lease of "early" expires; another worker takes it over with attempt 2.
            let retaken = try #require(try await store.claimNext(worker: "w3", engine: "preview", now: 201, leaseUntil: 300, maxAttempts: 3))
            #expect(retaken.id == "early" && retaken.attempts == 2)
            // The first worker's late writes are refused.
            #expect(try await store.updateProgress(taskID: "early", attempt: 1, progress: 50, now: 202) == false)
            #expect(try await store.complete(taskID: "early", attempt: 1, result: Self.result, now: 202) == false)
            #expect(try await store.heartbeat(taskID: "early", attempt: 1, leaseUntil: 400, now: 202) == false)
            // The current owner's are accepted.
            #expect(try await store.updateProgress(taskID: "early", attempt: 2, progress: 40, now: 203))
            #expect(try await store.complete(taskID: "early", attempt: 2, result: Self.result, now: 204))
            let done = try #require(try await store.task(id: "early"))
            #expect(done.state == .succeeded && done.progress == 100 && done.result == Self.result && done.completedAt == 204)
            #expect(done.startedAt == 100)
            // Terminal tasks cannot be changed any more.
            #expect(try await store.fail(taskID: "early", attempt: 2, failure: TaskFailure(code: 501, message: "x"), now: 205) == false)
        }
    }

    @Test func readsAlwaysSeeTheLatestCommittedState() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            let hash = APIKeys.hash("k")
            try await store.addAPIKey(APIKeyRecord(id: "k", accountID: account.id, hash: hash, prefix: "k", createdAt: 1))
            try await queuedTask(store, account: account, id: "t", createdAt: 1)
            // Touch every reader connection with the queued state first.
            for _ in 0..<20 {
                #expect(try await store.account(forKeyHash: hash) != nil)
                #expect(try await store.task(id: "t", accountID: account.id)?.state == .queued)
            }
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 100, maxAttempts: 3)
            for _ in 0..<20 {
                #expect(try await store.task(id: "t", accountID: account.id)?.state == .running)
            }
        }
    }

    @Test func progressNeverGoesBackwards() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await queuedTask(store, account: account, id: "t", createdAt: 1)
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 100, maxAttempts: 3)
            _ = try await store.updateProgress(taskID: "t", attempt: 1, progress: 60, now: 3)
            _ = try await store.updateProgress(taskID: "t", attempt: 1, progress: 30, now: 4)
            #expect(try await store.task(id: "t")?.progress == 60)
        }
    }

    @Test func abandonedTaskFailsAfterMaxAttempts() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await queuedTask(store, account: account, id: "t", createdAt: 1)
            var now: Int64 = 10
            for attempt in 1...3 {
                let claimed = try #require(
                    try await store.claimNext(worker: "w\(attempt)", engine: "preview", now: now, leaseUntil: now + 5, maxAttempts: 3))
                #expect(claimed.attempts == attempt)
                now += 10  // the worker dies; its lease runs out
            }
            #expect(try await store.claimNext(worker: "w4", engine: "preview", now: now, leaseUntil: now + 5, maxAttempts: 3) == nil)
            let failed = try #require(try await store.task(id: "t"))
            #expect(failed.state == .failed)
            #expect(failed.failure?.code == 500)
            #expect(failed.failure?.message.contains("3 attempts") == true)
        }
    }

    @Test func upstreamTaskIDsSurviveLaterClaimsAndAreFencedAndPrivate() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await queuedTask(store, account: account, id: "t1", createdAt: 1)
            let first = try #require(try await store.claimNext(worker: "w1", engine: "router", now: 10, leaseUntil: 20, maxAttempts: 3))
            #expect(try await store.upstreamTask(taskID: "t1") == nil)
            #expect(try await store.recordEngine(taskID: "t1", attempt: first.attempts, engine: "kling-official", upstreamTaskID: "up-1", now: 11))
            #expect(try await store.task(id: "t1")?.engine == "kling-official")
            // Another worker claims it after the lease expired: the provider task is still known, under its engine.
            let second = try #require(try await store.claimNext(worker: "w2", engine: "router", now: 30, leaseUntil: 40, maxAttempts: 3))
            #expect(try await store.upstreamTask(taskID: "t1") == UpstreamTaskReference(engine: "kling-official", taskID: "up-1"))
            // The stale claim can no longer record anything.
            #expect(try await !store.recordEngine(taskID: "t1", attempt: first.attempts, engine: "kling-market", upstreamTaskID: "up-2", now: 31))
            #expect(try await store.upstreamTask(taskID: "t1")?.taskID == "up-1")
            // A local engine records no provider task.
            #expect(try await store.recordEngine(taskID: "t1", attempt: second.attempts, engine: "preview", upstreamTaskID: nil, now: 32))
            #expect(try await store.upstreamTask(taskID: "t1") == nil)
            #expect(try await store.task(id: "t1")?.engine == "preview")
        }
    }

    @Test func releasedTaskIsQueuedAgain() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await queuedTask(store, account: account, id: "t", createdAt: 1)
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 100, maxAttempts: 3)
            #expect(try await store.release(taskID: "t", attempt: 1, now: 3))
            #expect(try await store.taskCounts()[.queued] == 1)
            let again = try #require(try await store.claimNext(worker: "w", engine: "preview", now: 4, leaseUntil: 100, maxAttempts: 3))
            #expect(again.attempts == 2)
        }
    }

    @Test(.timeLimit(.minutes(1))) func queuedAndReleasedTasksAreAnnouncedToOtherProcesses() async throws {
        try await withBackends { backend in
            let listening = try await backend.open()
            // SQLite is one process's store: its workers are woken in process (WakeSignal) and by polling.
            guard let announcing = listening as? any QueueAnnouncing else { return }
            let other = try await backend.open()
            let (announcements, announce) = AsyncStream<Void>.makeStream()
            let listener = Task { try await announcing.listenForQueuedTasks { announce.yield() } }
            defer { listener.cancel() }
            var received = announcements.makeAsyncIterator()
            _ = await received.next()  // listening has begun

            let account = try await other.createAccount(name: "a", credits: 0, now: 1)
            try await queuedTask(other, account: account, id: "t", createdAt: 1)
            _ = await received.next()
            _ = try #require(try await other.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 100, maxAttempts: 3))
            #expect(try await other.release(taskID: "t", attempt: 1, now: 3))
            _ = await received.next()
            // Cancelling ends the listen (and gives its connection back).
            listener.cancel()
            _ = try? await listener.value
        }
    }

    @Test func concurrentClaimsNeverHandOutTheSameTaskTwice() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            for index in 0..<40 { try await queuedTask(store, account: account, id: "t\(index)", createdAt: Int64(index)) }
            let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var ids: [String] = []
                        while let task = try await store.claimNext(
                            worker: "w\(worker)", engine: "preview", now: 1000, leaseUntil: 9000, maxAttempts: 3)
                        {
                            ids.append(task.id)
                        }
                        return ids
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(claimed.count == 40)
            #expect(Set(claimed).count == 40)
        }
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

    @Test func idempotencyKeysReturnTheEarlierTaskForADayAndRefuseOtherRequests() async throws {
        try await withStores { store in
            let alice = try await store.createAccount(name: "alice", credits: 100, now: 1)
            let bob = try await store.createAccount(name: "bob", credits: 100, now: 1)
            let day: Int64 = 86_400_000
            func insert(_ account: Account, _ id: String, fingerprint: String = "f", now: Int64 = 1000) async throws -> IdempotentInsert {
                try await store.insert(
                    task(account, id: id, credits: 10), maxActiveTasks: nil, idempotencyKey: "k", fingerprint: fingerprint, now: now)
            }
            #expect(try await insert(alice, "t1") == .created)
            #expect(try await insert(alice, "t2") == .existing(taskID: "t1"))
            #expect(try await store.task(id: "t2") == nil)
            #expect(try await store.balance(accountID: alice.id) == 90)
            await #expect(throws: StoreError.self) { _ = try await insert(alice, "t3", fingerprint: "other") }
            #expect(try await insert(bob, "b1") == .created)
            #expect(try await insert(alice, "t4", now: 1000 + day + 1) == .created)
            #expect(try await store.balance(accountID: alice.id) == 80)
            #expect(try await store.ledgerMismatches().isEmpty)
        }
    }

    @Test func externalIDsAreUniquePerAccount() async throws {
        try await withStores { store in
            let alice = try await store.createAccount(name: "alice", credits: 0, now: 1)
            let bob = try await store.createAccount(name: "bob", credits: 0, now: 1)
            try await store.insert(task(alice, id: "a1", externalID: "e"), maxActiveTasks: nil)
            do {
                try await store.insert(task(alice, id: "a2", externalID: "e"), maxActiveTasks: nil)
                Issue.record("a second task with one external id was stored")
            } catch let error as StoreError {
                #expect(error.isExternalIDTaken)
            }
            try await store.insert(task(bob, id: "b1", externalID: "e"), maxActiveTasks: nil)
            #expect(try await store.task(externalID: "e", accountID: alice.id)?.id == "a1")
            #expect(try await store.task(externalID: "e", accountID: bob.id)?.id == "b1")
            #expect(try await store.task(externalID: "x", accountID: alice.id) == nil)
        }
    }

    @Test func listsPageNewestOrOldestFirstWithinTheAccount() async throws {
        try await withStores { store in
            let alice = try await store.createAccount(name: "alice", credits: 0, now: 1)
            let bob = try await store.createAccount(name: "bob", credits: 0, now: 1)
            for index in 1...5 { try await queuedTask(store, account: alice, id: "t\(index)", createdAt: Int64(index)) }
            func ids(limit: Int, after: String? = nil, ascending: Bool = false, offset: Int = 0) async throws -> ([String], Bool) {
                let page = try await store.listTasks(accountID: alice.id, limit: limit, after: after, ascending: ascending, offset: offset)
                return (page.tasks.map(\.id), page.hasMore)
            }
            #expect(try await ids(limit: 2) == (["t5", "t4"], true))
            #expect(try await ids(limit: 2, after: "t4") == (["t3", "t2"], true))
            #expect(try await ids(limit: 2, after: "t2") == (["t1"], false))
            #expect(try await ids(limit: 10, after: "t2", ascending: true) == (["t3", "t4", "t5"], false))
            #expect(try await ids(limit: 2, offset: 1) == (["t4", "t3"], true))
            await #expect(throws: StoreError.self) { _ = try await ids(limit: 2, after: "nope") }
            #expect(try await store.listTasks(accountID: bob.id, limit: 10, after: nil, ascending: false, offset: 0).tasks.isEmpty)
        }
    }

    @Test func cancellingRefundsOnceAndQueuesTheCallback() async throws {
        try await withStores { store in
            let alice = try await store.createAccount(name: "alice", credits: 100, now: 1)
            let bob = try await store.createAccount(name: "bob", credits: 0, now: 1)
            try await store.insert(task(alice, id: "t", credits: 30, callbackURL: "https://example.com/hook"), maxActiveTasks: nil)
            let failure = TaskFailure(code: 499, message: "cancelled")
            #expect(try await store.cancel(taskID: "t", accountID: bob.id, failure: failure, now: 5) == .notFound)
            #expect(try await store.cancel(taskID: "t", accountID: alice.id, failure: failure, now: 5) == .cancelled)
            #expect(try await store.cancel(taskID: "t", accountID: alice.id, failure: failure, now: 6) == .alreadyFinished)
            let cancelled = try #require(try await store.task(id: "t"))
            #expect(cancelled.state == .failed && cancelled.failure == failure && cancelled.refundedCredits == 30)
            #expect(try await store.balance(accountID: alice.id) == 100)
            let callbacks = try await store.callbacks(taskID: "t", accountID: alice.id)
            #expect(callbacks.map(\.0.url) == ["https://example.com/hook"])
            #expect(try await store.callbacks(taskID: "t", accountID: bob.id).isEmpty)
        }
    }

    @Test func callbacksAreLeasedRetriedAndRecorded() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await store.insert(task(account, id: "t", callbackURL: "https://example.com/hook"), maxActiveTasks: nil)
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 100, maxAttempts: 3)
            // The market dialect calls back on terminal states only.
            #expect(try await store.claimDueCallbacks(now: 3, leaseUntil: 50, limit: 10).isEmpty)
            #expect(try await store.complete(taskID: "t", attempt: 1, result: Self.result, now: 10))
            let first = try await store.claimDueCallbacks(now: 10, leaseUntil: 50, limit: 10)
            #expect(first.map(\.attempts) == [1])
            let callback = try #require(first.first)
            #expect(callback.taskID == "t" && callback.state == .pending && callback.dialect == "market")
            #expect(try await store.claimDueCallbacks(now: 20, leaseUntil: 60, limit: 10).isEmpty)  // leased
            try await store.recordCallbackAttempt(
                CallbackAttempt(callbackID: callback.id, attempt: 1, status: 500, error: "HTTP 500", durationMillis: 7, at: 21),
                payload: "{\"a\":1}", next: .retry(at: 200), now: 21)
            #expect(try await store.claimDueCallbacks(now: 150, leaseUntil: 300, limit: 10).isEmpty)
            let second = try await store.claimDueCallbacks(now: 200, leaseUntil: 300, limit: 10)
            #expect(second.map(\.attempts) == [2])
            // The payload stays the one of the first attempt.
            try await store.recordCallbackAttempt(
                CallbackAttempt(callbackID: callback.id, attempt: 2, status: 204, error: nil, durationMillis: 3, at: 201),
                payload: "{\"a\":2}", next: .delivered, now: 201)
            let listed = try await store.callbacks(taskID: "t", accountID: account.id)
            let (record, attempts) = try #require(listed.first)
            #expect(listed.count == 1)
            #expect(record.state == .delivered && record.payload == "{\"a\":1}" && record.lastStatus == 204)
            #expect(attempts.map(\.status) == [500, 204])
            let stats = try await store.operationalStats(now: 300)
            #expect(stats.callbacksByState[.delivered] == 1)
            #expect(stats.callbackAttempts == ["ok": 1, "failed": 1])
            #expect(stats.tasksByState[.succeeded] == 1)

            #expect(try await store.resendCallback(id: callback.id, now: 400))
            #expect(try await store.resendCallback(id: "nope", now: 400) == false)
            #expect(try await store.claimDueCallbacks(now: 400, leaseUntil: 500, limit: 10).map(\.attempts) == [3])
        }
    }

    @Test func klingTasksCallBackWhenFirstClaimed() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await store.insert(task(account, id: "t", dialect: "kling", callbackURL: "https://example.com/hook"), maxActiveTasks: nil)
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 5, maxAttempts: 3)
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 10, leaseUntil: 20, maxAttempts: 3)  // lease expired
            let callbacks = try await store.callbacks(taskID: "t", accountID: account.id)
            #expect(callbacks.map(\.0.event) == ["processing"])
        }
    }

    @Test func webhookSecretsAreMadeOnceAndRotateWithOverlap() async throws {
        try await withBackends { backend in
            let first = try await backend.open()
            let second = try await backend.open()
            let account = try await first.createAccount(name: "a", credits: 0, now: 1)
            // Two processes asking at once still make one secret.
            async let one = first.webhookSecrets(accountID: account.id, now: 2)
            async let two = second.webhookSecrets(accountID: account.id, now: 2)
            let (a, b) = try await (one, two)
            #expect(a.count == 1 && a == b)
            let rotated = try await first.rotateWebhookSecret(accountID: account.id, previousUntil: 100, now: 10)
            #expect(rotated.count == 2 && rotated.last == a.first && rotated.first != a.first)
            #expect(try await second.webhookSecrets(accountID: account.id, now: 50) == rotated)
            #expect(try await second.webhookSecrets(accountID: account.id, now: 101) == [rotated[0]])

            let secret = try await first.installationSecret("links")
            #expect(try await second.installationSecret("links") == secret)
            #expect(try await second.installationSecret("other") != secret)

            try await first.addJWTCredential(accessKey: "ak", accountID: account.id, secretKey: "sk", now: 3)
            let credential = try await second.jwtCredential(accessKey: "ak")
            #expect(credential?.account.id == account.id && credential?.secretKey == "sk")
            #expect(try await second.jwtCredential(accessKey: "nope") == nil)
        }
    }

    @Test func retentionFindsOldResultsOnceAndRecordsTheirExpiry() async throws {
        try await withStores { store in
            let account = try await store.createAccount(name: "a", credits: 0, now: 1)
            try await queuedTask(store, account: account, id: "t", createdAt: 1)
            try await queuedTask(store, account: account, id: "q", createdAt: 2)
            _ = try await store.claimNext(worker: "w", engine: "preview", now: 2, leaseUntil: 100, maxAttempts: 3)
            #expect(try await store.complete(taskID: "t", attempt: 1, result: Self.result, now: 10))
            #expect(try await store.tasksWithResults(completedBefore: 10, limit: 10).isEmpty)
            #expect(try await store.tasksWithResults(completedBefore: 11, limit: 10) == ["t"])
            try await store.markResultsExpired(taskIDs: ["t"], now: 20)
            #expect(try await store.task(id: "t")?.resultsExpiredAt == 20)
            #expect(try await store.tasksWithResults(completedBefore: 11, limit: 10).isEmpty)
            let stats = try await store.operationalStats(now: 4002)
            #expect(stats.oldestQueuedSeconds == 4)
            #expect(stats.tasksByState == [.succeeded: 1, .queued: 1])
        }
    }

    @Test func ledgerTotalsAndAccountListingMatchAcrossBackends() async throws {
        try await withStores { store in
            let bob = try await store.createAccount(name: "bob", credits: 50, now: 2)
            let alice = try await store.createAccount(name: "alice", credits: 100, now: 1)
            #expect(try await store.accounts().map(\.name) == ["alice", "bob"])
            #expect(try await store.account(named: "bob")?.id == bob.id)
            #expect(try await store.addCredits(accountID: alice.id, amount: -30, note: "fix", now: 3) == 70)
            try await pricedTask(store, account: bob, id: "t", credits: 20)
            let ledger = try await store.ledger(accountID: alice.id)
            #expect(ledger.map(\.kind) == [.topUp, .adjustment] && ledger.last?.note == "fix")
            let totals = try await store.operationalStats(now: 10).ledgerTotals
            #expect(totals == [.topUp: 150, .adjustment: -30, .charge: -20])
            await #expect(throws: StoreError.self) { try await store.setLimits(accountID: "acct_nope", limits: LimitOverrides()) }
            await #expect(throws: StoreError.self) { _ = try await store.balance(accountID: "acct_nope") }
        }
    }

    /// Workers of two processes drain one queue of priced tasks of several accounts, failing every third: each task
    /// ends once, refunds match the failures, and every balance is its ledger's sum.
    @Test func workersOfTwoProcessesSettleEveryTaskOnce() async throws {
        try await withBackends { backend in
            let stores = [try await backend.open(), try await backend.open()]
            var accounts: [Account] = []
            for name in ["a", "b", "c"] { accounts.append(try await stores[0].createAccount(name: name, credits: 1000, now: 1)) }
            for index in 0..<30 {
                try await stores[index % 2].insert(
                    task(accounts[index % 3], id: String(format: "t%02d", index), createdAt: Int64(index), credits: 10), maxActiveTasks: nil)
            }
            let settled = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<6 {
                    let store = stores[worker % 2]
                    group.addTask {
                        var ids: [String] = []
                        while let claimed = try await store.claimNext(
                            worker: "w\(worker)", engine: "preview", now: 100, leaseUntil: 9000, maxAttempts: 3)
                        {
                            let number = Int(claimed.id.dropFirst())!
                            let done =
                                number.isMultiple(of: 3)
                                ? try await store.fail(
                                    taskID: claimed.id, attempt: claimed.attempts, failure: TaskFailure(code: 501, message: "x"), now: 200)
                                : try await store.complete(taskID: claimed.id, attempt: claimed.attempts, result: Self.result, now: 200)
                            if done { ids.append(claimed.id) }
                        }
                        return ids
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(settled.count == 30 && Set(settled).count == 30)
            #expect(try await stores[1].taskCounts() == [.succeeded: 20, .failed: 10])
            var total: Int64 = 0
            for account in accounts { total += try await stores[1].balance(accountID: account.id) }
            #expect(total == 3000 - 20 * 10)
            #expect(try await stores[0].ledgerMismatches().isEmpty)
        }
    }

    static let result = TaskResult(
        videoPath: "results/t/video.mp4", coverPath: "results/t/cover.jpg", width: 1280, height: 720, durationSeconds: 3, hasAudio: true)
}
