import Foundation
import JWTKit

/// Mints the JWTs Kling's official API takes: HS256, `iss` = access key, `exp` = now + 30 min, `nbf` = now - 5 s, signed
/// with the secret key. A token is reused until 5 minutes before it expires.
actor KlingTokenSigner {
    /// The claims of a Kling token.
    struct Claims: JWTPayload {
        var iss: IssuerClaim
        var exp: ExpirationClaim
        var nbf: NotBeforeClaim

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    private let accessKey: String
    private let keys: JWTKeyCollection
    private let lifetime: TimeInterval
    private let renewBefore: TimeInterval
    private var cached: (token: String, expires: Date)?

    init(accessKey: String, secretKey: String, lifetime: TimeInterval = 1800, renewBefore: TimeInterval = 300) async {
        self.accessKey = accessKey
        self.lifetime = lifetime
        self.renewBefore = renewBefore
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secretKey), digestAlgorithm: .sha256)
    }

    /// A valid token, minted now or reused from the cache.
    func token(now: Date = Date()) async throws -> String {
        if let cached, cached.expires.timeIntervalSince(now) > renewBefore { return cached.token }
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let expires = now.addingTimeInterval(lifetime)
        let claims = Claims(iss: .init(value: accessKey), exp: .init(value: expires), nbf: .init(value: now.addingTimeInterval(-5)))
        let token = try await keys.sign(claims)
        cached = (token, expires)
        return token
    }
}
