/// Spaces one provider's queries evenly at its allowed rate, shared by every task followed on it, and pauses them all
/// when the provider answers 429 (for its `Retry-After`, or a default pause).
///
/// Each caller reserves the next free slot and sleeps until it; queries therefore never start closer together than
/// `1 / rate`, however many tasks are open. A pause that begins after a slot was reserved moves that caller on.
public actor ProviderRateLimiter {
    private let interval: Duration
    private let clock = ContinuousClock()
    private var nextSlot: ContinuousClock.Instant
    private var pausedUntil: ContinuousClock.Instant
    /// Queries let through so far.
    public private(set) var granted = 0

    /// A limiter allowing `perSecond` queries per second (at least one every 100 s).
    public init(perSecond: Double) {
        let rate = max(0.01, perSecond)
        interval = .nanoseconds(Int64((1_000_000_000 / rate).rounded()))
        nextSlot = clock.now
        pausedUntil = clock.now
    }

    /// Waits for this caller's turn. Throws `CancellationError` when the caller is cancelled while waiting.
    public func acquire() async throws {
        while true {
            let now = clock.now
            let slot = max(now, nextSlot, pausedUntil)
            nextSlot = slot + interval
            if slot > now { try await Task.sleep(until: slot, clock: clock) }
            if clock.now >= pausedUntil {
                granted += 1
                return
            }
        }
    }

    /// Stops every query for `duration` (a 429's `Retry-After`).
    public func pause(for duration: Duration) {
        let until = clock.now + duration
        if until > pausedUntil { pausedUntil = until }
    }
}
