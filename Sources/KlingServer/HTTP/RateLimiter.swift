import Foundation
import KlingCore
import Synchronization

/// Per-key request limits over sliding windows (creates per 10 s, queries per second), kept in this process.
///
/// Each key and kind keeps the times of its admitted requests inside the window, so memory per key is bounded by its
/// limit; idle keys are dropped when many have accumulated.
final class RateLimiter: Sendable {
    /// What a request counts against.
    enum Kind: String, Sendable {
        case create
        case query
    }

    private let logs = Mutex([String: [ContinuousClock.Instant]]())

    /// Admits a request, or returns how long to wait before one would be admitted. `limit` 0 admits everything.
    func admit(_ kind: Kind, key: String, limit: Int, window: Duration, now: ContinuousClock.Instant = .now) -> Duration? {
        guard limit > 0 else { return nil }
        let id = kind.rawValue + ":" + key
        return logs.withLock { logs in
            if logs.count > 50_000 { logs = logs.filter { now - ($0.value.last ?? now) < .seconds(60) } }
            var log = logs[id] ?? []
            if let stale = log.firstIndex(where: { now - $0 < window }) {
                log.removeFirst(stale)
            } else {
                log.removeAll()
            }
            guard log.count < limit else {
                logs[id] = log
                return window - (now - log[0])
            }
            log.append(now)
            logs[id] = log
            return nil
        }
    }

    /// Admits the authenticated caller's request of `kind` under `limits`, or throws the dialect's 429 with
    /// `Retry-After`.
    func check(_ kind: Kind, context: KlingRequestContext, limits: AccountLimits) throws {
        guard let key = context.apiKeyHash else { return }
        switch kind {
        case .create:
            if let wait = admit(.create, key: key, limit: limits.createsPerWindow, window: .seconds(limits.createWindowSeconds)) {
                throw APIError.rateLimited(
                    "rate limited: this key may create \(limits.createsPerWindow) tasks per \(limits.createWindowSeconds) s", retryAfter: wait)
            }
        case .query:
            if let wait = admit(.query, key: key, limit: limits.queriesPerSecond, window: .seconds(1)) {
                throw APIError.rateLimited("rate limited: this key may make \(limits.queriesPerSecond) queries per second", retryAfter: wait)
            }
        }
    }
}
