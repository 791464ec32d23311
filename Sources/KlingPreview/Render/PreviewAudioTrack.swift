import Foundation
import KlingAPI
import KlingCore

/// The preview's audio track for a request: every quoted line spoken by espeak-ng (each named speaker with their own
/// voice), an ambience bed and a sound on every cut, mixed by ``AudioRenderer`` into an AAC `audio.m4a` exactly as
/// long as the video. The preview engine's own sound, and what is laid under a silent video from an engine that makes
/// none (the README's "engines on your own GPUs").
public struct PreviewAudioTrack: Sendable {
    /// espeak-ng executable. Default `espeak-ng`.
    public var espeak: String

    public init(espeak: String = "espeak-ng") {
        self.espeak = espeak
    }

    /// Renders the track of `request` as `audio.m4a` in `directory` (its speech files beside it); returns the file.
    public func render(for request: GenerationRequest, in directory: URL) async throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try await render(plan: ShotPlan(request: request), in: directory)
    }

    /// The track of a planned video (the preview engine plans once for the picture and the sound).
    func render(plan: ShotPlan, in directory: URL) async throws -> URL {
        let audio = AudioGraphBuilder(plan: plan, seed: StableHash.fnv1a(plan.shots.map(\.prompt).joined(separator: "\n")))
        let speech = try await synthesizeSpeech(plan: plan, in: directory)
        try Task.checkCancellation()
        let file = directory.appendingPathComponent("audio.m4a")
        do {
            try await AudioRenderer.render(graph: audio.graph(speech: speech, directory: directory), sampleRate: AudioGraphBuilder.sampleRate, to: file)
        } catch {
            throw EngineError.renderFailed("rendering the audio failed: \(error)")
        }
        return file
    }

    /// Speaks every quoted line of every shot with espeak-ng, concurrently (it is mostly start-up time), each named
    /// speaker with their own voice throughout the video; returns the clips per shot index in the order they are said.
    private func synthesizeSpeech(plan: ShotPlan, in scratch: URL) async throws -> [Int: [SpeechSynthesizer.Clip]] {
        let synthesizer = SpeechSynthesizer(executable: espeak)
        let lines = plan.shots.map { SpeechSynthesizer.lines(in: $0.prompt) }
        let voices = SpeechSynthesizer.voiceAssignments(lines)
        return try await withThrowingTaskGroup(of: (Int, Int, SpeechSynthesizer.Clip).self) { group in
            for (shot, shotLines) in lines.enumerated() {
                for (number, line) in shotLines.enumerated() {
                    let file = "speech\(shot)-\(number).wav"
                    let voice = SpeechSynthesizer.voice(for: line, in: voices)
                    group.addTask {
                        let samples = try await synthesizer.speak(
                            line.text, voice: voice, to: scratch.appendingPathComponent(file), sampleRate: AudioGraphBuilder.sampleRate)
                        return (shot, number, SpeechSynthesizer.Clip(file: file, samples: samples))
                    }
                }
            }
            var spoken: [Int: [(Int, SpeechSynthesizer.Clip)]] = [:]
            for try await (shot, number, clip) in group { spoken[shot, default: []].append((number, clip)) }
            return spoken.mapValues { $0.sorted { $0.0 < $1.0 }.map(\.1) }
        }
    }
}
