/// One observation of a task while waiting for it.
public struct TaskProgress: Sendable, Hashable {
    /// The task as the provider reported it.
    public var task: KlingTask
    /// Time since waiting started.
    public var elapsed: Duration
    /// How many queries were made so far (1 for the first update).
    public var queries: Int

    /// The task id (always present, so a paid task is never lost).
    public var taskID: String { task.id }
}

/// The updates of one task until it finishes, polled with the bounded backoff of a ``KlingClient/PollingPolicy``.
///
/// Each iteration queries the provider once (the first at once, then after the policy's interval), yields the task,
/// and ends after yielding a succeeded or failed task. Transient failures (network, 429, 5xx) are retried until the
/// ceiling; then iteration throws a ``KlingError`` of kind `.timeout` whose ``KlingError/taskID`` names the task.
public struct TaskProgressSequence: AsyncSequence, Sendable {
    /// Each element is one observation.
    public typealias Element = TaskProgress

    let client: KlingClient
    /// The task being waited for.
    public let taskID: String
    let policy: KlingClient.PollingPolicy

    /// Starts waiting: the clock for the ceiling starts with the first query.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(sequence: self)
    }

    /// Iterates the updates.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let sequence: TaskProgressSequence
        private var start: ContinuousClock.Instant?
        private var queries = 0
        private var finished = false

        init(sequence: TaskProgressSequence) {
            self.sequence = sequence
        }

        /// The next update, `nil` after the terminal one.
        public mutating func next() async throws -> TaskProgress? {
            guard !finished else { return nil }
            let clock = ContinuousClock()
            let start = self.start ?? clock.now
            self.start = start
            let ceiling = sequence.policy.ceiling
            var lastError: KlingError?
            while true {
                let elapsed = clock.now - start
                if queries > 0 || lastError != nil {
                    let pause = Swift.min(sequence.policy.interval(after: elapsed), Swift.max(.zero, ceiling - elapsed))
                    try await Task.sleep(for: pause)
                }
                let now = clock.now - start
                if now >= ceiling {
                    finished = true
                    var message = "the task was still not finished after \(Self.format(ceiling))"
                    if let lastError { message += " (last error: \(lastError.message))" }
                    throw KlingError(.timeout, message: message, taskID: sequence.taskID)
                }
                do throws(KlingError) {
                    let task = try await sequence.client.task(sequence.taskID)
                    queries += 1
                    if task.state.isTerminal { finished = true }
                    return TaskProgress(task: task, elapsed: clock.now - start, queries: queries)
                } catch where error.isTransient {
                    lastError = error
                } catch {
                    finished = true
                    var error = error
                    if error.taskID == nil { error.taskID = sequence.taskID }
                    throw error
                }
            }
        }

        static func format(_ duration: Duration) -> String {
            let seconds = duration.components.seconds
            return seconds >= 60 && seconds % 60 == 0 ? "\(seconds / 60) min" : "\(seconds) s"
        }
    }
}
