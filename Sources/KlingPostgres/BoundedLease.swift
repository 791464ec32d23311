import PostgresNIO
import Synchronization

/// Leases a pooled connection, giving up with ``DatabaseUnavailable`` when none comes within a time limit (the server
/// is down or unreachable: PostgresNIO's pool would otherwise wait for ever, and with it every request, every worker
/// loop and a graceful shutdown).
///
/// Only the wait for the lease is bounded: once `body` has a connection it runs to its end, so a transaction is never
/// cut off half way.
struct BoundedLease: Sendable {
    let client: PostgresClient
    let limit: Duration

    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        // Exactly one of the two happens: the lease starts the body, or the timer gives up. The one that loses stays
        // out of the way (a lease granted after the timer gave up is handed back unused).
        let decision = Decision()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await client.withConnection { connection in
                    let starts = decision.settle(.leased)
                    guard starts else { throw DatabaseUnavailable(limit: limit) }
                    return try await body(connection)
                }
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                let givesUp = decision.settle(.gaveUp)
                if givesUp { throw DatabaseUnavailable(limit: limit) }
                return nil
            }
            while let outcome = try await group.next() {
                if let value = outcome {
                    group.cancelAll()  // the timer
                    return value
                }
            }
            throw DatabaseUnavailable(limit: limit)
        }
    }

    /// Which of the two came first.
    private final class Decision: Sendable {
        enum Outcome { case waiting, leased, gaveUp }
        private let outcome = Mutex(Outcome.waiting)

        /// Records `outcome` if nothing was decided yet; whether it was.
        func settle(_ new: Outcome) -> Bool {
            outcome.withLock { outcome in
                guard outcome == .waiting else { return false }
                outcome = new
                return true
            }
        }
    }
}

/// No database connection could be had within the lease time limit.
public struct DatabaseUnavailable: Error, CustomStringConvertible, Sendable {
    let limit: Duration
    public var description: String { "the database did not answer within \(limit) (no connection could be made)" }
}
