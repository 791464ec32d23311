import Foundation
import Testing

@testable import KlingPreview

/// How prompts are read: camera words and who says which line.
@Suite("Prompt reading: camera moves and dialogue")
struct PromptReadingTests {
    @Test(arguments: [
        ("Slow push in on the lighthouse", CameraMove.pushIn), ("The camera zooms in on her face", .pushIn),
        ("Pull back to reveal the city", .pullBack), ("ZOOM OUT over the valley", .pullBack),
        ("Pan left across the harbour", .panLeft), ("camera pans right", .panRight), ("Tilt up to the sky", .tiltUp),
        ("tilt down to the street", .tiltDown), ("The camera orbits the statue", .orbit), ("Static shot of a desk", .still),
        ("Pan left, then zoom in", .panLeft),
    ])
    func cameraWordsPickTheMove(_ prompt: String, _ move: CameraMove) {
        #expect(CameraMove(prompt: prompt) == move)
    }

    @Test func withoutCameraWordsTheMoveIsAGentleDeterministicDrift() {
        let move = CameraMove(prompt: "a quiet harbour at dawn")
        guard case .drift = move else {
            Issue.record("expected a drift, got \(move)")
            return
        }
        #expect(CameraMove(prompt: "a quiet harbour at dawn") == move)
    }

    @Test func findsQuotedDialogueAndItsSpeakers() {
        let lines = SpeechSynthesizer.lines(
            in: #"Anna says "Hello there." Tom: “Hi.” "Late again," she sighs. "Fine," says @robot. "Go," Ben whispers."#)
        #expect(lines.map(\.text) == ["Hello there.", "Hi.", "Late again,", "Fine,", "Go,"])
        #expect(lines.map(\.speaker) == ["Anna", "Tom", nil, "robot", "Ben"])
        #expect(SpeechSynthesizer.lines(in: "no dialogue").isEmpty)
    }

    @Test func everyNamedSpeakerGetsTheirOwnVoiceAcrossShots() {
        let shots = [
            SpeechSynthesizer.lines(in: #"Anna says "One." Tom says "Two.""#), SpeechSynthesizer.lines(in: #"ANNA: "Three." "Four.""#),
        ]
        let voices = SpeechSynthesizer.voiceAssignments(shots)
        let anna = SpeechSynthesizer.voice(for: shots[0][0], in: voices)
        let tom = SpeechSynthesizer.voice(for: shots[0][1], in: voices)
        #expect(anna != tom)
        #expect(SpeechSynthesizer.voice(for: shots[1][0], in: voices) == anna, "same speaker, same voice, in another shot")
        #expect(SpeechSynthesizer.voice(for: shots[1][1], in: voices) == SpeechSynthesizer.narrator)
        #expect(Set([anna, tom, SpeechSynthesizer.narrator]).count == 3)
    }
}
