import Crypto
import Foundation

/// Makes new API keys and hashes presented ones; keys are never stored in clear.
public enum APIKeys {
    /// Prefix of every key KlingKit issues.
    public static let prefix = "kk_"

    /// A new random key (`kk_` + 43 base64url characters, 256 bits).
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let text = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return prefix + text
    }

    /// Hex SHA-256 of a key, the form it is stored and looked up in.
    public static func hash(_ key: String) -> String {
        hex(SHA256.hash(data: Data(key.utf8)))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Lowercase hex of bytes.
    static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var characters: [UInt8] = []
        characters.reserveCapacity(64)
        for byte in bytes {
            characters.append(hexDigits[Int(byte >> 4)])
            characters.append(hexDigits[Int(byte & 0x0f)])
        }
        return String(decoding: characters, as: UTF8.self)
    }

    /// Constant-time equality of two hashes (or any two strings of equal length).
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }

    /// A random identifier: 32 lowercase hex characters (128 bits), unguessable.
    public static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        return hex((0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
