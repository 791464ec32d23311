import Foundation
import Logging
import ServiceLifecycle

/// Fails and refunds tasks that will not finish: any task not done within the timeout of its creation, and running
/// tasks whose lease expired after their last allowed attempt (also when no worker is left to notice).
public struct TaskSweeper: Service {
    private let store: any QueueStore
    private let timeout: Duration
    private let maxAttempts: Int
    private let interval: Duration
    private let logger: Logger

    /// Sweeps every `interval` (default: a quarter of the timeout, at most 30 s, at least 1 s).
    public init(store: any QueueStore, timeout: Duration, maxAttempts: Int, interval: Duration? = nil, logger: Logger) {
        self.store = store
        self.timeout = timeout
        self.maxAttempts = maxAttempts
        self.interval = interval ?? min(.seconds(30), max(.seconds(1), timeout / 4))
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // Shutdown stops a sweep that waits for the store (a database that went away).
            _ = await cancelWhenGracefulShutdown { await self.sweep() }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// One pass; returns how many tasks it failed.
    @discardableResult
    public func sweep() async -> Int {
        let now = TaskWorker.nowMillis()
        let minutes = Double(timeout.milliseconds) / 60_000
        let limit = minutes >= 1 ? "\(Int(minutes.rounded())) min" : "\(timeout.milliseconds / 1000) s"
        do {
            let stuck = try await store.failStuck(
                createdBefore: now - timeout.milliseconds, message: "timed out: the task did not finish within \(limit) of its creation",
                now: now)
            let abandoned = try await store.failAbandoned(now: now, maxAttempts: maxAttempts)
            if stuck + abandoned > 0 {
                logger.warning("sweeper failed and refunded tasks", metadata: ["timed_out": "\(stuck)", "abandoned": "\(abandoned)"])
            }
            return stuck + abandoned
        } catch {
            if !Task.isShuttingDownGracefully { logger.error("sweeping stuck tasks failed", metadata: ["error": "\(error)"]) }
            return 0
        }
    }
}
