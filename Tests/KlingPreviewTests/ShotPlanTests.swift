import KlingAPI
import Testing

@testable import KlingPreview

@Suite("Shot planning and sizes")
struct ShotPlanTests {
    @Test(arguments: [
        (3, "One. Two. Three. Four."), (15, "A long first sentence about a city at night. Short. Then a chase, a jump, a fall. End."),
        (7, "no punctuation at all"), (4, "a, b, c, d, e, f, g, h"),
    ])
    func intelligenceSplitSumsToTheDurationWithAtLeastOneSecondEach(_ seconds: Int, _ prompt: String) {
        let shots = ShotPlan.split(prompt, seconds: seconds)
        #expect(shots.map(\.1).reduce(0, +) == seconds)
        #expect(shots.allSatisfy { $0.1 >= 1 })
        #expect(shots.count <= 6 && shots.count <= seconds)
        #expect(ShotPlan.split(prompt, seconds: seconds).map(\.0) == shots.map(\.0), "deterministic")
    }

    @Test func customizeShotsStartAtTheirBoundaries() {
        let request = GenerationRequest(
            multiShot: true, shotType: .customize, shots: [.init(prompt: "a", duration: 2), .init(prompt: "b", duration: 3)], duration: 5,
            imageURLs: ["https://x/a.png"]
        ).normalized()
        let plan = ShotPlan(request: request)
        #expect(plan.shots.map(\.startFrame) == [0, 48])
        #expect(plan.totalFrames == 120)
    }

    @Test func sizesFollowModeAndAspect() {
        #expect(FrameSize.forAspect(.landscape, mode: .std) == FrameSize(width: 1280, height: 720))
        #expect(FrameSize.forAspect(.portrait, mode: .pro) == FrameSize(width: 1080, height: 1920))
        #expect(FrameSize.forAspect(nil, mode: .fourK) == FrameSize(width: 2160, height: 2160))
        #expect(FrameSize.forImage(width: 640, height: 480, mode: .std) == FrameSize(width: 1280, height: 960))
        #expect(FrameSize.forImage(width: 1000, height: 2000, mode: .pro) == FrameSize(width: 960, height: 1920))
        #expect(FrameSize.forImage(width: 500, height: 500, mode: .pro) == FrameSize(width: 1080, height: 1080))
    }

    @Test func customizeShotsThatDoNotSumAreSharedOutOverTheDuration() {
        let request = GenerationRequest(
            multiShot: true, shotType: .customize, shots: [.init(prompt: "a", duration: 2), .init(prompt: "b", duration: 2)], duration: 6)
        #expect(ShotPlan(request: request).shots.map(\.frames) == [72, 72])
    }

    @Test func sentencesSplitOnlyAtWordEnds() {
        let shots = ShotPlan.split("It costs 3.5 dollars. Then it rains.", seconds: 4)
        #expect(shots.map(\.0) == ["It costs 3.5 dollars.", "Then it rains."])
        #expect(ShotPlan.split("wind, rain; thunder", seconds: 3).map(\.0) == ["wind,", "rain;", "thunder"])
    }

    @Test func elementMentionsMatchWholeNames() {
        #expect(ShotPlan.mentions("@cat sleeps", name: "cat"))
        #expect(ShotPlan.mentions("look at @cat.", name: "cat"))
        #expect(!ShotPlan.mentions("@caterpillar eats", name: "cat"))
        #expect(!ShotPlan.mentions("cat sleeps", name: "cat"))
    }

    @Test func neighbouringShotsAlternateDarkAndLight() {
        let dark = PreviewLook(prompt: "same", index: 0), light = PreviewLook(prompt: "same", index: 1)
        #expect(dark.background != light.background)
        #expect(PreviewLook(prompt: "same", index: 0) == dark, "deterministic")
        #expect(StableHash.fnv1a("a") == 0xaf63_dc4c_8601_ec8c)
        #expect(PreviewLook.blend("0xffffff", over: "0x000000", opacity: 0.5) == "0x808080")
        #expect(PreviewLook.blend("0xff0000", over: "0x0000ff", opacity: 1) == "0xff0000")
    }

    @Test func captionsWrapToTheFrameWidth() {
        let text = Array(repeating: "word", count: 200).joined(separator: " ")
        let wrapped = CaptionText.wrap(text, width: 720, height: 720)
        #expect(wrapped.split(separator: "\n").count == 3)
        #expect(wrapped.hasSuffix("…"))
        #expect(CaptionText.wrap("", width: 720, height: 720) == " ")
    }

    @Test func filterValuesAreEscapedForOptionAndGraphParsers() {
        #expect(FilterGraphBuilder.escape("/fonts/a:b,c.ttf") == #"/fonts/a\\:b\,c.ttf"#)
        #expect(FilterGraphBuilder.escape("/plain/DejaVuSans.ttf") == "/plain/DejaVuSans.ttf")
    }
}
