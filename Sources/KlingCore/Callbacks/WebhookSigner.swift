import Crypto
import Foundation

/// Standard Webhooks v1 signing with `whsec_` secrets, plus the Market dialect's task-id signature.
public enum WebhookSigner {
    /// A new secret: `whsec_` + base64 of 32 random bytes.
    public static func newSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return "whsec_" + Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
    }

    /// The HMAC key of a secret: the decoded bytes after `whsec_`.
    public static func key(of secret: String) -> SymmetricKey? {
        guard secret.hasPrefix("whsec_"), let bytes = Data(base64Encoded: String(secret.dropFirst(6))), bytes.count >= 24 else {
            return nil
        }
        return SymmetricKey(data: bytes)
    }

    /// The `webhook-signature` header value: `v1,<base64>` per secret, space-separated (several while rotating).
    public static func signature(secrets: [String], id: String, timestamp: Int64, body: Data) -> String {
        var signed = Data("\(id).\(timestamp).".utf8)
        signed.append(body)
        return secrets.compactMap(key(of:)).map { key in
            "v1," + Data(HMAC<SHA256>.authenticationCode(for: signed, using: key)).base64EncodedString()
        }.joined(separator: " ")
    }

    /// The Market dialect's `X-Webhook-Signature`: base64(HMAC-SHA256(key, taskId + "." + timestamp)) with the
    /// current secret's key.
    public static func marketSignature(secret: String, taskID: String, timestamp: Int64) -> String? {
        guard let key = key(of: secret) else { return nil }
        return Data(HMAC<SHA256>.authenticationCode(for: Data("\(taskID).\(timestamp)".utf8), using: key)).base64EncodedString()
    }

    /// Checks a Standard Webhooks signature header against the secrets (any one matching suffices), in constant time,
    /// and the timestamp against `now` within `tolerance` seconds.
    public static func verify(
        secrets: [String], id: String, timestamp: Int64, body: Data, signatureHeader: String, now: Int64, tolerance: Int64 = 300
    ) -> Bool {
        guard abs(now - timestamp) <= tolerance else { return false }
        let presented = signatureHeader.split(separator: " ").compactMap { part -> Data? in
            guard part.hasPrefix("v1,") else { return nil }
            return Data(base64Encoded: String(part.dropFirst(3)))
        }
        var signed = Data("\(id).\(timestamp).".utf8)
        signed.append(body)
        for key in secrets.compactMap(key(of:)) {
            for signature in presented where HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signed, using: key) {
                return true
            }
        }
        return false
    }
}
