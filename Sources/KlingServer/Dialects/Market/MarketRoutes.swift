import Foundation
import HTTPTypes
import Hummingbird
import KlingAPI
import KlingCore

/// Market endpoints: `POST /api/v1/jobs/createTask`, `GET /api/v1/jobs/recordInfo`, `GET /api/v1/chat/credit`, and the
/// KlingKit extensions `POST /api/v1/jobs/quote` and `GET /api/v1/jobs/list`.
struct MarketRoutes {
    let tasks: TaskService
    let links: ResultLinks
    let limiter: RateLimiter
    let creates: CreateFlow
    /// Comment lines sent on a quiet progress stream so proxies keep it open.
    var eventKeepAlive: Duration = .seconds(15)
    let answers = TaskAnswerCache()

    func register(on router: Router<KlingRequestContext>) {
        let group = router.group("api/v1")
            .add(middleware: DialectErrorMiddleware<MarketDialect>())
            .add(middleware: APIKeyAuthMiddleware<MarketDialect>(tasks: tasks))
        group.post("jobs/createTask") { request, context in try await create(request, context) }
        group.get("jobs/recordInfo") { request, context in try await recordInfo(request, context) }
        group.get("jobs/list") { request, context in try await list(request, context) }
        group.post("jobs/quote") { request, context in try await quote(request, context) }
        group.get("chat/credit") { request, context in try await credit(request, context) }
        group.get("callbacks") { request, context in try await callbacks(request, context) }
        group.post("jobs/:taskId/cancel") { request, context in try await cancel(request, context) }
        group.get("jobs/:taskId/events") { request, context in try await events(request, context) }
    }

    private func create(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let task = try await creates.create(MarketDialect.self, request, context) { _ in
            try await decode(request, context).map { CreateFlow.Submission(decoded: $0) }
        }
        return MarketDialect.success(.object(["taskId": .string(task.id)]))
    }

    private func quote(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.query, context, tasks: tasks)
        let quote = tasks.quote(try CreateFlow.accepted(try await decode(request, context)).request)
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

    private func decode(_ request: Request, _ context: KlingRequestContext) async throws
        -> Result<DecodedCreateRequest, CreateRequestRejection>
    {
        MarketCreateRequest.decode(Data(buffer: try await request.body.collect(upTo: context.maxUploadSize)))
    }

    private func recordInfo(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.query, context, tasks: tasks)
        let task = try await tasks.task(queryParameter: "taskId", of: request, path: "/api/v1/jobs/recordInfo", account: account)
        let answer = answers.answer(for: task) { task in
            JSONResponse.encode(MarketDialect.Envelope(code: 200, msg: "success", data: MarketTaskDetails(task, links: links)))
        }
        return JSONResponse.make(status: 200, bytes: answer)
    }

    private func credit(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.query, context, tasks: tasks)
        return MarketDialect.success(.number(Double(try await tasks.balance(account: account))))
    }

    /// KlingKit extension: a task's callbacks and every delivery attempt.
    private func callbacks(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.query, context, tasks: tasks)
        let task = try await tasks.task(queryParameter: "taskId", of: request, path: "/api/v1/callbacks", account: account)
        let list = try await tasks.callbacks(taskID: task.id, account: account).map { callback, attempts in
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

    /// KlingKit extension: cancels a queued or running task (refunded); 409 once it has finished.
    private func cancel(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.create, context, tasks: tasks)
        let task = try await tasks.cancel(id: try context.parameters.require("taskId"), account: account)
        return JSONResponse.make(status: 200, body: MarketDialect.Envelope(code: 200, msg: "success", data: MarketTaskDetails(task, links: links)))
    }

    /// KlingKit extension: the task's state and progress as Server-Sent Events (`event: status`, the recordInfo data
    /// object), sent on every change, with keep-alive comments, closed after the terminal event.
    private func events(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.query, context, tasks: tasks)
        let id = try context.parameters.require("taskId")
        guard try await tasks.task(id: id, account: account) != nil else {
            throw APIError.notFound("taskId: no task \(id) for this account")
        }
        let tasks = self.tasks
        let links = self.links
        let keepAlive = eventKeepAlive
        let body = ResponseBody { writer in
            var last: (TaskState, Int)?
            var lastWrite = ContinuousClock.now
            while !Task.isCancelled {
                guard let task = try await tasks.task(id: id, account: account) else { break }
                if last.map({ $0 != (task.state, task.progress) }) ?? true {
                    let data = JSONResponse.encode(MarketTaskDetails(task, links: links))
                    try await writer.write(ByteBuffer(string: "event: status\ndata: \(String(buffer: data))\n\n"))
                    last = (task.state, task.progress)
                    lastWrite = .now
                    if task.state == .succeeded || task.state == .failed { break }
                } else if ContinuousClock.now - lastWrite >= keepAlive {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    lastWrite = .now
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: body)
    }
}
