import GRDB

/// The schema, as GRDB migrations applied in order at open.
extension SQLiteTaskStore {
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
}
