import Foundation
import Hummingbird
import JWTKit
import KlingCore

/// Kling dialect auth: `Authorization: Bearer` with an API key, or a JWT (HS256; `iss` = access key; `exp` and `nbf`
/// checked with 5 s of clock skew) signed with the account's secret key.
struct KlingAuthMiddleware: RouterMiddleware {
    typealias Context = KlingRequestContext
    let tasks: TaskService

    /// The claims Kling tokens carry.
    struct Claims: JWTPayload {
        var iss: IssuerClaim
        var exp: ExpirationClaim
        var nbf: NotBeforeClaim?

        static let skew: TimeInterval = 5

        func verify(using algorithm: some JWTAlgorithm) async throws {
            let now = Date()
            if now.timeIntervalSince(exp.value) > Self.skew {
                throw APIError(code: 401, message: "Authorization: the token expired at \(exp.value)", reason: .tokenExpired)
            }
            if let nbf, nbf.value.timeIntervalSince(now) > Self.skew {
                throw APIError(code: 401, message: "Authorization: the token is not valid before \(nbf.value)", reason: .tokenNotYetValid)
            }
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = bearerToken(request), !token.isEmpty else {
            throw APIError(code: 401, message: "Authorization: missing Bearer token (an API key or a JWT)", reason: .credentialsMissing)
        }
        guard token.utf8.count <= 4096 else { throw APIError.unauthorized("Authorization: invalid token") }
        var context = context
        if token.split(separator: ".", omittingEmptySubsequences: false).count == 3 {
            let invalid = APIError.unauthorized("Authorization: invalid token (signature, issuer or format)")
            guard let claims = try? await JWTKeyCollection().unverified(token, as: Claims.self),
                let credential = try await tasks.jwtCredential(accessKey: claims.iss.value)
            else { throw invalid }
            let keys = JWTKeyCollection()
            await keys.add(hmac: HMACKey(from: credential.secretKey), digestAlgorithm: .sha256)
            do {
                _ = try await keys.verify(token, as: Claims.self)
            } catch let error as APIError {
                throw error
            } catch {
                throw invalid
            }
            context.account = credential.account
            context.apiKeyHash = APIKeys.hash("jwt:" + claims.iss.value)
        } else {
            let keyHash = APIKeys.hash(token)
            guard token.utf8.count <= 256, let account = try await tasks.authenticate(keyHash: keyHash) else {
                throw APIError.unauthorized("Authorization: invalid API key")
            }
            context.account = account
            context.apiKeyHash = keyHash
        }
        return try await next(request, context)
    }
}
