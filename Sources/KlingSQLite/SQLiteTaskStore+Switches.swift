import GRDB
import KlingCore

/// Settings rows: the operator's switches and the installation's secrets (``SwitchStore``).
extension SQLiteTaskStore {
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

    public func storeSetting(key: String, value: String) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                arguments: [key, value])
        }
        counters.bump(ChangeCounters.controlSlot)
    }

    public func setting(key: String, insertingIfAbsent value: String) async throws -> String {
        try await pool.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", arguments: [key, value])
            return try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key]) ?? value
        }
    }
}
