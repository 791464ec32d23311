import AsyncHTTPClient
import Foundation
import KlingAPI
import KlingCore
import KlingPreview
import MultipartKit
import NIOCore

/// Any server with OpenAI's `/v1/videos` contract, typically the operator's own GPUs: SGLang Diffusion
/// (`sglang serve`), vLLM-Omni, LiteLLM's proxy, OpenAI itself, or another KlingKit (`openai-videos` engine).
///
/// Creates are multipart (`input_reference` is the first frame as a file, never a URL the GPU server would fetch),
/// with the fields the ``OpenAIVideosProfile`` says. With several servers, a task goes to the one with the fewest
/// tasks in flight from this process; its id is stored as `SERVER|ID`, so a restart follows it on the same server.
public struct OpenAIVideosProvider: UpstreamProvider, UpstreamResultDownloading, UpstreamCancelling {
    public let engineName = "openai-videos"
    /// The result link of a finished task: this prefix, then the link of each video (one per shot).
    static let resultScheme = "openai-videos:"
    /// How requests become this server's requests.
    public let profile: OpenAIVideosProfile
    let servers: [UpstreamHTTP]
    private let key: String?
    private let model: String?
    let inputs: any InputFetching
    private let placement: Placement
    /// Joins the shots of a multi-shot task, and lays the preview's sound under a silent video that should have some.
    let joiner: ShotJoiner
    /// Largest first frame sent, in bytes. Default 20 MB.
    public var maxInputBytes = 20 * 1024 * 1024

    /// - Parameters:
    ///   - baseURLs: the servers (each without `/v1`); tasks go to the one with the fewest in flight.
    ///   - key: sent as `Authorization: Bearer` when set.
    ///   - model: the `model` field sent (`KLING_OPENAI_VIDEOS_MODEL`); none when `nil`.
    ///   - inputs: reads the first frame (this server's own uploads from disk, other links through the safe fetcher).
    public init(
        baseURLs: [String], key: String?, model: String?, profile: OpenAIVideosProfile, inputs: any InputFetching,
        joiner: ShotJoiner = ShotJoiner(), client: HTTPClient? = nil, timeout: Duration = .seconds(30)
    ) {
        self.joiner = joiner
        servers = baseURLs.map { UpstreamHTTP(engine: "openai-videos", baseURL: $0, client: client ?? UpstreamHTTP.sharedClient, timeout: timeout) }
        self.key = key
        self.model = model
        self.profile = profile
        self.inputs = inputs
        placement = Placement(count: baseURLs.count)
    }

    public func unsupportedReason(_ request: GenerationRequest) -> String? {
        profile.unsupportedReason(request)
    }

    /// Creates one video, or for a multi-shot request one per shot (its prompt and duration; the first frame on shot 1),
    /// each on the server with the fewest in flight. Returns `SERVER|ID`, or those of every shot separated by spaces.
    public func submit(_ request: GenerationRequest, taskID: String, callbackURL: String?) async throws -> String {
        var created: [String] = []
        do {
            for (index, shot) in OneShotGenerations.of(request).enumerated() {
                created.append(try await submitOne(shot, taskID: index == 0 ? taskID : "\(taskID)-shot\(index + 1)"))
            }
        } catch {
            // A multi-shot task is made whole or not at all: the shots already created are given up.
            for id in created { await cancel(upstreamTaskID: id) }
            throw error
        }
        return created.joined(separator: " ")
    }

    private func submitOne(_ request: GenerationRequest, taskID: String) async throws -> String {
        let index = await placement.reserve()
        do {
            let id = try await create(request, taskID: taskID, on: servers[index])
            await placement.started(index, id: id)
            return servers[index].baseURL + "|" + id
        } catch {
            await placement.release(index)
            throw error
        }
    }

    /// Where the task's videos are: failed when any failed (naming the shot), done when all are (the result link is
    /// ``resultScheme`` and the videos' own links), otherwise the mean progress of the shots.
    public func status(of upstreamTaskID: String, request: GenerationRequest) async throws -> UpstreamStatus {
        let parts = upstreamTaskID.split(separator: " ").map(String.init)
        let generations = OneShotGenerations.of(request)
        var links: [String] = []
        var progress = 0
        for (number, part) in parts.enumerated() {
            let generation = generations.indices.contains(number) ? generations[number] : request
            switch try await status(ofOne: part, request: generation) {
            case .failed(let reason):
                return .failed(reason: parts.count > 1 ? "shot \(number + 1): \(reason)" : reason)
            case .succeeded(let link, _):
                links.append(link)
                progress += 100
            case .running(let reported):
                progress += reported ?? 0
            case .queued:
                break
            }
        }
        if links.count == parts.count { return .succeeded(videoURL: Self.resultScheme + links.joined(separator: " "), coverURL: nil) }
        return .running(progress: min(99, progress / max(1, parts.count)))
    }

