import Foundation
import KlingAPI
import KlingCore
import KlingPreview
import NIOHTTP1

extension ComfyUIProvider {
    /// Failed when any generation failed (naming the shot), done when all are, otherwise the share of them done.
    /// A prompt its instance no longer knows (ComfyUI restarted: history and queue are in memory) is submitted again.
    public func status(of upstreamTaskID: String, request: GenerationRequest) async throws -> UpstreamStatus {
        let parts = upstreamTaskID.split(separator: " ").map(String.init)
        let generations = OneShotGenerations.of(request)
        var links: [String] = []
        var running = false
        var shares: [Int?] = []
        for (number, part) in parts.enumerated() {
            let (index, instance, promptID) = try locate(part)
            let generation = generations.indices.contains(number) ? generations[number] : request
            await progress.listen(to: instance.baseURL)
            let nodes = template(for: generation)?.workflow.count ?? 0
            let history = try await call(instance, .GET, "/history/\(promptID)")
            guard (200..<300).contains(history.status) else {
                throw instance.failure(status: history.status, message: "GET /history/\(promptID) answered \(history.status)", retryAfter: nil)
            }
            if let entry = history.json?[promptID], entry != JSONValue.null {
                switch entry["status"]?["status_str"]?.text {
                case "success":
                    guard let link = try outputLink(entry, instance: instance, generation: generation) else {
                        return .failed(reason: "the workflow finished without a video from its output node")
                    }
                    await placement.finished(index, id: promptID)
                    await progress.forget(promptID)
                    links.append(link)
                    shares.append(100)
                case "error":
                    await placement.finished(index, id: promptID)
                    let reason = Self.errorMessage(entry) ?? "the workflow failed without a message"
                    return .failed(reason: parts.count > 1 ? "shot \(number + 1): \(reason)" : reason)
                default:
                    running = true
                    shares.append(await progress.percent(promptID, nodes: nodes))
                }
                continue
            }
            switch try await queued(promptID, on: instance) {
            case "running"?:
                running = true
                shares.append(await progress.percent(promptID, nodes: nodes))
            case "pending"?: shares.append(0)
            default:
                // Lost with a restart of the instance: the same prompt id again, so a later look finds it.
                await progress.forget(promptID)
                try await queue(generation, promptID: promptID, on: instance)
                shares.append(0)
            }
            await placement.seen(index, id: promptID)
        }
        if links.count == parts.count { return .succeeded(videoURL: Self.resultScheme + links.joined(separator: " "), coverURL: nil) }
        // The mean share of the generations from their events; none heard (no socket) leaves the share unknown.
        let known = shares.compactMap { $0 }
        guard running || !links.isEmpty else { return .queued }
        return .running(progress: known.count == shares.count ? min(99, known.reduce(0, +) / max(1, parts.count)) : nil)
    }

    /// The `/view` link of the output node's first file (`images` for SaveVideo and SaveWEBM, `gifs` for VHS nodes).
    private func outputLink(_ entry: JSONValue, instance: UpstreamHTTP, generation: GenerationRequest) throws -> String? {
        guard let template = template(for: generation), let output = entry["outputs"]?[template.output] else { return nil }
        for key in ["images", "gifs", "videos"] {
            guard let file = output[key]?.array?.first, let name = file["filename"]?.text else { continue }
            var components = URLComponents()
            components.queryItems = [
                URLQueryItem(name: "filename", value: name), URLQueryItem(name: "subfolder", value: file["subfolder"]?.text ?? ""),
                URLQueryItem(name: "type", value: file["type"]?.text ?? "output"),
            ]
            return instance.baseURL + "/view?" + (components.percentEncodedQuery ?? "")
        }
        return nil
    }

    /// The exception message of a failed prompt's `execution_error`, with the node that raised it.
    static func errorMessage(_ entry: JSONValue) -> String? {
        for message in entry["status"]?["messages"]?.array ?? [] {
            guard message.array?.first?.text == "execution_error", let data = message.array?.dropFirst().first else { continue }
            let text = data["exception_message"]?.text ?? "execution error"
            let node = data["node_type"]?.text.map { " (node \(data["node_id"]?.text ?? "?") \($0))" } ?? ""
            return text.trimmingCharacters(in: .whitespacesAndNewlines) + node
        }
        return nil
    }

    // MARK: Result

    public func downloads(_ url: String) -> Bool { url.hasPrefix(Self.resultScheme) }

    /// Fetches each generation's file with `/view` and makes the finished MP4 with ``ShotJoiner``: one clip held to
    /// the exact duration (ComfyUI saves WEBM or MP4 at the template's own frame count), or the shots joined with cuts
    /// on their boundaries; sound from the workflow when it makes some, else the preview's track when asked.
    public func download(_ url: String, request: GenerationRequest, to file: URL, scratch: URL, maxBytes: Int) async throws {
        let (links, generations) = try OneShotGenerations.links(
            of: url, scheme: Self.resultScheme, request: request, engine: engineName, scratch: scratch)
        var pieces: [ShotJoiner.Piece] = []
        for (index, link) in links.enumerated() {
            guard let instance = instances.first(where: { link.hasPrefix($0.baseURL + "/view?") }) else {
                throw EngineError.renderFailed("\(engineName): \(link) is not on a configured instance")
            }
            let piece = scratch.appendingPathComponent("shot-\(index + 1).media")
            try await instance.download(String(link.dropFirst(instance.baseURL.count)), headers: [], to: piece, maxBytes: maxBytes)
            let facts = try await ResultProbe.probe(piece, engine: engineName)
            pieces.append(.init(file: piece, seconds: generations[index].duration, hasAudio: facts.hasAudio))
        }
        let size = OpenAICreateRequest.size(of: request).split(separator: "x").compactMap { Int($0) }
        let fps = template(for: generations[0])?.frameRate ?? 24
        try await joiner.join(pieces, request: request, width: size[0], height: size[1], fps: fps, scratch: scratch, into: file)
    }

    // MARK: Cancel

    /// `POST /api/jobs/{id}/cancel` where the instance has it (ComfyUI from mid-2026), else `POST /interrupt` with
    /// the prompt id (stops it only if it is the one running) and a `/queue` delete (removes it if it waits).
    public func cancel(upstreamTaskID: String) async {
        for part in upstreamTaskID.split(separator: " ").map(String.init) {
            guard let (index, instance, promptID) = try? locate(part) else { continue }
            let modern = try? await instance.send(.POST, "/api/jobs/\(promptID)/cancel", headers: [])
            if modern.map({ !(200..<300).contains($0.status) }) ?? true {
                _ = try? await instance.send(.POST, "/interrupt", headers: [], body: .object(["prompt_id": .string(promptID)]))
                _ = try? await instance.send(.POST, "/queue", headers: [], body: .object(["delete": .array([.string(promptID)])]))
            }
            await placement.finished(index, id: promptID)
        }
    }
}
