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
///
/// This file holds the connection pool, the change listener and the transaction helpers; each store it implements has
/// its own extension file (`PostgresTaskStore+Queue.swift` for the claim, ...), the schema is in `PostgresMigrations.swift`.
public final class PostgresTaskStore: TaskStore {
    let client: PostgresClient
    let runner: Task<Void, Never>
    let logger: Logger
    let cache = PostgresReadCache()
    let inserts: PostgresInsertBatcher
    /// Every statement's connection, given up on when the database does not answer in time.
    let lease: BoundedLease
    let changes = Mutex<Task<Void, Never>?>(nil)

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
    func read(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        try await lease.withConnection { [logger] connection in
            try await connection.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
        }
    }

    /// Runs `body` in a `READ COMMITTED` transaction on a pooled connection: committed when it returns, rolled back
    /// when it throws (the error comes through unchanged). A deadlock PostgreSQL broke by aborting this transaction
    /// (two processes refunding tasks of the same accounts in different orders, say) runs the whole body again.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (Connection) async throws -> T) async throws -> T {
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
    func updateClaimed(
        _ update: PostgresQuery, then: @escaping @Sendable (Connection) async throws -> Void = { _ in }
    ) async throws -> Bool {
        try await transaction { db in
            guard try await !db.rows(update).isEmpty else { return false }
            try await then(db)
            return true
        }
    }

    /// The stores' shared JSON coding (``StoreCoding``).
    static var decoder: JSONDecoder { StoreCoding.decoder }

    static func encode<T: Encodable>(_ value: T) throws -> String { try StoreCoding.encode(value) }
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
