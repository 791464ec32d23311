/// One generation task as the provider last reported it, in any dialect.
public struct KlingTask: Sendable, Hashable {
    /// Where a task is in its life.
    public enum State: String, Sendable, Hashable, CustomStringConvertible {
        /// Accepted, waiting for a renderer.
        case queued
        /// Rendering.
        case running
        /// Finished with a video.
        case succeeded
        /// Finished without one (failed, timed out or cancelled; a KlingKit server refunds it).
        case failed

        /// Whether the task will not change any more.
        public var isTerminal: Bool { self == .succeeded || self == .failed }
        /// The state's name.
        public var description: String { rawValue }
    }

    /// Why a task failed, in the provider's words.
    public struct Failure: Sendable, Hashable {
        /// The provider's failure code (`499` for a cancelled KlingKit task), if it sent one.
        public var code: String?
        /// The provider's explanation.
        public var message: String
    }

    /// The task id: keep it, it is how a paid task is found again.
    public var id: String
    /// The canonical state.
    public var state: State
    /// The state word the provider used (`waiting`, `pending`, `submitted`, ...).
    public var providerState: String
    /// Progress 0-100 when the provider reports it (a KlingKit extension).
    public var progress: Int?
    /// Result video links once the task succeeded.
    public var videoURLs: [String]
    /// A cover image link, when the provider made one.
    public var coverURL: String?
    /// Why the task failed, once it has.
    public var failure: Failure?
    /// The engine that produced (or is producing) the video, when the provider says (KlingKit's `preview` engine
    /// is not Kling output).
    public var engine: String?
    /// Credits the task cost, when the provider says.
    public var credits: Int?

    /// A task snapshot; providers' answers are decoded into this by ``KlingClient``.
    public init(
        id: String, state: State, providerState: String, progress: Int? = nil, videoURLs: [String] = [], coverURL: String? = nil,
        failure: Failure? = nil, engine: String? = nil, credits: Int? = nil
    ) {
        self.id = id
        self.state = state
        self.providerState = providerState
        self.progress = progress
        self.videoURLs = videoURLs
        self.coverURL = coverURL
        self.failure = failure
        self.engine = engine
        self.credits = credits
    }

    /// The first result video link, once the task succeeded.
    public var videoURL: String? { videoURLs.first }
}
