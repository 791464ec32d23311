import Foundation
import GRDB
import KlingAPI
import KlingCore

/// The embedded store: one SQLite file in WAL mode, shared safely by the server and admin commands.
public final class SQLiteTaskStore: TaskStore {
    /// Store settings with documented defaults.
    public struct Configuration: Sendable {
        /// Path of the database file; created with its folder when missing.
        public var path: String
        /// `synchronous` pragma: `NORMAL` (default; survives process crashes, a power cut may lose the last commits)
        /// or `FULL` (survives power cuts, slower commits).
        public var synchronousFull: Bool = false
        /// How long a writer waits for another process's transaction.
        public var busyTimeout: TimeInterval = 10
        /// How many keys and tasks the hot-path read cache keeps (0 turns it off).
        public var readCacheSize: Int = 10_000
        /// The oldest a cached row may be before it is read again, whatever the change counters say.
        public var readCacheMaxAge: Duration = .seconds(2)

        public init(path: String) {
            self.path = path
        }
    }

    private let pool: DatabasePool
    private let counters: ChangeCounters
    /// Rows read on the per-request hot paths, current while their change counters are unchanged.
    private let keyCache: StampedCache<CounterStamp, Account>
    private let taskCache: StampedCache<CounterStamp, TaskRecord>
    private let switchCache: StampedCache<CounterStamp, ServiceSwitches>

    /// Opens (creating if needed) the database and runs its migrations.
    public init(configuration: Configuration) throws {
        let folder = URL(fileURLWithPath: configuration.path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var config = GRDB.Configuration()
        config.busyMode = .timeout(configuration.busyTimeout)
        let synchronous = configuration.synchronousFull ? "FULL" : "NORMAL"
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
        }
        pool = try DatabasePool(path: configuration.path, configuration: config)
        try Self.migrator.migrate(pool)
        counters = try ChangeCounters(path: configuration.path + "-changes")
        keyCache = StampedCache(capacity: configuration.readCacheSize, maxAge: configuration.readCacheMaxAge)
        taskCache = StampedCache(capacity: configuration.readCacheSize, maxAge: configuration.readCacheMaxAge)
        switchCache = StampedCache(capacity: configuration.readCacheSize > 0 ? 1 : 0, maxAge: configuration.readCacheMaxAge)
    }

