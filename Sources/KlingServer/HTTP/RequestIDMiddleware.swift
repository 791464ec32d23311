import HTTPTypes
import Hummingbird
import KlingCore
import Logging

/// The outermost middleware: gives every request an id (the caller's `X-Request-Id` when it is 1-128 visible ASCII
/// characters, else a new one), puts it as `request_id` in the request's logger metadata, echoes it in the response's
/// `X-Request-Id` header (errors included), and logs one access line per request at debug level (errors at error level).
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = KlingRequestContext
    static let header = HTTPField.Name("X-Request-Id")!

    /// The caller's id when acceptable, else a fresh one.
    static func requestID(_ request: Request) -> String {
        if let given = request.headers[header], (1...128).contains(given.utf8.count),
            given.utf8.allSatisfy({ (0x21...0x7E).contains($0) })
        {
            return given
        }
        return "req_" + APIKeys.randomID()
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let id = Self.requestID(request)
        var context = context
        context.logger[metadataKey: "request_id"] = .string(id)
        let started = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[Self.header] = id
        let status = response.status.code
        let level: Logger.Level = status >= 500 ? .error : .debug
        context.logger.log(
            level: level, "request",
            metadata: [
                "method": .string(request.method.rawValue), "path": .string(request.uri.path), "status": .stringConvertible(status),
                "duration_ms": .stringConvertible((ContinuousClock.now - started).milliseconds),
            ])
        return response
    }
}

extension KlingRequestContext {
    /// Logs an accepted create with the task's id (and, through the context's logger, the request's id).
    func logAccepted(_ task: TaskRecord, dialect: String) {
        logger.info("create accepted", metadata: ["task_id": .string(task.id), "dialect": .string(dialect), "credits": .stringConvertible(task.credits)])
    }
}
