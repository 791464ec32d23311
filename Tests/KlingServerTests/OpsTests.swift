import Foundation
import HummingbirdTesting
import Metrics
import Prometheus
import Testing

/// `/healthz`, `/readyz` and `/metrics`.
@Suite("Operations endpoints", .timeLimit(.minutes(3)))
struct OpsTests {
    @Test func readyAndMetricsReportTheStore() async throws {
        let server = try await TestServer.make(workers: 1, credits: 1000)
        try await server.run { client in
            #expect(try await client.execute(uri: "/healthz", method: .get) { String(buffer: $0.body) } == "ok")
            let ready = try await client.execute(uri: "/readyz", method: .get) { JSONAnswer($0) }
            #expect(ready.status == 200, "\(ready.raw)")
            #expect(ready.object["ready"] as? Bool == true)

            let body = #"{"model":"kling-3.0/video","input":{"prompt":"metrics","duration":"3","mode":"std","sound":false}}"#
            let id = try #require(try await client.create(.market, body: body, key: server.key).data?["taskId"] as? String)
            _ = try await client.waitForTerminal(.market, id: id, key: server.key)
            let text = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            #expect(text.contains(#"kling_tasks{state="succeeded"} 1"#), "\(text)")
            #expect(text.contains("kling_credits_charged 30"))
            #expect(text.contains("kling_queue_oldest_seconds 0"))
            #expect(text.contains(#"kling_callbacks{state="pending"} 0"#))
        }
    }
}
