import Hummingbird
import KlingCore
import Logging
import NIOCore

/// The outermost middleware of a dialect's routes: renders every error in that dialect's envelope, never a bare 500.
struct DialectErrorMiddleware<D: Dialect>: RouterMiddleware {
    typealias Context = KlingRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return D.errorResponse(error)
        } catch let refusal as RequestRefusal {
            return D.errorResponse(
                APIError(code: refusal.code, message: refusal.message, reason: refusal.isActiveTaskLimit ? .tooManyActiveTasks : nil))
        } catch let error as StoreError where error.isNotFound {
            return D.errorResponse(.notFound(error.message))
        } catch let error as StoreError where error.isInsufficientCredits {
            return D.errorResponse(APIError(code: 402, message: error.message))
        } catch let error as StoreError where error.isConflict {
            return D.errorResponse(.validation(error.message))
        } catch is NIOTooManyBytesError {
            return D.errorResponse(.tooLarge("body: request body is larger than 1 MiB"))
        } catch let error as HTTPError where error.status == .contentTooLarge {
            return D.errorResponse(.tooLarge("body: request body is larger than 1 MiB"))
        } catch let error as HTTPError {
            return D.errorResponse(APIError(code: error.status.code, message: error.body ?? error.status.reasonPhrase))
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            return D.errorResponse(.internal("internal server error"))
        }
    }
}

/// Authenticates the dialect's API key and puts the account and the key's hash in the context.
struct APIKeyAuthMiddleware<D: Dialect>: RouterMiddleware {
    typealias Context = KlingRequestContext
    let tasks: TaskService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let key = D.apiKey(from: request), !key.isEmpty else {
            throw APIError(code: 401, message: "missing API key", reason: .credentialsMissing)
        }
        guard key.utf8.count <= 256 else { throw APIError.unauthorized("invalid API key") }
        let keyHash = APIKeys.hash(key)
        guard let account = try await tasks.authenticate(keyHash: keyHash) else {
            throw APIError.unauthorized("invalid API key")
        }
        var context = context
        context.account = account
        context.apiKeyHash = keyHash
        return try await next(request, context)
    }
}
