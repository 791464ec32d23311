import Foundation
import Hummingbird
import KlingAPI
import KlingCore
import NIOCore

/// Kling official endpoints: `POST /v1/videos/text2video|image2video`, `GET /v1/videos/{kind}/{task_id}` (a task id or
/// the caller's `external_task_id`), `GET /v1/videos/{kind}?pageNum=&pageSize=`.
struct KlingOfficialRoutes {
    let tasks: TaskService
    let links: ResultLinks
    let limiter: RateLimiter
    let creates: CreateFlow
    let uploads: UploadStore

    func register(on router: Router<KlingRequestContext>) {
        let group = router.group("v1/videos")
            .add(middleware: DialectErrorMiddleware<KlingOfficialDialect>())
            .add(middleware: KlingAuthMiddleware(tasks: tasks))
        for kind in KlingOfficialCreateRequest.Kind.allCases {
            group.post(RouterPath(kind.rawValue)) { request, context in try await create(kind, request, context) }
            group.get(RouterPath(kind.rawValue)) { request, context in try await list(request, context) }
            group.get(RouterPath("\(kind.rawValue)/:taskId")) { request, context in try await query(request, context) }
        }
    }

    private struct Created: Encodable, Sendable {
        var taskID: String
        var taskInfo: [String: String]
        var taskStatus: String
        var createdAt: Int64
        var updatedAt: Int64
        private enum CodingKeys: String, CodingKey {
            case taskID = "task_id", taskInfo = "task_info", taskStatus = "task_status", createdAt = "created_at", updatedAt = "updated_at"
        }
    }

    private func create(_ kind: KlingOfficialCreateRequest.Kind, _ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let task = try await creates.create(KlingOfficialDialect.self, request, context) { account in
            try await decode(kind, request, account: account).map { CreateFlow.Submission(decoded: $0.request, externalID: $0.externalTaskID) }
        }
        let created = Created(
            taskID: task.id, taskInfo: task.externalID.map { ["external_task_id": $0] } ?? [:], taskStatus: "submitted",
            createdAt: task.createdAt, updatedAt: task.updatedAt)
        return JSONResponse.make(status: 200, body: KlingOfficialDialect.Envelope(data: created))
    }

    /// The body, after `image` / `image_tail` given as raw base64 are kept as uploads of `account` and replaced by their links.
    private func decode(_ kind: KlingOfficialCreateRequest.Kind, _ request: Request, account: Account) async throws
        -> Result<KlingOfficialCreateRequest.Decoded, CreateRequestRejection>
    {
        var body = Data(buffer: try await request.body.collect(upTo: 25 * 1024 * 1024))
        if kind == .imageToVideo, case .object(var object)? = JSONValue.parse(body) {
            for key in ["image", "image_tail"] {
                guard case .string(let value)? = object[key], !value.isEmpty, !value.hasPrefix("http://"), !value.hasPrefix("https://") else {
                    continue
                }
                guard !value.hasPrefix("data:"), let bytes = Data(base64Encoded: value, options: .ignoreUnknownCharacters), !bytes.isEmpty else {
                    throw APIError.validation("\(key): must be an http(s) URL or raw base64 (without a data: prefix)")
                }
                do {
                    object[key] = .string(try uploads.store(bytes, account: account, uploadPath: "kling-\(key)", fileName: nil).downloadUrl)
                } catch let error as APIError where error.code != 413 {
                    throw error
                } catch {
                    throw APIError.validation("\(key): \((error as? APIError)?.message ?? "could not be stored")")
                }
            }
            body = Data(JSONValue.object(object).jsonString().utf8)
        }
        return KlingOfficialCreateRequest.decode(body, kind: kind)
    }

    private func query(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.query, context, tasks: tasks)
        let id = try context.parameters.require("taskId")
        var found = try await tasks.task(id: id, account: account)
        if found == nil { found = try await tasks.task(externalID: id, account: account) }
        guard let task = found else { throw APIError.notFound("task_id: no task \(id) for this account") }
        return JSONResponse.make(status: 200, body: KlingOfficialDialect.Envelope(data: KlingTaskData(task, links: links)))
    }

    private func list(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.query, context, tasks: tasks)
        let query = request.uri.queryParameters
        let page = query["pageNum"].map { Int(String($0)) } ?? 1
        let size = query["pageSize"].map { Int(String($0)) } ?? 30
        guard let page, (1...1000).contains(page) else { throw APIError.validation("pageNum: must be a whole number from 1 to 1000") }
        guard let size, (1...500).contains(size) else { throw APIError.validation("pageSize: must be a whole number from 1 to 500") }
        let found = try await tasks.list(account: account, limit: size, after: nil, ascending: false, offset: (page - 1) * size)
        return JSONResponse.make(
            status: 200, body: KlingOfficialDialect.Envelope(data: found.tasks.map { KlingTaskData($0, links: links) }))
    }
}
