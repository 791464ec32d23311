import KlingAPI

/// One provider's API as an upstream engine sees it: forward a canonical request, then read the task's status.
public protocol UpstreamProvider: Sendable {
    /// The engine name shown in task details (`kling-official`, `kling-market`, `kling-crun`).
    var engineName: String { get }

    /// Why this provider cannot produce `request` (a feature its API lacks), or `nil` when it can.
    func unsupportedReason(_ request: GenerationRequest) -> String?

    /// Creates the provider's task and returns its id. `taskID` is ours (sent as an idempotency key where the API has
    /// one); `callbackURL` is KlingKit's own signed endpoint. Throws ``UpstreamError``.
    func submit(_ request: GenerationRequest, taskID: String, callbackURL: String?) async throws -> String

    /// The provider's view of its task. Throws ``UpstreamError``.
    func status(of upstreamTaskID: String, request: GenerationRequest) async throws -> UpstreamStatus
}

/// Where a provider's task is.
public enum UpstreamStatus: Sendable, Hashable {
    /// Accepted, not started.
    case queued
    /// Generating; `progress` 0-100 when the provider reports one.
    case running(progress: Int?)
    /// Done: the provider's (expiring) links to the video and its cover.
    case succeeded(videoURL: String, coverURL: String?)
    /// The provider gave up; `reason` is its own message.
    case failed(reason: String)
}
