import KlingCore
import PostgresNIO

/// Settings rows: the operator's switches and the installation's secrets (``SwitchStore``).
extension PostgresTaskStore {
    public func switches() async throws -> ServiceSwitches {
        if let cached = cache.switches { return cached }
        let generation = cache.generation
        let switches = ServiceSwitches(
            settings: try await read("SELECT key, value FROM settings").map { (key: try $0.get("key"), value: try $0.get("value")) })
        if let generation { cache.store(switches, generation: generation) }
        return switches
    }

    public func storeSetting(key: String, value: String) async throws {
        // This process sees its own change at once; others when the trigger's notification reaches them.
        defer { cache.invalidate() }
        try await read("INSERT INTO settings (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    }

    public func setting(key: String, insertingIfAbsent value: String) async throws -> String {
        try await read("INSERT INTO settings (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO NOTHING")
        return try await read("SELECT value FROM settings WHERE key = \(key)").first?.get("value") ?? value
    }
}
