import Foundation
import KlingAPI
import KlingCore
import Testing

@testable import KlingPreview

/// Renders real requests and checks, with ffprobe and ffmpeg filters (ssim, scene detection, signalstats, astats),
/// that the output shows each parameter: images, camera words, shots, elements, dialogue, sizes and durations.
@Suite("Fidelity: the output shows every parameter", .timeLimit(.minutes(10)))
struct FidelityTests {
    // MARK: - Image to video

    @Test func firstFrameIsTheImageAndAPushInMovesTowardsItsCentre() async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(
                prompt: "Slow push in on the test card", duration: 3, mode: .std, imageURLs: [inputs.url("start.png")])
            let (output, root) = try await render(request)
            defer { try? FileManager.default.removeItem(at: root) }
            let image = inputs.file("start.png")
            let opening = try FrameStatistics.ssim(output.videoFile, frame: 0, against: image, width: 1280, height: 960)
            #expect(opening >= 0.9, "frame 0 is the image: \(opening)")
            let endWhole = try FrameStatistics.ssim(output.videoFile, frame: 71, against: image, width: 1280, height: 960)
            let endCentre = try FrameStatistics.ssim(
                output.videoFile, frame: 71, against: image, width: 1280, height: 960, view: "iw/1.3:ih/1.3:(iw-ow)/2:(ih-oh)/2")
            #expect(endWhole < 0.85, "the camera moved: \(endWhole)")
            #expect(endCentre >= 0.8 && endCentre > endWhole + 0.1, "it ends on the image's centre: \(endCentre) vs \(endWhole)")
        }
    }

    @Test(arguments: [
        ("Pan left across the card", "iw/1.18:ih/1.18:0:(ih-oh)/2", "iw/1.18:ih/1.18:iw-ow:(ih-oh)/2"),
        ("Pan right across the card", "iw/1.18:ih/1.18:iw-ow:(ih-oh)/2", "iw/1.18:ih/1.18:0:(ih-oh)/2"),
        ("Tilt up to the top of the card", "iw/1.18:ih/1.18:(iw-ow)/2:0", "iw/1.18:ih/1.18:(iw-ow)/2:ih-oh"),
        ("Tilt down the card", "iw/1.18:ih/1.18:(iw-ow)/2:ih-oh", "iw/1.18:ih/1.18:(iw-ow)/2:0"),
    ])
    func panAndTiltEndOnTheNamedSide(_ prompt: String, _ expectedView: String, _ oppositeView: String) async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(prompt: prompt, duration: 3, mode: .std, imageURLs: [inputs.url("start.png")])
            let (output, root) = try await render(request)
            defer { try? FileManager.default.removeItem(at: root) }
            let image = inputs.file("start.png")
            #expect(try FrameStatistics.ssim(output.videoFile, frame: 0, against: image, width: 1280, height: 960) >= 0.9)
            let expected = try FrameStatistics.ssim(output.videoFile, frame: 71, against: image, width: 1280, height: 960, view: expectedView)
            let opposite = try FrameStatistics.ssim(output.videoFile, frame: 71, against: image, width: 1280, height: 960, view: oppositeView)
            #expect(expected >= 0.85 && expected > opposite + 0.05, "\(prompt): named side \(expected), opposite side \(opposite)")
        }
    }

    @Test func anExplicitCameraMotionOverridesThePromptsWords() async throws {
        try await InputServer.with { inputs in
            // Kling's camera_control (pan > 0) arrives as cameraMotion: it wins over "pan left" in the prompt.
            var request = GenerationRequest(prompt: "Pan left across the card", duration: 3, mode: .std, imageURLs: [inputs.url("start.png")])
            request.cameraMotion = .panRight
            let (output, root) = try await render(request)
            defer { try? FileManager.default.removeItem(at: root) }
            let image = inputs.file("start.png")
            let right = try FrameStatistics.ssim(
                output.videoFile, frame: 71, against: image, width: 1280, height: 960, view: "iw/1.18:ih/1.18:iw-ow:(ih-oh)/2")
            let left = try FrameStatistics.ssim(
                output.videoFile, frame: 71, against: image, width: 1280, height: 960, view: "iw/1.18:ih/1.18:0:(ih-oh)/2")
            #expect(right >= 0.85 && right > left + 0.05, "ends on the right: \(right) vs left \(left)")
        }
    }

    @Test func aStaticShotHoldsTheImageAndAPullBackShowsMoreThanIt() async throws {
        try await InputServer.with { inputs in
            let image = inputs.file("start.png")
            let (still, rootA) = try await render(
                GenerationRequest(prompt: "Static shot of the card", duration: 3, mode: .std, imageURLs: [inputs.url("start.png")]))
            let (pull, rootB) = try await render(
                GenerationRequest(prompt: "Pull back from the card", duration: 3, mode: .std, imageURLs: [inputs.url("start.png")]))
            defer {
                try? FileManager.default.removeItem(at: rootA)
                try? FileManager.default.removeItem(at: rootB)
            }
            #expect(try FrameStatistics.ssim(still.videoFile, frame: 71, against: image, width: 1280, height: 960) >= 0.9)
            #expect(try FrameStatistics.ssim(pull.videoFile, frame: 0, against: image, width: 1280, height: 960) >= 0.9)
            // Pulled back to 0.8x: the image fills the middle 80% with black around it.
            let border = try FrameStatistics.means(pull.videoFile, frames: [0, 71], crop: "1280:40:0:0")
            try #require(border.count == 2)
            #expect(border[0].y > 60, "the image's top edge at the start: \(border[0])")
            #expect(border[1].y < 25, "black beyond the image's edge at the end: \(border[1])")
        }
    }

    @Test func firstAndLastFramesOpenAndEndTheVideoWithADissolveBetween() async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(
                prompt: "from test card to bars", duration: 3, mode: .std, imageURLs: [inputs.url("start.png"), inputs.url("end.png")])
            let (output, root) = try await render(request)
            defer { try? FileManager.default.removeItem(at: root) }
            let start = inputs.file("start.png"), end = inputs.file("end.png")
            #expect(try MediaProbe(output.videoFile).frames == 72)
            let opening = try FrameStatistics.ssim(output.videoFile, frame: 0, against: start, width: 1280, height: 960)
            let ending = try FrameStatistics.ssim(output.videoFile, frame: 71, against: end, width: 1280, height: 960)
            #expect(opening >= 0.9, "opens on the first image: \(opening)")
            #expect(ending >= 0.9, "ends on the last image: \(ending)")
            // Mid-dissolve (frames 24-48), the frame is neither image.
            let middleStart = try FrameStatistics.ssim(output.videoFile, frame: 36, against: start, width: 1280, height: 960)
            let middleEnd = try FrameStatistics.ssim(output.videoFile, frame: 36, against: end, width: 1280, height: 960)
            #expect(middleStart < 0.8 && middleEnd < 0.8, "a blend in the middle: \(middleStart), \(middleEnd)")
        }
    }

    @Test func multiShotOpensOnTheFirstFrameAndCutsOnShotBoundaries() async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(
                multiShot: true, shotType: .customize,
                shots: [
                    .init(prompt: "The card, static", duration: 2), .init(prompt: "a red desert", duration: 1),
                    .init(prompt: "a blue ocean", duration: 2),
                ],
                duration: 5, mode: .std, imageURLs: [inputs.url("start.png")])
            let (output, root) = try await render(request)
            defer { try? FileManager.default.removeItem(at: root) }
            #expect(try MediaProbe(output.videoFile).frames == 120)
            #expect(try FrameStatistics.ssim(output.videoFile, frame: 0, against: inputs.file("start.png"), width: 1280, height: 960) >= 0.9)
            let cuts = try FrameStatistics.sceneCuts(output.videoFile)
            #expect(cuts.count == 2, "two cuts: \(cuts)")
            for (found, expected) in zip(cuts, [48, 72]) {
                #expect(abs(found - expected) <= 1, "cut at \(found), shot boundary at \(expected)")
            }
        }
    }

    @Test func intelligenceShotsCutWhereThePlanSays() async throws {
        let request = GenerationRequest(
            prompt: "A lighthouse keeper climbs the stairs. The lamp flickers to life. Ships pass in the storm.", multiShot: true,
            shotType: .intelligence, duration: 6, mode: .std)
        let boundaries = ShotPlan(request: request.normalized()).shots.dropFirst().map(\.startFrame)
        let (output, root) = try await render(request)
        defer { try? FileManager.default.removeItem(at: root) }
        let cuts = try FrameStatistics.sceneCuts(output.videoFile)
        #expect(cuts.count == boundaries.count, "cuts \(cuts), boundaries \(boundaries)")
        for (found, expected) in zip(cuts, boundaries) {
            #expect(abs(found - expected) <= 1, "cut at \(found), shot boundary at \(expected)")
        }
    }

    @Test func generatedShotsMove() async throws {
        let (output, root) = try await render(GenerationRequest(prompt: "a quiet harbour", duration: 3, aspectRatio: .landscape, mode: .std))
        defer { try? FileManager.default.removeItem(at: root) }
        let similarity = try FrameStatistics.ssim(output.videoFile, frame: 0, against: 36)
        #expect(similarity < 0.995, "frames 0 and 36 differ: \(similarity)")
    }

    // MARK: - Elements

    /// Mean chroma of an element slot's image area at 720 px height in a 1280 px wide frame (slot 0 or 1).
    private func slot(_ slot: Int, width: Int = 60, x: Int = 1164) -> String { "\(width):60:\(x):\(56 + slot * 174)" }

    @Test func elementsAppearOnlyInTheShotsThatMentionThemAndVideoElementsMove() async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(
                multiShot: true, shotType: .customize,
                shots: [
                    .init(prompt: "@robot walks into the bar", duration: 1), .init(prompt: "@clip plays while @robot dances", duration: 2),
                    .init(prompt: "an empty street", duration: 1),
                ],
                duration: 4, aspectRatio: .landscape, mode: .std,
                elements: [
                    .init(name: "robot", description: "a red robot", imageURLs: [inputs.url("red.png"), inputs.url("blue.png")]),
                    .init(name: "clip", description: "a moving clip", videoURLs: [inputs.url("clip.mp4")]),
                    .init(name: "ghost", description: "never mentioned", imageURLs: [inputs.url("blue.png")]),
                ])
            let (output, root) = try await render(request)
            defer { try? FileManager.default.removeItem(at: root) }
            let first = try FrameStatistics.means(output.videoFile, frames: [12, 36, 84], crop: slot(0))
            let second = try FrameStatistics.means(output.videoFile, frames: [12, 36, 84], crop: slot(1))
            try #require(first.count == 3 && second.count == 3)
            #expect(first[0].v > 215 && first[1].v > 215, "robot (red) in shots 1 and 2: \(first)")
            #expect(first[2].v < 200, "robot not in shot 3: \(first[2])")
            #expect(second[1].v > 200, "clip (red video) in shot 2, second slot: \(second[1])")
            #expect(second[0].v < 200 && second[2].v < 200, "clip not in shots 1 and 3: \(second)")
            // The clip's yellow square sweeps left to right: the slot's left third changes between frames.
            let left = try FrameStatistics.means(output.videoFile, frames: [24, 48], crop: "40:110:1136:\(26 + 174)")
            try #require(left.count == 2)
            #expect(abs(left[0].y - left[1].y) > 4, "the video element's frames play: \(left)")
            // The robot's second reference (blue) is a tile beside its card, in the same shots as the card.
            let tile = try FrameStatistics.means(output.videoFile, frames: [12, 36, 84], crop: "30:30:1090:34")
            try #require(tile.count == 3)
            #expect(tile[0].u > 200 && tile[1].u > 200, "robot's blue reference beside it in shots 1 and 2: \(tile)")
            #expect(tile[2].u < 200, "robot's references not in shot 3: \(tile[2])")
            let blueLabel = try FrameStatistics.means(output.videoFile, frames: [36], crop: slot(2))
            #expect(blueLabel.first.map { $0.v < 200 } ?? false, "no third slot for the unmentioned element")
        }
    }

    @Test func anImageThatDoesNotDecodeFailsTheRenderNamingItsField() async throws {
        try await InputServer.with { inputs in
            // Drawn by the render (decoded there), and not drawn (an unmentioned element: decoded up front).
            for (request, field) in [
                (GenerationRequest(prompt: "a slow push in", duration: 3, mode: .std, imageURLs: [inputs.url("truncated.png")]), "image_urls[0]"),
                (
                    GenerationRequest(
                        prompt: "a street", duration: 3, mode: .std,
                        elements: [.init(name: "ghost", description: "never mentioned", imageURLs: [inputs.url("red.png"), inputs.url("truncated.png")])]),
                    "elements[0].image_urls[1]"
                ),
            ] {
                let error = await #expect(throws: EngineError.self) { try await render(request) }
                #expect(error?.code == 422)
                #expect(error?.message == "\(field): \(inputs.url("truncated.png")) could not be decoded as an image")
            }
        }
    }

    @Test func everyElementReferenceIsCheckedEvenWhenNoShotMentionsIt() async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(
                prompt: "@robot waves", duration: 3, mode: .std,
                elements: [
                    .init(name: "robot", description: "a red robot", imageURLs: [inputs.url("red.png")]),
                    .init(name: "unused", description: "too small", imageURLs: [inputs.url("red.png"), inputs.url("tiny.png")]),
                ])
            let error = await #expect(throws: EngineError.self) { try await render(request) }
            #expect(error?.code == 422)
            #expect(error?.message.hasPrefix("elements[1].image_urls[1]: ") == true, "\(error?.message ?? "")")
            #expect(error?.message.contains("at least 300x300") == true)
        }
    }

    // MARK: - Audio

    @Test func dialogueIsSpokenInsideItsShotWithASoundAtEachCut() async throws {
        let request = GenerationRequest(
            multiShot: true, shotType: .customize,
            shots: [
                .init(prompt: "A quiet room", duration: 1), .init(prompt: #"Anna says "Hello, how are you today, my old friend?""#, duration: 2),
                .init(prompt: "An empty hall", duration: 1),
            ],
            duration: 4, mode: .std)
        let (output, root) = try await render(request)
        defer { try? FileManager.default.removeItem(at: root) }
        let probe = try MediaProbe(output.videoFile)
        #expect(abs(try #require(probe.audioDuration) - 4.0) <= 1024.0 / 48_000, "audio as long as the video")
        let before = try FrameStatistics.rmsLevel(output.videoFile, from: 0.2, to: 0.8)
        let during = try FrameStatistics.rmsLevel(output.videoFile, from: 1.25, to: 2.8)
        let after = try FrameStatistics.rmsLevel(output.videoFile, from: 3.2, to: 3.8)
        #expect(during > before + 12 && during > after + 12, "speech in shot 2 only: \(before) / \(during) / \(after) dB")
        #expect(before > -70, "an ambient bed under shot 1: \(before) dB")
        let cut = try FrameStatistics.rmsLevel(output.videoFile, from: 2.9, to: 3.1)
        #expect(cut > after + 6, "a transition sound at the cut into shot 3: \(cut) vs \(after) dB")
    }

    @Test func namedSpeakersGetDifferentVoices() async throws {
        let line = "Good morning to you all"
        let request = GenerationRequest(
            multiShot: true, shotType: .customize,
            shots: [.init(prompt: #"Anna says "\#(line)""#, duration: 3), .init(prompt: #"Tom says "\#(line)""#, duration: 3)], duration: 6,
            mode: .std)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kling-preview-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let job = RenderJob(
            taskID: "voices", request: request.normalized(), outputDirectory: root.appendingPathComponent("out"),
            scratchDirectory: root.appendingPathComponent("tmp"))
        _ = try await PreviewEngine(fetcher: HTTPInputFetcher.development).render(job) { _ in }
        let anna = try Data(contentsOf: job.scratchDirectory.appendingPathComponent("speech0-0.wav"))
        let tom = try Data(contentsOf: job.scratchDirectory.appendingPathComponent("speech1-0.wav"))
        #expect(anna != tom, "the same words in two voices")
    }

    // MARK: - Sizes, durations, determinism

    @Test(arguments: GenerationRequest.Mode.allCases)
    func sizesFollowEveryModeAndAspect(_ mode: GenerationRequest.Mode) async throws {
        let (long, short) = FrameSize.sides(mode)
        for (aspect, width, height) in [
            (GenerationRequest.AspectRatio.landscape, long, short), (.portrait, short, long), (.square, short, short),
        ] {
            let (output, root) = try await render(GenerationRequest(prompt: "sizes", duration: 3, aspectRatio: aspect, mode: mode, audio: false))
            defer { try? FileManager.default.removeItem(at: root) }
            let probe = try MediaProbe(output.videoFile)
            #expect(probe.width == width && probe.height == height, "\(mode) \(aspect): \(probe.width)x\(probe.height)")
            #expect(probe.frames == 72 && probe.streamCount == 1)
        }
    }

    @Test(arguments: [5, 10, 15])
    func durationsAreExactInFramesAndSamples(_ seconds: Int) async throws {
        let (output, root) = try await render(
            GenerationRequest(prompt: #"A clock ticks. "Time," he says."#, duration: seconds, aspectRatio: .landscape, mode: .std, audio: true))
        defer { try? FileManager.default.removeItem(at: root) }
        let probe = try MediaProbe(output.videoFile)
        #expect(probe.frames == seconds * 24)
        #expect(abs(try #require(probe.audioDuration) - Double(seconds)) <= 1024.0 / 48_000)
    }

    @Test func aFullRequestRendersToTheSameBytesTwice() async throws {
        try await InputServer.with { inputs in
            let request = GenerationRequest(
                prompt: #"Push in as @robot says "Hello," and the card turns to bars."#, duration: 3, mode: .std, audio: true,
                imageURLs: [inputs.url("start.png"), inputs.url("end.png")],
                elements: [.init(name: "robot", description: "a red robot", imageURLs: [inputs.url("red.png")])])
            let (first, rootA) = try await render(request)
            let (second, rootB) = try await render(request)
            defer {
                try? FileManager.default.removeItem(at: rootA)
                try? FileManager.default.removeItem(at: rootB)
            }
            #expect(try Data(contentsOf: first.videoFile) == Data(contentsOf: second.videoFile))
        }
    }

    // MARK: - Rendering split over processes

    /// The two ffmpeg processes of a render may split a shot between them (here a push-in on a still, and a generated
    /// shot with a video element playing); the frames must be those of the same render in one process, up to encoding.
    @Test(arguments: [false, true])
    func aShotSplitBetweenTwoProcessesDrawsTheSameFrames(_ generated: Bool) async throws {
        try await InputServer.with { inputs in
            let request =
                generated
                ? GenerationRequest(
                    multiShot: true, shotType: .customize,
                    shots: [
                        .init(prompt: "A quiet harbour", duration: 1), .init(prompt: "@clip plays as boats pass", duration: 3),
                        .init(prompt: "Night falls", duration: 1),
                    ],
                    duration: 5, aspectRatio: .landscape, mode: .std,
                    elements: [.init(name: "clip", description: "a moving clip", videoURLs: [inputs.url("clip.mp4")])])
                : GenerationRequest(
                    prompt: "Slow push in on the test card", duration: 5, mode: .std, imageURLs: [inputs.url("start.png")])
            var single = PreviewEngine.Configuration()
            single.parallelRenders = 1
            let (whole, rootA) = try await render(request, configuration: single)
            let (split, rootB) = try await render(request)
            defer {
                try? FileManager.default.removeItem(at: rootA)
                try? FileManager.default.removeItem(at: rootB)
            }
            #expect(try MediaProbe(split.videoFile).frames == 120)
            let similarity = try FrameStatistics.ssimPerFrame(whole.videoFile, split.videoFile)
            #expect(similarity.count == 120)
            // The split falls at frame 60 (shot 2's frame 36; the still shot's frame 60).
            let worst = similarity.enumerated().min { $0.element < $1.element }
            #expect((worst?.element ?? 0) > 0.97, "least similar frame: \(String(describing: worst))")
            if generated {
                // The clip's card (top right) plays the same frames: a clip running out of step would differ here.
                let card = try FrameStatistics.ssimPerFrame(whole.videoFile, split.videoFile, crop: "124:150:1132:24")
                let worstCard = card.enumerated().min { $0.element < $1.element }
                #expect(card.count == 120 && (worstCard?.element ?? 0) > 0.95, "least similar card: \(String(describing: worstCard))")
            }
        }
    }

    @Test func framesSplitAtAShotBoundaryWithinHalfASecondOfTheMiddleOtherwiseInsideAShot() {
        func cuts(_ seconds: [Int]) -> [[FilterGraphBuilder.ShotPiece]] {
            let request = GenerationRequest(
                prompt: seconds.count > 1 ? nil : "a shot", multiShot: seconds.count > 1, shotType: .customize,
                shots: seconds.count > 1 ? seconds.map { .init(prompt: "a shot", duration: $0) } : [],
                duration: seconds.reduce(0, +), mode: .std)
            let plan = ShotPlan(request: request.normalized())
            let builder = FilterGraphBuilder(
                size: FrameSize(width: 1280, height: 720), plan: plan, looks: [], moves: [], captionFiles: [], labelFile: "label.txt",
                fontFile: nil, firstFrame: nil, lastFrame: nil, preset: "ultrafast", threads: 4)
            return builder.groups(count: 2)
        }
        typealias Piece = FilterGraphBuilder.ShotPiece
        // 48 | 24 + 48 frames: the boundary at 48 is 12 frames from the middle (60).
        #expect(cuts([2, 1, 2]) == [[Piece(shot: 0, frames: 0..<48)], [Piece(shot: 1, frames: 0..<24), Piece(shot: 2, frames: 0..<48)]])
        // 120 + 120 + 120: the nearest boundary is 60 frames from the middle, so the middle shot is split.
        #expect(cuts([5, 5, 5]) == [[Piece(shot: 0, frames: 0..<120), Piece(shot: 1, frames: 0..<60)], [Piece(shot: 1, frames: 60..<120), Piece(shot: 2, frames: 0..<120)]])
        // One shot: split in the middle.
        #expect(cuts([5]) == [[Piece(shot: 0, frames: 0..<60)], [Piece(shot: 0, frames: 60..<120)]])
    }
}
