// What KlingKit adds after a GPU server has made a video: a real kling-server (SQLite, one process) whose
// `openai-videos` engine points at a loopback /v1/videos fake that finishes every video at once. For each task,
// from the instant the fake hands over the video's last byte (its /content answer) to
//   - the task's success being committed (what recordInfo answers from then on: completed_at in the store), and
//   - its Market callback arriving at a loopback receiver (the callback leaving, plus loopback delivery),
// median and p99; and tasks followed per second with `tasks` in flight at once (default 200).
import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import KlingCore
import KlingPreview
import KlingServer
import KlingSQLite
import KlingTestSupport
import KlingUpstream
import KlingUpstreamFakes
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Records when each task's callback arrived (Unix milliseconds).
final class CallbackArrivals: Sendable {
    let arrivals = Mutex<[String: Int64]>([:])

    func run<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("hook") { request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 1 << 20)
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let json = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
            if let id = (json?["data"] as? [String: Any])?["taskId"] as? String {
                self.arrivals.withLock { if $0[id] == nil { $0[id] = now } }
            }
            return .ok
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in try await body("http://127.0.0.1:\(client.port!)/hook") }
    }
}

func runEngineOverheadBench(tasks count: Int) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("engine-bench-\(UUID().uuidString)", isDirectory: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let media = try FakeMedia.make(in: folder.appendingPathComponent("media"))
    var script = FakeVideosServer.Script()
    script.renderTime = .zero
    let fake = FakeVideosServer(flavor: .openAI, script: script, videoFile: media.video)
    let receiver = CallbackArrivals()
    let logger: Logger = {
        var logger = Logger(label: "engine-bench")
        logger.logLevel = .error
        return logger
    }()

    try await fake.run { base in
        try await receiver.run { hook in
            var configuration = ServerConfiguration.forTests(directory: folder.appendingPathComponent("server"), workers: 1)
            configuration.limits.maxActiveTasks = 0
            configuration.callbacks.pollInterval = .milliseconds(100)
            configuration.upstream.engines = ["openai-videos"]
            configuration.upstream.openAIVideosURLs = [base]
            configuration.upstream.openAIVideosProfile = "openai"
            configuration.upstream.callsPerSecond = 5000
            configuration.upstream.openTasks = count
            configuration.upstream.following.firstPoll = .milliseconds(50)
            configuration.upstream.following.maxPollInterval = .milliseconds(200)
            let store = try SQLiteTaskStore.sqlite(path: configuration.databasePath)
            let accounts = AccountService(store: store)
            let account = try await accounts.createAccount(name: "bench", credits: 1 << 40)
            let key = try await accounts.createKey(accountName: "bench").key
            var fetching = HTTPInputFetcher.Configuration()
            fetching.allowPrivateAddresses = true
            let app = try await buildApplication(
                configuration: configuration, store: store, fetcher: HTTPInputFetcher(configuration: fetching),
                makeEngine: { PreviewEngine(fetcher: $0) }, logger: logger)
            try await app.test(.ahc(.http)) { client in
                let body = """
                    {"model":"kling-3.0/video","callBackUrl":"\(hook)","input":{"prompt":"A red fox runs through snow","duration":"5","mode":"std","sound":false}}
                    """
                let start = ContinuousClock.now
                var ids: [String] = []
                try await withThrowingTaskGroup(of: String?.self) { group in
                    for _ in 0..<count {
                        group.addTask {
                            try await client.execute(
                                uri: "/api/v1/jobs/createTask", method: .post,
                                headers: [.authorization: "Bearer \(key)", .contentType: "application/json"], body: ByteBuffer(string: body)
                            ) { response in
                                let json = try? JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                                return (json?["data"] as? [String: Any])?["taskId"] as? String
                            }
                        }
                    }
                    for try await id in group { if let id { ids.append(id) } }
                }
                while try await store.taskCounts()[.succeeded, default: 0] + store.taskCounts()[.failed, default: 0] < ids.count {
                    try await Task.sleep(for: .milliseconds(5))
                }
                let followed = ContinuousClock.now - start
                while receiver.arrivals.withLock({ $0.count }) < ids.count {
                    try await Task.sleep(for: .milliseconds(10))
                    if ContinuousClock.now - start > .seconds(300) { break }
                }
                let served = fake.record.contentServedAt
                let arrivals = receiver.arrivals.withLock { $0 }
                var toSuccess: [Double] = []
                var toCallback: [Double] = []
                var failed = 0
                for id in ids {
                    guard let task = try await store.task(id: id), task.state == .succeeded, let completed = task.completedAt,
                        let reference = try await store.upstreamTask(taskID: id),
                        let videoID = reference.taskID.split(separator: "|").last.map(String.init), let last = served[videoID]
                    else {
                        failed += 1
                        continue
                    }
                    toSuccess.append(Double(completed - last))
                    if let arrived = arrivals[id] { toCallback.append(Double(arrived - last)) }
                }
                let seconds = Double(followed.components.seconds) + Double(followed.components.attoseconds) / 1e18
                print("openai-videos engine overhead: \(ids.count) tasks at once, loopback server that finishes at once (account \(account.name))")
                print(String(format: "  last byte -> success committed: median %.0f ms, p99 %.0f ms", percentile(toSuccess, 0.5), percentile(toSuccess, 0.99)))
                print(String(format: "  last byte -> callback arrived:  median %.0f ms, p99 %.0f ms (%d of %d)", percentile(toCallback, 0.5), percentile(toCallback, 0.99), toCallback.count, ids.count))
                print(String(format: "  followed: %.1f tasks/s (%d tasks in %.2f s, %d not succeeded)", Double(ids.count) / seconds, ids.count, seconds, failed))
            }
        }
    }
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}
