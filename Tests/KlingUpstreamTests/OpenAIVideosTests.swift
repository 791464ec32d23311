import Foundation
import KlingAPI
import KlingCore
import KlingUpstream
import KlingUpstreamFakes
import Testing

/// The `openai-videos` engine against loopback fakes of SGLang Diffusion, vLLM-Omni and OpenAI: profiles, multipart
/// creates with the first frame as a file, following without progress, re-hosting, cancel, resume and placement.
@Suite(.serialized) struct OpenAIVideosTests {
    static let wanRequest = GenerationRequest(
        prompt: "A red fox runs through snow at dawn", negativePrompt: "blurry", duration: 5, aspectRatio: .landscape, mode: .std, audio: false
    ).normalized()

    func provider(
        _ bases: [String], profile: String = "sglang-wan2.2", harness: UpstreamHarness, key: String? = "gpu-key", model: String? = "wan2.2"
    ) -> OpenAIVideosProvider {
        OpenAIVideosProvider(
            baseURLs: bases, key: key, model: model, profile: OpenAIVideosProfile.all[profile]!, inputs: harness.fetcher, timeout: .seconds(5))
    }

    func fake(_ flavor: FakeVideosServer.Flavor, _ harness: UpstreamHarness, renderTime: Duration = .milliseconds(400)) -> FakeVideosServer {
        var script = FakeVideosServer.Script()
        script.renderTime = renderTime
        script.key = "gpu-key"
        return FakeVideosServer(flavor: flavor, script: script, videoFile: harness.media.video)
    }

