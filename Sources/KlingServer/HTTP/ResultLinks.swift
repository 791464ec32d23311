import Foundation
import KlingCore
import Synchronization

/// Builds the public URLs of result files from `KLING_PUBLIC_URL` (default `http://localhost:PORT`).
public final class ResultLinks: Sendable {
    private let base = Mutex<String>("")

    public init(publicURL: String?) {
        if let publicURL { base.withLock { $0 = Self.trimmed(publicURL) } }
    }

    /// Sets the base from the port actually bound, unless a public URL was configured.
    func useLocalPortIfUnset(_ port: Int) {
        base.withLock { if $0.isEmpty { $0 = "http://localhost:\(port)" } }
    }

    /// The URL of a file stored at `path` relative to the artifact directory.
    public func url(forArtifact path: String) -> String {
        let encoded = path.split(separator: "/").map {
            String($0).addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? String($0)
        }.joined(separator: "/")
        return base.withLock { $0 } + "/files/" + encoded
    }

    /// The video URL of a succeeded task.
    public func videoURL(_ task: TaskRecord) -> String? { task.result.map { url(forArtifact: $0.videoPath) } }
    /// The cover URL of a succeeded task.
    public func coverURL(_ task: TaskRecord) -> String? { task.result?.coverPath.map { url(forArtifact: $0) } }

    private static func trimmed(_ url: String) -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }
}
