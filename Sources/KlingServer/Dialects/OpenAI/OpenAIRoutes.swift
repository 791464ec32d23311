import Foundation
import HTTPTypes
import Hummingbird
import KlingAPI
import KlingCore
import NIOCore

/// OpenAI Videos endpoints: `POST /v1/videos` (JSON or multipart with `input_reference`), `GET /v1/videos/{id}`,
/// `GET /v1/videos`, `DELETE /v1/videos/{id}`, `GET /v1/videos/{id}/content`.
struct OpenAIRoutes {
    let tasks: TaskService
    let links: ResultLinks
    let limiter: RateLimiter
    let creates: CreateFlow
    let uploads: UploadStore
    let artifactDirectory: URL

    func register(on router: Router<KlingRequestContext>) {
        let group = router.group("v1")
            .add(middleware: DialectErrorMiddleware<OpenAIDialect>())
            .add(middleware: APIKeyAuthMiddleware<OpenAIDialect>(tasks: tasks))
        group.post("videos") { request, context in try await create(request, context) }
        group.get("videos") { request, context in try await list(request, context) }
        group.get("videos/:id") { request, context in try await retrieve(request, context) }
        group.delete("videos/:id") { request, context in try await delete(request, context) }
        group.get("videos/:id/content") { request, context in try await content(request, context) }
    }

    private func video(_ task: TaskRecord) -> Response {
        var response = JSONResponse.make(status: 200, body: OpenAIVideo(task, links: links))
        if task.state == .queued || task.state == .running { response.headers[HTTPField.Name("openai-poll-after-ms")!] = "1000" }
        return response
    }

    private func owned(_ context: KlingRequestContext, _ account: Account) async throws -> TaskRecord {
        let id = try context.parameters.require("id")
        guard let task = try await tasks.task(id: id, account: account) else { throw APIError.notFound("id: no video \(id)") }
        return task
    }

    private func create(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let task = try await creates.create(OpenAIDialect.self, request, context) { account in
            try await decode(request, context, account: account).map { CreateFlow.Submission(decoded: $0) }
        }
        return video(task)
    }

    /// A JSON body, or multipart form fields with `input_reference` as an image file kept as an upload of `account`.
    private func decode(_ request: Request, _ context: KlingRequestContext, account: Account) async throws
        -> Result<DecodedCreateRequest, CreateRequestRejection>
    {
        guard let boundary = MultipartUpload.boundary(request.headers[.contentType]) else {
            return OpenAICreateRequest.decode(Data(buffer: try await request.body.collect(upTo: context.maxUploadSize)))
        }
        let writer = try uploads.writer()
        let form: MultipartUpload
        do {
            form = try await MultipartUpload.read(request.body, boundary: boundary, fileField: "input_reference", into: writer)
        } catch {
            writer.discard()
            throw error
        }
        var firstFrame: String?
        if form.sawFile {
            firstFrame = try uploads.commit(writer, account: account, uploadPath: "openai-input-reference", fileName: nil).downloadUrl
        } else {
            writer.discard()
        }
        return OpenAICreateRequest.decode(form.fields.mapValues { JSONValue.string($0) }, firstFrameURL: firstFrame)
    }

    private func retrieve(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.query, context, tasks: tasks)
        return video(try await owned(context, account))
    }

    private struct Page: Encodable, Sendable {
        var object = "list"
        var data: [OpenAIVideo]
        var hasMore: Bool
        var firstID: String?
        var lastID: String?
        private enum CodingKeys: String, CodingKey { case object, data, hasMore = "has_more", firstID = "first_id", lastID = "last_id" }
    }

    private func list(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.query, context, tasks: tasks)
        let query = request.uri.queryParameters
        let limit = query["limit"].map { Int(String($0)) } ?? 20
        guard let limit, (1...100).contains(limit) else { throw APIError.validation("limit: must be a whole number from 1 to 100") }
        let order = query["order"].map(String.init) ?? "desc"
        guard order == "asc" || order == "desc" else { throw APIError.validation("order: must be asc or desc") }
        let page = try await tasks.list(account: account, limit: limit, after: query["after"].map(String.init), ascending: order == "asc")
        let videos = page.tasks.map { OpenAIVideo($0, links: links) }
        return JSONResponse.make(
            status: 200, body: Page(data: videos, hasMore: page.hasMore, firstID: videos.first?.id, lastID: videos.last?.id))
    }

    private struct Deleted: Encodable, Sendable {
        var id: String
        var object = "video.deleted"
        var deleted = true
    }

    /// A queued or running video is cancelled (and refunded); a finished one has its files deleted.
    private func delete(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.create, context, tasks: tasks)
        let task = try await owned(context, account)
        if task.state == .queued || task.state == .running {
            do {
                _ = try await tasks.cancel(id: task.id, account: account)
            } catch let refusal as RequestRefusal where refusal.code == 409 {
                // Finished meanwhile: delete its files below.
            }
        }
        try? FileManager.default.removeItem(at: artifactDirectory.appendingPathComponent("results/\(task.id)", isDirectory: true))
        try await tasks.markResultsDeleted(id: task.id, account: account)
        return JSONResponse.make(status: 200, body: Deleted(id: task.id))
    }

    private func content(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.query, context, tasks: tasks)
        let task = try await owned(context, account)
        let variant = request.uri.queryParameters["variant"].map(String.init) ?? "video"
        guard variant == "video" || variant == "thumbnail" else { throw APIError.validation("variant: must be video or thumbnail") }
        guard task.state == .succeeded, task.resultsExpiredAt == nil, let result = task.result else {
            throw APIError.notFound("id: video \(task.id) has no content (status \(OpenAIDialect.status(task.state)), or deleted)")
        }
        guard let relative = variant == "video" ? result.videoPath : result.coverPath else {
            throw APIError.notFound("variant: video \(task.id) has no thumbnail")
        }
        let path = artifactDirectory.appendingPathComponent(relative).path
        guard FileManager.default.fileExists(atPath: path) else { throw APIError.notFound("id: the files of video \(task.id) are gone") }
        let body = try await FileIO().loadFile(path: path, context: context)
        return Response(
            status: .ok, headers: [.contentType: variant == "video" ? "video/mp4" : "image/jpeg"], body: body)
    }
}
