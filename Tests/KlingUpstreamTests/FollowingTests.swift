import Foundation
import KlingAPI
import KlingCore
import KlingUpstream
import KlingUpstreamFakes
import Testing

/// Upstream engines against loopback fakes of each provider: forwarding, following, results, failures, resuming.
@Suite(.serialized) struct FollowingTests {
    @Test(arguments: [FakeProvider.Flavor.official, .market, .crun])
    func followsATaskToTheEndAndCopiesTheResult(_ flavor: FakeProvider.Flavor) async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        var script = FakeScript()
        script.queriesUntilDone = 3
        script.runningProgress = 40
        let fake = harness.fake(flavor, script: script)
        try await fake.run { base in
            let provider: any UpstreamProvider
            switch flavor {
            case .official: provider = await UpstreamHarness.official(base)
            case .market: provider = UpstreamHarness.market(base)
            case .crun: provider = UpstreamHarness.crun(base)
            }
            let callbacks = UpstreamCallbacks(secret: "s3cret", baseURL: { "https://kling.example" })
            let engine = harness.engine(provider, callbacks: callbacks)
            let job = try #require(try await harness.claimedJobs(1).first)
            let progress = ProgressLog()
            let output = try await engine.render(job) { await progress.add($0) }

            // The result is our copy, byte for byte, described by ffprobe.
            #expect(output.videoFile.path.hasPrefix(job.outputDirectory.path))
            #expect(FileManager.default.contents(atPath: output.videoFile.path) == FileManager.default.contents(atPath: harness.media.video.path))
            // Kling official and Market results link a cover; CRUN's contract has none.
            #expect(output.coverFile.map { FileManager.default.fileExists(atPath: $0.path) } == (flavor == .crun ? nil : true))
            #expect(output.width == 320 && output.height == 240 && output.hasAudio)
            #expect(abs(output.durationSeconds - 2) < 0.2)
            // Progress: queued, then the provider's 40% mapped, then copying.
            let values = await progress.values
            #expect(values.contains(2) && values.contains(39) && values.last == 95)
            // The provider's id is stored privately with the engine's name.
            let reference = try #require(try await harness.store.upstreamTask(taskID: job.taskID))
            #expect(reference == UpstreamTaskReference(engine: provider.engineName, taskID: "\(flavor.rawValue)-1"))
            #expect(try await harness.store.task(id: job.taskID)?.engine == provider.engineName)
            // Callbacks point at our signed endpoint for this task, never a client's URL.
            let create = try #require(fake.record.creates.first).json
            let callback = (create["callback_url"] ?? create["callBackUrl"]) as? String
            #expect(callback == callbacks.url(for: job.taskID))
            #expect(callback?.hasPrefix("https://kling.example/api/v1/upstream/callbacks/\(job.taskID)?token=") == true)
            if flavor == .official { #expect(create["external_task_id"] as? String == job.taskID) }
            #expect(fake.record.queries.count == 3)
        }
    }

