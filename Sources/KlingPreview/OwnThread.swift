import Foundation

/// Runs blocking work (a system call, a library that encodes or muxes) on a thread of its own, so it never holds up
/// Swift's cooperative pool, which has only as many threads as the machine has cores.
enum OwnThread {
    /// The result of `work`, run on a new thread.
    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
        }
    }
}
