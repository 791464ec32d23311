import Foundation
import GRDB
import KlingAPI
import KlingCore

/// The embedded store: one SQLite file in WAL mode, shared safely by the server and admin commands.
///
/// This file holds the connection, its caches and the transaction helpers; each store it implements has its own
/// extension file (`SQLiteTaskStore+Queue.swift` for the claim, ...), the schema is in `SQLiteTaskStore+Migrations.swift`.
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

    let pool: DatabasePool
    /// The one connection of the synchronous hot-path reads (``readNow(_:)``), apart from the pool: a caller waits
    /// for it only while another such read runs, never for a pooled reader that a suspended async read still holds
    /// (with as few concurrency threads as cores, that wait could block every thread that would resume those reads).
    let hotReader: DatabaseQueue
    let counters: ChangeCounters
    /// Rows read on the per-request hot paths, current while their change counters are unchanged.
    let keyCache: StampedCache<CounterStamp, Account>
    let taskCache: StampedCache<CounterStamp, TaskRecord>
    let switchCache: StampedCache<CounterStamp, ServiceSwitches>

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
        var readerConfig = GRDB.Configuration()
        readerConfig.readonly = true
        readerConfig.busyMode = .timeout(configuration.busyTimeout)
        hotReader = try DatabaseQueue(path: configuration.path, configuration: readerConfig)
        counters = try ChangeCounters(path: configuration.path + "-changes")
        keyCache = StampedCache(capacity: configuration.readCacheSize, maxAge: configuration.readCacheMaxAge)
        taskCache = StampedCache(capacity: configuration.readCacheSize, maxAge: configuration.readCacheMaxAge)
        switchCache = StampedCache(capacity: configuration.readCacheSize > 0 ? 1 : 0, maxAge: configuration.readCacheMaxAge)
    }

    /// Static factory so call sites read `.sqlite(path:)`.
    public static func sqlite(path: String) throws -> SQLiteTaskStore {
        try SQLiteTaskStore(configuration: Configuration(path: path))
    }

    /// The change-counter values a cached row was read under.
    struct CounterStamp: Equatable, Sendable {
        var first: UInt64
        var second: UInt64
    }

    /// A short synchronous read on the caller's thread, for the per-request hot paths: it costs less than a hop
    /// through GRDB's async scheduling, and WAL readers never wait for writers. It runs in a read transaction on
    /// ``hotReader``; callers step cached statements to completion (`fetchAll`) so no statement is left open.
    func readNow<T>(_ body: (Database) throws -> T) throws -> T {
        try hotReader.read(body)
    }

    /// Applies `set` to a running task only while the claim identified by `attempt` is still current, then runs
    /// `then` in the same transaction if it did.
    func updateClaimed(
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

    /// The stores' shared JSON coding (``StoreCoding``).
    static var decoder: JSONDecoder { StoreCoding.decoder }

    static func encode<T: Encodable>(_ value: T) throws -> String { try StoreCoding.encode(value) }
}
