/// Lets at most `count` holders in at once; the rest wait in order.
public actor ConcurrencyLimit {
    private var free: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init(count: Int) { free = max(1, count) }

    /// Waits for a free place.
    public func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    /// Gives a place back (to the longest waiter, if any).
    public func release() {
        if waiters.isEmpty {
            free += 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}
