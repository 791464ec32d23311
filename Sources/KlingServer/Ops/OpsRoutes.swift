import Foundation
import Hummingbird
import KlingAPI
import KlingCore
import Prometheus

/// Operations endpoints: `GET /readyz` (store reachable, ffmpeg present, workers configured) and `GET /metrics`
/// (Prometheus text: HTTP requests by route and status with latency histograms when the process bootstrapped
/// swift-metrics, plus store-wide task, queue, credit and callback figures read at scrape time).
struct OpsRoutes {
    let store: any MonitoringStore
    let workers: Int
    let ffmpeg: String
    let registry: PrometheusCollectorRegistry

    func register(on router: Router<KlingRequestContext>) {
        router.get("readyz") { _, _ in try await ready() }
        router.get("metrics") { _, _ in try await metrics() }
    }

    /// Whether an executable is on PATH (or at an absolute path).
    static func executableExists(_ name: String) -> Bool {
        if name.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: name) }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    private func ready() async throws -> Response {
        var checks: [String: JSONValue] = [:]
        var ready = true
        do {
            _ = try await store.taskCounts()
            checks["store"] = "ok"
        } catch {
            checks["store"] = .string("unreachable: \(error)")
            ready = false
        }
        if workers > 0 {
            let found = Self.executableExists(ffmpeg)
            checks["ffmpeg"] = found ? "ok" : .string("\(ffmpeg) not found")
            ready = ready && found
        }
        checks["workers"] = .number(Double(workers))
        return JSONResponse.make(status: ready ? 200 : 503, body: JSONValue.object(["ready": .bool(ready), "checks": .object(checks)]))
    }

    private func metrics() async throws -> Response {
        let stats = try await store.operationalStats(now: TaskWorker.nowMillis())
        func gauge(_ name: String, _ unit: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
            registry.makeGauge(
                descriptor: MetricNameDescriptor(namespace: "kling", metricName: name, unitName: unit, helpText: help), labels: labels)
        }
        for state in [TaskState.queued, .running, .succeeded, .failed] {
            gauge("tasks", "", "Tasks by state (whole store)", [("state", state.rawValue)]).set(Double(stats.tasksByState[state] ?? 0))
        }
        gauge("queue_oldest", "seconds", "Age of the oldest queued task").set(stats.oldestQueuedSeconds)
        gauge("credits_charged", "", "Credits charged for accepted tasks").set(Double(-(stats.ledgerTotals[.charge] ?? 0)))
        gauge("credits_refunded", "", "Credits given back for failed tasks").set(Double(stats.ledgerTotals[.refund] ?? 0))
        for state in [CallbackRecord.State.pending, .delivered, .failed, .gone] {
            gauge("callbacks", "", "Callbacks by state", [("state", state.rawValue)]).set(Double(stats.callbacksByState[state] ?? 0))
        }
        for outcome in ["ok", "failed"] {
            gauge("callback_attempts", "", "Callback delivery attempts", [("outcome", outcome)])
                .set(Double(stats.callbackAttempts[outcome] ?? 0))
        }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
    }
}