    @Test(arguments: [FakeVideosServer.Flavor.sglang, .vllmOmni, .openAI])
    func followsAVideoToTheEndAndRehostsIt(_ flavor: FakeVideosServer.Flavor) async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(flavor, harness)
        try await fake.run { base in
            let engine = harness.engine(provider([base], harness: harness))
            let job = try #require(try await harness.claimedJobs(1, request: Self.wanRequest).first)
            let progress = ProgressLog()
            let output = try await engine.render(job) { await progress.add($0) }

            // The server's MP4, byte for byte, probed.
            #expect(FileManager.default.contents(atPath: output.videoFile.path) == FileManager.default.contents(atPath: harness.media.video.path))
            #expect(output.width == 320 && output.height == 240)
            // Wan 2.2 on SGLang's fields: 16 fps, 4n+1 frames for 5 s, the 720p size, the mode's steps.
            let create = try #require(fake.record.creates.first)
            #expect(create.authorization == "Bearer gpu-key")
            #expect(create.fields["prompt"] == "A red fox runs through snow at dawn")
            #expect(create.fields["seconds"] == "5" && create.fields["size"] == "1280x720")
            #expect(create.fields["width"] == "1280" && create.fields["height"] == "720")
            #expect(create.fields["fps"] == "16" && create.fields["num_frames"] == "81")
            #expect(create.fields["num_inference_steps"] == "40" && create.fields["guidance_scale"] == "5.0")
            #expect(create.fields["negative_prompt"] == "blurry" && create.fields["model"] == "wan2.2")
            #expect(create.fields["seed"].flatMap(Int.init) != nil && create.inputReference == nil)
            // Progress never passes 90% before the server says the video is done (SGLang says queued until then).
            let values = await progress.values
            #expect(values.last == 95)
            #expect(values.dropLast().allSatisfy { $0 <= 90 })
            let reference = try #require(try await harness.store.upstreamTask(taskID: job.taskID))
            #expect(reference.engine == "openai-videos" && reference.taskID.hasPrefix(base + "|video_"))
            #expect(try await harness.store.task(id: job.taskID)?.engine == "openai-videos")
        }
    }

    @Test func theFirstFrameGoesAsAMultipartFileAndCfgScaleBecomesGuidance() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(.sglang, harness)
        fake.serve("first.jpg", file: harness.media.cover)
        try await fake.run { base in
            var request = Self.wanRequest
            request.imageURLs = [base + "/files/first.jpg"]
            request.cfgScale = 1
            let engine = harness.engine(provider([base], harness: harness))
            let job = try #require(try await harness.claimedJobs(1, request: request).first)
            _ = try await engine.render(job) { _ in }
            let create = try #require(fake.record.creates.first)
            #expect(create.inputReference == FileManager.default.contents(atPath: harness.media.cover.path))
            #expect(create.fields["guidance_scale"] == "9.0")
            // The GPU server is never handed a URL to fetch.
            #expect(!create.fields.values.contains { $0.contains("/files/first.jpg") })
        }
    }

    @Test func aRemoteFailureFailsTheTaskWithTheServersMessage() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(.openAI, harness, renderTime: .milliseconds(200))
        fake.update { $0.failure = "CUDA out of memory" }
        try await fake.run { base in
            let engine = harness.engine(provider([base], harness: harness))
            let job = try #require(try await harness.claimedJobs(1, request: Self.wanRequest).first)
            let error = await #expect(throws: EngineError.self) { try await engine.render(job) { _ in } }
            #expect(error?.code == 501)
            #expect(error?.message == "openai-videos: CUDA out of memory")
            #expect(fake.record.contentRequests == 0)
        }
    }

    @Test func aWrongKeyFailsWithoutRetrying() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(.openAI, harness)
        try await fake.run { base in
            let engine = harness.engine(provider([base], harness: harness, key: "wrong"))
            let job = try #require(try await harness.claimedJobs(1, request: Self.wanRequest).first)
            let error = await #expect(throws: EngineError.self) { try await engine.render(job) { _ in } }
            #expect(error?.retryable == false)
            #expect(error?.message.contains("401") == true)
            #expect(fake.record.creates.isEmpty)
        }
    }

    @Test(arguments: [
        ("sora", GenerationRequest(prompt: "p", duration: 5, aspectRatio: .landscape, mode: .std), "duration: the sora profile makes 4, 8 or 12 s videos (asked 5)"),
        ("sglang-wan2.2", GenerationRequest(prompt: "p", duration: 5, aspectRatio: .landscape, mode: .fourK), "mode: the sglang-wan2.2 profile makes no 4K videos"),
        ("sora", GenerationRequest(prompt: "p", duration: 4, aspectRatio: .square, mode: .std), "aspect_ratio: the sora profile makes no 1:1 videos in std mode"),
        ("openai", GenerationRequest(prompt: "p", duration: 5, mode: .std, imageURLs: ["https://a.example/1.png", "https://a.example/2.png"]),
            "image_urls[1]: a last frame is not part of the /v1/videos contract"),
    ])
    func profilesRefuseWhatTheModelCannotMakeExactly(_ profile: String, _ request: GenerationRequest, _ reason: String) throws {
        let found = try #require(OpenAIVideosProfile.all[profile])
        #expect(found.unsupportedReason(request.normalized()) == reason)
    }

    @Test func aRequestNoEngineCanMakeFailsWith422NamingTheField() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(.openAI, harness)
        try await fake.run { base in
            let sora = harness.engine(provider([base], profile: "sora", harness: harness))
            let router = EngineRouter(
                engines: ["openai-videos": sora], table: RoutingTable(rules: [], defaultEngines: ["openai-videos"]), store: harness.store,
                localConcurrency: 1, logger: harness.logger)
            let job = try #require(try await harness.claimedJobs(1, request: Self.wanRequest).first)
            let error = await #expect(throws: EngineError.self) { try await router.render(job) { _ in } }
            #expect(error?.code == 422)
            #expect(error?.message == "no engine accepted the task: openai-videos: duration: the sora profile makes 4, 8 or 12 s videos (asked 5)")
            #expect(fake.record.creates.isEmpty)
        }
    }

    @Test(arguments: [FakeVideosServer.Flavor.sglang, .openAI])
    func aTaskCancelledByItsClientIsDeletedOnTheServer(_ flavor: FakeVideosServer.Flavor) async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(flavor, harness, renderTime: .seconds(3))
        try await fake.run { base in
            let engine = harness.engine(provider([base], harness: harness))
            let job = try #require(try await harness.claimedJobs(1, request: Self.wanRequest).first)
            let render = Task { try await engine.render(job) { _ in } }
            try await waitUntil { !fake.record.creates.isEmpty }
            let outcome = try await harness.store.cancel(
                taskID: job.taskID, accountID: harness.accountID, failure: TaskFailure(code: TaskFailure.cancelledCode, message: "cancelled by the caller"),
                now: TaskWorker.nowMillis())
            #expect(outcome == .cancelled)
            render.cancel()
            _ = await render.result
            try await waitUntil { !fake.record.deletes.isEmpty }
            let reference = try #require(try await harness.store.upstreamTask(taskID: job.taskID))
            #expect(fake.record.deletes == [String(reference.taskID.split(separator: "|")[1])])
            // SGLang only forgets the record: its GPU work goes on to the end (the README says so); OpenAI stops.
            try await Task.sleep(for: .seconds(3.3))
            #expect(fake.record.generated.count == (flavor == .sglang ? 1 : 0))
        }
    }

    @Test func aWorkerStoppedMidTaskResumesTheSameRemoteVideoAndSendsNoDelete() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(.sglang, harness, renderTime: .seconds(1))
        try await fake.run { base in
            let provider = provider([base], harness: harness)
            let job = try #require(try await harness.claimedJobs(1, request: Self.wanRequest).first)
            let first = Task { try await harness.engine(provider).render(job) { _ in } }
            try await waitUntil { !fake.record.creates.isEmpty }
            first.cancel()  // the worker is gone; the task is still running and its lease runs out
            _ = await first.result
            let now = TaskWorker.nowMillis() + 3_600_001
            let again = try #require(try await harness.store.claimNext(worker: "w2", engine: "router", now: now, leaseUntil: now + 60_000, maxAttempts: 3))
            let output = try await harness.engine(provider).render(harness.job(for: again)) { _ in }
            #expect(FileManager.default.fileExists(atPath: output.videoFile.path))
            #expect(fake.record.creates.count == 1)
            #expect(fake.record.deletes.isEmpty)
        }
    }

    @Test func videosGoToTheServerWithTheFewestInFlight() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let one = fake(.sglang, harness, renderTime: .seconds(1))
        let two = fake(.sglang, harness, renderTime: .seconds(1))
        try await one.run { first in
            try await two.run { second in
                let engine = harness.engine(provider([first, second], harness: harness))
                let jobs = try await harness.claimedJobs(4, request: Self.wanRequest)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for job in jobs { group.addTask { _ = try await engine.render(job) { _ in } } }
                    try await group.waitForAll()
                }
                #expect(one.record.creates.count == 2 && two.record.creates.count == 2)
            }
        }
    }

    @Test func aVideoTheServerStoredElsewhereIsFetchedFromThere() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(.sglang, harness, renderTime: .milliseconds(200))
        fake.serve("uploaded.mp4", file: harness.media.video)
        try await fake.run { base in
            // SGLang with S3 upload on: `url` names the object and /content answers 400 (here another host name for
            // the same loopback server, so the safe fetcher gets it).
            fake.update { $0.externalURL = base.replacingOccurrences(of: "127.0.0.1", with: "localhost") + "/files/uploaded.mp4" }
            let engine = harness.engine(provider([base], harness: harness))
            let job = try #require(try await harness.claimedJobs(1, request: Self.wanRequest).first)
            let output = try await engine.render(job) { _ in }
            #expect(FileManager.default.contents(atPath: output.videoFile.path) == FileManager.default.contents(atPath: harness.media.video.path))
            #expect(fake.record.contentRequests == 0)
        }
    }

    @Test(arguments: [false, true])
    func aMultiShotTaskIsMadeShotByShotAndJoinedWithCutsOnTheBoundaries(_ piecesHaveSound: Bool) async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let folder = harness.directory.appendingPathComponent("shots")
        // What Wan makes: fps × seconds + 1 frames per shot, each shot a colour of its own.
        let files = try [("red", 3), ("blue", 4), ("green", 3)].map { colour, seconds in
            try FakeMedia.colour(colour, seconds: Double(seconds) + 1.0 / 16, audio: piecesHaveSound, name: colour, in: folder)
        }
        let fake = fake(.sglang, harness, renderTime: .milliseconds(300))
        fake.update { $0.videoFiles = files }
        try await fake.run { base in
            let request = GenerationRequest(
                multiShot: true, shotType: .customize,
                shots: [.init(prompt: "A red room", duration: 3), .init(prompt: "A blue sea. \"Hello there\" she says", duration: 4), .init(prompt: "A green field", duration: 3)],
                duration: 10, aspectRatio: .landscape, mode: .std
            ).normalized()
            let engine = harness.engine(provider([base], harness: harness))
            let job = try #require(try await harness.claimedJobs(1, request: request).first)
            let output = try await engine.render(job) { _ in }

            // One generation per shot: its prompt, its duration, Wan's frame count for it.
            let creates = fake.record.creates
            #expect(creates.map { $0.fields["prompt"] } == request.shots.map(\.prompt))
            #expect(creates.map { $0.fields["seconds"] } == ["3", "4", "3"])
            #expect(creates.map { $0.fields["num_frames"] } == ["49", "65", "49"])
            // Exactly 10 s at 16 fps, at the profile's 720p size, cut where the shots meet, with sound (multi-shot always has it).
            let facts = try FakeMedia.probe(output.videoFile)
            #expect(facts.frames == 160, "\(facts)")
            #expect(abs(facts.duration - 10) < 0.05, "\(facts)")
            #expect(facts.hasAudio && output.hasAudio)
            #expect(output.width == 1280 && output.height == 720)
            let cuts = try FakeMedia.sceneCuts(output.videoFile)
            #expect(cuts.count == 2, "\(cuts)")
            #expect(zip(cuts, [3.0, 7.0]).allSatisfy { abs($0 - $1) < 0.07 }, "\(cuts)")
        }
    }

    @Test func aSilentVideoGetsThePreviewsSoundWhenTheRequestAsksForSound() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let silent = try FakeMedia.colour("navy", seconds: 5 + 1.0 / 16, audio: false, name: "silent", in: harness.directory.appendingPathComponent("silent"))
        let fake = fake(.sglang, harness, renderTime: .milliseconds(200))
        fake.update { $0.videoFiles = [silent] }
        try await fake.run { base in
            var request = Self.wanRequest
            request.audio = true
            request.prompt = "A narrator says \"Welcome to the coast\""
            let engine = harness.engine(provider([base], harness: harness))
            let job = try #require(try await harness.claimedJobs(1, request: request.normalized()).first)
            let output = try await engine.render(job) { _ in }
            let facts = try FakeMedia.probe(output.videoFile)
            #expect(facts.hasAudio && output.hasAudio)
            #expect(abs(facts.duration - 5) < 0.05 && facts.frames == 80, "\(facts)")
        }
    }

    func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<200 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("timed out waiting")
    }
}
