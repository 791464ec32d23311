import Foundation
import Hummingbird
import KlingAPI
import KlingCore
import NIOCore

/// Market file uploads (`POST /api/file-base64-upload`, `/api/file-stream-upload`, `/api/file-url-upload`) and
/// `POST /api/v1/common/download-url`.
struct UploadRoutes {
    let tasks: TaskService
    let uploads: UploadStore
    let links: ResultLinks
    let limiter: RateLimiter
    let fetcher: any InputFetching

    /// base64 bodies are held in memory to decode; larger files go through the stream or URL upload.
    static let maxBase64Body = 70 * 1024 * 1024

    func register(on router: Router<KlingRequestContext>) {
        let group = router.group("api")
            .add(middleware: DialectErrorMiddleware<MarketDialect>())
            .add(middleware: APIKeyAuthMiddleware<MarketDialect>(tasks: tasks))
        group.post("file-base64-upload") { request, context in try await base64(request, context) }
        group.post("file-stream-upload") { request, context in try await stream(request, context) }
        group.post("file-url-upload") { request, context in try await fromURL(request, context) }
        group.post("v1/common/download-url") { request, context in try await downloadURL(request, context) }
    }

    private struct Base64Body: Decodable { var base64Data: String; var uploadPath: String; var fileName: String? }
    private struct URLBody: Decodable { var fileUrl: String; var uploadPath: String; var fileName: String? }
    private struct LinkBody: Decodable { var url: String }

    private struct Answer<Payload: Encodable & Sendable>: Encodable, Sendable {
        var success = true
        var code = 200
        var msg: String
        var data: Payload
    }

    private func answer(_ uploaded: UploadStore.Uploaded) -> Response {
        JSONResponse.make(status: 200, body: Answer(msg: "File uploaded successfully", data: uploaded))
    }

    private func json<T: Decodable>(_ type: T.Type, _ request: Request, _ context: KlingRequestContext, limit: Int) async throws -> T {
        let bytes = try await request.body.collect(upTo: limit)
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: bytes))
        } catch DecodingError.keyNotFound(let key, _) {
            throw APIError.validation("\(key.stringValue): is required")
        } catch DecodingError.typeMismatch(_, let context) {
            throw APIError.validation("\(context.codingPath.map(\.stringValue).joined(separator: ".")): must be a string")
        } catch {
            throw APIError.validation("body: must be a JSON object")
        }
    }

    private func base64(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.create, context, tasks: tasks)
        let body: Base64Body
        do {
            body = try await json(Base64Body.self, request, context, limit: Self.maxBase64Body)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge("base64Data: larger than \(Self.maxBase64Body / 1024 / 1024) MB; use /api/file-stream-upload for big files")
        }
        var text = Substring(body.base64Data)
        if text.hasPrefix("data:"), let comma = text.firstIndex(of: ",") { text = text[text.index(after: comma)...] }
        guard let data = Data(base64Encoded: String(text), options: .ignoreUnknownCharacters), !data.isEmpty else {
            throw APIError.validation("base64Data: is not valid base64 (raw, or a data: URL)")
        }
        return answer(try uploads.store(data, account: account, uploadPath: body.uploadPath, fileName: body.fileName))
    }

    private func stream(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.create, context, tasks: tasks)
        guard let boundary = MultipartUpload.boundary(request.headers[.contentType]) else {
            throw APIError.validation("body: must be multipart/form-data with a file part")
        }
        let writer = try uploads.writer()
        do {
            let parts = try await MultipartUpload.read(request.body, boundary: boundary, into: writer)
            guard parts.sawFile else { throw APIError.validation("file: is required") }
            guard let uploadPath = parts.fields["uploadPath"] else { throw APIError.validation("uploadPath: is required") }
            return answer(try uploads.commit(writer, account: account, uploadPath: uploadPath, fileName: parts.fields["fileName"]))
        } catch {
            writer.discard()
            throw error
        }
    }

    private func fromURL(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.create, context, tasks: tasks)
        let body = try await json(URLBody.self, request, context, limit: context.maxUploadSize)
        _ = try UploadStore.cleanPath(body.uploadPath, field: "uploadPath")
        let writer = try uploads.writer()
        let temporary = writer.url.appendingPathExtension("fetch")
        defer { try? FileManager.default.removeItem(at: temporary) }
        do {
            try await fetcher.fetch(body.fileUrl, field: "fileUrl", maxBytes: UploadStore.anythingLimit, to: temporary)
        } catch let error as EngineError {
            writer.discard()
            throw APIError.validation(error.message)
        }
        // Through the writer so the per-kind limit applies to what was fetched too.
        do {
            let handle = try FileHandle(forReadingFrom: temporary)
            defer { try? handle.close() }
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { try writer.write(ByteBuffer(data: chunk)) }
        } catch {
            writer.discard()
            throw error
        }
        return answer(try uploads.commit(writer, account: account, uploadPath: body.uploadPath, fileName: body.fileName))
    }

    /// A 20-minute link for a file this server generated a link for and the caller owns; anything else is 422.
    private func downloadURL(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let account = try limiter.admit(.query, context, tasks: tasks)
        let body = try await json(LinkBody.self, request, context, limit: context.maxUploadSize)
        let refused = APIError.validation("url: is not a file link this service generated for your account")
        // Authentic links may be renewed after they expire, but only by their owner.
        guard let artifact = links.artifactPath(ofLink: body.url, requireCurrent: false, now: TaskWorker.nowMillis() / 1000) else {
            throw refused
        }
        let parts = artifact.split(separator: "/").map(String.init)  // results|uploads, id, ...
        guard parts.count >= 3 else { throw refused }
        switch parts[0] {
        case "results":
            guard try await tasks.task(id: parts[1], account: account) != nil else { throw refused }
        case "uploads":
            guard parts[1] == account.id else { throw refused }
        default:
            throw refused
        }
        let link = links.url(forArtifact: artifact, expires: TaskWorker.nowMillis() / 1000 + 20 * 60)
        return MarketDialect.success(.string(link))
    }
}
