import Foundation
import KlingAPI
import Logging
import WSClient

/// What each instance's `/ws?clientId=` WebSocket says about our prompts: ComfyUI sends a prompt's events only to
/// the socket of the client id that queued it, so every prompt of this process goes out under ``clientID`` and one
/// socket per instance listens for them (reconnecting with backoff). `execution_cached`, `executing` and sampler
/// `progress{value,max}` events give a real share of the graph done; `/history` stays the authority on the end.
actor ComfyUIProgress {
    /// The client id of this process's prompts.
    nonisolated let clientID = "klingkit-" + UUID().uuidString.prefix(8).lowercased()
    private struct Prompt {
        var done: Set<String> = []
        var current: String?
        var fraction: Double = 0
    }
    private var prompts: [String: Prompt] = [:]
    private var listening: Set<String> = []
    private let logger: Logger

    init(logger: Logger = Logger(label: "kling.comfyui")) {
        self.logger = logger
    }

    /// Starts listening to `base` unless a socket to it is open or connecting. After three failed connections in a
    /// row it gives up until the next call (each status query of a prompt there calls again).
    func listen(to base: String) {
        guard listening.insert(base).inserted else { return }
        let url = base.replacingOccurrences(of: "http://", with: "ws://").replacingOccurrences(of: "https://", with: "wss://") + "/ws?clientId=\(clientID)"
        let logger = self.logger
        Task.detached { [self] in
            var failures = 0
            while !Task.isCancelled, failures < 3 {
                do {
                    try await WebSocketClient.connect(url: url, logger: logger) { inbound, _, _ in
                        for try await message in inbound.messages(maxSize: 1 << 20) {
                            guard case .text(let text) = message, let event = JSONValue.parse(Data(text.utf8)) else { continue }
                            await self.record(event)
                        }
                    }
                    failures = 0
                } catch {
                    failures += 1
                    logger.debug("ComfyUI progress socket closed", metadata: ["instance": "\(base)", "error": "\(error)"])
                }
                try? await Task.sleep(for: .milliseconds(250 << failures))
            }
            await self.stopped(base)
        }
    }

    private func stopped(_ base: String) { listening.remove(base) }

    /// Takes one event: `{type, data:{prompt_id, node, value, max, nodes}}`.
    func record(_ event: JSONValue) {
        guard let type = event["type"]?.text, let data = event["data"], let id = data["prompt_id"]?.text else { return }
        var prompt = prompts[id] ?? Prompt()
        switch type {
        case "execution_cached":
            for node in data["nodes"]?.array ?? [] { if let node = node.text { prompt.done.insert(node) } }
        case "executing":
            if let current = prompt.current { prompt.done.insert(current) }
            prompt.current = data["node"]?.text
            prompt.fraction = 0
        case "progress":
            if let value = data["value"]?.number, let max = data["max"]?.number, max > 0 { prompt.fraction = min(1, value / max) }
        case "executed":
            if let node = data["node"]?.text { prompt.done.insert(node) }
        default:
            return
        }
        prompts[id] = prompt
    }

    /// The share (0-100) of a prompt's `nodes`-node graph done, from its events; `nil` when none arrived.
    func percent(_ promptID: String, nodes: Int) -> Int? {
        guard let prompt = prompts[promptID], nodes > 0 else { return nil }
        let current = prompt.current.map { prompt.done.contains($0) ? 0 : prompt.fraction } ?? 0
        return min(99, Int((Double(prompt.done.count) + current) / Double(nodes) * 100))
    }

    func forget(_ promptID: String) { prompts[promptID] = nil }
}
