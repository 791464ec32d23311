import Foundation
import Hummingbird
import KlingAPI
import KlingCore

/// CRUN endpoints: `POST /api/v1/client/job/CreateTask`, `GET /api/v1/client/job/TaskInfo`,
/// `GET /api/v1/client/account/balance`.
struct CRUNRoutes {
    let tasks: TaskService
    let links: ResultLinks
    let limiter: RateLimiter
    let creates: CreateFlow
    let answers = TaskAnswerCache()

    func register(on router: Router<KlingRequestContext>) {
        let group = router.group("api/v1/client")
            .add(middleware: DialectErrorMiddleware<CRUNDialect>())
            .add(middleware: APIKeyAuthMiddleware<CRUNDialect>(tasks: tasks))
        group.post("job/CreateTask") { request, context in try await create(request, context) }
        group.get("job/TaskInfo") { request, context in try await taskInfo(request, context) }
        group.get("account/balance") { request, context in try await balance(request, context) }
    }

    private func create(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let task = try await creates.create(CRUNDialect.self, request, context) { _ in
            let body = try await request.body.collect(upTo: context.maxUploadSize)
            return CRUNCreateRequest.decode(Data(buffer: body)).map { CreateFlow.Submission(decoded: $0) }
        }
        return CRUNDialect.success(.object(["task_id": .string(task.id)]))
    }

    private func taskInfo(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.query, context, tasks: tasks)
        let task = try await tasks.task(queryParameter: "task_id", of: request, path: "/api/v1/client/job/TaskInfo", account: account)
        let answer = answers.answer(for: task) { task in
            JSONResponse.encode(CRUNDialect.Envelope(code: 200, message: "success", data: CRUNTaskInfo(task, links: links)))
        }
        return JSONResponse.make(status: 200, bytes: answer)
    }

    private func balance(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.query, context, tasks: tasks)
        return CRUNDialect.success(.object(["balance": .number(Double(try await tasks.balance(account: account)))]))
    }
}
