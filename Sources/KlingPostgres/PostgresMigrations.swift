import Logging
import PostgresNIO

/// The PostgreSQL schema as numbered migrations, applied in order at start and recorded in `kling_schema_migrations`.
///
/// Every process runs ``migrate(_:logger:)`` when it opens the store; an advisory lock makes concurrent starts apply
/// each migration exactly once. A migration is never edited after release: later changes are new migrations.
enum PostgresMigrations {
    /// One schema change: its statements run in one transaction with the bookkeeping row.
    struct Migration: Sendable {
        var version: Int
        var name: String
        var statements: [String]
    }

    /// The key of the advisory lock that serialises migrations ("kling" in ASCII).
    static let lockKey = 0x6B_6C_69_6E_67

    /// All migrations, oldest first. Version 1 is the SQLite store's v1 to v7 in one step, version 2 its v8.
    static let all: [Migration] = [
        Migration(
            version: 1, name: "initial",
            statements: [
                """
                CREATE TABLE accounts (
                    id TEXT COLLATE "C" PRIMARY KEY,
                    name TEXT COLLATE "C" NOT NULL UNIQUE,
                    created_at BIGINT NOT NULL,
                    balance BIGINT NOT NULL DEFAULT 0,
                    limits TEXT
                )
                """,
                """
                CREATE TABLE api_keys (
                    id TEXT PRIMARY KEY,
                    account_id TEXT NOT NULL REFERENCES accounts(id),
                    hash TEXT NOT NULL UNIQUE,
                    prefix TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    revoked_at BIGINT
                )
                """,
                "CREATE INDEX api_keys_account ON api_keys(account_id)",
                """
                CREATE TABLE tasks (
                    id TEXT COLLATE "C" PRIMARY KEY,
                    account_id TEXT NOT NULL REFERENCES accounts(id),
                    dialect TEXT NOT NULL,
                    model TEXT NOT NULL,
                    request TEXT NOT NULL,
                    params TEXT NOT NULL,
                    state TEXT NOT NULL,
                    progress BIGINT NOT NULL DEFAULT 0,
                    attempts BIGINT NOT NULL DEFAULT 0,
                    engine TEXT,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    started_at BIGINT,
                    completed_at BIGINT,
                    result TEXT,
                    failure_code BIGINT,
                    failure_message TEXT,
                    lease_owner TEXT,
                    lease_until BIGINT,
                    credits BIGINT NOT NULL DEFAULT 0,
                    refunded_credits BIGINT NOT NULL DEFAULT 0,
                    callback_url TEXT,
                    results_expired_at BIGINT,
                    external_id TEXT
                )
                """,
                "CREATE INDEX tasks_queue ON tasks(state, created_at, id)",
                "CREATE INDEX tasks_account ON tasks(account_id, created_at, id)",
                "CREATE INDEX tasks_active ON tasks(account_id, state)",
                "CREATE INDEX tasks_completed ON tasks(state, completed_at)",
                "CREATE UNIQUE INDEX tasks_external ON tasks(account_id, external_id) WHERE external_id IS NOT NULL",
                """
                CREATE TABLE ledger (
                    id BIGSERIAL PRIMARY KEY,
                    account_id TEXT NOT NULL REFERENCES accounts(id),
                    kind TEXT NOT NULL,
                    amount BIGINT NOT NULL,
                    task_id TEXT,
                    note TEXT NOT NULL DEFAULT '',
                    created_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX ledger_account ON ledger(account_id, id)",
                // A task is charged once and refunded at most once, whatever retries or crashes happen.
                "CREATE UNIQUE INDEX ledger_task_kind ON ledger(task_id, kind) WHERE task_id IS NOT NULL",
                """
                CREATE FUNCTION kling_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION 'the ledger is append-only';
                END
                $$
                """,
                """
                CREATE TRIGGER ledger_no_change BEFORE UPDATE OR DELETE ON ledger
                FOR EACH ROW EXECUTE FUNCTION kling_ledger_append_only()
                """,
                """
                CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
                FOR EACH STATEMENT EXECUTE FUNCTION kling_ledger_append_only()
                """,
                "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
                """
                CREATE TABLE webhook_secrets (
                    seq BIGSERIAL PRIMARY KEY,
                    account_id TEXT NOT NULL REFERENCES accounts(id),
                    secret TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    retires_at BIGINT
                )
                """,
                "CREATE INDEX webhook_secrets_account ON webhook_secrets(account_id, created_at)",
                """
                CREATE TABLE callbacks (
                    seq BIGSERIAL NOT NULL,
                    id TEXT PRIMARY KEY,
                    task_id TEXT NOT NULL REFERENCES tasks(id),
                    account_id TEXT NOT NULL,
                    url TEXT NOT NULL,
                    dialect TEXT NOT NULL,
                    payload TEXT,
                    state TEXT NOT NULL,
                    attempts BIGINT NOT NULL DEFAULT 0,
                    next_attempt_at BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    last_status BIGINT,
                    last_error TEXT,
                    event TEXT
                )
                """,
                "CREATE INDEX callbacks_due ON callbacks(state, next_attempt_at)",
                "CREATE INDEX callbacks_task ON callbacks(task_id)",
                """
                CREATE TABLE callback_attempts (
                    callback_id TEXT NOT NULL REFERENCES callbacks(id),
                    attempt BIGINT NOT NULL,
                    status BIGINT,
                    error TEXT,
                    duration_ms BIGINT NOT NULL,
                    at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX callback_attempts_callback ON callback_attempts(callback_id, attempt)",
                """
                CREATE TABLE idempotency_keys (
                    account_id TEXT NOT NULL,
                    key TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    task_id TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (account_id, key)
                )
                """,
                """
                CREATE TABLE jwt_credentials (
                    access_key TEXT PRIMARY KEY,
                    account_id TEXT NOT NULL REFERENCES accounts(id),
                    secret_key TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
            ]),
        // The provider's task id of a task forwarded to an upstream engine; private, never read into a TaskRecord.
        Migration(
            version: 2, name: "upstream",
            statements: [
                "ALTER TABLE tasks ADD COLUMN upstream_engine TEXT",
                "ALTER TABLE tasks ADD COLUMN upstream_task_id TEXT",
            ]),
        Migration(
            version: 3, name: "queue-notify",
            statements: [
                // Every way a task becomes claimable (a create, a release, a retry) tells listening workers on commit;
                // PostgreSQL folds the notifications of one transaction into one.
                """
                CREATE FUNCTION kling_notify_queued() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    PERFORM pg_notify('\(queueChannel)', '');
                    RETURN NULL;
                END $$
                """,
                """
                CREATE TRIGGER tasks_notify_queued AFTER INSERT OR UPDATE OF state ON tasks
                FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION kling_notify_queued()
                """,
            ]),
    ]

    /// The channel on which PostgreSQL announces queued tasks.
    static let queueChannel = "kling_queued"

    /// Applies the migrations this database has not seen yet; returns their versions.
    @discardableResult
    static func migrate(_ connection: PostgresConnection, logger: Logger, now: Int64) async throws -> [Int] {
        try await connection.query("BEGIN", logger: logger)
        do {
            try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS kling_schema_migrations (
                    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL
                )
                """, logger: logger)
            var applied = Set<Int>()
            for try await version in try await connection.query("SELECT version FROM kling_schema_migrations", logger: logger)
                .decode(Int.self)
            {
                applied.insert(version)
            }
            var done: [Int] = []
            for migration in all where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO kling_schema_migrations (version, name, applied_at) VALUES (\(migration.version), \(migration.name), \(now))",
                    logger: logger)
                done.append(migration.version)
            }
            try await connection.query("COMMIT", logger: logger)
            return done
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }
}
