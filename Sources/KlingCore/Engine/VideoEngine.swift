import Foundation
import KlingAPI

/// A backend that turns a validated ``GenerationRequest`` into a video file (the preview renderer, an upstream provider).
public protocol VideoEngine: Sendable {
    /// Short stable name shown in task details and logs (`preview`, `official`, ...).
    var name: String { get }

    /// Renders `job` and returns the finished files, which must already be in `job.outputDirectory`.
    ///
    /// Call `progress` with 0-100 as work advances. Throw ``EngineError`` for failures a client should see.
    /// Cancellation of the calling task must stop the render promptly.
    func render(_ job: RenderJob, progress: @escaping @Sendable (Int) async -> Void) async throws -> RenderOutput
}

/// What an engine is asked to produce.
public struct RenderJob: Sendable {
    /// The task being rendered.
    public var taskID: String
    /// The validated canonical request.
    public var request: GenerationRequest
    /// Directory the engine writes its final files into (it exists and is empty or holds a previous attempt's files).
    public var outputDirectory: URL
    /// Directory for temporary files; removed by the caller after the render.
    public var scratchDirectory: URL
    /// The worker's claim on the task (the store's fencing token; 0 outside a worker).
    public var attempt: Int

    public init(taskID: String, request: GenerationRequest, outputDirectory: URL, scratchDirectory: URL, attempt: Int = 0) {
        self.taskID = taskID
        self.request = request
        self.outputDirectory = outputDirectory
        self.scratchDirectory = scratchDirectory
        self.attempt = attempt
    }
}

/// The files and facts of a finished render.
public struct RenderOutput: Sendable, Hashable {
    /// The MP4 file, inside the job's output directory.
    public var videoFile: URL
    /// The JPEG cover, inside the job's output directory.
    public var coverFile: URL?
    public var width: Int
    public var height: Int
    /// Exact duration in seconds.
    public var durationSeconds: Double
    public var hasAudio: Bool

    public init(videoFile: URL, coverFile: URL?, width: Int, height: Int, durationSeconds: Double, hasAudio: Bool) {
        self.videoFile = videoFile
        self.coverFile = coverFile
        self.width = width
        self.height = height
        self.durationSeconds = durationSeconds
        self.hasAudio = hasAudio
    }
}

/// A render failure with the code clients see (422 for inputs that cannot be fetched or decoded, 501 for a failed render).
public struct EngineError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Dialect-neutral failure code: 422 (bad input) or 501 (generation failed).
    public var code: Int
    /// Human-readable reason, naming the input field where one is at fault.
    public var message: String
    /// Whether another attempt could succeed (network blips); bad inputs are not retryable.
    public var retryable: Bool

    public init(code: Int, message: String, retryable: Bool = false) {
        self.code = code
        self.message = message
        self.retryable = retryable
    }

    /// An input that could not be fetched, was too large, or is not a usable image or video.
    public static func badInput(_ message: String) -> EngineError { EngineError(code: 422, message: message) }
    /// The renderer itself failed.
    public static func renderFailed(_ message: String) -> EngineError { EngineError(code: 501, message: message) }

    public var description: String { "\(code): \(message)" }
}

/// Fetches a user-supplied input URL into a local file, with size and time limits.
public protocol InputFetching: Sendable {
    /// Downloads `url` into `destination`. `field` names the request field (e.g. `image_urls[1]`) for error messages.
    /// Throws ``EngineError`` with code 422 when the input cannot be had.
    func fetch(_ url: String, field: String, maxBytes: Int, to destination: URL) async throws
}
