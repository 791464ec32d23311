import Foundation
import Hummingbird
import KlingAPI
import KlingCore

/// Market endpoints: `POST /api/v1/jobs/createTask`, `GET /api/v1/jobs/recordInfo`.
struct MarketRoutes {
    let tasks: TaskService
    let links: ResultLinks
    let answers = TaskAnswerCache()

    func register(on router: Router<KlingRequestContext>) {
        let group = router.group("api/v1")
            .add(middleware: DialectErrorMiddleware<MarketDialect>())
            .add(middleware: APIKeyAuthMiddleware<MarketDialect>(tasks: tasks))
        group.post("jobs/createTask") { request, context in try await create(request, context) }
        group.get("jobs/recordInfo") { request, context in try await recordInfo(request, context) }
    }

    private func create(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try context.requireAccount()
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        switch MarketCreateRequest.decode(Data(buffer: body)) {
        case .failure(let rejection):
            throw APIError.validation(rejection.message)
        case .success(let decoded):
            let task = try await tasks.create(decoded, account: account, dialect: MarketDialect.name)
            return MarketDialect.success(.object(["taskId": .string(task.id)]))
        }
    }

    private func recordInfo(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try context.requireAccount()
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
}