    @Test func keepsKlingsFailureReason() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        var script = FakeScript()
        script.outcome = .fail(reason: "Failure to pass the risk control system")
        let fake = harness.fake(.official, script: script)
        try await fake.run { base in
            let engine = harness.engine(await UpstreamHarness.official(base))
            let job = try #require(try await harness.claimedJobs(1).first)
            let error = await #expect(throws: EngineError.self) { try await engine.render(job) { _ in } }
            #expect(error?.code == 501)
            #expect(error?.message == "kling-official: Failure to pass the risk control system")
            #expect(fake.record.downloads == 0)
        }
    }

    @Test func honoursRetryAfterAndRidesOutServerErrorsWhileFollowing() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        var script = FakeScript()
        script.queryRefusals = [.rateLimited(retryAfter: 2), .serverError, .serverError]
        let fake = harness.fake(.market, script: script)
        try await fake.run { base in
            let engine = harness.engine(UpstreamHarness.market(base))
            let job = try #require(try await harness.claimedJobs(1).first)
            _ = try await engine.render(job) { _ in }
            let queries = fake.record.queries
            #expect(queries.count == 5)
            // Nothing was asked during the 2 s the provider asked for.
            #expect(queries[1].at - queries[0].at >= .seconds(2))
        }
    }

    @Test func asksAgainForAFreshLinkWhenTheResultLinkExpired() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        var script = FakeScript()
        script.expiredDownloads = 1
        let fake = harness.fake(.crun, script: script)
        try await fake.run { base in
            let engine = harness.engine(UpstreamHarness.crun(base))
            let job = try #require(try await harness.claimedJobs(1).first)
            let output = try await engine.render(job) { _ in }
            #expect(FileManager.default.fileExists(atPath: output.videoFile.path))
            #expect(fake.record.queries.count == 3)

            // A link that stays dead fails the task with a reason (the worker then refunds it).
            fake.update { $0.expiredDownloads = 10 }
            let second = try #require(try await harness.claimedJobs(1).first)
            let error = await #expect(throws: EngineError.self) { try await engine.render(second) { _ in } }
            #expect(error?.code == 501)
            #expect(error?.message.contains("the finished video could not be copied") == true)
            #expect(error?.message.contains("HTTP 403") == true)
            #expect(!FileManager.default.fileExists(atPath: second.outputDirectory.appendingPathComponent("video.mp4").path))
        }
    }

    @Test func failsAtTheCeiling() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        var script = FakeScript()
        script.runFor = .seconds(3600)
        let fake = harness.fake(.official, script: script)
        try await fake.run { base in
            var following = UpstreamHarness.quickFollowing
            following.ceiling = .seconds(1)
            let engine = harness.engine(await UpstreamHarness.official(base), following: following)
            let job = try #require(try await harness.claimedJobs(1).first)
            let error = await #expect(throws: EngineError.self) { try await engine.render(job) { _ in } }
            #expect(error?.code == 501)
            #expect(error?.message.contains("did not finish the task within") == true)
        }
    }

    @Test func aLaterClaimResumesFollowingInsteadOfCreatingASecondUpstreamTask() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        var script = FakeScript()
        script.runFor = .seconds(2)
        script.sendCallbacks = false
        let fake = harness.fake(.official, script: script)
        try await fake.run { base in
            let job = try #require(try await harness.claimedJobs(1).first)
            // First process: forwards the task, then dies while following.
            let first = harness.engine(await UpstreamHarness.official(base))
            let following = Task { try await first.render(job) { _ in } }
            while try await harness.store.upstreamTask(taskID: job.taskID) == nil { try await Task.sleep(for: .milliseconds(20)) }
            following.cancel()
            _ = await following.result

            // Its lease expires; another process claims the task again and follows the same provider task.
            let later = TaskWorker.nowMillis() + 7_200_000
            let reclaimed = try #require(
                try await harness.store.claimNext(worker: "second", engine: "router", now: later, leaseUntil: later + 60_000, maxAttempts: 3))
            #expect(reclaimed.id == job.taskID && reclaimed.attempts == 2)
            let second = harness.engine(await UpstreamHarness.official(base))
            let output = try await second.render(harness.job(for: reclaimed)) { _ in }
            #expect(FileManager.default.fileExists(atPath: output.videoFile.path))
            #expect(fake.record.creates.count == 1)
        }
    }

    @Test func routerFailsOverOnRetryableRefusalsOnly() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let official = harness.fake(.official)
        let market = harness.fake(.market)
        try await official.run { (officialBase: String) async throws -> Void in
            try await market.run { (marketBase: String) async throws -> Void in
                func router(officialURL: String) async -> EngineRouter {
                    EngineRouter(
                        engines: [
                            "official": harness.engine(await UpstreamHarness.official(officialURL, timeout: .seconds(3))),
                            "market": harness.engine(UpstreamHarness.market(marketBase)),
                        ],
                        table: RoutingTable(defaultEngines: ["official", "market"]), store: harness.store, localConcurrency: 1,
                        logger: harness.logger)
                }
                let engine = await router(officialURL: officialBase)
                // 500, then 429 with Retry-After: each time the next engine takes the task.
                official.update { $0.createRefusals = [.serverError, .rateLimited(retryAfter: 1)] }
                for _ in 0..<2 {
                    let job = try #require(try await harness.claimedJobs(1).first)
                    _ = try await engine.render(job) { _ in }
                    #expect(try await harness.store.upstreamTask(taskID: job.taskID)?.engine == "kling-market")
                    #expect(try await harness.store.task(id: job.taskID)?.engine == "kling-market")
                }
                #expect(market.record.creates.count == 2)

                // A provider that is down (connection refused) is skipped the same way.
                let down = await router(officialURL: "http://127.0.0.1:9")
                let job = try #require(try await harness.claimedJobs(1).first)
                _ = try await down.render(job) { _ in }
                #expect(try await harness.store.upstreamTask(taskID: job.taskID)?.engine == "kling-market")

                // A refusal of the request itself is final: no second engine is asked.
                official.update { $0.createRefusals = [.status(400, code: 1201, message: "prompt: contains a forbidden word")] }
                let refused = try #require(try await harness.claimedJobs(1).first)
                let error = await #expect(throws: EngineError.self) { try await engine.render(refused) { _ in } }
                #expect(error?.code == 422)
                #expect(error?.message.contains("prompt: contains a forbidden word") == true)
                #expect(market.record.creates.count == 3)
            }
        }
    }

    @Test func rateLimitedPollingOfManyOpenTasksFollowsEveryTaskWithinTheLimit() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let count = 200
        var script = FakeScript()
        script.queriesUntilDone = 2
        script.withCover = false
        // The provider allows 50 calls per second, with a bucket of 25 to absorb the jitter of a loaded machine.
        script.rateLimit = .init(perSecond: 50, burst: 25)
        let fake = harness.fake(.official, script: script)
        try await fake.run { base in
            var following = UpstreamHarness.quickFollowing
            following.maxPollInterval = .seconds(2)
            let engine = harness.engine(await UpstreamHarness.official(base), perSecond: 50, following: following)
            let jobs = try await harness.claimedJobs(count)
            let finished = try await withThrowingTaskGroup(of: Bool.self) { group in
                for job in jobs {
                    group.addTask {
                        let output = try await engine.render(job) { _ in }
                        return FileManager.default.fileExists(atPath: output.videoFile.path)
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            let record = fake.record
            #expect(finished == count)
            #expect(record.creates.count == count)
            #expect(record.queries.count == 2 * count)
            // The provider never had to refuse a call, never saw more than its rate (plus its burst) in any second, and
            // over the whole run no more than its rate.
            #expect(record.rateRefusals == 0)
            #expect(record.maxAdmittedPerSecond <= 75)
            let span = try #require(record.admitted.last) - (try #require(record.admitted.first))
            let seconds = Double(span.components.seconds) + Double(span.components.attoseconds) / 1e18
            #expect(Double(record.admitted.count - 25) / seconds <= 50)
            #expect(await engine.limiter.granted == 3 * count)
        }
    }
}
