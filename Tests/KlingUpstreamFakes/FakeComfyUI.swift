import Foundation
import Hummingbird
import HummingbirdWebSocket
import MultipartKit
import NIOCore
import Synchronization

/// A loopback fake of one ComfyUI instance, written from shared/research/local-engines.md §2.1: `POST /prompt`
/// (honouring a client's `prompt_id`), `GET /history/{id}` (`{}` until done), `GET /queue`, `POST /queue {delete}`,
/// `POST /interrupt {prompt_id}`, `POST /upload/image`, `GET /view`, `GET /object_info`, and `POST /api/jobs/{id}/cancel`
/// only on a `modern` instance. One prompt runs at a time; history and queue live in memory, so ``restart()`` loses them.
public final class FakeComfyUI: Sendable {
    public struct Record: Sendable {
        /// Every graph queued (as JSON), with its prompt id.
        public var prompts: [(id: String, graph: Data)] = []

        /// The input `name` of node `node` in the `index`th graph queued.
        public func input(_ index: Int, node: String, _ name: String) -> Any? {
            let graph = (try? JSONSerialization.jsonObject(with: prompts[index].graph)) as? [String: Any]
            return ((graph?[node] as? [String: Any])?["inputs"] as? [String: Any])?[name]
        }
        public var uploads: [String: Data] = [:]
        public var interrupts: [String] = []
        public var queueDeletes: [String] = []
        public var jobCancels: [String] = []
        public var views = 0
    }

    public struct Script: Sendable {
        public var renderTime: Duration = .milliseconds(300)
        /// When set, prompts fail with this exception message (an `execution_error`).
        public var failure: String?
        /// Whether the instance has `/api/jobs/{id}/cancel` (ComfyUI from mid-2026).
        public var modern = false
        /// Node classes `/object_info` lists and `/prompt` accepts.
        public var classes: Set<String> = [
            "UNETLoader", "CLIPLoader", "CLIPTextEncode", "VAELoader", "ModelSamplingSD3", "EmptyHunyuanLatentVideo", "KSamplerAdvanced",
            "VAEDecode", "CreateVideo", "SaveVideo", "LoadImage", "WanImageToVideo", "SaveWEBM", "EmptyImage",
        ]
        public init() {}
    }

    struct Job {
        var id: String
        var clientID: String?
        var nodes: [String]
        var announced = -1
        var outputNode: String
        var failure: String?
        var started: ContinuousClock.Instant?
        var renderTime: Duration
    }

    struct State {
        var script: Script
        var record = Record()
        var pending: [Job] = []
        var running: Job?
        var history: [String: [String: Any]] = [:]
        var generation = 0
        /// Open `/ws` sockets by client id: ComfyUI sends a prompt's events only to the socket of its client id.
        var sockets: [String: AsyncStream<String>.Continuation] = [:]
        /// Set when the fake stops: open sockets are closed and new ones end at once (so the server can shut down).
        var closed = false
    }

    let videoFile: URL
    let state: Mutex<State>

    public init(script: Script = Script(), videoFile: URL) {
        self.videoFile = videoFile
        state = Mutex(State(script: script))
    }

    public var record: Record { state.withLock { $0.record } }
    public func update(_ change: (inout Script) -> Void) { state.withLock { change(&$0.script) } }

    /// What a restart does to an instance: history, queue and the running prompt are gone.
    public func restart() {
        state.withLock { state in
            state.pending = []
            state.running = nil
            state.history = [:]
            state.generation += 1
        }
    }

