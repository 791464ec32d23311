import Foundation
import Hummingbird
import Logging
import MultipartKit
import NIOCore
import ServiceLifecycle
import Synchronization

/// A loopback fake of a server with OpenAI's `/v1/videos` contract, written from shared/research/local-engines.md §1
/// and shared/contracts/openai-videos.md: `POST /v1/videos` (multipart), `GET /v1/videos/{id}`, `GET .../content`,
/// `DELETE /v1/videos/{id}`, each flavour with its documented quirks. Every video is a real MP4 made with ffmpeg.
public final class FakeVideosServer: Sendable {
    /// Whose behaviour it shows.
    public enum Flavor: String, Sendable {
        /// SGLang Diffusion: `queued` until the video is done, `progress` 0 then 100; `/content` answers 404
        /// "Generation is still in-progress" until then; DELETE forgets the record but the GPU work goes on.
        case sglang
        /// vLLM-Omni: `queued`, then `in_progress`, then `completed`; no progress figure.
        case vllmOmni = "vllm-omni"
        /// OpenAI: `queued`, `in_progress` with a rising `progress`, `completed`; DELETE of a running video stops it.
        case openAI = "openai"
    }

    /// What a create carried: its form fields and the bytes of `input_reference`.
    public struct Create: Sendable {
        public var fields: [String: String]
        public var inputReference: Data?
        public var authorization: String?
    }

    /// What the fake saw and did.
    public struct Record: Sendable {
        public var creates: [Create] = []
        public var queries = 0
        public var contentRequests = 0
        /// Video ids a DELETE named.
        public var deletes: [String] = []
        /// Videos whose generation ran to its end (on SGLang also deleted ones).
        public var generated: [String] = []
        /// When each video's `/content` answer was handed to the server, in Unix milliseconds (the engine's last byte).
        public var contentServedAt: [String: Int64] = [:]
    }

    /// How the fake behaves; change it with ``update(_:)``.
    public struct Script: Sendable {
        /// How long a video takes.
        public var renderTime: Duration = .milliseconds(300)
        /// When set, videos fail with this message.
        public var failure: String?
        /// The key calls must carry as Bearer, when set.
        public var key: String?
        /// When set, completed videos name this `url` (SGLang with S3 upload on) and `/content` answers 400.
        public var externalURL: String?
        /// When set, the videos made are these files in turn (one per create), instead of the server's one file.
        public var videoFiles: [URL] = []

        public init() {}
    }

    struct Video {
        var id: String
        var createdAt: Int64
        var started: ContinuousClock.Instant
        var renderTime: Duration
        var failure: String?
        var seconds: String
        var size: String
        var file: URL?
    }

    struct State {
        var script: Script
        var record = Record()
        var videos: [String: Video] = [:]
        /// Plain files served at `/files/NAME` (first frames, an external storage's copy).
        var files: [String: URL] = [:]
        /// Videos whose work a DELETE stopped.
        var stopped: Set<String> = []
        var next = 0
    }

    public let flavor: Flavor
    let videoFile: URL
    let state: Mutex<State>

    public init(flavor: Flavor, script: Script = Script(), videoFile: URL) {
        self.flavor = flavor
        self.videoFile = videoFile
        state = Mutex(State(script: script))
    }

    public var record: Record { state.withLock { $0.record } }

    public func update(_ change: (inout Script) -> Void) { state.withLock { change(&$0.script) } }

    /// Serves `file` at `/files/name` (a stand-in for a CDN or object storage on loopback).
    public func serve(_ name: String, file: URL) { state.withLock { $0.files[name] = file } }

    /// Forgets every video, as a restarted server would.
    public func forgetEverything() { state.withLock { $0.videos = [:] } }

