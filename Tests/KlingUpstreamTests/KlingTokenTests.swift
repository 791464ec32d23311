import Foundation
import JWTKit
import Testing

import KlingJWT

/// The JWTs sent to Kling's official API: HS256, `iss` = access key, `exp` = now + 1800, `nbf` = now - 5, reused until
/// near expiry.
@Suite struct KlingTokenTests {
    struct Claims: JWTPayload {
        var iss: IssuerClaim
        var exp: ExpirationClaim
        var nbf: NotBeforeClaim
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    static func decodePart(_ part: Substring) throws -> [String: Any] {
        var text = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        let data = try #require(Data(base64Encoded: text))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func tokensCarryTheClaimsKlingChecks() async throws {
        let signer = KlingTokenMinter(accessKey: "AK123", secretKey: "SK456-0123456789abcdefghijklmnopqrstuv")
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let token = try await signer.token(now: now)
        let parts = token.split(separator: ".")
        #expect(parts.count == 3)
        let header = try Self.decodePart(parts[0])
        #expect(header["alg"] as? String == "HS256")
        #expect(header["typ"] as? String == "JWT")
        let claims = try Self.decodePart(parts[1])
        #expect(claims["iss"] as? String == "AK123")
        #expect((claims["exp"] as? NSNumber)?.intValue == 1_800_001_800)
        #expect((claims["nbf"] as? NSNumber)?.intValue == 1_799_999_995)

        // Signed with the secret key: verifies with it, not with another.
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: "SK456-0123456789abcdefghijklmnopqrstuv"), digestAlgorithm: .sha256)
        let verified = try await keys.verify(token, as: Claims.self)
        #expect(verified.iss.value == "AK123")
        let wrong = JWTKeyCollection()
        await wrong.add(hmac: HMACKey(from: "other-0123456789abcdefghijklmnopqrstuv"), digestAlgorithm: .sha256)
        await #expect(throws: (any Error).self) { try await wrong.verify(token, as: Claims.self) }
    }

    @Test func tokensAreReusedUntilFiveMinutesBeforeExpiry() async throws {
        let signer = KlingTokenMinter(accessKey: "AK", secretKey: "SK-0123456789abcdefghijklmnopqrstuvwx")
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let first = try await signer.token(now: start)
        #expect(try await signer.token(now: start.addingTimeInterval(1400)) == first)
        let renewed = try await signer.token(now: start.addingTimeInterval(1501))
        #expect(renewed != first)
        let claims = try Self.decodePart(renewed.split(separator: ".")[1])
        #expect((claims["exp"] as? NSNumber)?.intValue == 1_800_001_501 + 1800)
    }
}