    /// Static factory so call sites read `.sqlite(path:)`.
    public static func sqlite(path: String) throws -> SQLiteTaskStore {
        try SQLiteTaskStore(configuration: Configuration(path: path))
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE accounts (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL UNIQUE,
                        created_at INTEGER NOT NULL
                    );
                    CREATE TABLE api_keys (
                        id TEXT PRIMARY KEY,
                        account_id TEXT NOT NULL REFERENCES accounts(id),
                        hash TEXT NOT NULL UNIQUE,
                        prefix TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        revoked_at INTEGER
                    );
                    CREATE INDEX api_keys_account ON api_keys(account_id);
                    CREATE TABLE tasks (
                        id TEXT PRIMARY KEY,
                        account_id TEXT NOT NULL REFERENCES accounts(id),
                        dialect TEXT NOT NULL,
                        model TEXT NOT NULL,
                        request TEXT NOT NULL,
                        params TEXT NOT NULL,
                        state TEXT NOT NULL,
                        progress INTEGER NOT NULL DEFAULT 0,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        engine TEXT,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        started_at INTEGER,
                        completed_at INTEGER,
                        result TEXT,
                        failure_code INTEGER,
                        failure_message TEXT,
                        lease_owner TEXT,
                        lease_until INTEGER
                    );
                    CREATE INDEX tasks_queue ON tasks(state, created_at);
                    CREATE INDEX tasks_account ON tasks(account_id, created_at);
                    """)
        }
        migrator.registerMigration("v2-billing") { db in
            try db.execute(
                sql: """
                    ALTER TABLE accounts ADD COLUMN balance INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE accounts ADD COLUMN limits TEXT;
                    ALTER TABLE tasks ADD COLUMN credits INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE tasks ADD COLUMN refunded_credits INTEGER NOT NULL DEFAULT 0;
                    CREATE INDEX tasks_active ON tasks(account_id, state);
                    CREATE TABLE ledger (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        account_id TEXT NOT NULL REFERENCES accounts(id),
                        kind TEXT NOT NULL,
                        amount INTEGER NOT NULL,
                        task_id TEXT,
                        note TEXT NOT NULL DEFAULT '',
                        created_at INTEGER NOT NULL
                    );
                    CREATE INDEX ledger_account ON ledger(account_id, id);
                    -- A task is charged once and refunded at most once, whatever retries or crashes happen.
                    CREATE UNIQUE INDEX ledger_task_kind ON ledger(task_id, kind) WHERE task_id IS NOT NULL;
                    CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
                    CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
                    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    """)
        }
        migrator.registerMigration("v3-callbacks") { db in
            try db.execute(
                sql: """
                    ALTER TABLE tasks ADD COLUMN callback_url TEXT;
                    UPDATE tasks SET callback_url = json_extract(request, '$.callbackURL');
                    CREATE TABLE webhook_secrets (
                        account_id TEXT NOT NULL REFERENCES accounts(id),
                        secret TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        retires_at INTEGER
                    );
                    CREATE INDEX webhook_secrets_account ON webhook_secrets(account_id, created_at);
                    CREATE TABLE callbacks (
                        id TEXT PRIMARY KEY,
                        task_id TEXT NOT NULL REFERENCES tasks(id),
                        account_id TEXT NOT NULL,
                        url TEXT NOT NULL,
                        dialect TEXT NOT NULL,
                        payload TEXT,
                        state TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        next_attempt_at INTEGER NOT NULL,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        last_status INTEGER,
                        last_error TEXT
                    );
                    CREATE INDEX callbacks_due ON callbacks(state, next_attempt_at);
                    CREATE INDEX callbacks_task ON callbacks(task_id);
                    CREATE TABLE callback_attempts (
                        callback_id TEXT NOT NULL REFERENCES callbacks(id),
                        attempt INTEGER NOT NULL,
                        status INTEGER,
                        error TEXT,
                        duration_ms INTEGER NOT NULL,
                        at INTEGER NOT NULL
                    );
                    CREATE INDEX callback_attempts_callback ON callback_attempts(callback_id, attempt);
                    """)
        }
        migrator.registerMigration("v4-retention") { db in
            try db.execute(
                sql: """
                    ALTER TABLE tasks ADD COLUMN results_expired_at INTEGER;
                    CREATE INDEX tasks_completed ON tasks(state, completed_at);
                    """)
        }
        migrator.registerMigration("v5-idempotency") { db in
            try db.execute(
                sql: """
                    CREATE TABLE idempotency_keys (
                        account_id TEXT NOT NULL,
                        key TEXT NOT NULL,
                        fingerprint TEXT NOT NULL,
                        task_id TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        PRIMARY KEY (account_id, key)
                    );
                    """)
        }
        migrator.registerMigration("v6-kling-official") { db in
            try db.execute(
                sql: """
                    ALTER TABLE tasks ADD COLUMN external_id TEXT;
                    CREATE UNIQUE INDEX tasks_external ON tasks(account_id, external_id) WHERE external_id IS NOT NULL;
                    CREATE TABLE jwt_credentials (
                        access_key TEXT PRIMARY KEY,
                        account_id TEXT NOT NULL REFERENCES accounts(id),
                        secret_key TEXT NOT NULL,
                        created_at INTEGER NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v7-callback-events") { db in
            try db.execute(sql: "ALTER TABLE callbacks ADD COLUMN event TEXT")
        }
        // The provider's task id of a task forwarded to an upstream engine; private, never read into a TaskRecord.
        migrator.registerMigration("v8-upstream") { db in
            try db.execute(
                sql: """
                    ALTER TABLE tasks ADD COLUMN upstream_engine TEXT;
                    ALTER TABLE tasks ADD COLUMN upstream_task_id TEXT;
                    """)
        }
        return migrator
    }

    // MARK: Accounts and keys

