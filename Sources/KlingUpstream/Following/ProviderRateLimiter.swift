/// Lets one provider's calls through one at a time at its allowed rate, shared by every task followed on it, and
/// pauses them all when the provider answers 429 (for its `Retry-After`, or a default pause).
///
/// Callers queue in order; a single pacer releases one every `1 / rate` on an ideal timeline. A pacer that wakes a
/// little late keeps to the timeline (no slow drift below the rate); one that fell behind by more than a slot (a busy
/// machine) starts a new timeline instead of catching up, so calls never go out in a burst: in any second about
/// `rate + 1` calls start, however many tasks are open.
public actor ProviderRateLimiter {
    private let interval: Duration
    private let clock = ContinuousClock()
    private var ideal: ContinuousClock.Instant?
    private var pausedUntil: ContinuousClock.Instant
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var pacing = false
    /// Calls let through so far.
    public private(set) var granted = 0

    /// A limiter allowing `perSecond` calls per second (at least one every 100 s).
    public init(perSecond: Double) {
        let rate = max(0.01, perSecond)
        interval = .nanoseconds(Int64((1_000_000_000 / rate).rounded()))
        pausedUntil = clock.now
    }

    /// Waits for this caller's turn. Throws `CancellationError` when the caller was cancelled meanwhile.
    public func acquire() async throws {
        await withCheckedContinuation { continuation in
            waiters.append(continuation)
            if !pacing {
                pacing = true
                Task { await self.pace() }
            }
        }
        try Task.checkCancellation()
    }

    /// Stops every call for `duration` (a 429's `Retry-After`).
    public func pause(for duration: Duration) {
        let until = clock.now + duration
        if until > pausedUntil { pausedUntil = until }
    }

    private func pace() async {
        while !waiters.isEmpty {
            let target = max(ideal ?? clock.now, pausedUntil)
            if target > clock.now { try? await Task.sleep(until: target, clock: clock) }
            let now = clock.now
            if now < pausedUntil { continue }
            // Behind by more than a slot: a new timeline from now rather than a burst to catch up.
            let slot = now - target > interval ? now : target
            ideal = slot + interval
            granted += 1
            waiters.removeFirst().resume()
        }
        pacing = false
    }
}