    public func run<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let ticker = Task { [self] in
            while !Task.isCancelled {
                tick()
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        defer { ticker.cancel() }
        return try await LoopbackServer.run(router(), name: "fake-comfyui", webSocket: { path, outbound in
            let client = URLComponents(string: path)?.queryItems?.first { $0.name == "clientId" }?.value ?? "anonymous"
            let (events, continuation) = AsyncStream<String>.makeStream()
            let open = self.state.withLock { state -> Bool in
                guard !state.closed else { return false }
                state.sockets[client]?.finish()
                state.sockets[client] = continuation
                return true
            }
            guard open else { return }
            defer { self.state.withLock { state in if state.sockets[client] != nil { state.sockets[client] = nil } } }
            try await outbound.write(.text(Self.text(["type": "status", "data": ["status": ["exec_info": ["queue_remaining": 0]], "sid": client]])))
            for await event in events { try await outbound.write(.text(event)) }
        }) { base in
            defer {
                let sockets = self.state.withLock { state in
                    state.closed = true
                    defer { state.sockets = [:] }
                    return Array(state.sockets.values)
                }
                for socket in sockets { socket.finish() }
            }
            return try await body(base)
        }
    }

    /// Starts the next prompt and finishes the running one when its time is up.
    private func tick() {
        state.withLock { state in
            if var job = state.running, let started = job.started, ContinuousClock.now - started < job.renderTime, !job.nodes.isEmpty {
                // Node by node through the graph, with sampler-style steps inside each node.
                let position = (ContinuousClock.now - started) / job.renderTime * Double(job.nodes.count)
                let index = min(job.nodes.count - 1, Int(position))
                if index != job.announced {
                    Self.send(&state, to: job.clientID, ["type": "executing", "data": ["node": job.nodes[index], "display_node": job.nodes[index], "prompt_id": job.id]])
                    job.announced = index
                    state.running = job
                }
                let step = Int((position - Double(index)) * 20)
                Self.send(&state, to: job.clientID, ["type": "progress", "data": ["value": step, "max": 20, "node": job.nodes[index], "prompt_id": job.id]])
            }
            if let job = state.running, let started = job.started, ContinuousClock.now - started >= job.renderTime {
                state.running = nil
                if job.failure == nil {
                    Self.send(&state, to: job.clientID, ["type": "executing", "data": ["node": NSNull(), "prompt_id": job.id]])
                    Self.send(&state, to: job.clientID, ["type": "execution_success", "data": ["prompt_id": job.id]])
                } else {
                    Self.send(&state, to: job.clientID, ["type": "execution_error", "data": ["prompt_id": job.id, "exception_message": job.failure ?? ""]])
                }
                if let failure = job.failure {
                    state.history[job.id] = [
                        "outputs": [:], "status": ["status_str": "error", "completed": false,
                            "messages": [["execution_start", ["prompt_id": job.id]], ["execution_error", ["prompt_id": job.id, "node_id": "11", "node_type": "KSamplerAdvanced", "exception_message": failure]]]],
                    ]
                } else {
                    state.history[job.id] = [
                        "outputs": [job.outputNode: ["images": [["filename": "\(job.id).mp4", "subfolder": "klingkit", "type": "output"]], "animated": [true]]],
                        "status": ["status_str": "success", "completed": true, "messages": []],
                    ]
                }
            }
            if state.running == nil, !state.pending.isEmpty {
                var next = state.pending.removeFirst()
                next.started = .now
                state.running = next
                Self.send(&state, to: next.clientID, ["type": "execution_start", "data": ["prompt_id": next.id]])
            }
        }
    }

    private func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("prompt") { request, _ in try await self.prompt(request) }
        router.get("history/:id") { _, context in
            let id = try context.parameters.require("id")
            return self.state.withLock { state in Self.json(200, state.history[id].map { [id: $0] } ?? [:]) }
        }
        router.get("queue") { _, _ in
            self.state.withLock { state in
                Self.json(200, [
                    "queue_running": state.running.map { [[0, $0.id, [:], [:], []]] } ?? [],
                    "queue_pending": state.pending.enumerated().map { [$0.offset + 1, $0.element.id, [:], [:], []] },
                ])
            }
        }
        router.post("queue") { request, _ in
            let body = try await Self.object(request)
            let ids = body["delete"] as? [String] ?? []
            self.state.withLock { state in
                state.record.queueDeletes += ids
                state.pending.removeAll { ids.contains($0.id) }
            }
            return Self.json(200, [:])
        }
        router.post("interrupt") { request, _ in
            let body = try await Self.object(request)
            let id = body["prompt_id"] as? String
            self.state.withLock { state in
                if let id { state.record.interrupts.append(id) }
                // Only the running prompt, and only when it is the one named (or none is named).
                if let running = state.running, id == nil || running.id == id {
                    state.running = nil
                    state.history[running.id] = ["outputs": [:], "status": ["status_str": "error", "completed": false, "messages": [["execution_interrupted", ["prompt_id": running.id]]]]]
                }
            }
            return Self.json(200, [:])
        }
        router.post("api/jobs/:id/cancel") { _, context in
            let id = try context.parameters.require("id")
            return self.state.withLock { state -> Response in
                guard state.script.modern else { return Self.json(404, ["error": "not found"]) }
                state.record.jobCancels.append(id)
                state.pending.removeAll { $0.id == id }
                if state.running?.id == id { state.running = nil }
                return Self.json(200, [:])
            }
        }
        router.post("upload/image") { request, _ in try await self.upload(request) }
        router.get("view") { request, _ in
            guard let name = request.uri.queryParameters["filename"].map(String.init), !name.contains("/"), !name.contains(".."),
                self.state.withLock({ $0.history[String(name.dropLast(4))] != nil })
            else { return Self.json(400, ["error": "bad filename"]) }
            self.state.withLock { $0.record.views += 1 }
            let data = try Data(contentsOf: self.videoFile)
            return Response(status: .ok, headers: [.contentType: "video/mp4"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.get("object_info") { _, _ in
            self.state.withLock { state in Self.json(200, Dictionary(uniqueKeysWithValues: state.script.classes.map { ($0, ["input": [:]] as [String: Any]) })) }
        }
        return router
    }

    private func prompt(_ request: Request) async throws -> Response {
        let body = try await Self.object(request)
        guard let graph = body["prompt"] as? [String: Any], !graph.isEmpty else {
            return Self.json(400, ["error": ["type": "no_prompt", "message": "No prompt provided"], "node_errors": [:]])
        }
        let id = body["prompt_id"] as? String ?? UUID().uuidString
        return state.withLock { state -> Response in
            for (node, value) in graph {
                let type = (value as? [String: Any])?["class_type"] as? String ?? ""
                if !state.script.classes.contains(type) {
                    return Self.json(400, ["error": ["type": "invalid_prompt", "message": "Cannot execute because node \(type) does not exist."], "node_errors": [node: [:]]])
                }
            }
            let output = graph.first { (($0.value as? [String: Any])?["class_type"] as? String)?.hasPrefix("Save") == true }?.key ?? ""
            state.record.prompts.append((id, (try? JSONSerialization.data(withJSONObject: graph)) ?? Data()))
            state.pending.append(
                Job(
                    id: id, clientID: body["client_id"] as? String, nodes: graph.keys.sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }, outputNode: output,
                    failure: state.script.failure, started: nil, renderTime: state.script.renderTime))
            return Self.json(200, ["prompt_id": id, "number": state.record.prompts.count, "node_errors": [:]])
        }
    }

    private func upload(_ request: Request) async throws -> Response {
        guard let type = request.headers[.contentType], let boundary = FakeVideosServer.boundary(type) else { return Self.json(400, [:]) }
        let body = try await request.body.collect(upTo: 50 << 20)
        let parser = MultipartParser(boundary: boundary)
        var name = "upload.png"
        var file = Data()
        var headers: [String: String] = [:]
        var part = ByteBuffer()
        parser.onHeader = { key, value in headers[key.lowercased()] = value }
        parser.onBody = { chunk in part.writeBuffer(&chunk) }
        parser.onPartComplete = {
            let disposition = headers["content-disposition"] ?? ""
            if disposition.contains("name=\"image\"") {
                file = Data(part.readableBytesView)
                name = disposition.firstMatch(of: /filename="([^"]*)"/).map { String($0.output.1) } ?? name
            }
            headers = [:]
            part = ByteBuffer()
        }
        try parser.execute(body)
        state.withLock { $0.record.uploads[name] = file }
        return Self.json(200, ["name": name, "subfolder": "", "type": "input"])
    }

    static func object(_ request: Request) async throws -> [String: Any] {
        let body = try await request.body.collect(upTo: 10 << 20)
        return (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
    }

    static func json(_ status: Int, _ object: [String: Any]) -> Response { FakeVideosServer.json(status, object) }

    static func text(_ object: [String: Any]) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// Sends an event to the socket of `client` (as ComfyUI does), or to every socket when the prompt has no client id.
    static func send(_ state: inout State, to client: String?, _ event: [String: Any]) {
        let text = text(event)
        if let client { state.sockets[client]?.yield(text) } else { for socket in state.sockets.values { socket.yield(text) } }
    }
}
