import Foundation
import KlingCore
import PostgresNIO
import Synchronization

/// Group commit for creates: inserts that arrive while earlier ones are being written go to the database together,
/// in one `kling_insert_tasks` call (one round trip, one transaction, one WAL flush).
///
/// Alone, a create goes at once (a batch of one); under load, batches grow with the wait, so an account's creates are
/// no longer capped at one commit each. Each item keeps its own outcome: a refusal (credits, limits, keys) refuses
/// that item only; an unexpected error fails the batch, whose items are then retried one by one, so the error reaches
/// only the request that caused it.
final class PostgresInsertBatcher: Sendable {
    /// One create as the SQL function reads it. Absent optionals are left out of the JSON: the function reads every
    /// field with `->>`, which gives NULL for a missing key.
    struct Item: Encodable, Sendable {
        var id: String
        var account_id: String
        var dialect: String
        var model: String
        var request: String
        var params: String
        var state: String
        var progress: Int
        var attempts: Int
        var engine: String?
        var created_at: Int64
        var updated_at: Int64
        var started_at: Int64?
        var completed_at: Int64?
        var result: String?
        var failure_code: Int?
        var failure_message: String?
        var credits: Int64
        var refunded_credits: Int64
        var callback_url: String?
        var external_id: String?
        var max_active: Int?
        var idempotency_key: String?
        var fingerprint: String?
        var now: Int64
    }

    private struct Pending: Sendable {
        var item: Item
        var continuation: CheckedContinuation<IdempotentInsert, any Error>
    }

    private struct State {
        var queue: [Pending] = []
        var inFlight = 0
    }

    /// Runs one batch (the items as a JSON array) and returns the function's outcomes, in order.
    typealias Runner = @Sendable (String) async throws -> String

    private let state = Mutex(State())
    private let run: Runner
    /// Batches written at once (creates of different accounts proceed side by side; one account's queue up anyway).
    private let concurrency: Int
    /// Items per batch at most.
    private let maxBatch: Int

    init(concurrency: Int = 4, maxBatch: Int = 64, run: @escaping Runner) {
        self.concurrency = concurrency
        self.maxBatch = maxBatch
        self.run = run
    }

    /// Stores and charges one task (with an idempotency key when the item has one).
    func insert(_ item: Item) async throws -> IdempotentInsert {
        try await withCheckedThrowingContinuation { continuation in
            let startsDrainer = state.withLock { state -> Bool in
                state.queue.append(Pending(item: item, continuation: continuation))
                guard state.inFlight < concurrency else { return false }
                state.inFlight += 1
                return true
            }
            if startsDrainer { Task { await self.drain() } }
        }
    }

    /// Writes batches until the queue is empty.
    private func drain() async {
        while true {
            let batch = state.withLock { state -> [Pending] in
                guard !state.queue.isEmpty else {
                    state.inFlight -= 1
                    return []
                }
                let batch = Array(state.queue.prefix(maxBatch))
                state.queue.removeFirst(batch.count)
                return batch
            }
            if batch.isEmpty { return }
            do {
                try await write(batch)
            } catch where batch.count > 1 {
                // One item broke the batch (a duplicate id, say): each alone, so only its request sees the error.
                for pending in batch {
                    do { try await write([pending]) } catch { pending.continuation.resume(throwing: error) }
                }
            } catch {
                batch[0].continuation.resume(throwing: error)
            }
        }
    }

    /// Writes `batch` and resumes each item with its outcome; throws (resuming none) when the batch failed as a whole.
    private func write(_ batch: [Pending]) async throws {
        let encoded = String(decoding: try JSONEncoder().encode(batch.map(\.item)), as: UTF8.self)
        let outcomes = try JSONDecoder().decode([Outcome].self, from: Data(try await run(encoded).utf8))
        guard outcomes.count == batch.count else {
            throw StoreError.notFound("kling_insert_tasks returned \(outcomes.count) outcomes for \(batch.count) items")
        }
        for (pending, outcome) in zip(batch, outcomes) { pending.continuation.resume(with: outcome.result) }
    }

    /// One item's outcome as the SQL function reports it.
    private struct Outcome: Decodable {
        var created: Bool?
        var existing: String?
        var code: String?
        var message: String?

        var result: Result<IdempotentInsert, any Error> {
            if let existing { return .success(.existing(taskID: existing)) }
            let message = message ?? "refused"
            switch code {
            case nil: return .success(.created)
            case "KL402": return .failure(StoreError.insufficientCredits(message))
            case "KL404": return .failure(StoreError.notFound(message))
            case "KL409": return .failure(StoreError.conflict(message))
            case "KL410": return .failure(StoreError.externalIDTaken(message))
            case "KL429": return .failure(StoreError.limitReached(message))
            case let code?: return .failure(StoreError.notFound("kling_insert_tasks: unknown outcome \(code): \(message)"))
            }
        }
    }
}
