import PostgresNIO
import Synchronization

/// Leases a pooled connection, giving up with ``DatabaseUnavailable`` when none comes within a time limit (the server
/// is down or unreachable: PostgresNIO's pool would otherwise wait for ever, and with it every request, every worker
/// loop and a graceful shutdown), or with `CancellationError` as soon as the waiting task is cancelled.
///
/// Only the wait for the lease is bounded: once `body` has a connection it runs to its end, even if the waiting task
/// is cancelled meanwhile, so a transaction is never cut off half way and its caller always learns how it ended.
struct BoundedLease: Sendable {
    let client: PostgresClient
    let limit: Duration

    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        // Exactly one of three happens first: the lease starts the body, the timer gives up, or the caller is
        // cancelled. The lease waits in a task of its own, so giving up never waits for the pool to answer; a lease
        // granted after that is handed back unused.
        let decision = Decision()
        let outcome = Outcome<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                outcome.set(continuation)
                let client = self.client, limit = self.limit
                let lease = Task<Void, Never> {
                    do {
                        let value = try await client.withConnection { connection in
                            guard decision.settle(.leased) else { throw DatabaseUnavailable(limit: limit) }
                            return try await body(connection)
                        }
                        outcome.finish(.success(value))
                    } catch {
                        outcome.finish(.failure(error))
                    }
                }
                let timer = Task<Void, Never> {
                    try? await Task.sleep(for: limit)
                    if decision.settle(.gaveUp) { outcome.finish(.failure(DatabaseUnavailable(limit: limit))) }
                }
                outcome.attach([lease, timer])
            }
        } onCancel: {
            if decision.settle(.gaveUp) { outcome.finish(.failure(CancellationError())) }
        }
    }

    /// Which came first.
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

    /// The caller's continuation, resumed once with the first result (later ones are dropped); then the lease and
    /// timer tasks are cancelled (a no-op for the lease when it gave the result; before the body ran otherwise).
    private final class Outcome<T: Sendable>: Sendable {
        private let state = Mutex<(continuation: CheckedContinuation<T, any Error>?, result: Result<T, any Error>?, tasks: [Task<Void, Never>])>(
            (nil, nil, []))

        func attach(_ tasks: [Task<Void, Never>]) {
            let finished = state.withLock { state in
                state.tasks = tasks
                return state.result != nil
            }
            if finished { tasks.forEach { $0.cancel() } }
        }

        func set(_ continuation: CheckedContinuation<T, any Error>) {
            let early: Result<T, any Error>? = state.withLock { state in
                guard let result = state.result else {
                    state.continuation = continuation
                    return nil
                }
                return result
            }
            if let early { continuation.resume(with: early) }
        }

        func finish(_ result: Result<T, any Error>) {
            let (continuation, tasks): (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) = state.withLock { state in
                guard state.result == nil else { return (nil, []) }
                state.result = result
                defer { state.continuation = nil }
                return (state.continuation, state.tasks)
            }
            continuation?.resume(with: result)
            tasks.forEach { $0.cancel() }
        }
    }
}

/// No database connection could be had within the lease time limit.
public struct DatabaseUnavailable: Error, CustomStringConvertible, Sendable {
    let limit: Duration
    public var description: String { "the database did not answer within \(limit) (no connection could be made)" }
}
