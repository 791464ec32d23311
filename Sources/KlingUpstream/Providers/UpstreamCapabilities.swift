import Foundation

/// A provider that downloads its own results (from a server the operator configured, with its credentials), instead
/// of the safe fetcher, which takes public links only.
public protocol UpstreamResultDownloading: Sendable {
    /// Whether `url` is one of this provider's own (otherwise the safe fetcher gets it).
    func downloads(_ url: String) -> Bool
    /// Streams `url` into `file`, refusing more than `maxBytes`. Throws ``UpstreamError``.
    func download(_ url: String, to file: URL, maxBytes: Int) async throws
}

/// A provider that can be told to stop a task its client cancelled (best effort: errors are ignored).
public protocol UpstreamCancelling: Sendable {
    func cancel(upstreamTaskID: String) async
}
