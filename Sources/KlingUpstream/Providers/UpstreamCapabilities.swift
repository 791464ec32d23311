import Foundation
import KlingAPI

/// A provider that makes its own result file: it downloads from a server the operator configured, with its
/// credentials (the safe fetcher takes public links only), and may assemble several generations into one video.
public protocol UpstreamResultDownloading: Sendable {
    /// Whether `url` (from ``UpstreamStatus/succeeded(videoURL:coverURL:)``) is one this provider fetches itself
    /// (otherwise the safe fetcher gets it).
    func downloads(_ url: String) -> Bool
    /// Writes the finished video of `request` from `url` into `file`, refusing more than `maxBytes` per download;
    /// `scratch` is the job's folder for temporary files. Throws ``UpstreamError`` or ``EngineError``.
    func download(_ url: String, request: GenerationRequest, to file: URL, scratch: URL, maxBytes: Int) async throws
}

/// A provider that can be told to stop a task its client cancelled (best effort: errors are ignored).
public protocol UpstreamCancelling: Sendable {
    func cancel(upstreamTaskID: String) async
}
