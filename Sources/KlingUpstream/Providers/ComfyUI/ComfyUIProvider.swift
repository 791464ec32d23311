import AsyncHTTPClient
import Foundation
import KlingAPI
import KlingCore
import KlingPreview
import MultipartKit
import NIOCore
import NIOHTTP1

/// ComfyUI instances (typically one per GPU) running the operator's workflow templates (`comfyui` engine).
///
/// Each generation (the task, or one shot of a multi-shot task) goes to the instance with the fewest of our prompts
/// in flight, skipping one that stopped answering. Images go up with `/upload/image`; the graph goes to `/prompt`
/// under a prompt id derived from our task id, so a retry after a crash finds the same prompt instead of queueing a
/// second; `/history` says when it is done, `/view` gives the file. An instance that restarted has lost its history
/// and queue: the prompt is submitted again. Stored id: `INSTANCE|PROMPT_ID` per generation, separated by spaces.
public struct ComfyUIProvider: UpstreamProvider, UpstreamResultDownloading, UpstreamCancelling {
    public let engineName = "comfyui"
    static let resultScheme = "comfyui:"
    let instances: [UpstreamHTTP]
    public let templates: [ComfyUIWorkflowTemplate]
    let inputs: any InputFetching
    let joiner: ShotJoiner
    let placement: OpenAIVideosProvider.Placement
    let health = InstanceHealth()
    /// Progress events from each instance's WebSocket.
    let progress = ComfyUIProgress()
    /// Largest image sent, in bytes. Default 20 MB.
    public var maxInputBytes = 20 * 1024 * 1024

    public init(
        instanceURLs: [String], templates: [ComfyUIWorkflowTemplate], inputs: any InputFetching, joiner: ShotJoiner = ShotJoiner(),
        client: HTTPClient? = nil, timeout: Duration = .seconds(30)
    ) {
        instances = instanceURLs.map { UpstreamHTTP(engine: "comfyui", baseURL: $0, client: client ?? UpstreamHTTP.sharedClient, timeout: timeout) }
        self.templates = templates
        self.inputs = inputs
        self.joiner = joiner
        placement = OpenAIVideosProvider.Placement(count: instanceURLs.count)
    }

    /// The first template that makes what `request` needs.
    func template(for request: GenerationRequest) -> ComfyUIWorkflowTemplate? {
        let need = ComfyUIWorkflowTemplate.need(of: request)
        return templates.first { $0.handles.contains(need) }
    }

    public func unsupportedReason(_ request: GenerationRequest) -> String? {
        if !request.elements.isEmpty { return "elements: no ComfyUI workflow template takes element references" }
        if request.multiShot && request.shotType == .intelligence {
            return "shot_type: intelligence multi-shot needs a model that writes its own storyboard"
        }
        for generation in OneShotGenerations.of(request) where template(for: generation) == nil {
            let need = ComfyUIWorkflowTemplate.need(of: generation)
            let field = need == .textToVideo ? "prompt" : need == .imageToVideo ? "image_urls[0]" : "image_urls[1]"
            return "\(field): no ComfyUI workflow template handles \(need.rawValue)"
        }
        return nil
    }

    public func submit(_ request: GenerationRequest, taskID: String, callbackURL: String?) async throws -> String {
        var created: [String] = []
        do {
            for (index, generation) in OneShotGenerations.of(request).enumerated() {
                let promptID = Self.promptID(taskID: taskID, shot: index)
                created.append(try await queueOnSomeInstance(generation, promptID: promptID))
            }
        } catch {
            for part in created { await cancel(upstreamTaskID: part) }
            throw error
        }
        return created.joined(separator: " ")
    }

    /// Queues on the least busy instance that answered lately; one that does not answer now is marked down and the
    /// next is tried, so a dead GPU costs a task one connection attempt, not a failed attempt. Returns `INSTANCE|ID`.
    private func queueOnSomeInstance(_ generation: GenerationRequest, promptID: String) async throws -> String {
        var lastError: (any Error)?
        for _ in instances.indices {
            let index = await placement.reserve(excluding: await health.down(instances.map(\.baseURL)))
            do {
                try await queue(generation, promptID: promptID, on: instances[index])
                await placement.started(index, id: promptID)
                return instances[index].baseURL + "|" + promptID
            } catch let error as UpstreamError where error.isRetryable && !error.isRateLimited {
                await placement.release(index)
                lastError = error
            } catch {
                await placement.release(index)
                throw error
            }
        }
        throw lastError ?? UpstreamError.unavailable(engineName, status: nil, message: "no ComfyUI instance answered")
    }

