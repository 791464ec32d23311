import Foundation
import Testing

@testable import KlingPreview

/// Renders audio graphs in process and checks the M4A files with ffprobe.
@Suite("Rendering the audio track in process")
struct AudioRendererTests {
    @Test func aGraphBecomesStereoAACOfItsExactLength() async throws {
        let directory = try scratchDirectory("kling-audio")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("audio.m4a")
        // 2.5 s: not a whole number of 1024-sample AAC frames, so the last frame is short.
        try await AudioRenderer.render(
            graph: "sine=f=440:sample_rate=48000,atrim=end_sample=120000,aformat=sample_fmts=fltp:channel_layouts=stereo[a];[a]abuffersink",
            sampleRate: 48_000, to: output)
        let probe = try MediaProbe(output)
        #expect(probe.audioCodec == "aac")
        #expect(probe.audioChannels == 2)
        #expect(probe.sampleRate == 48_000)
        #expect(probe.streamCount == 1)
        #expect(abs(try #require(probe.audioDuration) - 2.5) < 1.0 / 48_000, "the encoder delay stays in the edit list")
        // Deterministic: the same graph writes the same bytes.
        let again = directory.appendingPathComponent("again.m4a")
        try await AudioRenderer.render(
            graph: "sine=f=440:sample_rate=48000,atrim=end_sample=120000,aformat=sample_fmts=fltp:channel_layouts=stereo[a];[a]abuffersink",
            sampleRate: 48_000, to: again)
        #expect(try Data(contentsOf: output) == Data(contentsOf: again))
    }

    @Test func aMissingSpeechFileOrABrokenGraphIsAnErrorNotACrash() async throws {
        let directory = try scratchDirectory("kling-audio")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("audio.m4a")
        let missing = directory.appendingPathComponent("missing.wav").path
        await #expect {
            try await AudioRenderer.render(graph: "amovie=filename=\(missing)[a];[a]abuffersink", sampleRate: 48_000, to: output)
        } throws: { error in
            error is AudioRenderer.Failure && "\(error)".contains("audio graph")
        }
        await #expect(throws: AudioRenderer.Failure.self) {
            try await AudioRenderer.render(graph: "sine=f=440[a];[a]nosuchfilter,abuffersink", sampleRate: 48_000, to: output)
        }
        await #expect(throws: AudioRenderer.Failure.self) {
            try await AudioRenderer.render(graph: "sine=f=440[a]", sampleRate: 48_000, to: output)
        }
    }
}
