import Foundation
import KlingAPI
import KlingCore
import KlingUpstream
import KlingUpstreamFakes
import Testing

/// The ComfyUI provider against a loopback fake instance, with the shipped Wan 2.2 templates: graph filling, image
/// upload, our own prompt ids, a restart that loses history, failures, cancel on old and new instances.
@Suite(.serialized) struct ComfyUITests {
    static let request = GenerationRequest(prompt: "A red fox runs through snow at dawn", negativePrompt: "blurry", duration: 5, aspectRatio: .landscape, mode: .std, audio: false).normalized()

    func provider(_ bases: [String], harness: UpstreamHarness) throws -> ComfyUIProvider {
        ComfyUIProvider(
            instanceURLs: bases, templates: try ComfyUIWorkflowTemplate.loadAll(from: ComfyUIWorkflowTemplateTests.shipped), inputs: harness.fetcher,
            timeout: .seconds(5))
    }

    func fake(_ harness: UpstreamHarness, renderTime: Duration = .milliseconds(300), modern: Bool = false) -> FakeComfyUI {
        var script = FakeComfyUI.Script()
        script.renderTime = renderTime
        script.modern = modern
        return FakeComfyUI(script: script, videoFile: harness.media.video)
    }

    @Test func aTextToVideoTaskRunsTheTemplateUnderOurPromptIDAndBecomesAnExactMP4() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(harness)
        try await fake.run { base in
            let engine = harness.engine(try provider([base], harness: harness))
            let job = try #require(try await harness.claimedJobs(1, request: Self.request).first)
            let output = try await engine.render(job) { _ in }
            let record = fake.record
            #expect(record.prompts.count == 1 && record.prompts[0].id == ComfyUIProvider.promptID(taskID: job.taskID, shot: 0))
            #expect(record.input(0, node: "4", "text") as? String == "A red fox runs through snow at dawn")
            #expect(record.input(0, node: "5", "text") as? String == "blurry")
            #expect(record.input(0, node: "9", "length") as? Int == 81)
            #expect(record.input(0, node: "9", "width") as? Int == 1280 && record.input(0, node: "9", "height") as? Int == 720)
            #expect(record.input(0, node: "13", "fps") as? Int == 16)
            #expect(record.views == 1)
            // The template's 81 frames at 16 fps become exactly 5 s, at the request's size, silent as asked.
            let facts = try FakeMedia.probe(output.videoFile)
            #expect(facts.frames == 80 && abs(facts.duration - 5) < 0.05 && !facts.hasAudio, "\(facts)")
            #expect(output.width == 1280 && output.height == 720)
            #expect(try await harness.store.task(id: job.taskID)?.engine == "comfyui")
        }
    }

    @Test func progressComesFromTheInstancesWebSocketNodeByNode() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(harness, renderTime: .seconds(2))
        try await fake.run { base in
            let engine = harness.engine(try provider([base], harness: harness))
            let job = try #require(try await harness.claimedJobs(1, request: Self.request).first)
            let progress = ProgressLog()
            _ = try await engine.render(job) { await progress.add($0) }
            // Real shares of the graph as its nodes run (UpstreamEngine maps 0-100 to 5-90), not the flat 50 of a
            // poll that knows only "running": several distinct values, rising, under 90 before the end.
            let values = await progress.values
            let running = values.filter { $0 > 5 && $0 < 90 && $0 != 47 }
            #expect(Set(running).count >= 3, "\(values)")
            #expect(running == running.sorted(), "\(values)")
            #expect(values.last == 95)
        }
    }

    @Test func theFirstFrameIsUploadedAndNamedInTheImageToVideoGraph() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(harness)
        let files = FakeVideosServer(flavor: .openAI, videoFile: harness.media.video)
        files.serve("first.jpg", file: harness.media.cover)
        try await files.run { filesBase in
            try await fake.run { base in
                var request = Self.request
                request.imageURLs = [filesBase + "/files/first.jpg"]
                let engine = harness.engine(try provider([base], harness: harness))
                let job = try #require(try await harness.claimedJobs(1, request: request).first)
                _ = try await engine.render(job) { _ in }
                let record = fake.record
                let uploaded = try #require(record.uploads.first)
                #expect(uploaded.value == FileManager.default.contents(atPath: harness.media.cover.path))
                #expect(record.input(0, node: "15", "image") as? String == uploaded.key)
                #expect(record.input(0, node: "9", "start_image") != nil)
            }
        }
    }

    @Test func aPromptLostWithARestartIsSubmittedAgainUnderTheSameID() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(harness, renderTime: .milliseconds(800))
        try await fake.run { base in
            let engine = harness.engine(try provider([base], harness: harness))
            let job = try #require(try await harness.claimedJobs(1, request: Self.request).first)
            let render = Task { try await engine.render(job) { _ in } }
            try await waitUntil { !fake.record.prompts.isEmpty }
            fake.restart()
            let output = try await render.value
            #expect(FileManager.default.fileExists(atPath: output.videoFile.path))
            let ids = fake.record.prompts.map(\.id)
            #expect(ids.count == 2 && Set(ids).count == 1)
        }
    }

    @Test func submittingAgainAfterACrashFindsTheSamePrompt() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(harness, renderTime: .seconds(2))
        try await fake.run { base in
            let provider = try provider([base], harness: harness)
            let first = try await provider.submit(Self.request, taskID: "task_same", callbackURL: nil)
            let second = try await provider.submit(Self.request, taskID: "task_same", callbackURL: nil)
            #expect(first == second)
            #expect(fake.record.prompts.count == 1)
        }
    }

    @Test func aFailedWorkflowFailsTheTaskWithComfyUIsMessage() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(harness, renderTime: .milliseconds(200))
        fake.update { $0.failure = "CUDA out of memory" }
        try await fake.run { base in
            let engine = harness.engine(try provider([base], harness: harness))
            let job = try #require(try await harness.claimedJobs(1, request: Self.request).first)
            let error = await #expect(throws: EngineError.self) { try await engine.render(job) { _ in } }
            #expect(error?.message == "comfyui: CUDA out of memory (node 11 KSamplerAdvanced)")
            #expect(fake.record.views == 0)
        }
    }

    @Test(arguments: [false, true])
    func aTaskCancelledByItsClientIsStoppedOnTheInstance(_ modern: Bool) async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(harness, renderTime: .seconds(5), modern: modern)
        try await fake.run { base in
            let engine = harness.engine(try provider([base], harness: harness))
            let job = try #require(try await harness.claimedJobs(1, request: Self.request).first)
            let render = Task { try await engine.render(job) { _ in } }
            try await waitUntil { !fake.record.prompts.isEmpty }
            _ = try await harness.store.cancel(
                taskID: job.taskID, accountID: harness.accountID, failure: TaskFailure(code: TaskFailure.cancelledCode, message: "cancelled by the caller"),
                now: TaskWorker.nowMillis())
            render.cancel()
            _ = await render.result
            let id = ComfyUIProvider.promptID(taskID: job.taskID, shot: 0)
            try await waitUntil { !fake.record.jobCancels.isEmpty || !fake.record.interrupts.isEmpty }
            if modern {
                #expect(fake.record.jobCancels == [id] && fake.record.interrupts.isEmpty)
            } else {
                #expect(fake.record.interrupts == [id] && fake.record.queueDeletes == [id])
            }
        }
    }

    @Test func anInstanceThatDoesNotAnswerIsSkipped() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(harness, renderTime: .milliseconds(200))
        try await fake.run { base in
            // The dead instance is listed first: the first task tries it once, then every task goes to the live one.
            let engine = harness.engine(try provider(["http://127.0.0.1:9", base], harness: harness))
            let jobs = try await harness.claimedJobs(3, request: Self.request)
            for job in jobs { _ = try await engine.render(job) { _ in } }
            #expect(fake.record.prompts.count == 3)
            for job in jobs {
                #expect(try await harness.store.upstreamTask(taskID: job.taskID)?.taskID.hasPrefix(base + "|") == true)
            }
        }
    }

    @Test func aMultiShotTaskIsOnePromptPerShotJoinedOnTheBoundaries() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let fake = fake(harness, renderTime: .milliseconds(150))
        try await fake.run { base in
            let request = GenerationRequest(
                multiShot: true, shotType: .customize, shots: [.init(prompt: "A red room", duration: 2), .init(prompt: "A blue sea", duration: 3)],
                duration: 5, aspectRatio: .landscape, mode: .std
            ).normalized()
            let engine = harness.engine(try provider([base], harness: harness))
            let job = try #require(try await harness.claimedJobs(1, request: request).first)
            let output = try await engine.render(job) { _ in }
            let record = fake.record
            #expect(record.prompts.map(\.id) == [0, 1].map { ComfyUIProvider.promptID(taskID: job.taskID, shot: $0) })
            #expect(record.input(0, node: "4", "text") as? String == "A red room" && record.input(1, node: "4", "text") as? String == "A blue sea")
            #expect(record.input(0, node: "9", "length") as? Int == 33 && record.input(1, node: "9", "length") as? Int == 49)
            let facts = try FakeMedia.probe(output.videoFile)
            #expect(facts.frames == 80 && abs(facts.duration - 5) < 0.05 && facts.hasAudio, "\(facts)")
        }
    }

    @Test func aRequestNoTemplateHandlesIsRefusedNamingTheField() async throws {
        let harness = try await UpstreamHarness.make()
        defer { harness.cleanUp() }
        let provider = try provider(["http://127.0.0.1:1"], harness: harness)
        var request = Self.request
        request.imageURLs = ["https://a.example/1.png", "https://a.example/2.png"]
        #expect(provider.unsupportedReason(request) == "image_urls[1]: no ComfyUI workflow template handles first-last-frame")
        #expect(provider.unsupportedReason(Self.request) == nil)
    }

    func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<200 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("timed out waiting")
    }
}