    /// Submits a generation's graph under `promptID`, unless the instance already has that prompt.
    func queue(_ generation: GenerationRequest, promptID: String, on instance: UpstreamHTTP) async throws {
        guard let template = template(for: generation) else {
            throw UpstreamError.rejected(engineName, status: nil, message: "no workflow template handles \(ComfyUIWorkflowTemplate.need(of: generation).rawValue)")
        }
        if try await knows(promptID, on: instance) { return }
        var images: (first: String?, last: String?) = (nil, nil)
        if let first = generation.firstFrameURL { images.first = try await upload(first, field: "image_urls[0]", to: instance, promptID: promptID) }
        if let last = generation.lastFrameURL { images.last = try await upload(last, field: "image_urls[1]", to: instance, promptID: promptID) }
        let graph = template.graph(for: generation, seed: OpenAIVideosProvider.seed(promptID), images: images)
        await progress.listen(to: instance.baseURL)
        let body: JSONValue = .object(["prompt": graph, "prompt_id": .string(promptID), "client_id": .string(progress.clientID)])
        let answer = try await call(instance, .POST, "/prompt", body: body)
        guard (200..<300).contains(answer.status) else {
            let error = answer.json?["error"]?["message"]?.text ?? "no message"
            let nodes = answer.json?["node_errors"].map { $0.jsonString() } ?? ""
            throw instance.failure(
                status: answer.status, message: "POST /prompt answered \(answer.status): \(error)\(nodes.isEmpty || nodes == "{}" ? "" : " \(nodes)")",
                retryAfter: nil)
        }
    }

    /// Whether the instance has the prompt, finished (history) or waiting (queue).
    private func knows(_ promptID: String, on instance: UpstreamHTTP) async throws -> Bool {
        let history = try await call(instance, .GET, "/history/\(promptID)")
        if case .object(let entries)? = history.json, entries[promptID] != nil { return true }
        return try await queued(promptID, on: instance) != nil
    }

    /// `running` or `pending` when the prompt is in the instance's queue.
    func queued(_ promptID: String, on instance: UpstreamHTTP) async throws -> String? {
        let queue = try await call(instance, .GET, "/queue")
        for (key, state) in [("queue_running", "running"), ("queue_pending", "pending")] {
            for item in queue.json?[key]?.array ?? [] where item.array?.dropFirst().first?.text == promptID { return state }
        }
        return nil
    }

    /// Uploads an input image; returns the name ComfyUI stored it under.
    private func upload(_ url: String, field: String, to instance: UpstreamHTTP, promptID: String) async throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kling-comfy-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try await inputs.fetch(url, field: field, maxBytes: maxInputBytes, to: file)
        let data = try Data(contentsOf: file)
        let ext = data.starts(with: [0x89, 0x50, 0x4E, 0x47]) ? "png" : "jpg"
        let name = "klingkit-\(promptID)-\(field == "image_urls[0]" ? "first" : "last").\(ext)"
        let parts = [
            MultipartPart(headers: ["Content-Disposition": "form-data; name=\"image\"; filename=\"\(name)\""], body: ByteBuffer(bytes: data)),
            MultipartPart(headers: ["Content-Disposition": "form-data; name=\"overwrite\""], body: "true"),
        ]
        let answer = try await call(instance, .POST, "/upload/image", form: parts)
        guard (200..<300).contains(answer.status), let stored = answer.json?["name"]?.text else {
            throw instance.failure(status: answer.status, message: "POST /upload/image answered \(answer.status)", retryAfter: nil)
        }
        let folder = answer.json?["subfolder"]?.text ?? ""
        return folder.isEmpty ? stored : "\(folder)/\(stored)"
    }

    /// One call; an instance that does not answer is marked down for a while (and up again when it answers).
    func call(_ instance: UpstreamHTTP, _ method: HTTPMethod, _ path: String, body: JSONValue? = nil, form: [MultipartPart]? = nil) async throws
        -> UpstreamHTTP.Answer
    {
        do {
            let answer = try await instance.send(method, path, headers: [], body: body, form: form)
            await health.answered(instance.baseURL)
            return answer
        } catch let error as UpstreamError where error.isRetryable {
            await health.failed(instance.baseURL)
            throw error
        }
    }

    /// The instance, its index and the prompt id of a stored `INSTANCE|PROMPT_ID`.
    func locate(_ part: String) throws -> (Int, UpstreamHTTP, String) {
        let pieces = part.split(separator: "|", maxSplits: 1).map(String.init)
        guard pieces.count == 2, let index = instances.firstIndex(where: { $0.baseURL == pieces[0] }) else {
            throw UpstreamError.rejected(engineName, status: nil, message: "the prompt ran on \(pieces.first ?? "?"), which is no longer in KLING_COMFYUI_URLS")
        }
        return (index, instances[index], pieces[1])
    }

    /// A prompt id (a UUID) that is the same for every submission of one generation of one task.
    public static func promptID(taskID: String, shot: Int) -> String {
        let text = "\(taskID)#\(shot)"
        let hex = String(format: "%016llx%016llx", StableSeed.of(text), StableSeed.of(String(text.reversed())))
        let characters = Array(hex)
        let groups = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(characters[$0]) }
        return groups.joined(separator: "-")
    }
}

/// Instances that failed to answer lately (skipped for 30 s unless every instance is down).
actor InstanceHealth {
    private var failedAt: [String: Date] = [:]

    func failed(_ base: String) { failedAt[base] = Date() }
    func answered(_ base: String) { failedAt[base] = nil }

    func down(_ bases: [String]) -> Set<Int> {
        let now = Date()
        return Set(bases.indices.filter { failedAt[bases[$0]].map { now.timeIntervalSince($0) < 30 } ?? false })
    }
}
