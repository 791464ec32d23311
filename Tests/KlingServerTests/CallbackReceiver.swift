import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// A callback receiver on loopback: records every POST and answers from a script (then 200 once it runs out).
struct CallbackReceiver: Sendable {
    /// One received callback.
    struct Delivery: Sendable {
        var path: String
        var headers: [String: String]
        var body: Data
        var at: ContinuousClock.Instant
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    }

    /// How the receiver answers one request.
    enum Answer: Sendable {
        case status(Int, headers: [String: String] = [:])
        /// Waits, then answers 200 (to make the sender time out).
        case stall(Duration)
    }

    actor Log {
        var deliveries: [Delivery] = []
        var script: [Answer]
        /// While set, every request is answered 503 and not recorded (a receiver that is down).
        var down = false
        init(script: [Answer]) { self.script = script }
        func record(_ delivery: Delivery) -> Answer {
            if down { return .status(503) }
            deliveries.append(delivery)
            return script.isEmpty ? .status(200) : script.removeFirst()
        }
        func setDown(_ value: Bool) { down = value }
    }

    let port: Int
    let log: Log

    var url: String { "http://127.0.0.1:\(port)/hook" }

    /// Deliveries so far.
    func deliveries() async -> [Delivery] { await log.deliveries }

    /// Waits until at least `count` deliveries arrived (or `timeout` passed) and returns them.
    func waitFor(_ count: Int, timeout: Duration = .seconds(30)) async throws -> [Delivery] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let deliveries = await log.deliveries
            if deliveries.count >= count { return deliveries }
            try await Task.sleep(for: .milliseconds(50))
        }
        return await log.deliveries
    }

    /// Answers 503 to everything until ``setDown(_:)`` is called with `false`.
    func setDown(_ down: Bool) async { await log.setDown(down) }

    static func with(script: [Answer] = [], _ body: @Sendable (CallbackReceiver) async throws -> Void) async throws {
        let log = Log(script: script)
        let router = Router()
        router.post("**") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let answer = await log.record(Delivery(path: request.uri.path, headers: headers, body: Data(buffer: bytes), at: .now))
            switch answer {
            case .status(let code, let extra):
                var fields = HTTPFields()
                for (name, value) in extra { fields[HTTPField.Name(name)!] = value }
                return Response(status: .init(code: code), headers: fields)
            case .stall(let duration):
                try await Task.sleep(for: duration)
                return Response(status: .ok)
            }
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await body(CallbackReceiver(port: try #require(client.port), log: log))
        }
    }
}
