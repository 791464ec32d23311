import Crypto
import Foundation
import KlingCore
import Synchronization

/// KlingKit's own endpoint for provider callbacks: each task's URL carries a token signed for that task only, and a
/// verified callback wakes the task's follower, which then asks the provider (a callback body is never trusted alone).
///
/// The URL is `{base}/api/v1/upstream/callbacks/{taskId}?token=...`; clients' callback URLs are never given upstream.
public final class UpstreamCallbacks: Sendable {
    /// The path prefix of the endpoint (the task id follows).
    public static let pathPrefix = "/api/v1/upstream/callbacks/"

    private let key: SymmetricKey
    private let baseURL: @Sendable () -> String
    private let followers = Mutex<Followers>(Followers())

    private struct Followers {
        var signals: [String: WakeSignal] = [:]
        /// Tasks called back about before anyone here followed them (bounded: other processes' tasks land here too).
        var early: Set<String> = []
    }

    /// `secret` signs the tokens (an installation secret); `baseURL` is this server's public URL (read at each use,
    /// so a port picked at start-up is seen).
    public init(secret: String, baseURL: @escaping @Sendable () -> String) {
        key = SymmetricKey(data: Data(SHA256.hash(data: Data(("upstream-callbacks:" + secret).utf8))))
        self.baseURL = baseURL
    }

    /// The callback URL for one task.
    public func url(for taskID: String) -> String {
        let escaped = taskID.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? taskID
        return baseURL() + Self.pathPrefix + escaped + "?token=" + token(for: taskID)
    }

    /// The token of a task: base64url HMAC-SHA256 of its id.
    func token(for taskID: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(taskID.utf8), using: key)
        return Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Whether `token` was signed for `taskID` (constant-time comparison).
    public func verify(taskID: String, token: String) -> Bool {
        let expected = Array(self.token(for: taskID).utf8)
        let given = Array(token.utf8)
        guard expected.count == given.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(expected, given) { difference |= a ^ b }
        return difference == 0
    }

    /// Wakes the follower of `taskID` in this process; `false` when none follows it here (polling covers the rest).
    @discardableResult
    public func wake(taskID: String) -> Bool {
        let signal = followers.withLock { followers -> WakeSignal? in
            if let signal = followers.signals[taskID] { return signal }
            if followers.early.count >= 10_000 { followers.early.removeAll() }
            followers.early.insert(taskID)
            return nil
        }
        signal?.notify()
        return signal != nil
    }

    /// Signals for one task's follower, until ``stopFollowing(taskID:)``.
    /// Whether a callback for it already came.
    func follow(taskID: String) -> (signal: WakeSignal, alreadyWoken: Bool) {
        let signal = WakeSignal()
        let woken = followers.withLock { followers in
            followers.signals[taskID] = signal
            return followers.early.remove(taskID) != nil
        }
        return (signal, woken)
    }

    func stopFollowing(taskID: String) {
        followers.withLock { _ = $0.signals.removeValue(forKey: taskID) }
    }
}
