import Foundation
import KlingAPI
import KlingCore
import Logging
import PostgresNIO
import Synchronization

/// The shared store: one PostgreSQL database for several API and worker processes (PostgresNIO's `PostgresClient`).
///
/// Semantics match ``TaskStore``'s SQLite implementation exactly; writes run in `READ COMMITTED` transactions that lock
/// the account row before they charge, count or look up idempotency keys, and the queue claims with
/// `FOR UPDATE SKIP LOCKED`. Only the per-request lookups of keys and switches are cached, and only while changes to
/// them are announced to this process (``PostgresReadCache``); every other read sees the latest committed state.
public final class PostgresTaskStore: TaskStore {
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    private let cache = PostgresReadCache()
    private let inserts: PostgresInsertBatcher
    /// Every statement's connection, given up on when the database does not answer in time.
    private let lease: BoundedLease
    private let changes = Mutex<Task<Void, Never>?>(nil)

    private init(client: PostgresClient, runner: Task<Void, Never>, leaseLimit: Duration, logger: Logger) {
        self.client = client
        self.runner = runner
        self.logger = logger
        let lease = BoundedLease(client: client, limit: leaseLimit)
        self.lease = lease
        self.inserts = PostgresInsertBatcher { items in try await Self.insertBatch(lease: lease, logger: logger, items: items) }
    }

