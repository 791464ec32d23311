import Crypto
import Foundation
import KlingCore
import Synchronization

/// Builds and checks the signed, expiring URLs of files this server hosts (results and uploads):
/// `BASE/files/PATH?expires=UNIX&signature=HEX`, the signature an HMAC-SHA256 over the path and the expiry with
/// this installation's key (shared by every process on the store).
public final class ResultLinks: Sendable {
    private let base = Mutex<String>("")
    private let key: SymmetricKey
    /// How long result links live, counted from the task's completion (`KLING_RESULT_LINK_DAYS`, 14 days).
    public let resultLifetime: Duration

    public init(publicURL: String?, signingKey: String, resultLifetime: Duration = .seconds(14 * 86_400)) {
        key = SymmetricKey(data: Data(base64Encoded: signingKey) ?? Data(signingKey.utf8))
        self.resultLifetime = resultLifetime
        if let publicURL { base.withLock { $0 = Self.trimmed(publicURL) } }
    }

    /// Sets the base from the port actually bound, unless a public URL was configured.
    func useLocalPortIfUnset(_ port: Int) {
        base.withLock { if $0.isEmpty { $0 = "http://localhost:\(port)" } }
    }

    /// The base URL (`KLING_PUBLIC_URL`, or `http://localhost:PORT`).
    public var baseURL: String { base.withLock { $0 } }

    /// The signed URL of a file stored at `path` relative to the artifact directory, valid until `expires`
    /// (Unix seconds).
    public func url(forArtifact path: String, expires: Int64) -> String {
        let encoded =
            "/files/"
            + path.split(separator: "/").map {
                String($0).addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/")))
                    ?? String($0)
            }.joined(separator: "/")
        return baseURL + encoded + "?expires=\(expires)&signature=\(signature(path: encoded, expires: expires))"
    }

    /// Whether `signature` is this server's for `path` (as sent, percent-encoded) and `expires`; in constant time.
    /// Expiry is checked separately (``isCurrent(expires:now:)``) so an expired but authentic link can be renewed.
    public func isAuthentic(path: String, expires: Int64, signature: String) -> Bool {
        APIKeys.constantTimeEquals(self.signature(path: path, expires: expires), signature)
    }

    /// Whether a link expiring at `expires` (Unix seconds) is still valid at `now` (Unix seconds).
    public func isCurrent(expires: Int64, now: Int64) -> Bool { now <= expires }

    /// The artifact path (`results/...`, `uploads/...`) a link of this server points to, when its signature is
    /// authentic and, with `requireCurrent`, it has not expired; `nil` for anything else (other hosts included).
    public func artifactPath(ofLink link: String, requireCurrent: Bool, now: Int64) -> String? {
        guard link.hasPrefix(baseURL + "/files/"), let components = URLComponents(string: link),
            let expires = components.queryItems?.first(where: { $0.name == "expires" })?.value.flatMap({ Int64($0) }),
            let signature = components.queryItems?.first(where: { $0.name == "signature" })?.value,
            isAuthentic(path: components.percentEncodedPath, expires: expires, signature: signature),
            !requireCurrent || isCurrent(expires: expires, now: now)
        else { return nil }
        let path = String(components.path.dropFirst("/files/".count))
        return path.split(separator: "/").contains("..") ? nil : path
    }

    /// When a succeeded task's result links expire (Unix seconds): a fixed time after completion, so the links in its
    /// answers stay the same between polls.
    public func resultExpiry(_ task: TaskRecord) -> Int64 {
        (task.completedAt ?? task.updatedAt) / 1000 + resultLifetime.milliseconds / 1000
    }

    /// The video URL of a succeeded task whose files are kept.
    public func videoURL(_ task: TaskRecord) -> String? {
        guard task.resultsExpiredAt == nil, let result = task.result else { return nil }
        return url(forArtifact: result.videoPath, expires: resultExpiry(task))
    }

    /// The cover URL of a succeeded task whose files are kept.
    public func coverURL(_ task: TaskRecord) -> String? {
        guard task.resultsExpiredAt == nil, let cover = task.result?.coverPath else { return nil }
        return url(forArtifact: cover, expires: resultExpiry(task))
    }

    private func signature(path: String, expires: Int64) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(path)\n\(expires)".utf8), using: key)
        return mac.map { String(format: "%02x", $0) }.joined()
    }

    private static func trimmed(_ url: String) -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }
}
