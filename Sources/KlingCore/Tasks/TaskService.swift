import KlingAPI
import Logging

/// Creates and reads tasks for an account: the one place dialects go through to reach the queue.
public struct TaskService: Sendable {
    private let store: any TaskStore
    private let signal: WakeSignal

    public init(store: any TaskStore, signal: WakeSignal) {
        self.store = store
        self.signal = signal
    }

    /// Stores a validated request as a queued task owned by `account` and wakes idle workers.
    public func create(_ decoded: DecodedCreateRequest, account: Account, dialect: String) async throws -> TaskRecord {
        let now = TaskWorker.nowMillis()
        let task = TaskRecord(
            id: "task_" + APIKeys.randomID(), accountID: account.id, dialect: dialect, model: decoded.model,
            request: decoded.request, params: decoded.params.jsonString(), createdAt: now, updatedAt: now)
        try await store.insert(task)
        signal.notify()
        return task
    }

    /// The task if `account` owns it; `nil` for unknown ids and other accounts' tasks alike.
    public func task(id: String, account: Account) async throws -> TaskRecord? {
        try await store.task(id: id, accountID: account.id)
    }

    /// The account an API key belongs to, or `nil` for unknown and revoked keys.
    public func authenticate(apiKey: String) async throws -> Account? {
        guard !apiKey.isEmpty, apiKey.utf8.count <= 256 else { return nil }
        return try await store.account(forKeyHash: APIKeys.hash(apiKey))
    }
}