    /// One video's status; `.succeeded` carries the link it is fetched from.
    private func status(ofOne part: String, request: GenerationRequest) async throws -> UpstreamStatus {
        let (index, server, id) = try locate(part)
        let answer = try await server.send(.GET, "/v1/videos/\(KlingOfficialProvider.escaped(id))", headers: authorization)
        guard (200..<300).contains(answer.status), let video = answer.json else {
            throw server.failure(
                status: answer.status, message: "GET /v1/videos/\(id) answered \(answer.status): \(Self.message(answer))", retryAfter: answer.retryAfter)
        }
        await placement.seen(index, id: id)
        switch video["status"]?.text {
        case "completed", "succeeded":
            await placement.finished(index, id: id)
            // The server's own copy (SGLang's S3 upload) when it names one elsewhere, else its /content.
            if let url = video["url"]?.text, url.hasPrefix("http://") || url.hasPrefix("https://"), !url.hasPrefix(server.baseURL) {
                return .succeeded(videoURL: url, coverURL: nil)
            }
            return .succeeded(videoURL: server.baseURL + "/v1/videos/\(KlingOfficialProvider.escaped(id))/content", coverURL: nil)
        case "failed", "error", "cancelled":
            await placement.finished(index, id: id)
            let message = video["error"]?["message"]?.text ?? video["error"]?.text
            return .failed(reason: message.flatMap { $0.isEmpty ? nil : $0 } ?? "the server failed the video without a reason")
        case "queued", "in_progress", "processing", "pending", "running":
            if let reported = video["progress"]?.integer, reported > 0, reported < 100 { return .running(progress: reported) }
            // No progress reported (SGLang says `queued` until the end): an estimate from the time since it was
            // created against the profile's typical time, never past 90% before the server says it is done.
            let created = video["created_at"]?.integer.map(Double.init) ?? Date().timeIntervalSince1970
            let elapsed = max(0, Date().timeIntervalSince1970 - created)
            let expected = profile.expectedDuration(seconds: request.duration, mode: request.mode)
            return .running(progress: min(90, Int(elapsed / expected * 90)))
        case let other:
            throw UpstreamError.malformed(engineName, status: answer.status, message: "unknown video status \(other ?? "null")")
        }
    }

    /// `DELETE /v1/videos/{id}` of every video of the task: OpenAI and KlingKit stop the work; SGLang only forgets
    /// the record (its GPU work goes on).
    public func cancel(upstreamTaskID: String) async {
        for part in upstreamTaskID.split(separator: " ").map(String.init) {
            guard let (index, server, id) = try? locate(part) else { continue }
            _ = try? await server.send(.DELETE, "/v1/videos/\(KlingOfficialProvider.escaped(id))", headers: authorization)
            await placement.finished(index, id: id)
        }
    }

    // MARK: Helpers

    var authorization: [(String, String)] { key.map { [("Authorization", "Bearer \($0)")] } ?? [] }

    /// `POST /v1/videos` as multipart; returns the server's video id.
    private func create(_ request: GenerationRequest, taskID: String, on server: UpstreamHTTP) async throws -> String {
        var parts: [MultipartPart] = profile.fields(
            for: request, prompt: request.prompt ?? "", seconds: request.duration, model: model, seed: Self.seed(taskID)
        ).map { name, value in
            MultipartPart(headers: ["Content-Disposition": "form-data; name=\"\(name)\""], body: value)
        }
        if let first = request.firstFrameURL {
            let (bytes, type) = try await firstFrame(first, taskID: taskID)
            parts.append(
                MultipartPart(
                    headers: ["Content-Disposition": "form-data; name=\"input_reference\"; filename=\"first-frame.\(type.ext)\"", "Content-Type": type.mime],
                    body: bytes))
        }
        let answer = try await server.send(.POST, "/v1/videos", headers: authorization, form: parts)
        guard (200..<300).contains(answer.status) else {
            throw server.failure(status: answer.status, message: "POST /v1/videos answered \(answer.status): \(Self.message(answer))", retryAfter: answer.retryAfter)
        }
        guard let id = answer.json?["id"]?.text, !id.isEmpty, !id.contains("|") else {
            throw UpstreamError.malformed(engineName, status: answer.status, message: "POST /v1/videos answered without a video id")
        }
        return id
    }

    /// The first frame's bytes and type, read through `inputs` (size-limited). Bad input fails the task with 422.
    private func firstFrame(_ url: String, taskID: String) async throws -> (ByteBuffer, (ext: String, mime: String)) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kling-first-frame-\(taskID)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try await inputs.fetch(url, field: "image_urls[0]", maxBytes: maxInputBytes, to: file)
        let data = try Data(contentsOf: file)
        let type: (ext: String, mime: String) =
            if data.starts(with: [0x89, 0x50, 0x4E, 0x47]) { ("png", "image/png") }
            else if data.count > 12, data[data.startIndex + 8..<data.startIndex + 12] == Data("WEBP".utf8) { ("webp", "image/webp") }
            else { ("jpg", "image/jpeg") }
        return (ByteBuffer(bytes: data), type)
    }

    /// The server, its index and the video id of a stored `SERVER|ID`.
    func locate(_ upstreamTaskID: String) throws -> (Int, UpstreamHTTP, String) {
        let parts = upstreamTaskID.split(separator: "|", maxSplits: 1).map(String.init)
        guard parts.count == 2, let index = servers.firstIndex(where: { $0.baseURL == parts[0] }) else {
            throw UpstreamError.rejected(
                engineName, status: nil, message: "the video was made on \(parts.first ?? "?"), which is no longer in KLING_OPENAI_VIDEOS_URL")
        }
        return (index, servers[index], parts[1])
    }

    /// A seed stable for the task, so a resubmitted task asks for the same video.
    static func seed(_ taskID: String) -> Int { Int(StableSeed.of(taskID) % 2_147_483_647) }

    private static func message(_ answer: UpstreamHTTP.Answer) -> String {
        answer.json?["error"]?["message"]?.text ?? answer.json?["detail"]?.text ?? answer.json?["message"]?.text ?? "no message"
    }
}

/// FNV-1a of a string (stable across processes, unlike `hashValue`).
enum StableSeed {
    static func of(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }
}
