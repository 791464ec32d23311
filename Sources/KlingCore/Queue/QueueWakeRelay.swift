import Logging
import ServiceLifecycle

/// A store that announces, across processes, when tasks become claimable (PostgreSQL's LISTEN/NOTIFY).
public protocol QueueAnnouncing: Sendable {
    /// Calls `queued` once when listening starts and then each time any process queued a task or returned one to the
    /// queue, until the task is cancelled; throws when the connection is lost.
    func listenForQueuedTasks(_ queued: @escaping @Sendable () -> Void) async throws
}

/// Wakes this process's idle workers when another process queues a task, so claims do not wait for the next poll.
///
/// Runs only on stores that announce (``QueueAnnouncing``); a lost connection is re-established with backoff, and the
/// workers' polling covers any notification lost meanwhile.
public struct QueueWakeRelay: Service {
    private let store: any QueueStore
    private let signal: WakeSignal
    private let logger: Logger

    public init(store: any QueueStore, signal: WakeSignal, logger: Logger) {
        self.store = store
        self.signal = signal
        self.logger = logger
    }

    public func run() async throws {
        guard let announcing = store as? any QueueAnnouncing else {
            try? await gracefulShutdown()
            return
        }
        let signal = self.signal
        let logger = self.logger
        await cancelWhenGracefulShutdown {
            var delay = Duration.milliseconds(100)
            while !Task.isCancelled {
                let started = ContinuousClock.now
                do {
                    try await announcing.listenForQueuedTasks { signal.notify() }
                } catch {
                    if Task.isCancelled { break }
                    logger.warning("listening for queued tasks failed; workers poll until it is back", metadata: ["error": "\(error)"])
                }
                if ContinuousClock.now - started > .seconds(30) { delay = .milliseconds(100) }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}
