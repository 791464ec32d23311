import Foundation
import JWTKit

/// Mints the HS256 JWTs Kling's official API takes: `iss` = access key, `exp` = now + lifetime, `nbf` = now - 5 s,
/// signed with the secret key. A token is reused until a minute before it expires.
final class TokenMinter: Sendable {
    struct Claims: JWTPayload {
        var iss: IssuerClaim
        var exp: ExpirationClaim
        var nbf: NotBeforeClaim

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    private let accessKey: String
    private let secretKey: String
    private let lifetime: Duration
    private let cache = TokenCache()

    init(accessKey: String, secretKey: String, lifetime: Duration) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.lifetime = lifetime
    }

    /// A valid token, minted when none is cached or the cached one is about to expire.
    func token() async throws -> String {
        let now = Date()
        if let cached = await cache.token(validAt: now.addingTimeInterval(60)) { return cached }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secretKey), digestAlgorithm: .sha256)
        let seconds = Double(lifetime.components.seconds)
        let expires = now.addingTimeInterval(seconds)
        let claims = Claims(
            iss: IssuerClaim(value: accessKey), exp: ExpirationClaim(value: expires), nbf: NotBeforeClaim(value: now.addingTimeInterval(-5)))
        let token = try await keys.sign(claims)  // jwt-kit writes {"alg":"HS256","typ":"JWT"}
        await cache.store(token, expires: expires)
        return token
    }

    private actor TokenCache {
        var current: (token: String, expires: Date)?
        func token(validAt date: Date) -> String? {
            guard let current, current.expires > date else { return nil }
            return current.token
        }
        func store(_ token: String, expires: Date) { current = (token, expires) }
    }
}
