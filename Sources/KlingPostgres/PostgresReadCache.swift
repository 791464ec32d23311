import KlingCore
import Synchronization

/// What the per-request hot paths read on every call (the account of an API key, the service switches), kept in this
/// process while a listening connection guarantees that every change to them is announced.
///
/// Triggers (migration 5) `NOTIFY kling_changes` when keys, account names or limits, or settings change; each
/// notification empties the cache. While the store is not listening (at start, after a lost connection) nothing is
/// cached. A read that began before a notification is not stored (the generation changed), so a value read just
/// before a change can never outlive it. Balances and tasks are never cached.
final class PostgresReadCache: Sendable {
    private struct State {
        var live = false
        var generation: UInt64 = 0
        var accounts: [String: Account] = [:]
        var switches: ServiceSwitches?
    }

    /// Keys kept at most (the cache is emptied when it would grow past this).
    private let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// The generation to pass to the `store` calls of a read starting now; `nil` when nothing may be cached.
    var generation: UInt64? {
        state.withLock { $0.live ? $0.generation : nil }
    }

    func account(forKeyHash hash: String) -> Account? {
        state.withLock { $0.live ? $0.accounts[hash] : nil }
    }

    func store(_ account: Account, forKeyHash hash: String, generation: UInt64) {
        state.withLock { state in
            guard state.live, state.generation == generation else { return }
            if state.accounts.count >= capacity { state.accounts.removeAll(keepingCapacity: true) }
            state.accounts[hash] = account
        }
    }

    var switches: ServiceSwitches? {
        state.withLock { $0.live ? $0.switches : nil }
    }

    func store(_ switches: ServiceSwitches, generation: UInt64) {
        state.withLock { state in
            guard state.live, state.generation == generation else { return }
            state.switches = switches
        }
    }

    /// Something changed (a notification), or listening began or ended: forget everything.
    func invalidate(live: Bool? = nil) {
        state.withLock { state in
            state.generation &+= 1
            state.accounts.removeAll()
            state.switches = nil
            if let live { state.live = live }
        }
    }
}
