import Synchronization

/// Tells idle workers in this process that a task was just queued, so they claim it without waiting for the next poll.
public final class WakeSignal: Sendable {
    private let generation = Atomic<UInt64>(0)

    public init() {}

    /// Wakes every idle worker.
    public func notify() { generation.add(1, ordering: .releasing) }

    /// Current generation; changes on every ``notify()``.
    public var current: UInt64 { generation.load(ordering: .acquiring) }
}
