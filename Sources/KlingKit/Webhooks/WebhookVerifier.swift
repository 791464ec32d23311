import Crypto
import Foundation
import KlingAPI

/// Checks that a callback really comes from the provider: Standard Webhooks signatures (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`) and the Market dialect's `X-Webhook-Timestamp` / `X-Webhook-Signature`.
///
/// ```swift
/// let verifier = WebhookVerifier(secret: "whsec_...")
/// let message = try verifier.verify(body: body, headers: headers)  // throws KlingError(.signature) when forged
/// // deduplicate on message.id: retries carry the same id
/// ```
///
/// Comparisons are constant-time; timestamps further than ``tolerance`` from now are refused (replays).
public struct WebhookVerifier: Sendable {
    /// A verified Standard Webhooks message.
    public struct Message: Sendable, Hashable {
        /// `webhook-id`: the same on every retry of one message, so receivers can deduplicate.
        public var id: String
        /// `webhook-timestamp`: when this attempt was signed.
        public var timestamp: Date
    }

    private let keys: [SymmetricKey]
    /// How far a timestamp may be from now. Default 5 minutes.
    public var tolerance: Duration

    /// A verifier for one `whsec_` secret (`kling-server webhooks secret --account NAME`).
    public init(secret: String, tolerance: Duration = .seconds(300)) {
        self.init(secrets: [secret], tolerance: tolerance)
    }

    /// A verifier accepting any of several secrets (while rotating).
    public init(secrets: [String], tolerance: Duration = .seconds(300)) {
        self.keys = secrets.compactMap(Self.key(of:))
        self.tolerance = tolerance
    }

    /// The HMAC key of a secret: the base64-decoded bytes after `whsec_` (a secret without the prefix is taken as
    /// base64 too).
    static func key(of secret: String) -> SymmetricKey? {
        let encoded = secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret
        guard let bytes = Data(base64Encoded: encoded), !bytes.isEmpty else { return nil }
        return SymmetricKey(data: bytes)
    }

    /// Verifies a Standard Webhooks v1 signature over `id.timestamp.body`; any `v1,` signature in the
    /// space-separated header matching any secret suffices.
    /// - Parameter headers: the request's headers; names are matched case-insensitively.
    /// - Throws: ``KlingError`` of kind `.signature` naming what is wrong.
    @discardableResult
    public func verify(body: Data, headers: [String: String], now: Date = Date()) throws(KlingError) -> Message {
        let fields = Self.lowercased(headers)
        guard let id = fields["webhook-id"], let stamp = fields["webhook-timestamp"], let signature = fields["webhook-signature"] else {
            throw KlingError(.signature, message: "webhook-id, webhook-timestamp and webhook-signature headers are required")
        }
        let timestamp = try checkTimestamp(stamp, now: now)
        var signed = Data("\(id).\(stamp).".utf8)
        signed.append(body)
        let presented = signature.split(separator: " ").compactMap { part -> Data? in
            guard part.hasPrefix("v1,") else { return nil }
            return Data(base64Encoded: String(part.dropFirst(3)))
        }
        guard matches(presented, signed) else {
            throw KlingError(.signature, message: "webhook-signature: no signature matches the body with the configured secrets")
        }
        return Message(id: id, timestamp: timestamp)
    }

    /// Verifies the Market dialect's `X-Webhook-Signature` = base64(HMAC-SHA256(key, taskId + "." + timestamp)) with
    /// the task id read from the body's `data.taskId`. It signs only the task id and time: prefer ``verify(body:headers:now:)``,
    /// which covers the body, when the `webhook-*` headers are present.
    /// - Returns: the task id the callback is about.
    @discardableResult
    public func verifyMarket(body: Data, headers: [String: String], now: Date = Date()) throws(KlingError) -> String {
        let fields = Self.lowercased(headers)
        guard let stamp = fields["x-webhook-timestamp"], let signature = fields["x-webhook-signature"] else {
            throw KlingError(.signature, message: "X-Webhook-Timestamp and X-Webhook-Signature headers are required")
        }
        guard let json = JSONValue.parse(body), let taskID = json["data"]?["taskId"]?.stringValue else {
            throw KlingError(.signature, message: "body: a Market callback names its task in data.taskId")
        }
        _ = try checkTimestamp(stamp, now: now)
        guard let presented = Data(base64Encoded: signature), matches([presented], Data("\(taskID).\(stamp)".utf8)) else {
            throw KlingError(.signature, message: "X-Webhook-Signature: does not match the task id and timestamp with the configured secrets")
        }
        return taskID
    }

    private func checkTimestamp(_ text: String, now: Date) throws(KlingError) -> Date {
        guard let seconds = Int64(text) else { throw KlingError(.signature, message: "webhook timestamp: not a number of seconds") }
        let timestamp = Date(timeIntervalSince1970: TimeInterval(seconds))
        let limit = TimeInterval(tolerance.components.seconds)
        guard abs(timestamp.timeIntervalSince(now)) <= limit else {
            throw KlingError(.signature, message: "webhook timestamp: \(seconds) is more than \(Int(limit)) s from now (a replay, or a wrong clock)")
        }
        return timestamp
    }

    private func matches(_ presented: [Data], _ signed: Data) -> Bool {
        var found = false
        for key in keys {
            for signature in presented where HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signed, using: key) {
                found = true
            }
        }
        return found
    }

    private static func lowercased(_ headers: [String: String]) -> [String: String] {
        Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
    }
}