    /// Runs the fake on a free loopback port for the duration of `body`, which gets its base URL.
    public func run<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        try await LoopbackServer.run(router(), name: "fake-videos-\(flavor.rawValue)", body)
    }

    // MARK: Routes

    private func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("v1/videos") { request, _ in try await self.create(request) }
        router.get("v1/videos/:id") { request, context in try await self.retrieve(request, id: try context.parameters.require("id")) }
        router.get("v1/videos/:id/content") { request, context in try await self.content(request, id: try context.parameters.require("id")) }
        router.delete("v1/videos/:id") { request, context in try await self.delete(request, id: try context.parameters.require("id")) }
        router.get("files/:name") { _, context in
            let name = try context.parameters.require("name")
            guard let file = self.state.withLock({ $0.files[name] }), let data = FileManager.default.contents(atPath: file.path) else {
                return Response(status: .notFound)
            }
            return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(data: data)))
        }
        return router
    }

    private func unauthorized(_ request: Request) -> Response? {
        guard let key = state.withLock({ $0.script.key }) else { return nil }
        if request.headers[.authorization] == "Bearer \(key)" { return nil }
        return Self.json(401, ["error": ["message": "Incorrect API key provided", "type": "invalid_request_error"]])
    }

    private func create(_ request: Request) async throws -> Response {
        if let refusal = unauthorized(request) { return refusal }
        guard let type = request.headers[.contentType], let boundary = Self.boundary(type) else {
            return Self.json(400, ["error": ["message": "expected multipart/form-data"]])
        }
        let body = try await request.body.collect(upTo: 50 << 20)
        let parser = MultipartParser(boundary: boundary)
        var fields: [String: String] = [:]
        var file: Data?
        var headers: [String: String] = [:]
        var part = ByteBuffer()
        parser.onHeader = { name, value in headers[name.lowercased()] = value }
        parser.onBody = { chunk in part.writeBuffer(&chunk) }
        parser.onPartComplete = {
            let disposition = headers["content-disposition"] ?? ""
            let name = disposition.firstMatch(of: /name="([^"]*)"/).map { String($0.output.1) } ?? ""
            if name == "input_reference" { file = Data(part.readableBytesView) } else { fields[name] = String(buffer: part) }
            headers = [:]
            part = ByteBuffer()
        }
        try parser.execute(body)
        guard let prompt = fields["prompt"], !prompt.isEmpty else {
            return Self.json(400, ["error": ["message": "prompt is required", "param": "prompt"]])
        }
        let created = Create(fields: fields, inputReference: file, authorization: request.headers[.authorization])
        let video = state.withLock { state -> Video in
            state.next += 1
            let video = Video(
                id: "video_\(state.next)_\(UUID().uuidString.prefix(6))", createdAt: Int64(Date().timeIntervalSince1970), started: .now,
                renderTime: state.script.renderTime, failure: state.script.failure, seconds: fields["seconds"] ?? "4",
                size: fields["size"] ?? "1280x720",
                file: state.script.videoFiles.isEmpty ? nil : state.script.videoFiles[(state.next - 1) % state.script.videoFiles.count])
            state.videos[video.id] = video
            state.record.creates.append(created)
            return video
        }
        scheduleEnd(video)
        return Self.json(200, object(video, now: .now))
    }

    /// Marks the video generated when its time is up (also a deleted one: SGLang's GPU work is not stopped).
    private func scheduleEnd(_ video: Video) {
        Task {
            try? await Task.sleep(for: video.renderTime)
            state.withLock { state in
                if !state.stopped.contains(video.id) { state.record.generated.append(video.id) }
            }
        }
    }

    private func retrieve(_ request: Request, id: String) async throws -> Response {
        if let refusal = unauthorized(request) { return refusal }
        let video = state.withLock { state -> Video? in
            state.record.queries += 1
            return state.videos[id]
        }
        guard let video else { return Self.json(404, ["error": ["message": "Video not found"]]) }
        return Self.json(200, object(video, now: .now))
    }

    private func content(_ request: Request, id: String) async throws -> Response {
        if let refusal = unauthorized(request) { return refusal }
        let (video, external) = state.withLock { state -> (Video?, String?) in
            state.record.contentRequests += 1
            return (state.videos[id], state.script.externalURL)
        }
        guard let video else { return Self.json(404, ["error": ["message": "Video not found"]]) }
        guard status(video, now: .now) == "completed" else {
            return Self.json(404, ["error": ["message": "Generation is still in-progress"]])
        }
        if let external { return Self.json(400, ["error": ["message": "the video was uploaded to \(external)"]]) }
        let bytes = try Data(contentsOf: video.file ?? videoFile)
        state.withLock { $0.record.contentServedAt[id] = Int64(Date().timeIntervalSince1970 * 1000) }
        return Response(status: .ok, headers: [.contentType: "video/mp4"], body: ResponseBody(byteBuffer: ByteBuffer(data: bytes)))
    }

    private func delete(_ request: Request, id: String) async throws -> Response {
        if let refusal = unauthorized(request) { return refusal }
        let video = state.withLock { state -> Video? in
            state.record.deletes.append(id)
            guard let video = state.videos.removeValue(forKey: id) else { return nil }
            // SGLang only forgets the record (its GPU work goes on); OpenAI and vLLM-Omni stop the work.
            if flavor != .sglang { state.stopped.insert(id) }
            return video
        }
        guard let video else { return Self.json(404, ["error": ["message": "Video not found"]]) }
        var answer = object(video, now: .now)
        answer["status"] = "deleted"
        answer["deleted"] = true
        return Self.json(200, answer)
    }

    // MARK: Video objects

    private func status(_ video: Video, now: ContinuousClock.Instant) -> String {
        let elapsed = now - video.started
        if elapsed >= video.renderTime { return video.failure == nil ? "completed" : "failed" }
        switch flavor {
        case .sglang: return "queued"
        case .vllmOmni, .openAI: return elapsed < video.renderTime / 5 ? "queued" : "in_progress"
        }
    }

    private func object(_ video: Video, now: ContinuousClock.Instant) -> [String: Any] {
        let status = status(video, now: now)
        var progress = 0
        switch (flavor, status) {
        case (_, "completed"): progress = 100
        case (.openAI, "in_progress"): progress = min(99, Int((now - video.started) / video.renderTime * 100))
        default: progress = 0
        }
        var object: [String: Any] = [
            "id": video.id, "object": "video", "model": "fake", "status": status, "progress": progress, "created_at": video.createdAt,
            "seconds": video.seconds, "size": video.size,
        ]
        if status == "failed" { object["error"] = ["code": "generation_failed", "message": video.failure ?? "failed"] }
        if status == "completed", let external = state.withLock({ $0.script.externalURL }) { object["url"] = external }
        return object
    }

    static func json(_ status: Int, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8)
        return Response(
            status: HTTPResponse.Status(code: status), headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(data: data)))
    }

    static func boundary(_ contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == "boundary" { return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        return nil
    }
}
