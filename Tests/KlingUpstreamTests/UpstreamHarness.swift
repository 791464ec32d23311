import Foundation
import KlingAPI
import KlingCore
import KlingPreview
import KlingSQLite
import KlingUpstream
import KlingUpstreamFakes
import Logging
import Testing

/// A real SQLite store with one funded account, claimed tasks to render, the safe fetcher (private addresses allowed:
/// the fakes are on loopback) and a real MP4 for fakes to serve.
struct UpstreamHarness {
    let directory: URL
    let store: SQLiteTaskStore
    let accountID: String
    let media: (video: URL, cover: URL)
    let logger: Logger

    static func make() async throws -> UpstreamHarness {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kling-upstream-\(UUID().uuidString)", isDirectory: true)
        let store = try SQLiteTaskStore.sqlite(path: directory.appendingPathComponent("kling.sqlite").path)
        let account = try await store.createAccount(name: "alice", credits: 100_000_000, now: TaskWorker.nowMillis())
        var logger = Logger(label: "upstream-test")
        logger.logLevel = .error
        return UpstreamHarness(
            directory: directory, store: store, accountID: account.id, media: try FakeMedia.make(in: directory.appendingPathComponent("media")),
            logger: logger)
    }

    func cleanUp() { try? FileManager.default.removeItem(at: directory) }

    /// The safe fetcher, allowed to reach loopback.
    var fetcher: HTTPInputFetcher {
        var configuration = HTTPInputFetcher.Configuration()
        configuration.allowPrivateAddresses = true
        return HTTPInputFetcher(configuration: configuration)
    }

    /// Stores `count` queued tasks and claims each, as a worker does; the jobs come back in creation order.
    func claimedJobs(_ count: Int, request: GenerationRequest = UpstreamHarness.request, model: String = "kling-3.0/video") async throws -> [RenderJob] {
        var ids: [String] = []
        let now = TaskWorker.nowMillis()
        for index in 0..<count {
            let id = "task_\(UUID().uuidString.prefix(8))_\(index)"
            let task = TaskRecord(
                id: id, accountID: accountID, dialect: "market", model: model, request: request, params: "{}", createdAt: now + Int64(index),
                updatedAt: now, credits: 10)
            try await store.insert(task, maxActiveTasks: nil)
            ids.append(id)
        }
        var jobs: [String: RenderJob] = [:]
        for _ in 0..<count {
            let claimed = try #require(
                try await store.claimNext(worker: "test", engine: "router", now: now, leaseUntil: now + 3_600_000, maxAttempts: 3))
            jobs[claimed.id] = job(for: claimed)
        }
        return ids.map { jobs[$0]! }
    }

    func job(for task: TaskRecord) -> RenderJob {
        let output = directory.appendingPathComponent("results/\(task.id)", isDirectory: true)
        let scratch = directory.appendingPathComponent("tmp/\(task.id)-\(task.attempts)", isDirectory: true)
        try? FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        return RenderJob(taskID: task.id, request: task.request, outputDirectory: output, scratchDirectory: scratch, attempt: task.attempts)
    }

    /// Quick following for tests: first query after 50 ms, backoff up to 300 ms.
    static var quickFollowing: UpstreamEngine.Configuration {
        var following = UpstreamEngine.Configuration()
        following.firstPoll = .milliseconds(50)
        following.maxPollInterval = .milliseconds(300)
        following.defaultRetryAfter = .milliseconds(500)
        return following
    }

    func engine(
        _ provider: any UpstreamProvider, perSecond: Double = 1000, following: UpstreamEngine.Configuration = UpstreamHarness.quickFollowing,
        callbacks: UpstreamCallbacks? = nil
    ) -> UpstreamEngine {
        UpstreamEngine(
            provider: provider, limiter: ProviderRateLimiter(perSecond: perSecond), store: store, fetcher: fetcher, callbacks: callbacks,
            configuration: following, logger: logger)
    }

    func fake(_ flavor: FakeProvider.Flavor, script: FakeScript = FakeScript()) -> FakeProvider {
        FakeProvider(flavor: flavor, key: "\(flavor.rawValue)-key", secretKey: "official-secret-0123456789abcdefghij", script: script, videoFile: media.video, coverFile: media.cover)
    }

    static func official(_ base: String, timeout: Duration = .seconds(10)) async -> KlingOfficialProvider {
        await KlingOfficialProvider(baseURL: base, accessKey: "official-key", secretKey: "official-secret-0123456789abcdefghij", timeout: timeout)
    }

    static func market(_ base: String) -> MarketProvider { MarketProvider(baseURL: base, key: "market-key", timeout: .seconds(10)) }
    static func crun(_ base: String) -> CRUNProvider { CRUNProvider(baseURL: base, key: "crun-key", timeout: .seconds(10)) }

    static let request = GenerationRequest(prompt: "A red fox runs through snow at dawn", duration: 5, mode: .pro, audio: true)
}

/// Progress values an engine reported.
actor ProgressLog {
    var values: [Int] = []
    func add(_ value: Int) { values.append(value) }
}
