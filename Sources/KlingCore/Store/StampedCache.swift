import Foundation
import Synchronization

/// A bounded in-memory map from keys to values, each kept with the stamp it was made under (change counters, or the
/// record an answer was encoded from) and handed out only while the caller's current stamp is equal and the copy is
/// younger than the age limit.
///
/// The SQLite store keeps rows read on the per-request hot paths in one; the dialects keep encoded answers in one.
public final class StampedCache<Stamp: Equatable & Sendable, Value: Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var stamp: Stamp
        var storedAt: ContinuousClock.Instant
    }

    private let entries = Mutex([String: Entry]())
    private let capacity: Int
    private let maxAge: Duration

    /// A cache of at most `capacity` entries (0 keeps nothing), each served for at most `maxAge`.
    public init(capacity: Int, maxAge: Duration) {
        self.capacity = capacity
        self.maxAge = maxAge
    }

    /// The value under `key` when it was stored with a stamp equal to `stamp` and is younger than the age limit.
    public func value(_ key: String, stamp: Stamp) -> Value? {
        guard capacity > 0 else { return nil }
        let now = ContinuousClock.now
        return entries.withLock { entries in
            guard let entry = entries[key], entry.stamp == stamp, now - entry.storedAt < maxAge else { return nil }
            return entry.value
        }
    }

    /// Keeps `value` under `key` with `stamp`. When full, drops expired entries, and everything if none had expired.
    public func store(_ value: Value, for key: String, stamp: Stamp) {
        guard capacity > 0 else { return }
        let now = ContinuousClock.now
        entries.withLock { entries in
            if entries.count >= capacity, entries[key] == nil {
                entries = entries.filter { now - $0.value.storedAt < maxAge }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[key] = Entry(value: value, stamp: stamp, storedAt: now)
        }
    }
}