    public func createAccount(name: String, credits: Int64, now: Int64) async throws -> Account {
        let account = Account(id: "acct_" + APIKeys.randomID(), name: name, createdAt: now)
        do {
            try await pool.write { db in
                try db.execute(
                    sql: "INSERT INTO accounts (id, name, created_at, balance) VALUES (?, ?, ?, 0)",
                    arguments: [account.id, account.name, account.createdAt])
                if credits != 0 {
                    try Self.moveCredits(db, accountID: account.id, kind: .topUp, amount: credits, taskID: nil, note: "starting grant", now: now)
                }
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw StoreError.conflict("an account named \(name) already exists")
        }
        counters.bump(ChangeCounters.controlSlot)
        return account
    }

    public func account(named name: String) async throws -> Account? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM accounts WHERE name = ?", arguments: [name]).map(Self.account)
        }
    }

    public func accounts() async throws -> [Account] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM accounts ORDER BY created_at, name").map(Self.account)
        }
    }

    public func addAPIKey(_ key: APIKeyRecord) async throws {
        do {
            try await pool.write { db in
                try db.execute(
                    sql: "INSERT INTO api_keys (id, account_id, hash, prefix, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [key.id, key.accountID, key.hash, key.prefix, key.createdAt, key.revokedAt])
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw StoreError.conflict("the key could not be stored: \(error.message ?? "constraint failed")")
        }
        counters.bump(ChangeCounters.controlSlot)
    }

    public func revokeAPIKey(id: String, accountID: String, now: Int64) async throws -> Bool {
        let revoked = try await pool.write { db in
            try db.execute(
                sql: "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at IS NULL",
                arguments: [now, id, accountID])
            return db.changesCount > 0
        }
        if revoked { counters.bump(ChangeCounters.controlSlot) }
        return revoked
    }

    public func apiKeys(accountID: String) async throws -> [APIKeyRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at", arguments: [accountID]).map {
                APIKeyRecord(
                    id: $0["id"], accountID: $0["account_id"], hash: $0["hash"], prefix: $0["prefix"], createdAt: $0["created_at"],
                    revokedAt: $0["revoked_at"])
            }
        }
    }

    public func account(forKeyHash hash: String) async throws -> Account? {
        let stamp = CounterStamp(first: counters.value(ChangeCounters.controlSlot), second: 0)
        // Only keys found in the database are cached: the copy is found by the hash of a key its holder presented.
        if let cached = keyCache.value(hash, stamp: stamp) { return cached }
        let account = try readNow { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT a.* , k.hash AS key_hash FROM api_keys k JOIN accounts a ON a.id = k.account_id
                        WHERE k.hash = ? AND k.revoked_at IS NULL
                        """),
                arguments: [hash]
            ).first.flatMap { row in
                // The index lookup found the row; compare once more in constant time before trusting it.
                APIKeys.constantTimeEquals(row["key_hash"], hash) ? Self.account(row) : nil
            }
        }
        if let account { keyCache.store(account, for: hash, stamp: stamp) }
        return account
    }

    public func addJWTCredential(accessKey: String, accountID: String, secretKey: String, now: Int64) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO jwt_credentials (access_key, account_id, secret_key, created_at) VALUES (?, ?, ?, ?)",
                arguments: [accessKey, accountID, secretKey, now])
        }
        counters.bump(ChangeCounters.controlSlot)
    }

    public func jwtCredential(accessKey: String) async throws -> (account: Account, secretKey: String)? {
        try readNow { db in
            try Row.fetchOne(
                db.cachedStatement(
                    sql: "SELECT a.*, c.secret_key FROM jwt_credentials c JOIN accounts a ON a.id = c.account_id WHERE c.access_key = ?"),
                arguments: [accessKey]
            ).map { (Self.account($0), $0["secret_key"]) }
        }
    }

    public func setLimits(accountID: String, limits: LimitOverrides) async throws {
        let encoded = try Self.encode(limits)
        let changed = try await pool.write { db in
            try db.execute(sql: "UPDATE accounts SET limits = ? WHERE id = ?", arguments: [encoded, accountID])
            return db.changesCount > 0
        }
        guard changed else { throw StoreError.notFound("no account \(accountID)") }
        counters.bump(ChangeCounters.controlSlot)
    }

    // MARK: Credits

    public func balance(accountID: String) async throws -> Int64 {
        try readNow { db in
            guard let balance = try Int64.fetchOne(db, sql: "SELECT balance FROM accounts WHERE id = ?", arguments: [accountID]) else {
                throw StoreError.notFound("no account \(accountID)")
            }
            return balance
        }
    }

    public func addCredits(accountID: String, amount: Int64, note: String, now: Int64) async throws -> Int64 {
        try await pool.write { db in
            try Self.moveCredits(
                db, accountID: accountID, kind: amount >= 0 ? .topUp : .adjustment, amount: amount, taskID: nil, note: note, now: now)
            return try Int64.fetchOne(db, sql: "SELECT balance FROM accounts WHERE id = ?", arguments: [accountID]) ?? 0
        }
    }

    public func ledger(accountID: String) async throws -> [LedgerEntry] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM ledger WHERE account_id = ? ORDER BY id", arguments: [accountID]).map { row in
                LedgerEntry(
                    id: row["id"], accountID: row["account_id"], kind: LedgerEntry.Kind(rawValue: row["kind"]) ?? .adjustment,
                    amount: row["amount"], taskID: row["task_id"], note: row["note"], createdAt: row["created_at"])
            }
        }
    }

    public func ledgerMismatches() async throws -> [LedgerMismatch] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT a.id, a.name, a.balance, COALESCE((SELECT SUM(amount) FROM ledger l WHERE l.account_id = a.id), 0) AS total
                    FROM accounts a WHERE a.balance != COALESCE((SELECT SUM(amount) FROM ledger l WHERE l.account_id = a.id), 0)
                    ORDER BY a.name
                    """
            ).map { LedgerMismatch(accountID: $0["id"], accountName: $0["name"], balance: $0["balance"], ledgerSum: $0["total"]) }
        }
    }

    /// Moves credits with a ledger entry in the caller's transaction; never lets the balance go below zero, and
    /// charges or refunds a task at most once (the ledger's unique index).
    private static func moveCredits(
        _ db: Database, accountID: String, kind: LedgerEntry.Kind, amount: Int64, taskID: String?, note: String, now: Int64
    ) throws {
        try db.execute(
            sql: "UPDATE accounts SET balance = balance + ? WHERE id = ? AND balance + ? >= 0", arguments: [amount, accountID, amount])
        guard db.changesCount > 0 else {
            guard let balance = try Int64.fetchOne(db, sql: "SELECT balance FROM accounts WHERE id = ?", arguments: [accountID]) else {
                throw StoreError.notFound("no account \(accountID)")
            }
            throw StoreError.insufficientCredits("the balance is \(balance) credits; \(-amount) are needed")
        }
        try db.execute(
            sql: "INSERT INTO ledger (account_id, kind, amount, task_id, note, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [accountID, kind.rawValue, amount, taskID, note, now])
    }

    /// Gives a failed task its price back, once, in the caller's transaction.
    private static func refund(_ db: Database, taskID: String, now: Int64) throws {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT account_id, credits, refunded_credits FROM tasks WHERE id = ?", arguments: [taskID])
        else { return }
        let credits: Int64 = row["credits"]
        let refunded: Int64 = row["refunded_credits"]
        guard credits > 0, refunded == 0 else { return }
        try moveCredits(db, accountID: row["account_id"], kind: .refund, amount: credits, taskID: taskID, note: "task failed", now: now)
        try db.execute(sql: "UPDATE tasks SET refunded_credits = ? WHERE id = ?", arguments: [credits, taskID])
    }

    // MARK: Switches

    public func switches() async throws -> ServiceSwitches {
        let stamp = CounterStamp(first: counters.value(ChangeCounters.controlSlot), second: 0)
        if let cached = switchCache.value("switches", stamp: stamp) { return cached }
        let switches = try readNow { db in
            ServiceSwitches(
                settings: try Row.fetchAll(db.cachedStatement(sql: "SELECT key, value FROM settings")).map {
                    (key: $0["key"] as String, value: $0["value"] as String)
                })
        }
        switchCache.store(switches, for: "switches", stamp: stamp)
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
        return try await pool.write { db in
            var generator = SystemRandomNumberGenerator()
            let fresh = Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
            try db.execute(sql: "INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", arguments: [key, fresh])
            return try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key]) ?? fresh
        }
    }

    private func setting(_ key: String, _ value: String) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                arguments: [key, value])
        }
        counters.bump(ChangeCounters.controlSlot)
    }

    // MARK: Tasks

    public func insert(_ task: TaskRecord, maxActiveTasks: Int?) async throws {
        let request = try Self.encode(task.request)
        let result = try task.result.map(Self.encode)
        try await pool.write { db in try Self.insert(db, task, request: request, result: result, maxActiveTasks: maxActiveTasks) }
        counters.bump(ChangeCounters.slot(forTask: task.id))
    }

    public func insert(_ task: TaskRecord, maxActiveTasks: Int?, idempotencyKey key: String, fingerprint: String, now: Int64) async throws
        -> IdempotentInsert
    {
        let request = try Self.encode(task.request)
        let result = try task.result.map(Self.encode)
        let outcome = try await pool.write { db -> IdempotentInsert in
            // Take the write lock first so parallel retries with one key queue up here and see each other's row.
            try db.execute(sql: "UPDATE accounts SET balance = balance WHERE id = ?", arguments: [task.accountID])
            try db.execute(
                sql: "DELETE FROM idempotency_keys WHERE account_id = ? AND key = ? AND created_at < ?",
                arguments: [task.accountID, key, now - 86_400_000])
            if let row = try Row.fetchOne(
                db, sql: "SELECT fingerprint, task_id FROM idempotency_keys WHERE account_id = ? AND key = ?", arguments: [task.accountID, key])
            {
                guard (row["fingerprint"] as String) == fingerprint else {
                    throw StoreError.conflict("this Idempotency-Key was used in the last 24 hours for a different request")
                }
                return .existing(taskID: row["task_id"])
            }
            try Self.insert(db, task, request: request, result: result, maxActiveTasks: maxActiveTasks)
            try db.execute(
                sql: "INSERT INTO idempotency_keys (account_id, key, fingerprint, task_id, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [task.accountID, key, fingerprint, task.id, now])
            return .created
        }
        if outcome == .created { counters.bump(ChangeCounters.slot(forTask: task.id)) }
        return outcome
    }

    private static func insert(_ db: Database, _ task: TaskRecord, request: String, result: String?, maxActiveTasks: Int?) throws {
        // The charge comes first: its write takes the database's write lock, so the count below cannot race
        // another process's create.
        if task.credits > 0 {
            try moveCredits(
                db, accountID: task.accountID, kind: .charge, amount: -task.credits, taskID: task.id, note: "task accepted", now: task.createdAt)
        } else {
            try db.execute(sql: "UPDATE accounts SET balance = balance WHERE id = ?", arguments: [task.accountID])
        }
        if let external = task.externalID,
            try Bool.fetchOne(db, sql: "SELECT 1 FROM tasks WHERE account_id = ? AND external_id = ?", arguments: [task.accountID, external]) == true
        {
            throw StoreError.externalIDTaken("external_task_id: \(external) is already used by another task of this account")
        }
        if let maxActiveTasks {
            let active =
                try Int.fetchOne(
                    db.cachedStatement(sql: "SELECT COUNT(*) FROM tasks WHERE account_id = ? AND state IN ('queued', 'running')"),
                    arguments: [task.accountID]) ?? 0
            if active >= maxActiveTasks {
                throw StoreError.limitReached("the account already has \(active) queued or running tasks, its limit; wait for one to finish")
            }
        }
        try db.cachedStatement(
            sql: """
                INSERT INTO tasks (id, account_id, dialect, model, request, params, state, progress, attempts, engine,
                    created_at, updated_at, started_at, completed_at, result, failure_code, failure_message, credits,
                    refunded_credits, callback_url, external_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            task.id, task.accountID, task.dialect, task.model, request, task.params, task.state.rawValue, task.progress,
            task.attempts, task.engine, task.createdAt, task.updatedAt, task.startedAt, task.completedAt, result,
            task.failure?.code, task.failure?.message, task.credits, task.refundedCredits, task.request.callbackURL, task.externalID,
        ])
    }

    public func cancel(taskID: String, accountID: String, failure: TaskFailure, now: Int64) async throws -> CancelOutcome {
        let outcome = try await pool.write { db -> CancelOutcome in
            guard let state = try String.fetchOne(db, sql: "SELECT state FROM tasks WHERE id = ? AND account_id = ?", arguments: [taskID, accountID])
            else { return .notFound }
            guard state == TaskState.queued.rawValue || state == TaskState.running.rawValue else { return .alreadyFinished }
            try db.execute(
                sql: """
                    UPDATE tasks SET state = 'failed', failure_code = ?, failure_message = ?, completed_at = ?, updated_at = ?,
                        lease_owner = NULL, lease_until = NULL
                    WHERE id = ?
                    """,
                arguments: [failure.code, failure.message, now, now, taskID])
            try Self.refund(db, taskID: taskID, now: now)
            try Self.queueCallback(db, taskID: taskID, now: now)
            return .cancelled
        }
        if outcome == .cancelled { counters.bump(ChangeCounters.slot(forTask: taskID)) }
        return outcome
    }

    public func task(id: String, accountID: String) async throws -> TaskRecord? {
        let task = try await task(id: id)
        return task?.accountID == accountID ? task : nil
    }

    public func task(externalID: String, accountID: String) async throws -> TaskRecord? {
        try await pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT \(Self.taskColumns) FROM tasks WHERE account_id = ? AND external_id = ?", arguments: [accountID, externalID]
            ).map(Self.task)
        }
    }

    public func listTasks(accountID: String, limit: Int, after: String?, ascending: Bool, offset: Int) async throws -> (
        tasks: [TaskRecord], hasMore: Bool
    ) {
        try await pool.read { db in
            var sql = "SELECT \(Self.taskColumns) FROM tasks WHERE account_id = ?"
            var arguments: StatementArguments = [accountID]
            if let after {
                guard
                    let cursor = try Row.fetchOne(
                        db, sql: "SELECT created_at, id FROM tasks WHERE id = ? AND account_id = ?", arguments: [after, accountID])
                else { throw StoreError.notFound("after: no task \(after) for this account") }
                sql += ascending ? " AND (created_at, id) > (?, ?)" : " AND (created_at, id) < (?, ?)"
                arguments += [cursor["created_at"] as Int64, cursor["id"] as String]
            }
            sql += ascending ? " ORDER BY created_at, id LIMIT ? OFFSET ?" : " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
            arguments += [limit + 1, max(0, offset)]
            let tasks = try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.task)
            return (Array(tasks.prefix(limit)), tasks.count > limit)
        }
    }

    public func task(id: String) async throws -> TaskRecord? {
        let stamp = taskStamp(id)
        if let cached = taskCache.value(id, stamp: stamp) { return cached }
        let task = try readNow { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT \(Self.taskColumns) FROM tasks WHERE id = ?"), arguments: [id])
                .first.map(Self.task)
        }
        if let task { taskCache.store(task, for: id, stamp: stamp) }
        return task
    }

    /// The counters a copy of task `id` is current under.
    private func taskStamp(_ id: String) -> CounterStamp {
        .init(first: counters.value(ChangeCounters.allTasksSlot), second: counters.value(ChangeCounters.slot(forTask: id)))
    }

    // MARK: Queue

    public func claimNext(worker: String, engine: String, now: Int64, leaseUntil: Int64, maxAttempts: Int) async throws -> TaskRecord? {
        let (abandoned, claimed) = try await pool.write { db -> (Int, TaskRecord?) in
            let abandoned = try Self.failAbandoned(db, now: now, maxAttempts: maxAttempts)
            guard
                let id = try String.fetchOne(
                    db,
                    sql: """
                        SELECT id FROM tasks
                        WHERE state = 'queued' OR (state = 'running' AND lease_until < ?)
                        ORDER BY created_at, id LIMIT 1
                        """,
                    arguments: [now])
            else { return (abandoned, nil) }
            try db.execute(
                sql: """
                    UPDATE tasks SET state = 'running', attempts = attempts + 1, lease_owner = ?, lease_until = ?, engine = ?,
                        started_at = COALESCE(started_at, ?), updated_at = ?, progress = 0
                    WHERE id = ?
                    """,
                arguments: [worker, leaseUntil, engine, now, now, id])
            // Kling's dialect calls back on every status change: the first claim is submitted -> processing.
            try db.execute(
                sql: """
                    INSERT INTO callbacks (id, task_id, account_id, url, dialect, state, attempts, next_attempt_at, created_at, updated_at, event)
                    SELECT ?, id, account_id, callback_url, dialect, 'pending', 0, ?, ?, ?, 'processing' FROM tasks
                    WHERE id = ? AND callback_url IS NOT NULL AND dialect = 'kling' AND attempts = 1
                    """,
                arguments: ["msg_" + APIKeys.randomID(), now, now, now, id])
            return (abandoned, try Row.fetchOne(db, sql: "SELECT \(Self.taskColumns) FROM tasks WHERE id = ?", arguments: [id]).map(Self.task))
        }
        if abandoned > 0 { counters.bump(ChangeCounters.allTasksSlot) }
        if let claimed { counters.bump(ChangeCounters.slot(forTask: claimed.id)) }
        return claimed
    }

    public func heartbeat(taskID: String, attempt: Int, leaseUntil: Int64, now: Int64) async throws -> Bool {
        try await updateClaimed(taskID: taskID, attempt: attempt, set: "lease_until = ?, updated_at = ?", [leaseUntil, now])
    }

    public func updateProgress(taskID: String, attempt: Int, progress: Int, now: Int64) async throws -> Bool {
        try await updateClaimed(taskID: taskID, attempt: attempt, set: "progress = MAX(progress, ?), updated_at = ?", [progress, now])
    }

    public func complete(taskID: String, attempt: Int, result: TaskResult, now: Int64) async throws -> Bool {
        let encoded = try Self.encode(result)
        return try await updateClaimed(
            taskID: taskID, attempt: attempt,
            set: "state = 'succeeded', progress = 100, result = ?, completed_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL",
            [encoded, now, now]
        ) { db in try Self.queueCallback(db, taskID: taskID, now: now) }
    }

    public func fail(taskID: String, attempt: Int, failure: TaskFailure, now: Int64) async throws -> Bool {
        try await updateClaimed(
            taskID: taskID, attempt: attempt,
            set: "state = 'failed', failure_code = ?, failure_message = ?, completed_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL",
            [failure.code, failure.message, now, now]
        ) { db in
            try Self.refund(db, taskID: taskID, now: now)
            try Self.queueCallback(db, taskID: taskID, now: now)
        }
    }

    public func release(taskID: String, attempt: Int, now: Int64) async throws -> Bool {
        try await updateClaimed(
            taskID: taskID, attempt: attempt, set: "state = 'queued', progress = 0, updated_at = ?, lease_owner = NULL, lease_until = NULL",
            [now])
    }

    public func recordEngine(taskID: String, attempt: Int, engine: String, upstreamTaskID: String?, now: Int64) async throws -> Bool {
        try await updateClaimed(
            taskID: taskID, attempt: attempt, set: "engine = ?, upstream_engine = ?, upstream_task_id = ?, updated_at = ?",
            [engine, upstreamTaskID == nil ? nil : engine, upstreamTaskID, now])
    }

    public func upstreamTask(taskID: String) async throws -> UpstreamTaskReference? {
        try await pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT upstream_engine, upstream_task_id FROM tasks WHERE id = ? AND upstream_task_id IS NOT NULL", arguments: [taskID]
            ).map { UpstreamTaskReference(engine: $0[0], taskID: $0[1]) }
        }
    }

    public func failAbandoned(now: Int64, maxAttempts: Int) async throws -> Int {
        let count = try await pool.write { db in try Self.failAbandoned(db, now: now, maxAttempts: maxAttempts) }
        if count > 0 { counters.bump(ChangeCounters.allTasksSlot) }
        return count
    }

    public func failStuck(createdBefore: Int64, message: String, now: Int64) async throws -> Int {
        let count = try await pool.write { db in
            let ids = try String.fetchAll(
                db, sql: "SELECT id FROM tasks WHERE state IN ('queued', 'running') AND created_at < ?", arguments: [createdBefore])
            for id in ids {
                try db.execute(
                    sql: """
                        UPDATE tasks SET state = 'failed', failure_code = 500, failure_message = ?, completed_at = ?, updated_at = ?,
                            lease_owner = NULL, lease_until = NULL
                        WHERE id = ?
                        """,
                    arguments: [message, now, now, id])
                try Self.refund(db, taskID: id, now: now)
                try Self.queueCallback(db, taskID: id, now: now)
            }
            return ids.count
        }
        if count > 0 { counters.bump(ChangeCounters.allTasksSlot) }
        return count
    }

    public func taskCounts() async throws -> [TaskState: Int] {
        try await pool.read { db in
            var counts: [TaskState: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM tasks GROUP BY state") {
                if let state = TaskState(rawValue: row["state"]) { counts[state] = row["n"] }
            }
            return counts
        }
    }

    public func operationalStats(now: Int64) async throws -> OperationalStats {
        try await pool.read { db in
            var stats = OperationalStats()
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM tasks GROUP BY state") {
                if let state = TaskState(rawValue: row["state"]) { stats.tasksByState[state] = row["n"] }
            }
            if let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(created_at) FROM tasks WHERE state = 'queued'") {
                stats.oldestQueuedSeconds = Double(max(0, now - oldest)) / 1000
            }
            for row in try Row.fetchAll(db, sql: "SELECT kind, SUM(amount) AS total FROM ledger GROUP BY kind") {
                if let kind = LedgerEntry.Kind(rawValue: row["kind"]) { stats.ledgerTotals[kind] = row["total"] }
            }
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM callbacks GROUP BY state") {
                if let state = CallbackRecord.State(rawValue: row["state"]) { stats.callbacksByState[state] = row["n"] }
            }
            for row in try Row.fetchAll(
                db, sql: "SELECT status >= 200 AND status < 300 AS ok, COUNT(*) AS n FROM callback_attempts GROUP BY ok")
            {
                stats.callbackAttempts[(row["ok"] as Bool?) == true ? "ok" : "failed"] = row["n"]
            }
            return stats
        }
    }

    // MARK: Callbacks

    /// Records the callback of a task that just reached its terminal state, in the caller's transaction (the outbox).
    private static func queueCallback(_ db: Database, taskID: String, now: Int64) throws {
        try db.execute(
            sql: """
                INSERT INTO callbacks (id, task_id, account_id, url, dialect, state, attempts, next_attempt_at, created_at, updated_at)
                SELECT ?, id, account_id, callback_url, dialect, 'pending', 0, ?, ?, ? FROM tasks WHERE id = ? AND callback_url IS NOT NULL
                """,
            arguments: ["msg_" + APIKeys.randomID(), now, now, now, taskID])
    }

    public func webhookSecrets(accountID: String, now: Int64) async throws -> [String] {
        try await pool.write { db in
            let secrets = try Self.activeSecrets(db, accountID: accountID, now: now)
            if !secrets.isEmpty { return secrets }
            let secret = WebhookSigner.newSecret()
            try db.execute(
                sql: "INSERT INTO webhook_secrets (account_id, secret, created_at) VALUES (?, ?, ?)", arguments: [accountID, secret, now])
            return [secret]
        }
    }

    public func rotateWebhookSecret(accountID: String, previousUntil: Int64, now: Int64) async throws -> [String] {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE webhook_secrets SET retires_at = ? WHERE account_id = ? AND (retires_at IS NULL OR retires_at > ?)",
                arguments: [previousUntil, accountID, previousUntil])
            try db.execute(
                sql: "INSERT INTO webhook_secrets (account_id, secret, created_at) VALUES (?, ?, ?)",
                arguments: [accountID, WebhookSigner.newSecret(), now + 1])
            return try Self.activeSecrets(db, accountID: accountID, now: now)
        }
    }

    private static func activeSecrets(_ db: Database, accountID: String, now: Int64) throws -> [String] {
        try String.fetchAll(
            db,
            sql: """
                SELECT secret FROM webhook_secrets WHERE account_id = ? AND (retires_at IS NULL OR retires_at > ?)
                ORDER BY created_at DESC, rowid DESC
                """,
            arguments: [accountID, now])
    }

    public func claimDueCallbacks(now: Int64, leaseUntil: Int64, limit: Int) async throws -> [CallbackRecord] {
        try await pool.write { db in
            let ids = try String.fetchAll(
                db, sql: "SELECT id FROM callbacks WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
                arguments: [now, limit])
            var claimed: [CallbackRecord] = []
            for id in ids {
                try db.execute(
                    sql: "UPDATE callbacks SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ? WHERE id = ?",
                    arguments: [leaseUntil, now, id])
                if let row = try Row.fetchOne(db, sql: "SELECT * FROM callbacks WHERE id = ?", arguments: [id]) {
                    claimed.append(Self.callback(row))
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
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO callback_attempts (callback_id, attempt, status, error, duration_ms, at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [attempt.callbackID, attempt.attempt, attempt.status, attempt.error, attempt.durationMillis, attempt.at])
            try db.execute(
                sql: """
                    UPDATE callbacks SET state = ?, next_attempt_at = ?, payload = COALESCE(payload, ?), last_status = ?, last_error = ?,
                        updated_at = ?
                    WHERE id = ? AND attempts = ?
                    """,
                arguments: [
                    state.rawValue, nextAt, payload, attempt.status, attempt.error, now, attempt.callbackID, attempt.attempt,
                ])
        }
    }

    public func callbacks(taskID: String, accountID: String) async throws -> [(CallbackRecord, [CallbackAttempt])] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM callbacks WHERE task_id = ? AND account_id = ? ORDER BY created_at", arguments: [taskID, accountID]
            ).map { row in
                let record = Self.callback(row)
                let attempts = try Row.fetchAll(
                    db, sql: "SELECT * FROM callback_attempts WHERE callback_id = ? ORDER BY attempt", arguments: [record.id]
                ).map {
                    CallbackAttempt(
                        callbackID: $0["callback_id"], attempt: $0["attempt"], status: $0["status"], error: $0["error"],
                        durationMillis: $0["duration_ms"], at: $0["at"])
                }
                return (record, attempts)
            }
        }
    }

    public func resendCallback(id: String, now: Int64) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE callbacks SET state = 'pending', next_attempt_at = ?, updated_at = ? WHERE id = ?", arguments: [now, now, id])
            return db.changesCount > 0
        }
    }

    private static func callback(_ row: Row) -> CallbackRecord {
        CallbackRecord(
            id: row["id"], taskID: row["task_id"], accountID: row["account_id"], url: row["url"], dialect: row["dialect"],
            payload: row["payload"], state: CallbackRecord.State(rawValue: row["state"]) ?? .pending, attempts: row["attempts"],
            nextAttemptAt: row["next_attempt_at"], createdAt: row["created_at"], updatedAt: row["updated_at"],
            lastStatus: row["last_status"], lastError: row["last_error"], event: row["event"])
    }

    // MARK: Retention

    public func tasksWithResults(completedBefore before: Int64, limit: Int) async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT id FROM tasks WHERE state = 'succeeded' AND completed_at < ? AND results_expired_at IS NULL
                    ORDER BY completed_at LIMIT ?
                    """,
                arguments: [before, limit])
        }
    }

    public func markResultsExpired(taskIDs: [String], now: Int64) async throws {
        try await pool.write { db in
            for id in taskIDs {
                try db.execute(sql: "UPDATE tasks SET results_expired_at = ?, updated_at = ? WHERE id = ?", arguments: [now, now, id])
            }
        }
        for id in taskIDs { counters.bump(ChangeCounters.slot(forTask: id)) }
    }

    // MARK: Helpers

    /// The change-counter values a cached row was read under.
    struct CounterStamp: Equatable, Sendable {
        var first: UInt64
        var second: UInt64
    }

    /// A short synchronous read on the caller's thread, for the per-request hot paths: it costs less than a hop
    /// through GRDB's async scheduling, and WAL readers never wait for writers. It runs in a read transaction; callers
    /// step cached statements to completion (`fetchAll`) so no statement is left open on a pooled connection.
    private func readNow<T>(_ body: (Database) throws -> T) throws -> T {
        try pool.read(body)
    }

    /// Applies `set` to a running task only while the claim identified by `attempt` is still current, then runs
    /// `then` in the same transaction if it did.
    private func updateClaimed(
        taskID: String, attempt: Int, set: String, _ values: [(any DatabaseValueConvertible)?],
        then: @escaping @Sendable (Database) throws -> Void = { _ in }
    ) async throws -> Bool {
        let arguments = StatementArguments(values + [taskID, attempt])
        let changed = try await pool.write { db in
            try db.execute(sql: "UPDATE tasks SET \(set) WHERE id = ? AND attempts = ? AND state = 'running'", arguments: arguments)
            guard db.changesCount > 0 else { return false }
            try then(db)
            return true
        }
        if changed { counters.bump(ChangeCounters.slot(forTask: taskID)) }
        return changed
    }

    @discardableResult
    private static func failAbandoned(_ db: Database, now: Int64, maxAttempts: Int) throws -> Int {
        let ids = try String.fetchAll(
            db, sql: "SELECT id FROM tasks WHERE state = 'running' AND lease_until < ? AND attempts >= ?", arguments: [now, maxAttempts])
        for id in ids {
            try db.execute(
                sql: """
                    UPDATE tasks SET state = 'failed', failure_code = 500,
                        failure_message = 'the task was abandoned: its worker stopped responding ' || attempts || ' times (lease expired); giving up after ' || attempts || ' attempts',
                        completed_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL
                    WHERE id = ?
                    """,
                arguments: [now, now, id])
            try refund(db, taskID: id, now: now)
            try queueCallback(db, taskID: id, now: now)
        }
        return ids.count
    }

    private static func account(_ row: Row) -> Account {
        let limits = (row["limits"] as String?).flatMap { try? decoder.decode(LimitOverrides.self, from: Data($0.utf8)) }
        return Account(id: row["id"], name: row["name"], createdAt: row["created_at"], limits: limits ?? LimitOverrides())
    }

    /// The columns ``task(_:)`` reads, in the order it reads them by index (name lookups cost on the hot path).
    static let taskColumns = """
        id, account_id, dialect, model, request, params, state, progress, attempts, engine, created_at, updated_at,
        started_at, completed_at, result, failure_code, failure_message, credits, refunded_credits, results_expired_at,
        external_id
        """

    private static func task(_ row: Row) throws -> TaskRecord {
        let decoder = Self.decoder
        let request = try decoder.decode(GenerationRequest.self, from: Data((row[4] as String).utf8))
        let result: TaskResult? = try (row[14] as String?).map { try decoder.decode(TaskResult.self, from: Data($0.utf8)) }
        let failure: TaskFailure? = (row[15] as Int?).map { TaskFailure(code: $0, message: row[16] ?? "") }
        return TaskRecord(
            id: row[0], accountID: row[1], dialect: row[2], model: row[3], request: request, params: row[5],
            state: TaskState(rawValue: row[6]) ?? .failed, progress: row[7], attempts: row[8], engine: row[9], createdAt: row[10],
            updatedAt: row[11], startedAt: row[12], completedAt: row[13], result: result, failure: failure, credits: row[17],
            refundedCredits: row[18], resultsExpiredAt: row[19], externalID: row[20])
    }

    /// Coders shared by every call (both are thread-safe); making one per row showed in profiles.
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
