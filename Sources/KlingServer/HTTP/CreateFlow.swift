import HTTPTypes
import Hummingbird
import KlingAPI
import KlingCore

/// The one create sequence every dialect runs: admission before the body is read (the account, its create rate limit,
/// maintenance mode), then, once the dialect has decoded its body, the callback address check, the idempotency key,
/// the priced and charged insert (``TaskService/create(_:account:dialect:idempotencyKey:externalID:)``) and the log
/// line. A dialect's route only decodes its wire format and renders its answer.
struct CreateFlow: Sendable {
    let tasks: TaskService
    let limiter: RateLimiter
    /// Whether callback URLs may point at private addresses (`KLING_FETCH_ALLOW_PRIVATE`).
    let allowPrivateCallbacks: Bool

    /// A create body as its dialect decoded it.
    struct Submission: Sendable {
        var decoded: DecodedCreateRequest
        /// The caller's own id for the task (Kling's `external_task_id`): unique per account, and the idempotency key
        /// of a create that sends no `Idempotency-Key`, so a retried create returns the first task.
        var externalID: String? = nil
    }

    /// Admits, decodes (`decode` gets the authenticated account, e.g. to keep inline images as its uploads), checks and
    /// stores one create; returns the stored task (or, for a repeated idempotent create, the first one).
    func create<D: Dialect>(
        _ dialect: D.Type, _ request: Request, _ context: KlingRequestContext,
        decode: (Account) async throws -> Result<Submission, CreateRequestRejection>
    ) async throws -> TaskRecord {
        let account = try limiter.admit(.create, context, tasks: tasks)
        try await tasks.checkAcceptingCreates()
        let submission = try Self.accepted(try await decode(account))
        if let field = D.callbackField {
            try await checkCallbackAddress(submission.decoded.request.callbackURL, field: field, allowPrivate: allowPrivateCallbacks)
        }
        let key = try idempotencyKey(request) ?? submission.externalID.map { "external_task_id:" + $0 }
        let task = try await tasks.create(
            submission.decoded, account: account, dialect: D.name, idempotencyKey: key, externalID: submission.externalID)
        context.logAccepted(task, dialect: D.name)
        return task
    }

    /// The decoded value, or the rejection as a validation error whose message names every offending field.
    static func accepted<T>(_ decoded: Result<T, CreateRequestRejection>) throws -> T {
        switch decoded {
        case .failure(let rejection): throw APIError.validation(rejection.message)
        case .success(let value): return value
        }
    }
}

/// The `Idempotency-Key` header, checked: 1-255 visible ASCII characters.
func idempotencyKey(_ request: Request) throws -> String? {
    guard let value = request.headers[HTTPField.Name("Idempotency-Key")!] else { return nil }
    guard (1...255).contains(value.utf8.count), value.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
        throw APIError.validation("Idempotency-Key: must be 1-255 visible ASCII characters")
    }
    return value
}
