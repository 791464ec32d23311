import Foundation
import Hummingbird
import KlingAPI
import KlingCore

/// Market endpoints: `POST /api/v1/jobs/createTask`, `GET /api/v1/jobs/recordInfo`, `GET /api/v1/chat/credit`, and the
/// KlingKit extension `POST /api/v1/jobs/quote`.
struct MarketRoutes {
    let tasks: TaskService
    let links: ResultLinks
    let limiter: RateLimiter
    /// Whether callback URLs may point at private addresses (`KLING_FETCH_ALLOW_PRIVATE`).
    let allowPrivateCallbacks: Bool
    let answers = TaskAnswerCache()

    func register(on router: Router<KlingRequestContext>) {
        let group = router.group("api/v1")
            .add(middleware: DialectErrorMiddleware<MarketDialect>())
            .add(middleware: APIKeyAuthMiddleware<MarketDialect>(tasks: tasks))
        group.post("jobs/createTask") { request, context in try await create(request, context) }
        group.get("jobs/recordInfo") { request, context in try await recordInfo(request, context) }
        group.post("jobs/quote") { request, context in try await quote(request, context) }
        group.get("chat/credit") { request, context in try await credit(request, context) }
        group.get("callbacks") { request, context in try await callbacks(request, context) }
    }

    private func create(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try context.requireAccount()
        try limiter.check(.create, context: context, limits: tasks.limits(for: account))
        try await tasks.checkAcceptingCreates()
        let decoded = try await decode(request, context)
        try await checkCallbackAddress(decoded.request.callbackURL, field: "callBackUrl", allowPrivate: allowPrivateCallbacks)
        let task = try await tasks.create(decoded, account: account, dialect: MarketDialect.name)
        return MarketDialect.success(.object(["taskId": .string(task.id)]))
    }

    private func quote(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try context.requireAccount()
        try limiter.check(.query, context: context, limits: tasks.limits(for: account))
        let quote = tasks.quote(try await decode(request, context).request)
        let balance = try await tasks.balance(account: account)
        return MarketDialect.success(
            .object([
                "credits": .number(Double(quote.credits)),
                "balance": .number(Double(balance)),
                "affordable": .bool(balance >= quote.credits),
                "breakdown": .object([
                    "seconds": .number(Double(quote.seconds)),
                    "mode": .string(quote.mode == .fourK ? "4K" : quote.mode.rawValue),
                    "creditsPerSecond": .number(Double(quote.perSecond)),
                    "audio": .bool(quote.audio),
                    "audioFactor": .number(quote.audioFactor),
                ]),
            ]))
    }

    private func decode(_ request: Request, _ context: KlingRequestContext) async throws -> DecodedCreateRequest {
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        switch MarketCreateRequest.decode(Data(buffer: body)) {
        case .failure(let rejection): throw APIError.validation(rejection.message)
        case .success(let decoded): return decoded
        }
    }

    private func recordInfo(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try context.requireAccount()
        try limiter.check(.query, context: context, limits: tasks.limits(for: account))
        guard let id = request.uri.queryParameters["taskId"].map(String.init), !id.isEmpty else {
            throw APIError.validation("taskId: is required (GET /api/v1/jobs/recordInfo?taskId=...)")
        }
        guard let task = try await tasks.task(id: id, account: account) else {
            throw APIError.notFound("taskId: no task \(id) for this account")
        }
        let answer = answers.answer(for: task) { task in
            JSONResponse.encode(MarketDialect.Envelope(code: 200, msg: "success", data: MarketTaskDetails(task, links: links)))
        }
        return JSONResponse.make(status: 200, bytes: answer)
    }

    private func credit(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try context.requireAccount()
        try limiter.check(.query, context: context, limits: tasks.limits(for: account))
        return MarketDialect.success(.number(Double(try await tasks.balance(account: account))))
    }

    /// KlingKit extension: a task's callbacks and every delivery attempt.
    private func callbacks(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try context.requireAccount()
        try limiter.check(.query, context: context, limits: tasks.limits(for: account))
        guard let id = request.uri.queryParameters["taskId"].map(String.init), !id.isEmpty else {
            throw APIError.validation("taskId: is required (GET /api/v1/callbacks?taskId=...)")
        }
        guard try await tasks.task(id: id, account: account) != nil else {
            throw APIError.notFound("taskId: no task \(id) for this account")
        }
        let list = try await tasks.callbacks(taskID: id, account: account).map { callback, attempts in
            CallbackView(
                callbackId: callback.id, url: callback.url, state: callback.state.rawValue, attempts: callback.attempts,
                nextAttemptAt: callback.state == .pending ? callback.nextAttemptAt : nil, lastStatus: callback.lastStatus,
                lastError: callback.lastError,
                deliveries: attempts.map {
                    .init(attempt: $0.attempt, status: $0.status, error: $0.error, durationMs: $0.durationMillis, at: $0.at)
                })
        }
        return JSONResponse.make(status: 200, body: MarketDialect.Envelope(code: 200, msg: "success", data: list))
    }

    private struct CallbackView: Encodable, Sendable {
        struct Delivery: Encodable, Sendable {
            var attempt: Int
            var status: Int?
            var error: String?
            var durationMs: Int64
            var at: Int64
        }
        var callbackId: String
        var url: String
        var state: String
        var attempts: Int
        var nextAttemptAt: Int64?
        var lastStatus: Int?
        var lastError: String?
        var deliveries: [Delivery]
    }
}
