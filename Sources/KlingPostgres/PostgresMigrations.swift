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
        Migration(
            version: 4, name: "insert-tasks-function",
            statements: [
                // Creates in one round trip, several at a time (PostgresInsertBatcher): the account rows stay locked
                // from the balance check to the commit, so issued one statement at a time from the client that lock
                // was held across every round trip, and one commit (one WAL flush) per create capped one account's
                // creates. Each item is checked in order against the state the items before it left; refusals are
                // reported per item (KLxxx codes the store maps), never by aborting the others.
                """
                CREATE FUNCTION kling_insert_tasks(p_items JSONB) RETURNS JSONB LANGUAGE plpgsql AS $$
                DECLARE
                    v_item JSONB;
                    v_outcomes JSONB := '[]'::JSONB;
                    v_balance BIGINT;
                    v_active BIGINT;
                    v_fingerprint TEXT;
                    v_task TEXT;
                    v_account TEXT;
                    v_credits BIGINT;
                    v_key TEXT;
                BEGIN
                    -- Parallel creates of one account (and retries with one idempotency key) queue up here; rows are
                    -- locked in id order so two batches never wait for each other in a circle.
                    PERFORM 1 FROM accounts
                    WHERE id IN (SELECT DISTINCT value->>'account_id' FROM jsonb_array_elements(p_items))
                    ORDER BY id FOR UPDATE;
                    FOR v_item IN SELECT value FROM jsonb_array_elements(p_items) LOOP
                        v_account := v_item->>'account_id';
                        v_credits := (v_item->>'credits')::BIGINT;
                        v_key := v_item->>'idempotency_key';
                        SELECT balance INTO v_balance FROM accounts WHERE id = v_account;
                        IF NOT FOUND THEN
                            v_outcomes := v_outcomes || jsonb_build_object('code', 'KL404', 'message', 'no account ' || v_account);
                            CONTINUE;
                        END IF;
                        IF v_key IS NOT NULL THEN
                            DELETE FROM idempotency_keys
                            WHERE account_id = v_account AND key = v_key AND created_at < (v_item->>'now')::BIGINT - 86400000;
                            SELECT fingerprint, task_id INTO v_fingerprint, v_task FROM idempotency_keys
                            WHERE account_id = v_account AND key = v_key;
                            IF FOUND THEN
                                IF v_fingerprint <> v_item->>'fingerprint' THEN
                                    v_outcomes := v_outcomes || jsonb_build_object('code', 'KL409', 'message',
                                        'this Idempotency-Key was used in the last 24 hours for a different request');
                                ELSE
                                    v_outcomes := v_outcomes || jsonb_build_object('existing', v_task);
                                END IF;
                                CONTINUE;
                            END IF;
                        END IF;
                        IF v_credits > 0 AND v_balance < v_credits THEN
                            v_outcomes := v_outcomes || jsonb_build_object('code', 'KL402', 'message',
                                format('the balance is %s credits; %s are needed', v_balance, v_credits));
                            CONTINUE;
                        END IF;
                        IF v_item->>'external_id' IS NOT NULL AND EXISTS (
                            SELECT 1 FROM tasks WHERE account_id = v_account AND external_id = v_item->>'external_id') THEN
                            v_outcomes := v_outcomes || jsonb_build_object('code', 'KL410', 'message',
                                format('external_task_id: %s is already used by another task of this account', v_item->>'external_id'));
                            CONTINUE;
                        END IF;
                        IF v_item->>'max_active' IS NOT NULL THEN
                            SELECT COUNT(*) INTO v_active FROM tasks WHERE account_id = v_account AND state IN ('queued', 'running');
                            IF v_active >= (v_item->>'max_active')::BIGINT THEN
                                v_outcomes := v_outcomes || jsonb_build_object('code', 'KL429', 'message',
                                    format('the account already has %s queued or running tasks, its limit; wait for one to finish', v_active));
                                CONTINUE;
                            END IF;
                        END IF;
                        INSERT INTO tasks (id, account_id, dialect, model, request, params, state, progress, attempts, engine,
                            created_at, updated_at, started_at, completed_at, result, failure_code, failure_message, credits,
                            refunded_credits, callback_url, external_id)
                        VALUES (v_item->>'id', v_account, v_item->>'dialect', v_item->>'model', v_item->>'request',
                            v_item->>'params', v_item->>'state', (v_item->>'progress')::BIGINT, (v_item->>'attempts')::BIGINT,
                            v_item->>'engine', (v_item->>'created_at')::BIGINT, (v_item->>'updated_at')::BIGINT,
                            (v_item->>'started_at')::BIGINT, (v_item->>'completed_at')::BIGINT, v_item->>'result',
                            (v_item->>'failure_code')::BIGINT, v_item->>'failure_message', v_credits,
                            (v_item->>'refunded_credits')::BIGINT, v_item->>'callback_url', v_item->>'external_id');
                        IF v_credits > 0 THEN
                            UPDATE accounts SET balance = balance - v_credits WHERE id = v_account;
                            INSERT INTO ledger (account_id, kind, amount, task_id, note, created_at)
                            VALUES (v_account, 'charge', -v_credits, v_item->>'id', 'task accepted', (v_item->>'created_at')::BIGINT);
                        END IF;
                        IF v_key IS NOT NULL THEN
                            INSERT INTO idempotency_keys (account_id, key, fingerprint, task_id, created_at)
                            VALUES (v_account, v_key, v_item->>'fingerprint', v_item->>'id', (v_item->>'now')::BIGINT);
                        END IF;
                        v_outcomes := v_outcomes || jsonb_build_object('created', true);
                    END LOOP;
                    RETURN v_outcomes;
                END $$
                """
            ]),
        Migration(
            version: 5, name: "change-notify",
            statements: [
                // What API processes cache (PostgresReadCache) is announced when it changes; balances are not cached,
                // so balance updates stay silent (the accounts trigger fires only for the columns listed).
                """
                CREATE FUNCTION kling_notify_changed() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    PERFORM pg_notify('\(changesChannel)', '');
                    RETURN NULL;
                END $$
                """,
                """
                CREATE TRIGGER api_keys_notify_changed AFTER UPDATE OR DELETE ON api_keys
                FOR EACH STATEMENT EXECUTE FUNCTION kling_notify_changed()
                """,
                """
                CREATE TRIGGER accounts_notify_changed AFTER UPDATE OF name, limits OR DELETE ON accounts
                FOR EACH STATEMENT EXECUTE FUNCTION kling_notify_changed()
                """,
                """
                CREATE TRIGGER settings_notify_changed AFTER INSERT OR UPDATE OR DELETE ON settings
                FOR EACH STATEMENT EXECUTE FUNCTION kling_notify_changed()
                """,
            ]),
    ]

    /// The channel on which PostgreSQL announces changes to what ``PostgresReadCache`` holds.
    static let changesChannel = "kling_changes"

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
