import Foundation
import JWTKit

/// Mints the JWTs Kling's official API takes: HS256 (`{"alg":"HS256","typ":"JWT"}`), `iss` = access key,
/// `exp` = now + lifetime, `nbf` = now - 5 s, on whole seconds, signed with the secret key. A token is reused until
/// `renewBefore` ahead of its expiry. Shared by the KlingKit client and the upstream engine that forwards to Kling.
public actor KlingTokenMinter {
    /// The claims of a Kling token.
    struct Claims: JWTPayload {
        var iss: IssuerClaim
        var exp: ExpirationClaim
        var nbf: NotBeforeClaim

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    private let accessKey: String
    private let secretKey: String
    private let lifetime: TimeInterval
    private let renewBefore: TimeInterval
    private var keys: JWTKeyCollection?
    private var cached: (token: String, expires: Date)?

    /// A minter for one access key / secret key pair; tokens live `lifetime` (Kling's own examples use 30 minutes).
    public init(accessKey: String, secretKey: String, lifetime: Duration = .seconds(1800), renewBefore: Duration = .seconds(300)) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.lifetime = TimeInterval(lifetime.components.seconds)
        self.renewBefore = TimeInterval(renewBefore.components.seconds)
    }

    /// A valid token, minted now or reused from the cache.
    public func token(now: Date = Date()) async throws -> String {
        if let cached, cached.expires.timeIntervalSince(now) > renewBefore { return cached.token }
        let keys = await signingKeys()
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let expires = now.addingTimeInterval(lifetime)
        let claims = Claims(iss: .init(value: accessKey), exp: .init(value: expires), nbf: .init(value: now.addingTimeInterval(-5)))
        let token = try await keys.sign(claims)
        cached = (token, expires)
        return token
    }

    /// The secret as a signing key, made on first use.
    private func signingKeys() async -> JWTKeyCollection {
        if let keys { return keys }
        let made = JWTKeyCollection()
        await made.add(hmac: HMACKey(from: secretKey), digestAlgorithm: .sha256)
        keys = made
        return made
    }
}