    /// Listens for changes to cached values until closed; the cache is on only while the listen holds.
    private func followChanges() {
        let task = Task { [client, cache, logger] in
            var delay = Duration.milliseconds(100)
            while !Task.isCancelled {
                do {
                    try await client.withConnection { connection in
                        try await connection.listen(on: PostgresMigrations.changesChannel) { notifications in
                            cache.invalidate(live: true)
                            delay = .milliseconds(100)
                            for try await _ in notifications { cache.invalidate() }
                        }
                    }
                } catch {
                    if !Task.isCancelled {
                        logger.warning("listening for changes failed; reads are not cached until it is back", metadata: ["error": "\(error)"])
                    }
                }
                cache.invalidate(live: false)
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
        changes.withLock { $0 = task }
    }

    /// Connects to the database at `url` (`postgres://...`) and applies the migrations it has not seen yet.
    public static func connect(url: String, logger: Logger = Logger(label: "kling.postgres")) async throws -> PostgresTaskStore {
        try await connect(configuration: Configuration(url: url), logger: logger)
    }

    /// Connects with explicit settings and applies the migrations the database has not seen yet.
    public static func connect(configuration: Configuration, logger: Logger = Logger(label: "kling.postgres")) async throws
        -> PostgresTaskStore
    {
        let client = PostgresClient(configuration: configuration.client, backgroundLogger: logger)
        // The pool serves leases only once `run()` is going: start it before the first query.
        let (started, signal) = AsyncStream<Void>.makeStream()
        let runner = Task {
            signal.finish()
            await client.run()
        }
        for await _ in started {}
        // `run()` marks the client running at once, but on another thread: a lease in the same microsecond would log
        // PostgresNIO's "run() hasn't been called yet" warning (the lease itself would wait and work).
        try? await Task.sleep(for: .milliseconds(10))
        let store = PostgresTaskStore(client: client, runner: runner, leaseLimit: configuration.leaseLimit, logger: logger)
        do {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let applied = try await store.lease.withConnection { connection in
                try await PostgresMigrations.migrate(connection, logger: logger, now: now)
            }
            if !applied.isEmpty { logger.info("applied PostgreSQL migrations \(applied)") }
        } catch {
            await store.close()
            throw error
        }
        store.followChanges()
        return store
    }

    /// Closes every connection; the store cannot be used afterwards.
    public func close() async {
        if let listener = changes.withLock({ $0 }) {
            listener.cancel()
            await listener.value
        }
        runner.cancel()
        await runner.value
    }

    // MARK: Accounts and keys

    public func createAccount(name: String, credits: Int64, now: Int64) async throws -> Account {
        let account = Account(id: "acct_" + APIKeys.randomID(), name: name, createdAt: now)
        do {
            try await transaction { db in
                try await db.run("INSERT INTO accounts (id, name, created_at, balance) VALUES (\(account.id), \(name), \(now), 0)")
                if credits != 0 {
                    _ = try await Self.moveCredits(
                        db, accountID: account.id, kind: .topUp, amount: credits, taskID: nil, note: "starting grant", now: now)
                }
            }
        } catch let error as PSQLError where error.isUniqueViolation {
            throw StoreError.conflict("an account named \(name) already exists")
        }
        return account
    }

    public func account(named name: String) async throws -> Account? {
        try await read("SELECT * FROM accounts WHERE name = \(name)").first.map(Self.account)
    }

    public func accounts() async throws -> [Account] {
        try await read("SELECT * FROM accounts ORDER BY created_at, name").map(Self.account)
    }

    public func addAPIKey(_ key: APIKeyRecord) async throws {
        do {
            try await read(
                """
                INSERT INTO api_keys (id, account_id, hash, prefix, created_at, revoked_at)
                VALUES (\(key.id), \(key.accountID), \(key.hash), \(key.prefix), \(key.createdAt), \(key.revokedAt))
                """)
        } catch let error as PSQLError where error.isConstraintViolation {
            throw StoreError.conflict("the key could not be stored: \(error.serverInfo?[.message] ?? "constraint failed")")
        }
    }

    public func revokeAPIKey(id: String, accountID: String, now: Int64) async throws -> Bool {
        // This process sees its own change at once; others when the trigger's notification reaches them.
        defer { cache.invalidate() }
        return try await !read(
            """
            UPDATE api_keys SET revoked_at = \(now) WHERE id = \(id) AND account_id = \(accountID) AND revoked_at IS NULL RETURNING id
            """
        ).isEmpty
    }

    public func apiKeys(accountID: String) async throws -> [APIKeyRecord] {
        try await read("SELECT * FROM api_keys WHERE account_id = \(accountID) ORDER BY created_at").map {
            APIKeyRecord(
                id: try $0.get("id"), accountID: try $0.get("account_id"), hash: try $0.get("hash"), prefix: try $0.get("prefix"),
                createdAt: try $0.get("created_at"), revokedAt: try $0.get("revoked_at"))
        }
    }

    public func account(forKeyHash hash: String) async throws -> Account? {
        if let cached = cache.account(forKeyHash: hash) { return cached }
        let generation = cache.generation
        let account = try await read(
            """
            SELECT a.*, k.hash AS key_hash FROM api_keys k JOIN accounts a ON a.id = k.account_id
            WHERE k.hash = \(hash) AND k.revoked_at IS NULL
            """
        ).first.flatMap { row in
            // The index lookup found the row; compare once more in constant time before trusting it.
            APIKeys.constantTimeEquals(try row.get("key_hash"), hash) ? try Self.account(row) : nil
        }
        if let account, let generation { cache.store(account, forKeyHash: hash, generation: generation) }
        return account
    }

    public func addJWTCredential(accessKey: String, accountID: String, secretKey: String, now: Int64) async throws {
        try await read(
            """
            INSERT INTO jwt_credentials (access_key, account_id, secret_key, created_at) VALUES (\(accessKey), \(accountID), \(secretKey), \(now))
            """)
    }

    public func jwtCredential(accessKey: String) async throws -> (account: Account, secretKey: String)? {
        try await read(
            "SELECT a.*, c.secret_key FROM jwt_credentials c JOIN accounts a ON a.id = c.account_id WHERE c.access_key = \(accessKey)"
        ).first.map { (try Self.account($0), try $0.get("secret_key")) }
    }

    public func setLimits(accountID: String, limits: LimitOverrides) async throws {
        let encoded = try Self.encode(limits)
        defer { cache.invalidate() }
        guard try await !read("UPDATE accounts SET limits = \(encoded) WHERE id = \(accountID) RETURNING id").isEmpty else {
            throw StoreError.notFound("no account \(accountID)")
        }
    }

    // MARK: Credits

    public func balance(accountID: String) async throws -> Int64 {
        guard let row = try await read("SELECT balance FROM accounts WHERE id = \(accountID)").first else {
            throw StoreError.notFound("no account \(accountID)")
        }
        return try row.get("balance")
    }

    public func addCredits(accountID: String, amount: Int64, note: String, now: Int64) async throws -> Int64 {
        try await transaction { db in
            try await Self.moveCredits(
                db, accountID: accountID, kind: amount >= 0 ? .topUp : .adjustment, amount: amount, taskID: nil, note: note, now: now)
        }
    }

    public func ledger(accountID: String) async throws -> [LedgerEntry] {
        try await read("SELECT * FROM ledger WHERE account_id = \(accountID) ORDER BY id").map { row in
            LedgerEntry(
                id: try row.get("id"), accountID: try row.get("account_id"),
                kind: LedgerEntry.Kind(rawValue: try row.get("kind")) ?? .adjustment, amount: try row.get("amount"),
                taskID: try row.get("task_id"), note: try row.get("note"), createdAt: try row.get("created_at"))
        }
    }

    public func ledgerMismatches() async throws -> [LedgerMismatch] {
        try await read(
            """
            SELECT a.id, a.name, a.balance, COALESCE((SELECT SUM(amount) FROM ledger l WHERE l.account_id = a.id), 0)::BIGINT AS total
            FROM accounts a WHERE a.balance != COALESCE((SELECT SUM(amount) FROM ledger l WHERE l.account_id = a.id), 0)
            ORDER BY a.name
            """
        ).map {
            LedgerMismatch(
                accountID: try $0.get("id"), accountName: try $0.get("name"), balance: try $0.get("balance"), ledgerSum: try $0.get("total"))
        }
    }

    /// Moves credits with a ledger entry in the caller's transaction and returns the new balance; never lets the
    /// balance go below zero, and charges or refunds a task at most once (the ledger's unique index). The update locks
    /// the account's row until the transaction ends.
    @discardableResult
    private static func moveCredits(
        _ db: Connection, accountID: String, kind: LedgerEntry.Kind, amount: Int64, taskID: String?, note: String, now: Int64
    ) async throws -> Int64 {
        guard
            let row = try await db.rows(
                """
                UPDATE accounts SET balance = balance + \(amount) WHERE id = \(accountID) AND balance + \(amount) >= 0 RETURNING balance
                """
            ).first
        else {
            guard let row = try await db.rows("SELECT balance FROM accounts WHERE id = \(accountID)").first else {
                throw StoreError.notFound("no account \(accountID)")
            }
            let balance: Int64 = try row.get("balance")
            throw StoreError.insufficientCredits("the balance is \(balance) credits; \(-amount) are needed")
        }
        try await db.run(
            """
            INSERT INTO ledger (account_id, kind, amount, task_id, note, created_at)
            VALUES (\(accountID), \(kind.rawValue), \(amount), \(taskID), \(note), \(now))
            """)
        return try row.get("balance")
    }

    /// Gives a failed task its price back, once, in the caller's transaction.
    private static func refund(_ db: Connection, taskID: String, now: Int64) async throws {
        guard let row = try await db.rows("SELECT account_id, credits, refunded_credits FROM tasks WHERE id = \(taskID)").first else { return }
        let credits: Int64 = try row.get("credits")
        let refunded: Int64 = try row.get("refunded_credits")
        guard credits > 0, refunded == 0 else { return }
        try await moveCredits(db, accountID: try row.get("account_id"), kind: .refund, amount: credits, taskID: taskID, note: "task failed", now: now)
        try await db.run("UPDATE tasks SET refunded_credits = \(credits) WHERE id = \(taskID)")
    }

    // MARK: Switches

    public func switches() async throws -> ServiceSwitches {
        if let cached = cache.switches { return cached }
        let generation = cache.generation
        let switches = ServiceSwitches(
            settings: try await read("SELECT key, value FROM settings").map { (key: try $0.get("key"), value: try $0.get("value")) })
        if let generation { cache.store(switches, generation: generation) }
        return switches
    }

    public func setMaintenance(_ on: Bool) async throws {
        let row = ServiceSwitches.setting(maintenance: on)
        try await setting(row.key, row.value)
    }

    public func setFeature(_ feature: ServiceSwitches.Feature, enabled: Bool) async throws {
        let row = ServiceSwitches.setting(feature, enabled: enabled)
        try await setting(row.key, row.value)
    }

    public func installationSecret(_ name: String) async throws -> String {
        let key = "secret." + name
        var generator = SystemRandomNumberGenerator()
        let fresh = Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
        try await read("INSERT INTO settings (key, value) VALUES (\(key), \(fresh)) ON CONFLICT (key) DO NOTHING")
        return try await read("SELECT value FROM settings WHERE key = \(key)").first?.get("value") ?? fresh
    }

    private func setting(_ key: String, _ value: String) async throws {
        defer { cache.invalidate() }
        try await read("INSERT INTO settings (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    }

    // MARK: Tasks

    public func insert(_ task: TaskRecord, maxActiveTasks: Int?) async throws {
        _ = try await insert(task, maxActiveTasks: maxActiveTasks, key: nil, fingerprint: nil, now: task.createdAt)
    }

    public func insert(_ task: TaskRecord, maxActiveTasks: Int?, idempotencyKey key: String, fingerprint: String, now: Int64) async throws
        -> IdempotentInsert
    {
        try await insert(task, maxActiveTasks: maxActiveTasks, key: key, fingerprint: fingerprint, now: now)
    }

    /// Stores and charges a task through the group-commit batcher (`kling_insert_tasks`, migration 4).
    private func insert(_ task: TaskRecord, maxActiveTasks: Int?, key: String?, fingerprint: String?, now: Int64) async throws
        -> IdempotentInsert
    {
        try await inserts.insert(
            PostgresInsertBatcher.Item(
                id: task.id, account_id: task.accountID, dialect: task.dialect, model: task.model, request: try Self.encode(task.request),
                params: task.params, state: task.state.rawValue, progress: task.progress, attempts: task.attempts, engine: task.engine,
                created_at: task.createdAt, updated_at: task.updatedAt, started_at: task.startedAt, completed_at: task.completedAt,
                result: try task.result.map(Self.encode), failure_code: task.failure?.code, failure_message: task.failure?.message,
                credits: task.credits, refunded_credits: task.refundedCredits, callback_url: task.request.callbackURL,
                external_id: task.externalID, max_active: maxActiveTasks, idempotency_key: key, fingerprint: fingerprint, now: now))
    }

    /// Runs one `kling_insert_tasks` batch, again when PostgreSQL broke a deadlock by aborting it.
    private static func insertBatch(lease: BoundedLease, logger: Logger, items: String) async throws -> String {
        var retries = 0
        while true {
            do {
                return try await lease.withConnection { connection in
                    let rows = try await connection.query("SELECT kling_insert_tasks(\(items)::JSONB)::TEXT AS outcomes", logger: logger)
                    for try await outcomes in rows.decode(String.self) { return outcomes }
                    throw StoreError.notFound("kling_insert_tasks returned no row")
                }
            } catch let error as PSQLError where error.isTransient && retries < 10 {
                retries += 1
            }
        }
    }

    public func cancel(taskID: String, accountID: String, failure: TaskFailure, now: Int64) async throws -> CancelOutcome {
        try await transaction { db -> CancelOutcome in
            guard let row = try await db.rows("SELECT state FROM tasks WHERE id = \(taskID) AND account_id = \(accountID) FOR UPDATE").first
            else { return .notFound }
            let state: String = try row.get("state")
            guard state == TaskState.queued.rawValue || state == TaskState.running.rawValue else { return .alreadyFinished }
            try await db.run(
                """
                UPDATE tasks SET state = 'failed', failure_code = \(failure.code), failure_message = \(failure.message),
                    completed_at = \(now), updated_at = \(now), lease_owner = NULL, lease_until = NULL
                WHERE id = \(taskID)
                """)
            try await Self.refund(db, taskID: taskID, now: now)
            try await Self.queueCallback(db, taskID: taskID, now: now)
            return .cancelled
        }
    }

    public func task(id: String, accountID: String) async throws -> TaskRecord? {
        try await read("SELECT \(unescaped: Self.taskColumns) FROM tasks WHERE id = \(id) AND account_id = \(accountID)").first.map(Self.task)
    }

    public func task(externalID: String, accountID: String) async throws -> TaskRecord? {
        try await read("SELECT \(unescaped: Self.taskColumns) FROM tasks WHERE account_id = \(accountID) AND external_id = \(externalID)")
            .first.map(Self.task)
    }

    public func listTasks(accountID: String, limit: Int, after: String?, ascending: Bool, offset: Int) async throws -> (
        tasks: [TaskRecord], hasMore: Bool
    ) {
        var sql = "SELECT \(Self.taskColumns) FROM tasks WHERE account_id = $1"
        var binds = PostgresBindings()
        binds.append(accountID)
        if let after {
            guard let cursor = try await read("SELECT created_at, id FROM tasks WHERE id = \(after) AND account_id = \(accountID)").first
            else { throw StoreError.notFound("after: no task \(after) for this account") }
            sql += ascending ? " AND (created_at, id) > ($2, $3)" : " AND (created_at, id) < ($2, $3)"
            binds.append(try cursor.get("created_at", as: Int64.self))
            binds.append(try cursor.get("id", as: String.self))
        }
        let next = binds.count + 1
        sql += ascending ? " ORDER BY created_at, id" : " ORDER BY created_at DESC, id DESC"
        sql += " LIMIT $\(next) OFFSET $\(next + 1)"
        binds.append(limit + 1)
        binds.append(max(0, offset))
        let tasks = try await read(PostgresQuery(unsafeSQL: sql, binds: binds)).map(Self.task)
        return (Array(tasks.prefix(limit)), tasks.count > limit)
    }

    public func task(id: String) async throws -> TaskRecord? {
        try await read("SELECT \(unescaped: Self.taskColumns) FROM tasks WHERE id = \(id)").first.map(Self.task)
    }

    // MARK: Queue

    public func claimNext(worker: String, engine: String, now: Int64, leaseUntil: Int64, maxAttempts: Int) async throws -> TaskRecord? {
        // One statement (its own transaction): an idle worker's claim is one round trip. Rows another claimer holds are
        // skipped, not waited for; an expired claim is taken over only while it has attempts left.
        let claimed = try await read(
            """
            WITH candidate AS (
                SELECT id FROM tasks
                WHERE state = 'queued' OR (state = 'running' AND lease_until < \(now) AND attempts < \(maxAttempts))
                ORDER BY created_at, id LIMIT 1
                FOR UPDATE SKIP LOCKED
            ), claimed AS (
                UPDATE tasks SET state = 'running', attempts = attempts + 1, lease_owner = \(worker), lease_until = \(leaseUntil),
                    engine = \(engine), started_at = COALESCE(started_at, \(now)), updated_at = \(now), progress = 0
                WHERE id = (SELECT id FROM candidate)
                RETURNING \(unescaped: Self.taskColumns), callback_url
            ), processing AS (
                -- Kling's dialect calls back on every status change: the first claim is submitted -> processing.
                INSERT INTO callbacks (id, task_id, account_id, url, dialect, state, attempts, next_attempt_at, created_at, updated_at, event)
                SELECT \("msg_" + APIKeys.randomID()), id, account_id, callback_url, dialect, 'pending', 0, \(now), \(now), \(now), 'processing'
                FROM claimed WHERE callback_url IS NOT NULL AND dialect = 'kling' AND attempts = 1
            )
            SELECT \(unescaped: Self.taskColumns) FROM claimed
            """
        ).first.map(Self.task)
        if let claimed { return claimed }
        // Nothing to claim: fail the tasks whose last allowed claim was abandoned (the sweeper does so too).
        _ = try await failAbandoned(now: now, maxAttempts: maxAttempts)
        return nil
    }

    public func heartbeat(taskID: String, attempt: Int, leaseUntil: Int64, now: Int64) async throws -> Bool {
        try await updateClaimed(
            """
            UPDATE tasks SET lease_until = \(leaseUntil), updated_at = \(now)
            WHERE id = \(taskID) AND attempts = \(attempt) AND state = 'running' RETURNING id
            """)
    }

    public func updateProgress(taskID: String, attempt: Int, progress: Int, now: Int64) async throws -> Bool {
        try await updateClaimed(
            """
            UPDATE tasks SET progress = GREATEST(progress, \(progress)), updated_at = \(now)
            WHERE id = \(taskID) AND attempts = \(attempt) AND state = 'running' RETURNING id
            """)
    }

    public func complete(taskID: String, attempt: Int, result: TaskResult, now: Int64) async throws -> Bool {
        let encoded = try Self.encode(result)
        return try await updateClaimed(
            """
            UPDATE tasks SET state = 'succeeded', progress = 100, result = \(encoded), completed_at = \(now), updated_at = \(now),
                lease_owner = NULL, lease_until = NULL
            WHERE id = \(taskID) AND attempts = \(attempt) AND state = 'running' RETURNING id
            """
        ) { db in try await Self.queueCallback(db, taskID: taskID, now: now) }
    }

    public func fail(taskID: String, attempt: Int, failure: TaskFailure, now: Int64) async throws -> Bool {
        try await updateClaimed(
            """
            UPDATE tasks SET state = 'failed', failure_code = \(failure.code), failure_message = \(failure.message), completed_at = \(now),
                updated_at = \(now), lease_owner = NULL, lease_until = NULL
            WHERE id = \(taskID) AND attempts = \(attempt) AND state = 'running' RETURNING id
            """
        ) { db in
            try await Self.refund(db, taskID: taskID, now: now)
            try await Self.queueCallback(db, taskID: taskID, now: now)
        }
    }

    public func release(taskID: String, attempt: Int, now: Int64) async throws -> Bool {
        try await updateClaimed(
            """
            UPDATE tasks SET state = 'queued', progress = 0, updated_at = \(now), lease_owner = NULL, lease_until = NULL
            WHERE id = \(taskID) AND attempts = \(attempt) AND state = 'running' RETURNING id
            """)
    }

    public func recordEngine(taskID: String, attempt: Int, engine: String, upstreamTaskID: String?, now: Int64) async throws -> Bool {
        try await updateClaimed(
            """
            UPDATE tasks SET engine = \(engine), upstream_engine = \(upstreamTaskID == nil ? nil : engine),
                upstream_task_id = \(upstreamTaskID), updated_at = \(now)
            WHERE id = \(taskID) AND attempts = \(attempt) AND state = 'running' RETURNING id
            """)
    }

    public func upstreamTask(taskID: String) async throws -> UpstreamTaskReference? {
        try await read("SELECT upstream_engine, upstream_task_id FROM tasks WHERE id = \(taskID) AND upstream_task_id IS NOT NULL").first.map {
            UpstreamTaskReference(engine: try $0.get("upstream_engine"), taskID: try $0.get("upstream_task_id"))
        }
    }

    public func failAbandoned(now: Int64, maxAttempts: Int) async throws -> Int {
        // Idle workers ask on every poll: a plain read first, the transaction only when there is something to fail.
        guard
            try await !read(
                "SELECT 1 FROM tasks WHERE state = 'running' AND lease_until < \(now) AND attempts >= \(maxAttempts) LIMIT 1"
            ).isEmpty
        else { return 0 }
        let ids = try await transaction { db in try await Self.failAbandoned(db, now: now, maxAttempts: maxAttempts) }
        for id in ids {
            logger.warning("task failed: abandoned after its last allowed attempt (lease expired)", metadata: ["task_id": "\(id)"])
        }
        return ids.count
    }

    public func failStuck(createdBefore: Int64, message: String, now: Int64) async throws -> Int {
        try await transaction { db in
            let ids: [String] = try await db.rows(
                "SELECT id FROM tasks WHERE state IN ('queued', 'running') AND created_at < \(createdBefore) ORDER BY id FOR UPDATE"
            ).map { try $0.get("id") }
            for id in ids {
                try await db.run(
                    """
                    UPDATE tasks SET state = 'failed', failure_code = 500, failure_message = \(message), completed_at = \(now),
                        updated_at = \(now), lease_owner = NULL, lease_until = NULL
                    WHERE id = \(id)
                    """)
                try await Self.refund(db, taskID: id, now: now)
                try await Self.queueCallback(db, taskID: id, now: now)
            }
            return ids.count
        }
    }

    public func taskCounts() async throws -> [TaskState: Int] {
        var counts: [TaskState: Int] = [:]
        for row in try await read("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state") {
            if let state = TaskState(rawValue: try row.get("state")) { counts[state] = try row.get("n") }
        }
        return counts
    }

    public func operationalStats(now: Int64) async throws -> OperationalStats {
        var stats = OperationalStats()
        stats.tasksByState = try await taskCounts()
        if let oldest: Int64 = try await read("SELECT MIN(created_at) AS oldest FROM tasks WHERE state = 'queued'").first?.get("oldest") {
            stats.oldestQueuedSeconds = Double(max(0, now - oldest)) / 1000
        }
        for row in try await read("SELECT kind, SUM(amount)::BIGINT AS total FROM ledger GROUP BY kind") {
            if let kind = LedgerEntry.Kind(rawValue: try row.get("kind")) { stats.ledgerTotals[kind] = try row.get("total") }
        }
        for row in try await read("SELECT state, COUNT(*) AS n FROM callbacks GROUP BY state") {
            if let state = CallbackRecord.State(rawValue: try row.get("state")) { stats.callbacksByState[state] = try row.get("n") }
        }
        for row in try await read(
            "SELECT COALESCE(status >= 200 AND status < 300, FALSE) AS ok, COUNT(*) AS n FROM callback_attempts GROUP BY 1")
        {
            stats.callbackAttempts[try row.get("ok", as: Bool.self) ? "ok" : "failed", default: 0] += try row.get("n", as: Int.self)
        }
        return stats
    }

    // MARK: Callbacks

    /// Records the callback of a task that just reached its terminal state, in the caller's transaction (the outbox).
    private static func queueCallback(_ db: Connection, taskID: String, now: Int64) async throws {
        try await db.run(
            """
            INSERT INTO callbacks (id, task_id, account_id, url, dialect, state, attempts, next_attempt_at, created_at, updated_at)
            SELECT \("msg_" + APIKeys.randomID()), id, account_id, callback_url, dialect, 'pending', 0, \(now), \(now), \(now)
            FROM tasks WHERE id = \(taskID) AND callback_url IS NOT NULL
            """)
    }

    public func webhookSecrets(accountID: String, now: Int64) async throws -> [String] {
        try await transaction { db in
            // The account's row serialises the first secret's creation across processes.
            try await db.run("SELECT 1 FROM accounts WHERE id = \(accountID) FOR UPDATE")
            let secrets = try await Self.activeSecrets(db, accountID: accountID, now: now)
            if !secrets.isEmpty { return secrets }
            let secret = WebhookSigner.newSecret()
            try await db.run("INSERT INTO webhook_secrets (account_id, secret, created_at) VALUES (\(accountID), \(secret), \(now))")
            return [secret]
        }
    }

    public func rotateWebhookSecret(accountID: String, previousUntil: Int64, now: Int64) async throws -> [String] {
        try await transaction { db in
            try await db.run("SELECT 1 FROM accounts WHERE id = \(accountID) FOR UPDATE")
            try await db.run(
                """
                UPDATE webhook_secrets SET retires_at = \(previousUntil)
                WHERE account_id = \(accountID) AND (retires_at IS NULL OR retires_at > \(previousUntil))
                """)
            try await db.run(
                "INSERT INTO webhook_secrets (account_id, secret, created_at) VALUES (\(accountID), \(WebhookSigner.newSecret()), \(now + 1))")
            return try await Self.activeSecrets(db, accountID: accountID, now: now)
        }
    }

    private static func activeSecrets(_ db: Connection, accountID: String, now: Int64) async throws -> [String] {
        try await db.rows(
            """
            SELECT secret FROM webhook_secrets WHERE account_id = \(accountID) AND (retires_at IS NULL OR retires_at > \(now))
            ORDER BY created_at DESC, seq DESC
            """
        ).map { try $0.get("secret") }
    }

    public func claimDueCallbacks(now: Int64, leaseUntil: Int64, limit: Int) async throws -> [CallbackRecord] {
        try await transaction { db in
            let ids: [String] = try await db.rows(
                """
                SELECT id FROM callbacks WHERE state = 'pending' AND next_attempt_at <= \(now)
                ORDER BY next_attempt_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """
            ).map { try $0.get("id") }
            var claimed: [CallbackRecord] = []
            for id in ids {
                if let row = try await db.rows(
                    """
                    UPDATE callbacks SET attempts = attempts + 1, next_attempt_at = \(leaseUntil), updated_at = \(now) WHERE id = \(id)
                    RETURNING *
                    """
                ).first {
                    claimed.append(try Self.callback(row))
                }
            }
            return claimed
        }
    }

    public func recordCallbackAttempt(_ attempt: CallbackAttempt, payload: String, next: CallbackNext, now: Int64) async throws {
        let (state, nextAt): (CallbackRecord.State, Int64) =
            switch next {
            case .delivered: (.delivered, now)
            case .retry(let at): (.pending, at)
            case .failed: (.failed, now)
            case .gone: (.gone, now)
            }
        try await transaction { db in
            try await db.run(
                """
                INSERT INTO callback_attempts (callback_id, attempt, status, error, duration_ms, at)
                VALUES (\(attempt.callbackID), \(attempt.attempt), \(attempt.status), \(attempt.error), \(attempt.durationMillis), \(attempt.at))
                """)
            try await db.run(
                """
                UPDATE callbacks SET state = \(state.rawValue), next_attempt_at = \(nextAt), payload = COALESCE(payload, \(payload)),
                    last_status = \(attempt.status), last_error = \(attempt.error), updated_at = \(now)
                WHERE id = \(attempt.callbackID) AND attempts = \(attempt.attempt)
                """)
        }
    }

    public func callbacks(taskID: String, accountID: String) async throws -> [(CallbackRecord, [CallbackAttempt])] {
        var answer: [(CallbackRecord, [CallbackAttempt])] = []
        for row in try await read("SELECT * FROM callbacks WHERE task_id = \(taskID) AND account_id = \(accountID) ORDER BY created_at, seq") {
            let record = try Self.callback(row)
            let attempts = try await read("SELECT * FROM callback_attempts WHERE callback_id = \(record.id) ORDER BY attempt").map {
                CallbackAttempt(
                    callbackID: try $0.get("callback_id"), attempt: try $0.get("attempt"), status: try $0.get("status"),
                    error: try $0.get("error"), durationMillis: try $0.get("duration_ms"), at: try $0.get("at"))
            }
            answer.append((record, attempts))
        }
        return answer
    }

    public func resendCallback(id: String, now: Int64) async throws -> Bool {
        try await !read(
            "UPDATE callbacks SET state = 'pending', next_attempt_at = \(now), updated_at = \(now) WHERE id = \(id) RETURNING id"
        ).isEmpty
    }

    private static func callback(_ row: PostgresRandomAccessRow) throws -> CallbackRecord {
        CallbackRecord(
            id: try row.get("id"), taskID: try row.get("task_id"), accountID: try row.get("account_id"), url: try row.get("url"),
            dialect: try row.get("dialect"), payload: try row.get("payload"),
            state: CallbackRecord.State(rawValue: try row.get("state")) ?? .pending, attempts: try row.get("attempts"),
            nextAttemptAt: try row.get("next_attempt_at"), createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at"),
            lastStatus: try row.get("last_status"), lastError: try row.get("last_error"), event: try row.get("event"))
    }

    // MARK: Retention

    public func tasksWithResults(completedBefore before: Int64, limit: Int) async throws -> [String] {
        try await read(
            """
            SELECT id FROM tasks WHERE state = 'succeeded' AND completed_at < \(before) AND results_expired_at IS NULL
            ORDER BY completed_at LIMIT \(limit)
            """
        ).map { try $0.get("id") }
    }

    public func markResultsExpired(taskIDs: [String], now: Int64) async throws {
        guard !taskIDs.isEmpty else { return }
        try await read("UPDATE tasks SET results_expired_at = \(now), updated_at = \(now) WHERE id = ANY(\(taskIDs))")
    }

    // MARK: Helpers

    /// A connection inside a transaction of ``transaction(_:)``.
    struct Connection {
        let connection: PostgresConnection
        let logger: Logger

        /// Runs a statement and returns its rows.
        func rows(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
            try await connection.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
        }

        /// Runs a statement, reading its rows to the end.
        func run(_ query: PostgresQuery) async throws {
            _ = try await connection.query(query, logger: logger).collect()
        }
    }

    /// Runs one statement on a pooled connection (in its own implicit transaction) and returns its rows.
    @discardableResult
    private func read(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        try await lease.withConnection { [logger] connection in
            try await connection.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
        }
    }

    /// Runs `body` in a `READ COMMITTED` transaction on a pooled connection: committed when it returns, rolled back
    /// when it throws (the error comes through unchanged). A deadlock PostgreSQL broke by aborting this transaction
    /// (two processes refunding tasks of the same accounts in different orders, say) runs the whole body again.
    private func transaction<T: Sendable>(_ body: @escaping @Sendable (Connection) async throws -> T) async throws -> T {
        var retries = 0
        while true {
            do {
                return try await lease.withConnection { [logger] connection in
                    let db = Connection(connection: connection, logger: logger)
                    try await db.run("BEGIN")
                    do {
                        let value = try await body(db)
                        try await db.run("COMMIT")
                        return value
                    } catch {
                        _ = try? await db.run("ROLLBACK")
                        throw error
                    }
                }
            } catch let error as PSQLError where error.isTransient && retries < 10 {
                retries += 1
                logger.debug("retrying a transaction after \(error.serverInfo?[.sqlState] ?? "?")")
            }
        }
    }

    /// Applies a fenced update (its `RETURNING id` shows whether the claim was still current), then `then` in the same
    /// transaction if it was.
    private func updateClaimed(
        _ update: PostgresQuery, then: @escaping @Sendable (Connection) async throws -> Void = { _ in }
    ) async throws -> Bool {
        try await transaction { db in
            guard try await !db.rows(update).isEmpty else { return false }
            try await then(db)
            return true
        }
    }

    @discardableResult
    /// Fails (and refunds) the running tasks whose last allowed claim expired; returns their ids.
    private static func failAbandoned(_ db: Connection, now: Int64, maxAttempts: Int) async throws -> [String] {
        let ids: [String] = try await db.rows(
            """
            SELECT id FROM tasks WHERE state = 'running' AND lease_until < \(now) AND attempts >= \(maxAttempts)
            ORDER BY id FOR UPDATE SKIP LOCKED
            """
        ).map { try $0.get("id") }
        for id in ids {
            try await db.run(
                """
                UPDATE tasks SET state = 'failed', failure_code = 500,
                    failure_message = 'the task was abandoned: its worker stopped responding ' || attempts || ' times (lease expired); giving up after ' || attempts || ' attempts',
                    completed_at = \(now), updated_at = \(now), lease_owner = NULL, lease_until = NULL
                WHERE id = \(id)
                """)
            try await refund(db, taskID: id, now: now)
            try await queueCallback(db, taskID: id, now: now)
        }
        return ids
    }

    private static func account(_ row: PostgresRandomAccessRow) throws -> Account {
        let limits = try row.get("limits", as: String?.self).flatMap { try? decoder.decode(LimitOverrides.self, from: Data($0.utf8)) }
        return Account(id: try row.get("id"), name: try row.get("name"), createdAt: try row.get("created_at"), limits: limits ?? LimitOverrides())
    }

    /// The columns ``task(_:)`` reads.
    static let taskColumns = """
        id, account_id, dialect, model, request, params, state, progress, attempts, engine, created_at, updated_at,
        started_at, completed_at, result, failure_code, failure_message, credits, refunded_credits, results_expired_at,
        external_id
        """

    private static func task(_ row: PostgresRandomAccessRow) throws -> TaskRecord {
        let request = try decoder.decode(GenerationRequest.self, from: Data(try row.get("request", as: String.self).utf8))
        let result: TaskResult? = try row.get("result", as: String?.self).map { try decoder.decode(TaskResult.self, from: Data($0.utf8)) }
        let failure: TaskFailure? = try row.get("failure_code", as: Int?.self).map {
            TaskFailure(code: $0, message: try row.get("failure_message", as: String?.self) ?? "")
        }
        return TaskRecord(
            id: try row.get("id"), accountID: try row.get("account_id"), dialect: try row.get("dialect"), model: try row.get("model"),
            request: request, params: try row.get("params"), state: TaskState(rawValue: try row.get("state")) ?? .failed,
            progress: try row.get("progress"), attempts: try row.get("attempts"), engine: try row.get("engine"),
            createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at"), startedAt: try row.get("started_at"),
            completedAt: try row.get("completed_at"), result: result, failure: failure, credits: try row.get("credits"),
            refundedCredits: try row.get("refunded_credits"), resultsExpiredAt: try row.get("results_expired_at"),
            externalID: try row.get("external_id"))
    }

    /// Coders shared by every call (both are thread-safe).
    private static let decoder = JSONDecoder()
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    private static func encode<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

extension PostgresRandomAccessRow {
    /// The value of a column, by name.
    func get<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        try self[column].decode(T.self)
    }
}

extension PSQLError {
    /// A unique index refused the row.
    var isUniqueViolation: Bool { serverInfo?[.sqlState] == "23505" }
    /// Any integrity constraint refused the row (class 23).
    var isConstraintViolation: Bool { serverInfo?[.sqlState]?.hasPrefix("23") == true }
    /// PostgreSQL aborted the transaction to break a deadlock or a serialisation conflict; running it again succeeds.
    var isTransient: Bool { serverInfo?[.sqlState] == "40P01" || serverInfo?[.sqlState] == "40001" }
}

extension PostgresTaskStore: QueueAnnouncing {
    /// Holds one connection of the pool on `LISTEN` (the channel the `tasks_notify_queued` trigger notifies).
    public func listenForQueuedTasks(_ queued: @escaping @Sendable () -> Void) async throws {
        try await client.withConnection { connection in
            try await connection.listen(on: PostgresMigrations.queueChannel) { notifications in
                queued()  // whatever was queued before the listen began
                for try await _ in notifications { queued() }
            }
        }
    }
}
